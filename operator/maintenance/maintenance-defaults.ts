// Every repository gets a Maintenance unless it opts out (spec.maintenance.createDefault:
// false): a default one, labelled as such, owned by the repository (deleted with it). A
// user-written Maintenance of the repository replaces it, so the default is removed; it
// comes back when the user's goes. A Repository's default lives beside it under its name;
// a ClusterRepository's in the operator's namespace as cluster-<name>.
import { isAlreadyExists, isNotFound, controllerReference, type KubeObject } from '../kube/kube-client.js';
import { KopiaClusterRepositories, KopiaMaintenances, KopiaRepositories } from '../kube/resources.js';
import { Reason } from '../reasons.js';
import { repositoryKey, repositoryOfKey, type AnyRepository } from '../repository/repository-jobs.js';
import type { Informer } from '../runtime/informer.js';
import { KindOperator, type OperatorContext } from '../runtime/kind-operator.js';
import type { ReconcileResult } from '../runtime/work-queue.js';
import { maintainedRepositoryKey, type MaintenanceObject } from './maintenance-operator.js';
import { DEFAULT_MAINTENANCE_LABEL } from './maintenance-plan.js';

/** Where a repository's default Maintenance lives. */
export function defaultMaintenanceName(repo: AnyRepository, operatorNamespace: string): { namespace: string; name: string } {
  return repo.metadata.namespace
    ? { namespace: repo.metadata.namespace, name: repo.metadata.name! }
    : { namespace: operatorNamespace, name: `cluster-${repo.metadata.name}`.slice(0, 253) };
}

export function desiredDefaultMaintenance(repo: AnyRepository, operatorNamespace: string): KubeObject {
  const { namespace, name } = defaultMaintenanceName(repo, operatorNamespace);
  return {
    apiVersion: 'kopia.io/v1alpha1',
    kind: 'Maintenance',
    metadata: { name, namespace, labels: { [DEFAULT_MAINTENANCE_LABEL]: 'true' }, ownerReferences: [controllerReference(repo)] },
    spec: { repository: { kind: repo.kind ?? (repo.metadata.namespace ? 'Repository' : 'ClusterRepository'), name: repo.metadata.name! } },
  };
}

/**
 * Whether a Maintenance may act at all. A ClusterRepository is maintained from the
 * operator's namespace only: a tenant's Maintenance of it would outrank (or replace) the
 * default one and run maintenance, as an owner of its choosing, with the repository's keys
 * in the tenant's namespace.
 */
export function mayMaintain(m: MaintenanceObject, operatorNamespace: string): boolean {
  return m.spec.repository.kind !== 'ClusterRepository' || m.metadata.namespace === operatorNamespace;
}

/** What to do for one repository: create its default, delete defaults no longer wanted, or nothing. */
export function planDefaults(
  repo: AnyRepository | undefined,
  maintenances: MaintenanceObject[],
  operatorNamespace: string,
): { create: boolean; remove: MaintenanceObject[]; why?: string } {
  // Gone: its defaults go with it through their owner reference.
  if (!repo || repo.metadata.deletionTimestamp) return { create: false, remove: [] };
  // A default is the one this operator made: where it makes them, owned by the repository. A
  // label alone is anyone's to write, and a planted "default" must not stop the real one.
  const home = defaultMaintenanceName(repo, operatorNamespace).namespace;
  const isDefault = (m: MaintenanceObject) =>
    m.metadata.labels?.[DEFAULT_MAINTENANCE_LABEL] === 'true' &&
    m.metadata.namespace === home &&
    (m.metadata.ownerReferences ?? []).some((r) => r.uid === repo.metadata.uid);
  const defaults = maintenances.filter(isDefault);
  if (repo.spec.maintenance?.createDefault === false)
    return { create: false, remove: defaults, why: 'spec.maintenance.createDefault is false' };
  const userWritten = maintenances.find((m) => !isDefault(m) && !m.metadata.deletionTimestamp && mayMaintain(m, operatorNamespace));
  if (userWritten)
    return {
      create: false,
      remove: defaults,
      why: `Maintenance ${userWritten.metadata.namespace}/${userWritten.metadata.name} maintains it`,
    };
  return { create: defaults.length === 0, remove: [] };
}

export class MaintenanceDefaultsOperator extends KindOperator {
  readonly kind = 'MaintenanceDefaults';
  private repositories!: Informer<AnyRepository>;
  private clusterRepositories!: Informer<AnyRepository>;
  private maintenances!: Informer<MaintenanceObject>;

  constructor(ctx: OperatorContext) {
    super(ctx);
  }

  protected override async init(): Promise<void> {
    this.repositories = this.watchRelated<AnyRepository>(KopiaRepositories, (r) => [
      repositoryKey({ ...r.metadata, name: r.metadata.name! }),
    ]);
    this.clusterRepositories = this.watchRelated<AnyRepository>(KopiaClusterRepositories, (r) => [
      repositoryKey({ kind: 'ClusterRepository', name: r.metadata.name! }),
    ]);
    this.maintenances = this.watchRelated<MaintenanceObject>(KopiaMaintenances, (m) => [
      maintainedRepositoryKey(m.metadata.namespace!, m.spec.repository),
    ]);
  }

  protected async reconcile(key: string): Promise<ReconcileResult | void> {
    const repo = repositoryOfKey(key, this.repositories, this.clusterRepositories);
    const of = this.maintenances.list().filter((m) => maintainedRepositoryKey(m.metadata.namespace!, m.spec.repository) === key);
    const plan = planDefaults(repo, of, this.ctx.namespace);
    for (const m of plan.remove) {
      try {
        await this.ctx.client.delete(KopiaMaintenances, m.metadata.namespace, m.metadata.name!, { uid: m.metadata.uid });
      } catch (e) {
        if (!isNotFound(e)) throw e;
      }
      await this.ctx.events.record(
        repo!,
        'Normal',
        Reason.DefaultMaintenanceRemoved,
        `deleted default Maintenance ${m.metadata.namespace}/${m.metadata.name}: ${plan.why}`,
      );
    }
    if (!plan.create) return;
    const desired = desiredDefaultMaintenance(repo!, this.ctx.namespace);
    try {
      await this.ctx.client.create(KopiaMaintenances, desired);
    } catch (e) {
      if (!isAlreadyExists(e)) throw e;
      // The name is taken by a Maintenance of another repository: say so, make nothing.
      const taken = this.maintenances.get(`${desired.metadata.namespace}/${desired.metadata.name}`);
      if (taken && maintainedRepositoryKey(taken.metadata.namespace!, taken.spec.repository) !== key)
        this.log.warn("default Maintenance name taken by another repository's Maintenance; none created", {
          key,
          name: desired.metadata.name,
        });
      return;
    }
    await this.ctx.events.record(
      repo!,
      'Normal',
      Reason.DefaultMaintenanceCreated,
      `created Maintenance ${desired.metadata.namespace}/${desired.metadata.name} with the default schedules (spec.maintenance.createDefault: false opts out)`,
    );
  }
}
