// ClusterRepository: a repository shared by the namespaces it allows, verified in the
// operator's namespace with a copy of its Secrets there (secret-copy.ts). The copies in
// tenant namespaces follow tenancy (secret-copy-plan.ts): refreshed when a source Secret
// changes, deleted when the namespace is no longer allowed or nothing there uses it.
import type { ClusterRepositorySpec, RepositoryStatus } from '../../generated/types.js';
import { controllerReference, isNotFound, type KubeObject, type OwnerReference } from '../kube/kube-client.js';
import {
  KopiaBackupConfigs,
  KopiaBackups,
  KopiaClusterRepositories,
  KopiaMaintenances,
  KopiaRestores,
  Secrets,
} from '../kube/resources.js';
import { LABELS, MANAGED_BY } from '../jobs/job-builder.js';
import { secretKeyUses, type SecretKeyUse } from '../jobs/repository-access.js';
import { ConditionType, Reason } from '../reasons.js';
import { setCondition } from '../runtime/conditions.js';
import type { Informer } from '../runtime/informer.js';
import type { ReconcileResult } from '../runtime/work-queue.js';
import { RepositoryReconciler, type RepositoryObject } from './repository-reconciler.js';
import { contestedHostnames } from './identity-tenancy.js';
import { clusterRepositoriesNamedBy, consumersByNamespace, planSecretCopies, type ConsumerLookup } from './secret-copy-plan.js';
import { ensureSecretCopy } from './secret-copy.js';
import { allowedAmong } from './tenancy.js';

/* eslint-disable @typescript-eslint/no-explicit-any -- consumers are read structurally */
type Obj = KubeObject & { spec?: any; status?: any };

/** Work-queue keys of the copies step alone (a consumer changed): names have no slash. */
const COPIES_KEY = 'secret-copies/';

export class ClusterRepositoryOperator extends RepositoryReconciler {
  readonly kind = 'ClusterRepository';
  protected readonly resource = KopiaClusterRepositories;
  private consumers!: { configs: Informer<Obj>; backups: Informer<Obj>; restores: Informer<Obj>; maintenances: Informer<Obj> };
  private secretMetadata!: Informer<KubeObject>;
  /** A Restore's BackupConfig and Backup, by key from the caches. */
  private readonly lookup: ConsumerLookup = {
    configRepository: (ns, name) => this.consumers?.configs.get(`${ns}/${name}`)?.spec?.repository,
    backupRepository: (ns, name) => this.consumers?.backups.get(`${ns}/${name}`)?.status?.repository,
  };

  /** Namespace labels decide selector tenancy: a relabelled namespace re-evaluates all. */
  protected override keysForNamespace(): string[] {
    return this.repositories.list().map((r) => r.metadata.name!);
  }

  protected override async init(): Promise<void> {
    await super.init();
    // A consumer appearing, changing or going re-plans the copies of the ClusterRepositories it names.
    const named = (kind: Parameters<typeof clusterRepositoriesNamedBy>[0]) => (o: Obj) =>
      clusterRepositoriesNamedBy(kind, o, this.lookup, true).map((name) => `${COPIES_KEY}${name}`);
    this.consumers = {
      configs: this.watchRelated<Obj>(KopiaBackupConfigs, named('BackupConfig')),
      // Mirrored Backups (spec.snapshot) run no Job anywhere: their thousands of writes wake nothing here,
      // unless one records a hostname other than its namespace (contestedHostnames).
      backups: this.watchRelated<Obj>(KopiaBackups, (b) => [...named('Backup')(b), ...contestKeys(b)]),
      restores: this.watchRelated<Obj>(KopiaRestores, named('Restore')),
      maintenances: this.watchRelated<Obj>(KopiaMaintenances, named('Maintenance')),
    };
    this.secretMetadata = this.ctx.informers.get<KubeObject>(Secrets, { metadataOnly: true });
  }

  protected override async reconcile(key: string): Promise<ReconcileResult | void> {
    if (key.startsWith(COPIES_KEY)) return this.syncSecretCopies(key.slice(COPIES_KEY.length));
    const result = await super.reconcile(key);
    await this.syncSecretCopies(key);
    return result;
  }

  protected jobNamespace(): string {
    return this.ctx.namespace;
  }

  protected prepareSecrets(repo: RepositoryObject, uses: SecretKeyUse[], owner: OwnerReference): Promise<SecretKeyUse[]> {
    return ensureSecretCopy(this.ctx.client, this.secrets, this.ctx.namespace, { name: repo.metadata.name!, owner }, uses);
  }

  /**
   * The copies of this repository's keys: each one refreshed from its sources (a write only
   * when they changed), or deleted when its namespace may no longer have it. New copies are
   * made where a Job needs one, by the operator building it.
   */
  private async syncSecretCopies(name: string): Promise<void> {
    const repo = this.repositories.get(name);
    if (!repo || repo.metadata.deletionTimestamp) return; // its copies are garbage-collected with it
    const copies = this.secretMetadata.list().filter((s) => {
      const l = s.metadata.labels ?? {};
      return l[LABELS.managedBy] === MANAGED_BY && l[LABELS.ownerKind] === 'ClusterRepository' && l[LABELS.ownerName] === name;
    });
    if (copies.length === 0) return;
    const decisions = planSecretCopies({
      repository: name,
      allowed: (repo.spec as unknown as ClusterRepositorySpec).allowedNamespaces,
      operatorNamespace: this.ctx.namespace,
      copies: copies.map((c) => c.metadata.namespace!),
      namespaceLabels: (ns) => this.namespaces.get(ns)?.metadata.labels ?? (this.namespaces.get(ns) ? {} : undefined),
      consumers: consumersByNamespace(
        {
          configs: this.consumers.configs.list(),
          backups: this.consumers.backups.list(),
          restores: this.consumers.restores.list(),
          maintenances: this.consumers.maintenances.list(),
        },
        this.lookup,
      ),
    });
    const owner = controllerReference(repo);
    for (const d of decisions) {
      const copy = copies.find((c) => c.metadata.namespace === d.namespace)!;
      if (d.keep) {
        await ensureSecretCopy(this.ctx.client, this.secrets, d.namespace, { name, owner }, secretKeyUses(repo.spec));
        continue;
      }
      try {
        await this.ctx.client.delete(Secrets, d.namespace, copy.metadata.name!, { uid: copy.metadata.uid });
      } catch (e) {
        if (!isNotFound(e)) throw e;
        continue;
      }
      await this.ctx.events.record(
        repo,
        'Normal',
        Reason.SecretCopyDeleted,
        `deleted the copy of its keys (Secret ${copy.metadata.name}) from namespace ${d.namespace}: ${d.why}`,
      );
    }
  }

  protected override decorateStatus(repo: RepositoryObject, status: RepositoryStatus): RepositoryStatus {
    const spec = repo.spec as unknown as ClusterRepositorySpec;
    const all = this.namespaces.list().map((n) => ({ name: n.metadata.name!, labels: n.metadata.labels ?? {} }));
    const allowed = allowedAmong(spec.allowedNamespaces, all);
    const [reason, message] = spec.allowedNamespaces.all
      ? [Reason.AllNamespaces, 'every namespace may use this repository']
      : spec.allowedNamespaces.names
        ? [Reason.NamespacesListed, `allowed namespaces: ${spec.allowedNamespaces.names.join(', ')}`]
        : [Reason.NamespaceSelector, `namespaces matching the selector: ${allowed?.length ? allowed.join(', ') : 'none yet'}`];
    const contested = contestedHostnames(spec, repo.metadata.name!, this.consumers?.backups.list() ?? []);
    const tenancy = contested.length
      ? {
          type: ConditionType.Tenancy,
          status: 'False' as const,
          reason: Reason.HostnamesContested,
          message:
            `${message}; no namespace may use hostname(s) ${contested.map((c) => `${c.hostname} (recorded in ${c.recordedIn.join(', ')})`).join(', ')} ` +
            'until spec.identityHostnames gives each to one namespace',
        }
      : { type: ConditionType.Tenancy, status: 'True' as const, reason, message };
    const conditions = setCondition(status.conditions, tenancy, repo.metadata.generation, this.ctx.now());
    return { ...status, conditions, allowedNamespaces: allowed, contestedHostnames: contested.length ? contested : undefined };
  }
}

/** A Backup recording a snapshot under a hostname other than its namespace wakes its ClusterRepository (contested hostnames). */
function contestKeys(b: Obj): string[] {
  const ref = b.status?.repository;
  const hostname = b.status?.snapshot?.identity?.hostname;
  return ref?.kind === 'ClusterRepository' && ref.name && hostname && hostname !== b.metadata.namespace ? [ref.name] : [];
}
