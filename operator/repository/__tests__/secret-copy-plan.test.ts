// Where copies of a ClusterRepository's keys may stay (secret-copy-plan.ts).
import { clusterRepositoriesNamedBy, consumersByNamespace, planSecretCopies } from '../secret-copy-plan.js';

/* eslint-disable @typescript-eslint/no-explicit-any */
const shared = { kind: 'ClusterRepository', name: 'shared' };
const obj = (namespace: string, name: string, spec: any, status?: any) => ({ metadata: { namespace, name }, spec, status }) as any;
const none = { configRepository: () => undefined, backupRepository: () => undefined };

describe('clusterRepositoriesNamedBy: who is a consumer', () => {
  const cases: { name: string; kind: any; o: any; lookup?: any; expect: string[] }[] = [
    { name: 'a BackupConfig naming it', kind: 'BackupConfig', o: obj('a', 'c', { repository: shared }), expect: ['shared'] },
    { name: 'a BackupConfig naming a Repository', kind: 'BackupConfig', o: obj('a', 'c', { repository: { name: 'nas' } }), expect: [] },
    // A tenant's Maintenance of a ClusterRepository runs nothing (MaintenanceNotAllowed): it keeps no key in its namespace.
    { name: 'a Maintenance naming it', kind: 'Maintenance', o: obj('a', 'm', { repository: shared }), expect: [] },
    { name: 'a running Backup', kind: 'Backup', o: obj('a', 'b', {}, { phase: 'Running', repository: shared }), expect: ['shared'] },
    { name: 'a finished Backup', kind: 'Backup', o: obj('a', 'b', {}, { phase: 'Succeeded', repository: shared }), expect: [] },
    {
      name: 'a mirrored Backup (runs no Job)',
      kind: 'Backup',
      o: obj('a', 'b', { snapshot: { id: 'k1' } }, { phase: 'Pending', repository: shared }),
      expect: [],
    },
    {
      name: 'a Restore of a snapshot in it',
      kind: 'Restore',
      o: obj('a', 'r', { source: { snapshot: { repository: shared } }, target: { populator: {} } }),
      expect: ['shared'],
    },
    {
      name: 'a Restore from a BackupConfig naming it',
      kind: 'Restore',
      o: obj('a', 'r', { source: { fromConfig: { name: 'c' } }, target: { populator: {} } }),
      lookup: { ...none, configRepository: () => shared },
      expect: ['shared'],
    },
    {
      name: 'a Restore of a Backup recorded against it',
      kind: 'Restore',
      o: obj('a', 'r', { source: { backupRef: { name: 'b' } }, target: { populator: {} } }),
      lookup: { ...none, backupRepository: () => shared },
      expect: ['shared'],
    },
    {
      name: 'a populator Restore whose claim answers name it (its config gone)',
      kind: 'Restore',
      o: obj('a', 'r', { source: { fromConfig: { name: 'gone' } }, target: { populator: {} } }, { claims: [{ repository: shared }] }),
      expect: ['shared'],
    },
    {
      name: 'a Restore into a claim that has completed',
      kind: 'Restore',
      o: obj('a', 'r', { source: { snapshot: { repository: shared } }, target: { pvc: { name: 'x' } } }, { phase: 'Completed' }),
      expect: [],
    },
  ];
  it.each(cases.map((c) => [c.name, c] as const))('%s', (_n, c) => {
    expect(clusterRepositoriesNamedBy(c.kind, c.o, c.lookup ?? none)).toEqual(c.expect);
  });

  it('names finished ones too when asked (to wake the repository as its last consumer finishes)', () => {
    expect(clusterRepositoriesNamedBy('Backup', obj('a', 'b', {}, { phase: 'Failed', repository: shared }), none, true)).toEqual([
      'shared',
    ]);
  });
});

describe('planSecretCopies', () => {
  const consumers = consumersByNamespace({
    configs: [obj('a', 'app', { repository: shared }), obj('c', 'app', { repository: { name: 'own' } })],
    backups: [obj('b', 'old', {}, { phase: 'Succeeded', repository: shared })],
    restores: [],
    maintenances: [],
  });
  const plan = (allowed: any, copies: string[], labels: Record<string, Record<string, string>> = {}) =>
    planSecretCopies({
      repository: 'shared',
      allowed,
      operatorNamespace: 'kopia-system',
      copies,
      namespaceLabels: (ns) => labels[ns] ?? (['a', 'b', 'c', 'kopia-system'].includes(ns) ? {} : undefined),
      consumers,
    });

  it('keeps the copies of allowed namespaces with a consumer, and the operator’s own', () => {
    expect(plan({ all: true }, ['a', 'kopia-system'])).toEqual([
      { namespace: 'a', keep: true },
      { namespace: 'kopia-system', keep: true },
    ]);
  });

  it('deletes the copy of a namespace no longer allowed, though something there still uses the repository', () => {
    expect(plan({ names: ['c'] }, ['a', 'kopia-system'])).toEqual([
      { namespace: 'a', keep: false, why: 'namespace a is not in spec.allowedNamespaces' },
      { namespace: 'kopia-system', keep: true },
    ]);
  });

  it('follows a selector through the namespace’s labels', () => {
    const selector = { selector: { matchLabels: { team: 'media' } } };
    expect(plan(selector, ['a'], { a: { team: 'media' } })).toEqual([{ namespace: 'a', keep: true }]);
    expect(plan(selector, ['a'], { a: { team: 'other' } })[0]).toMatchObject({ keep: false });
  });

  it('deletes the copy where nothing uses the repository any more (a finished Backup, or another repository)', () => {
    expect(plan({ all: true }, ['b', 'c'])).toEqual([
      { namespace: 'b', keep: false, why: 'nothing in namespace b uses it any more' },
      { namespace: 'c', keep: false, why: 'nothing in namespace c uses it any more' },
    ]);
  });

  it('consumers being deleted count no more', () => {
    const deleting = obj('a', 'app', { repository: shared });
    deleting.metadata.deletionTimestamp = '2026-12-03T11:00:00Z';
    expect(consumersByNamespace({ configs: [deleting], backups: [], restores: [], maintenances: [] }).get('a')).toBeUndefined();
  });
});
