// BackupConfig: *what* to back up. It runs nothing by itself; its operator resolves the
// repository (present, allowed for this namespace, Ready), checks the source claim and
// resolves the identity, so Backups and schedules can rely on a Ready config.
import type { Backup, BackupConfigSpec, BackupConfigStatus } from '../../generated/types.js';
import type { KubeObject } from '../kube/kube-client.js';
import {
  KopiaBackupConfigs,
  KopiaBackups,
  KopiaClusterRepositories,
  KopiaRepositories,
  Namespaces,
  PersistentVolumeClaims,
} from '../kube/resources.js';
import { ConditionType, Reason } from '../reasons.js';
import { findCondition } from '../runtime/conditions.js';
import type { Informer } from '../runtime/informer.js';
import { KindOperator, type OperatorContext } from '../runtime/kind-operator.js';
import { writeStatus } from '../runtime/status-writer.js';
import type { ReconcileResult } from '../runtime/work-queue.js';
import { formatProblem, type KopiaValidator } from '../validation/validator.js';
import { backupCapabilities, moverPermission, privilegedSettings } from '../jobs/mover-privileges.js';
import { identityVerdict } from '../repository/identity-tenancy.js';
import { resolveRepository } from '../repository/repository-resolver.js';
import { lastBackups } from './backupconfig-backups.js';
import { configStatus, type ConfigVerdict } from './backupconfig-status.js';
import { identityString, resolveIdentity } from './backupconfig-identity.js';

type BackupConfigObject = KubeObject & { spec: BackupConfigSpec; status?: BackupConfigStatus };
type Repo = KubeObject & { spec: never; status?: never };

export class BackupConfigOperator extends KindOperator {
  readonly kind = 'BackupConfig';
  private configs!: Informer<BackupConfigObject>;
  private repositories!: Informer<Repo>;
  private clusterRepositories!: Informer<Repo>;
  private namespaces!: Informer<KubeObject>;
  private claims!: Informer<KubeObject>;
  private backups!: Informer<KubeObject & Backup>;

  constructor(
    ctx: OperatorContext,
    private readonly validator: KopiaValidator,
  ) {
    super(ctx);
  }

  protected override async init(): Promise<void> {
    await this.watchResource('kopia.io', 'v1alpha1', 'backupconfigs', async (e) => this.enqueue(e.object as unknown as KubeObject));
    this.configs = this.ctx.informers.get<BackupConfigObject>(KopiaBackupConfigs);
    const byRepository = (kind: string) => (r: Repo) =>
      this.configs
        .list()
        .filter(
          (c) =>
            (c.spec.repository.kind ?? 'Repository') === kind &&
            c.spec.repository.name === r.metadata.name &&
            (kind === 'ClusterRepository' || c.metadata.namespace === r.metadata.namespace),
        )
        .map((c) => `${c.metadata.namespace}/${c.metadata.name}`);
    this.repositories = this.watchRelated<Repo>(KopiaRepositories, byRepository('Repository'));
    this.clusterRepositories = this.watchRelated<Repo>(KopiaClusterRepositories, byRepository('ClusterRepository'));
    this.namespaces = this.watchRelated<KubeObject>(Namespaces, (ns) =>
      this.configs
        .list()
        .filter((c) => c.metadata.namespace === ns.metadata.name)
        .map((c) => `${c.metadata.namespace}/${c.metadata.name}`),
    );
    // Their Backups finishing move lastBackup and lastSuccessTime.
    this.backups = this.watchRelated<KubeObject & Backup>(KopiaBackups, (b) =>
      b.spec.configRef && ['Succeeded', 'Failed'].includes(b.status?.phase ?? '')
        ? [`${b.metadata.namespace}/${b.spec.configRef.name}`]
        : [],
    );
    this.claims = this.watchRelated<KubeObject>(PersistentVolumeClaims, (pvc) =>
      this.configs
        .list()
        .filter((c) => c.metadata.namespace === pvc.metadata.namespace && c.spec.source.pvc === pvc.metadata.name)
        .map((c) => `${c.metadata.namespace}/${c.metadata.name}`),
    );
  }

  protected async reconcile(key: string): Promise<ReconcileResult | void> {
    const cached = this.configs.get(key);
    if (!cached || cached.metadata.deletionTimestamp) return;
    const config = this.written.latest(cached);
    const ns = config.metadata.namespace!;
    const generation = config.metadata.generation ?? 1;
    const now = this.ctx.now();
    const verdict = this.evaluate(config, ns);
    const [status, reason, message] = verdict;
    const identity = resolveIdentity(config.spec, config.metadata.name!, ns);
    const mine = this.backups
      .list()
      .filter((b) => b.metadata.namespace === ns && b.spec.configRef?.name === config.metadata.name)
      .map((b) => ({ name: b.metadata.name!, status: b.status }));
    const next = configStatus(
      config.status,
      verdict,
      { ...lastBackups(mine), identity, identityString: identityString(identity) },
      generation,
      now,
    );
    const before = findCondition(config.status?.conditions, ConditionType.Ready);
    if (before?.reason !== reason || before?.status !== status) {
      await this.ctx.events.record(config, status === 'True' ? 'Normal' : 'Warning', reason, message);
    }
    if ((await writeStatus(this.ctx.client, KopiaBackupConfigs, config, next, this.written)) === 'conflict') return { requeueAfterMs: 200 };
  }

  private evaluate(config: BackupConfigObject, ns: string): ConfigVerdict {
    const problems = this.validator.validate({ ...config, status: undefined });
    if (problems.length) return ['False', Reason.InvalidSpec, problems.map(formatProblem).join('; ')];
    // Its backup and restore movers run in this namespace with these settings.
    const permission = moverPermission(
      privilegedSettings({ mover: config.spec.mover, addCapabilities: backupCapabilities(config.spec.mover) }),
      {
        clusterScoped: false,
        namespace: ns,
        namespaceAnnotations: this.namespaces.get(ns)?.metadata.annotations ?? {},
      },
    );
    if (!permission.allowed) return ['False', Reason.PrivilegedMoverNotAllowed, permission.message];
    const repo = resolveRepository(config.spec.repository, ns, {
      repository: (n, name) => this.repositories.get(`${n}/${name}`) as never,
      clusterRepository: (name) => this.clusterRepositories.get(name) as never,
      namespaceLabels: (name) => this.namespaces.get(name)?.metadata.labels ?? {},
    });
    if (!repo.ok) return ['False', repo.reason, repo.message];
    // On a ClusterRepository only this namespace's identities: another's would get this config's policy and retention.
    const identity = identityVerdict(repo, ns, resolveIdentity(config.spec, config.metadata.name!, ns));
    if (!identity.ok) return ['False', identity.reason, `spec.identity: ${identity.message}`];
    if (!this.claims.get(`${ns}/${config.spec.source.pvc}`)) {
      return ['False', Reason.SourceNotFound, `PersistentVolumeClaim ${ns}/${config.spec.source.pvc} not found`];
    }
    return ['True', Reason.Ready, `backs up ${config.spec.source.pvc} to ${repo.kind} ${repo.name}`];
  }
}
