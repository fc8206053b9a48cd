// The adapters read the informer caches the processes already keep: the same objects as the
// pure functions' tests, through real Informers over a scripted API (list, then watch events).
import type { KubeClient, KubeObject, ResourceType, WatchEvent } from '../../kube/kube-client.js';
import {
  Jobs,
  KopiaBackupConfigs,
  KopiaBackups,
  KopiaBackupSchedules,
  KopiaClusterRepositories,
  KopiaMaintenances,
  KopiaRepositories,
  KopiaRestores,
  Namespaces,
  PersistentVolumeClaims,
  PersistentVolumes,
  Pods,
  StorageClasses,
} from '../../kube/resources.js';
import { POPULATOR_JOB_SELECTOR } from '../../populator/populator.js';
import { FINALIZER, POPULATED, SELECTED_NODE } from '../../populator/populator-plan.js';
import { InformerFactory } from '../../runtime/kind-operator.js';
import type { Logger } from '../../runtime/logger.js';
import { validObjects, withFields } from '../../test-support/kopia-objects.js';
import type { Series } from '../metric-catalog.js';
import { operatorObjectSeries } from '../object-metrics.js';
import { populatorObjectSeries } from '../population-metrics.js';

const NOW = new Date('2027-06-07T12:00:00Z');

/** An API whose lists answer the objects given per resource, and whose watches deliver what `send` pushes. */
class ScriptedApi {
  private readonly watchers = new Map<string, (e: WatchEvent<KubeObject>) => void>();
  constructor(private readonly objects: Record<string, KubeObject[]>) {}

  async list(type: ResourceType) {
    return { items: structuredClone(this.objects[type.plural] ?? []), metadata: { resourceVersion: '1' } };
  }

  watch(type: ResourceType, _ns: unknown, _rv: string, onEvent: (e: WatchEvent<KubeObject>) => void, opts: { signal?: AbortSignal }) {
    this.watchers.set(type.plural, onEvent);
    return new Promise<void>((resolve) => opts.signal?.addEventListener('abort', () => resolve()));
  }

  send(type: ResourceType, event: WatchEvent<KubeObject>): void {
    this.watchers.get(type.plural)!(event);
  }

  asKubeClient(): KubeClient {
    return this as unknown as KubeClient;
  }
}

const quiet: Logger = { debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined } as unknown as Logger;
const named = (o: KubeObject, rv = '1') => ({ ...o, metadata: { ...o.metadata, resourceVersion: rv } });
const byName = (series: Series[], name: string) => series.filter((s) => s.labels.name === name);

let factory: InformerFactory | undefined;
afterEach(() => factory?.stopAll());

async function startInformers(api: ScriptedApi, types: [ResourceType, string?][]): Promise<InformerFactory> {
  factory = new InformerFactory(api.asKubeClient(), quiet);
  for (const [type, labelSelector] of types) factory.get(type, labelSelector ? { labelSelector } : {});
  await factory.startAll();
  return factory;
}

describe('operatorObjectSeries', () => {
  const config = named(
    withFields(validObjects.BackupConfig(), {
      status: {
        conditions: [{ type: 'Ready', status: 'True', reason: 'Ready', message: 'ok', lastTransitionTime: '2027-06-01T00:00:00Z' }],
      },
    }) as unknown as KubeObject,
  );
  const backup = named(
    withFields(validObjects.Backup(), {
      'metadata.name': 'jellyfin-1',
      status: { phase: 'Succeeded', startTime: '2027-06-07T03:00:00Z', completionTime: '2027-06-07T03:05:00Z' },
    }) as unknown as KubeObject,
  );
  const schedule = named(validObjects.BackupSchedule() as unknown as KubeObject);
  const maintenance = named(
    withFields(validObjects.Maintenance(), {
      status: { owner: 'maintenance@prod', lastQuick: { endTime: '2027-06-07T10:00:00Z', result: 'Failed' } },
    }) as unknown as KubeObject,
  );
  const kubeSystem = { metadata: { name: 'kube-system', uid: '8f3a2c1d-0000-0000-0000-000000000000', resourceVersion: '1' } };

  it("reads every kind from the operator's caches, and drops a config's series when the watch says it was deleted", async () => {
    const api = new ScriptedApi({
      backupconfigs: [config],
      backups: [backup],
      backupschedules: [schedule],
      restores: [named(validObjects.Restore() as unknown as KubeObject)],
      repositories: [named(validObjects.Repository() as unknown as KubeObject)],
      clusterrepositories: [named(validObjects.ClusterRepository() as unknown as KubeObject)],
      maintenances: [maintenance],
      namespaces: [kubeSystem],
    });
    const informers = await startInformers(api, [
      [KopiaBackupConfigs],
      [KopiaBackups],
      [KopiaBackupSchedules],
      [KopiaRestores],
      [KopiaRepositories],
      [KopiaClusterRepositories],
      [KopiaMaintenances],
      [Namespaces],
    ]);
    const series = operatorObjectSeries(informers, NOW);
    const names = new Set(series.map((s) => s.name));
    for (const name of [
      'kopia_backupconfig_ready',
      'kopia_backupconfig_last_success_timestamp_seconds',
      'kopia_backupconfig_schedule_interval_seconds',
      'kopia_restore_phase',
      'kopia_repository_ready',
      'kopia_maintenance_owner_mismatch',
    ])
      expect(names).toContain(name);
    expect(
      series
        .filter((s) => s.name === 'kopia_repository_ready')
        .map((s) => s.labels.kind)
        .sort(),
    ).toEqual(['ClusterRepository', 'Repository']);
    // Kopia reported maintenance@prod: not this cluster's default owner (maintenance@cluster-8f3a2c1d, from kube-system's UID)...
    expect(series.find((s) => s.name === 'kopia_maintenance_owner_mismatch')?.value).toBe(1);
    // ...but it is when the operator was given KOPIA_CLUSTER_NAME=prod.
    const prod = operatorObjectSeries(informers, NOW, { clusterName: 'prod' });
    expect(prod.find((s) => s.name === 'kopia_maintenance_owner_mismatch')?.value).toBe(0);

    api.send(KopiaBackupConfigs, { type: 'DELETED', object: named(config, '2') });
    const after = operatorObjectSeries(informers, NOW);
    expect(byName(after, 'jellyfin')).toEqual([]);
    expect(after.length).toBeGreaterThan(0);
  });

  it('makes no informer for a kind the process does not keep, and has no series for it', async () => {
    const api = new ScriptedApi({ backupconfigs: [config] });
    const informers = await startInformers(api, [[KopiaBackupConfigs]]);
    const series = operatorObjectSeries(informers, NOW);
    expect(new Set(series.map((s) => s.name.split('_')[1]))).toEqual(new Set(['backupconfig']));
    expect(informers.all()).toHaveLength(1);
  });
});

describe('populatorObjectSeries (kopia_population_claims_waiting)', () => {
  let n = 0;
  /** A claim of the populator: its dataSourceRef names Restore `restore` in its namespace. */
  function claim(
    o: { namespace?: string; restore?: string; phase?: string; selectedNode?: string; deleting?: boolean; storageClass?: string } = {},
  ): KubeObject {
    n++;
    return {
      metadata: {
        name: `data-${n}`,
        namespace: o.namespace ?? 'media',
        uid: `00000000-0000-0000-0000-${String(n).padStart(12, '0')}`,
        resourceVersion: '1',
        finalizers: [FINALIZER],
        ...(o.selectedNode ? { annotations: { [SELECTED_NODE]: o.selectedNode } } : {}),
        ...(o.deleting ? { deletionTimestamp: '2027-06-07T11:00:00Z' } : {}),
      },
      spec: {
        storageClassName: o.storageClass ?? 'fast',
        accessModes: ['ReadWriteOnce'],
        resources: { requests: { storage: '1Gi' } },
        dataSourceRef: { apiGroup: 'kopia.io', kind: 'Restore', name: o.restore ?? 'jellyfin' },
      },
      status: { phase: o.phase ?? 'Pending' },
    };
  }
  const answered = (c: KubeObject, answer: Record<string, unknown>) => ({
    claimName: c.metadata.name,
    claimUID: c.metadata.uid,
    resolvedAt: '2027-06-07T11:00:00Z',
    ...answer,
  });
  const restore = (name: string, claims: Record<string, unknown>[]) =>
    named({
      ...(validObjects.Restore() as unknown as KubeObject),
      metadata: { name, namespace: 'media', uid: `r-${name}`, generation: 1 },
      status: { phase: 'Pending', claims },
    });

  it('counts the claims not yet Bound by namespace and the reason the populator waits for them', async () => {
    const noRestore = claim({ restore: 'missing' });
    const unanswered = [claim(), claim()];
    const failed = claim({ restore: 'failing' });
    const noConsumer = claim({ restore: 'lazy', storageClass: 'local' });
    const restoring = claim({ restore: 'running' });
    const binding = claim({ restore: 'done' });
    const elsewhere = claim({ namespace: 'other' });
    const bound = claim({ phase: 'Bound' });
    const deleting = claim({ deleting: true });
    const notOurs = { ...claim(), spec: { storageClassName: 'fast' } };
    const snapshot = { snapshotID: 'k1234', repository: { name: 'nas' } };
    const uid = (c: KubeObject) => c.metadata.uid!;
    const api = new ScriptedApi({
      persistentvolumeclaims: [
        noRestore,
        ...unanswered,
        failed,
        noConsumer,
        restoring,
        binding,
        elsewhere,
        bound,
        deleting,
        notOurs,
        // The prime claim of `binding`: the data is in.
        {
          metadata: {
            name: `kopia-prime-${uid(binding)}`,
            namespace: 'media',
            uid: 'p1',
            resourceVersion: '1',
            annotations: { [POPULATED]: 'j1' },
          },
          spec: { volumeName: 'pv-1' },
          status: { phase: 'Bound' },
        },
      ],
      restores: [
        restore('jellyfin', []),
        restore('failing', [answered(failed, { failed: { reason: 'SnapshotMissing', message: 'kopia lists no snapshot' } })]),
        restore('lazy', [answered(noConsumer, snapshot)]),
        restore('running', [answered(restoring, snapshot)]),
        restore('done', [answered(binding, snapshot)]),
      ],
      storageclasses: [
        { metadata: { name: 'fast', resourceVersion: '1' }, volumeBindingMode: 'Immediate' },
        { metadata: { name: 'local', resourceVersion: '1' }, volumeBindingMode: 'WaitForFirstConsumer' },
      ],
      jobs: [
        {
          metadata: { name: `kopia-populate-${uid(restoring)}`, namespace: 'media', uid: 'j2', resourceVersion: '1' },
          spec: {},
          status: { active: 1 },
        },
      ],
    });
    const informers = await startInformers(api, [
      [PersistentVolumeClaims],
      [PersistentVolumes],
      [KopiaRestores],
      [KopiaRepositories],
      [KopiaClusterRepositories],
      [StorageClasses],
      [Jobs, POPULATOR_JOB_SELECTOR],
      [Pods, POPULATOR_JOB_SELECTOR],
    ]);
    const waiting = (series: Series[]) => Object.fromEntries(series.map((s) => [`${s.labels.namespace} ${s.labels.reason}`, s.value]));
    const series = populatorObjectSeries(informers, api.asKubeClient(), NOW);
    expect(series.every((s) => s.name === 'kopia_population_claims_waiting')).toBe(true);
    expect(waiting(series)).toEqual({
      'media PopulatorDataSourceNotFound': 1,
      'media PopulatorWaitingForRestore': 2,
      'media PopulatorRestoreFailed': 1,
      'media WaitingForFirstConsumer': 1,
      'media Restoring': 1,
      'media BindingVolume': 1,
      // No Restore of that name in its own namespace.
      'other PopulatorDataSourceNotFound': 1,
    });

    // A claim that goes is counted nowhere; the last of its kind takes its series along.
    api.send(PersistentVolumeClaims, {
      type: 'DELETED',
      object: { ...noRestore, metadata: { ...noRestore.metadata, resourceVersion: '2' } },
    });
    api.send(PersistentVolumeClaims, {
      type: 'DELETED',
      object: { ...unanswered[0], metadata: { ...unanswered[0].metadata, resourceVersion: '2' } },
    });
    const after = waiting(populatorObjectSeries(informers, api.asKubeClient(), NOW));
    expect(after['media PopulatorDataSourceNotFound']).toBeUndefined();
    expect(after['media PopulatorWaitingForRestore']).toBe(1);
  });

  it('has no series in a process that does not keep the populator caches', async () => {
    const api = new ScriptedApi({ persistentvolumeclaims: [claim()] });
    const informers = await startInformers(api, [[PersistentVolumeClaims]]);
    expect(populatorObjectSeries(informers, api.asKubeClient(), NOW)).toEqual([]);
    expect(informers.all()).toHaveLength(1);
  });
});
