import { kstatusOf, kstatusRuleBreaks, type KstatusVerdict } from '../../test-support/kstatus.js';
import { configStatus, type ConfigVerdict } from '../backupconfig-status.js';

const now = new Date('2026-11-27T12:00:00Z');
const identity = { username: 'app', hostname: 'media', path: '/data' };

describe("a BackupConfig's status", () => {
  it('writes the verdict as Ready with Reconciling and Stalled, the generation it acted on and the facts', () => {
    const s = configStatus(
      { lastBackup: 'b1' },
      ['True', 'Ready', 'backs up data to Repository nas'],
      { identity, identityString: 'app@media:/data' },
      4,
      now,
    );
    expect(s).toMatchObject({ lastBackup: 'b1', observedGeneration: 4, identity, identityString: 'app@media:/data' });
    expect(s.conditions!.map((c) => [c.type, c.status, c.reason, c.observedGeneration])).toEqual([
      ['Ready', 'True', 'Ready', 4],
      ['Reconciling', 'False', 'Ready', 4],
      ['Stalled', 'False', 'Ready', 4],
    ]);
  });

  describe('kstatus of a BackupConfig', () => {
    it.each([
      [['True', 'Ready', 'backs up data'], 'Current'],
      [['False', 'RepositoryNotReady', 'Repository nas is not Ready'], 'InProgress'],
      [['False', 'RepositoryNotFound', 'Repository nas not found'], 'InProgress'],
      [['False', 'RepositoryNotAllowed', 'not allowed'], 'Failed'],
      [['False', 'InvalidSpec', 'spec.source.pvc: required'], 'Failed'],
      [['False', 'PrivilegedMoverNotAllowed', 'root'], 'Failed'],
      [['False', 'SourceNotFound', 'claim missing'], 'InProgress'],
    ] as [ConfigVerdict, KstatusVerdict][])('%j: %s', (verdict, expected) => {
      const o = { metadata: { generation: 2 }, status: configStatus(undefined, verdict, { identity }, 2, now) };
      expect(kstatusOf(o).status).toBe(expected);
      expect(kstatusRuleBreaks(o)).toEqual([]);
    });
  });
});
