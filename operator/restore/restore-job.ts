// The restore mover Job, built the same way for both who run one: the operator (a
// Restore into an existing claim) and the populator (a Restore into the prime claim of a
// claim whose dataSourceRef names it). Pure.
import type { Restore, RestoreOptions, RepositorySpec, RepositoryStatus } from '../../generated/types.js';
import type { KubeObject, OwnerReference } from '../kube/kube-client.js';
import { boundedName, buildMoverJob } from '../jobs/job-builder.js';
import { usesFromCopy, secretKeyUses } from '../jobs/repository-access.js';
import type { RestoreRequest } from '../mover/mover-contract.js';
import { clusterSecretCopyName } from '../repository/secret-copy.js';
import type { PinnedSnapshot } from './restore-plan.js';

/** What a root restore needs to give files their owners back — and nothing more. */
export const OWNER_CAPABILITIES = ['CHOWN', 'FOWNER', 'DAC_OVERRIDE'];
const RESTORE_DEADLINE_SECONDS = 24 * 3600;

export type RestoreObject = KubeObject & Restore;

export interface RestoreJobInput {
  restore: RestoreObject;
  /** The snapshot pinned for this run (target.pvc) or this claim (target.populator). */
  snapshot: PinnedSnapshot;
  /** The repository the snapshot is in (status.resolved.repository), with its verified unique ID. */
  repository: KubeObject & { spec: RepositorySpec; status?: RepositoryStatus };
  /** The claim the files go into: the target claim, or the populator's prime claim. */
  claimName: string;
  /** The Job's name (deterministic: from the Restore, or from the user's claim for the populator). */
  jobName: string;
  owner: OwnerReference;
  /** Who the Job belongs to, for the watches that map it back (kind Restore, or the populator's claim). */
  ownerLabels: { kind: string; name: string; namespace?: string };
  image: string;
  nodeName?: string;
}

/** Owners come back only from a root mover (a privileged setting, checked before this). */
export function restoresOwners(restore: RestoreObject): boolean {
  return restore.spec.mover?.securityContext?.runAsUser === 0;
}

export function buildRestoreJob(input: RestoreJobInput): KubeObject {
  const { restore, repository, snapshot } = input;
  const options: RestoreOptions = restore.spec.options ?? {};
  const owners = restoresOwners(restore);
  const request: RestoreRequest = {
    operation: 'restore',
    repository: { backend: repository.spec.backend, cache: repository.spec.cache, expectedUniqueID: repository.status?.uniqueID },
    identity: { username: 'kopia-operator', hostname: `restore.${restore.metadata.namespace}` },
    snapshotID: snapshot.snapshotID,
    ...(snapshot.snapshotTime && snapshot.rootID ? { sameAs: { startTime: snapshot.snapshotTime, rootID: snapshot.rootID } } : {}),
    options: {
      deleteExtra: options.deleteExtra ?? false,
      parallel: options.parallel ?? 8,
      ignorePermissionErrors: options.ignorePermissionErrors ?? true,
      restoreOwners: owners,
    },
  };
  const uses = secretKeyUses(repository.spec);
  // A ClusterRepository's keys are read from the copy the operator keeps in the Restore's namespace.
  const secrets = repository.metadata.namespace ? uses : usesFromCopy(uses, clusterSecretCopyName(repository.metadata.name!));
  return buildMoverJob({
    name: input.jobName,
    namespace: restore.metadata.namespace!,
    owner: input.owner,
    ownerLabels: input.ownerLabels,
    image: input.image,
    request,
    secrets,
    filesystem: repository.spec.backend.filesystem,
    mover: restore.spec.mover,
    activeDeadlineSeconds: RESTORE_DEADLINE_SECONDS,
    data: { claimName: input.claimName, readOnly: false },
    nodeName: input.nodeName,
    addCapabilities: owners ? OWNER_CAPABILITIES : undefined,
  });
}

export const restoreJobName = (restore: string) => boundedName('kopia-restore', restore);
