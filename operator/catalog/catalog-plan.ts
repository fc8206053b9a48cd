// The catalog mirror's decisions: the repository is the source of truth. Given the
// snapshots kopia lists and the Backup objects the cluster has, which objects to create
// (origin Discovered), whose status to bring up to date, and which to remove because
// kopia no longer keeps their snapshot. Pure; a re-sync with nothing changed yields no
// work at all (zero API writes).
//
// "No longer keeps" is judged carefully, because a wrong judgement loses an object and,
// with deletionPolicy Delete, could once reach kopia: an object goes only when two
// consecutive complete listings lack its snapshot, both asked for after the Backup
// completed — both times on the operator's clock (knownSince). A removal first says so in
// the Backup's status (Ready False, SnapshotGone: the Backup operator then no longer puts the
// snapshot finalizer back), then drops that finalizer, then the object, so it never becomes a
// snapshot deletion.
import type { BackupStatus, Identity, RepositoryReference } from '../../generated/types.js';
import type { KubeObject } from '../kube/kube-client.js';
import { boundedName } from '../jobs/job-builder.js';
import type { MirroredSnapshot } from '../mover/catalog-upload.js';
import { snapshotGone } from '../deletion/snapshot-finalizer.js';
import { ConditionType, Reason } from '../reasons.js';
import { deepEqual } from '../runtime/deep-equal.js';
import { setReady } from '../runtime/kstatus.js';
import type { InformerEvent } from '../runtime/informer.js';

export const SNAPSHOT_ID_LABEL = 'kopia.io/snapshot-id';
export const REPOSITORY_ID_LABEL = 'kopia.io/repository-id';
/** When the operator asked for the listing, on its own clock: the clock of every Backup's completionTime. */
export const LISTING_STARTED_ANNOTATION = 'kopia.io/listing-started-at';
/** The pin the operator gives snapshots (spec.pin). */
export const OPERATOR_PIN = 'kopia-operator';

/** The repository id as a label value (kopia's unique IDs are 64 hex digits; labels hold 63). */
export const repositoryLabel = (uniqueID: string) => uniqueID.slice(0, 32);

export interface MirroredBackup extends KubeObject {
  spec: {
    configRef?: { name: string };
    snapshot?: { id: string; repository?: RepositoryReference };
    deletionPolicy?: string;
    pin?: boolean;
  };
  status?: BackupStatus;
}

/** Why a namespace may not show or act on snapshots of an identity (identity-tenancy.ts). */
export interface MirrorRefusal {
  reason: string;
  message: string;
}

export interface MirrorInput {
  repository: RepositoryReference & { namespace?: string; uniqueID: string };
  snapshots: MirroredSnapshot[];
  /** The Backups of this repository object: those whose status names it, and unfinished ones whose spec.snapshot does (mirrorCandidate). */
  backups: MirroredBackup[];
  /** The namespace snapshots of an identity are shown in: the one owning it, when it exists and may use the repository. */
  ownerOf: (id: Required<Identity>) => string | undefined;
  /** Why `namespace` may not hold a Backup of `id` here (undefined: it may). */
  refusal: (namespace: string, id: Required<Identity>) => MirrorRefusal | undefined;
  /** "namespace/snapshotID" of Backups that other repository objects with the same uniqueID show: not made twice. */
  shownElsewhere?: ReadonlySet<string>;
  /**
   * When the operator asked for this listing, on its own clock: a Backup completed after it
   * may be missing from the listing without being gone.
   */
  listingStartedAt: Date;
  /** UIDs of the Backups the previous complete listing lacked (its plan's `absent`). */
  absentBefore: ReadonlySet<string>;
  now: Date;
}

/** An object to remove: the snapshot finalizer is dropped first (finalizers: what remains), then it is deleted. */
export interface MirrorRemoval {
  namespace: string;
  name: string;
  /** Preconditions: the object removed is the one judged, unchanged since. */
  uid: string;
  resourceVersion: string;
  /** The status that says the snapshot is gone (SnapshotGone), written first; undefined when it already says so. */
  goneStatus: BackupStatus | undefined;
}

/** A Backup object to make for a snapshot, built when it is made (discoveredBackup): a plan of 30,000 stays small. */
export interface MirrorCreation {
  snapshot: MirroredSnapshot;
  namespace: string;
}

export interface MirrorPlan {
  create: MirrorCreation[];
  /**
   * Status to write (the object's key and the full new status); with snapshotID, kopia
   * saved the object's snapshot under this new id: its label changes too.
   */
  update: { namespace: string; name: string; status: BackupStatus; snapshotID?: string; refused?: MirrorRefusal }[];
  /** Backups whose snapshot kopia no longer keeps: absent now and from the previous listing. */
  remove: MirrorRemoval[];
  /** UIDs of the Backups this listing lacks, though it started after they completed: pass on as absentBefore. */
  absent: string[];
  /** Snapshots with no namespace to show them in (ClusterRepository, identity of no allowed namespace). */
  unassigned: number;
  /** Incomplete snapshots (checkpoints): never offered for restore. */
  incomplete: number;
}

const iso = (t: string | undefined) => (t ? new Date(t).toISOString().replace(/\.\d{3}Z$/, 'Z') : undefined);

function identityOf(s: MirroredSnapshot): Required<Identity> {
  return { username: s.source.username, hostname: s.source.hostname, path: s.source.path };
}

/** A DNS-safe object name for a discovered snapshot: who it is of, and its id. */
export function discoveredName(s: MirroredSnapshot): string {
  const who =
    `${s.source.username}-${s.source.hostname}`
      .toLowerCase()
      .replace(/[^a-z0-9-]+/g, '-')
      .replace(/^-+|-+$/g, '') || 'snapshot';
  return boundedName(who.slice(0, 40).replace(/-+$/, ''), s.id.slice(0, 12).toLowerCase());
}

/** What tells one snapshot from another, whatever id kopia saved its manifest under. */
export interface SnapshotFacts {
  source: { username?: string; hostname?: string; path?: string };
  /** As kopia records it (to the nanosecond). */
  startTime?: string;
  rootID?: string;
}

/**
 * Whether two manifests are the same snapshot: kopia re-saves a manifest under a new id
 * when its pins change, keeping its source, start time and root. Unknown facts never match.
 */
export function sameSnapshot(a: SnapshotFacts, b: SnapshotFacts): boolean {
  return (
    !!a.startTime &&
    !!a.rootID &&
    a.startTime === b.startTime &&
    a.rootID === b.rootID &&
    a.source.username === b.source.username &&
    a.source.hostname === b.source.hostname &&
    a.source.path === b.source.path
  );
}

/** The snapshot facts a Backup's status holds (startTime once a listing recorded it). */
function factsOfBackup(b: MirroredBackup): SnapshotFacts | undefined {
  const s = b.status?.snapshot;
  return s?.identity && s.startTime && s.rootID ? { source: s.identity, startTime: s.startTime, rootID: s.rootID } : undefined;
}

const factsKey = (f: SnapshotFacts) => JSON.stringify([f.source.username, f.source.hostname, f.source.path, f.startTime, f.rootID]);

/** What a snapshot tells about itself, as Backup status fields the mirror keeps current. */
function snapshotFacts(
  s: MirroredSnapshot,
  status: BackupStatus,
): Pick<BackupStatus, 'snapshot' | 'stats' | 'retentionReasons' | 'pinned'> {
  return {
    snapshot: {
      ...status.snapshot,
      id: s.id,
      ...(s.rootID ? { rootID: s.rootID } : {}),
      // kopia's listing says whose the snapshot is; a recorded identity that differs (a forged
      // mover answer, a stale record) is corrected, so every later check judges the truth.
      identity: identityOf(s),
      startTime: s.startTime,
    },
    stats: s.stats,
    retentionReasons: s.retentionReasons ?? [],
    pinned: (s.pins ?? []).includes(OPERATOR_PIN),
  };
}

export function discoveredStatus(s: MirroredSnapshot, repository: RepositoryReference, at: Date): BackupStatus {
  const time = iso(s.endTime ?? s.startTime)!;
  return {
    phase: 'Succeeded',
    origin: 'Discovered',
    repository,
    startTime: iso(s.startTime),
    completionTime: time,
    ...snapshotFacts(s, {}),
    observedGeneration: 1,
    conditions: setReady(
      undefined,
      {
        status: 'True',
        reason: Reason.SnapshotMirrored,
        message: `snapshot ${s.id} of ${s.source.username}@${s.source.hostname}:${s.source.path} found in the repository`,
      },
      1,
      at,
    ),
  };
}

/** The Backup object that shows a snapshot found in the repository (origin Discovered). */
export function discoveredBackup(c: MirrorCreation, repository: MirrorInput['repository'], now: Date): MirroredBackup {
  const s = c.snapshot;
  const ref: RepositoryReference = { kind: repository.kind ?? 'Repository', name: repository.name };
  return {
    apiVersion: 'kopia.io/v1alpha1',
    kind: 'Backup',
    metadata: {
      name: discoveredName(s),
      namespace: c.namespace,
      labels: { [SNAPSHOT_ID_LABEL]: s.id, [REPOSITORY_ID_LABEL]: repositoryLabel(repository.uniqueID) },
    },
    spec: { snapshot: { repository: ref, id: s.id, identity: identityOf(s) } as never, deletionPolicy: 'Retain' },
    status: discoveredStatus(s, ref, now),
  };
}

/**
 * Whether a Backup is this repository object's to mirror: its status (which only the operator
 * writes) names the object, or — not finished yet — its spec.snapshot does (a Discovered
 * object whose status write failed, or a tenant adopting a snapshot: the plan checks whose
 * it is before writing anything). Labels, which tenants write, decide nothing.
 */
export function mirrorCandidate(b: MirroredBackup, repository: { kind?: string; name: string; namespace?: string }): boolean {
  const names = (ref: RepositoryReference | undefined) =>
    !!ref &&
    (ref.kind ?? 'Repository') === (repository.kind ?? 'Repository') &&
    ref.name === repository.name &&
    (repository.kind === 'ClusterRepository' || b.metadata.namespace === repository.namespace);
  if (b.status?.repository) return names(b.status.repository);
  return unfinished(b) && names(b.spec.snapshot?.repository);
}

/** A mirrored object whose status was never written (the operator's create succeeded, its status write not; or a tenant's adoption). */
const unfinished = (b: MirroredBackup) => !b.spec.configRef && !!b.spec.snapshot && (!b.status?.phase || !b.status.origin);

/** A tenant's Backup naming a snapshot it may not hold: failed, with the reason, and no snapshot. */
export function refusedStatus(id: string, refused: MirrorRefusal, at: Date): BackupStatus {
  const message = `snapshot ${id} cannot be adopted here: ${refused.message}`;
  return {
    phase: 'Failed',
    origin: 'Discovered',
    completionTime: at.toISOString().replace(/\.\d{3}Z$/, 'Z'),
    message,
    observedGeneration: 1,
    conditions: setReady(undefined, { status: 'False', reason: refused.reason, message }, 1, at, { failed: true }),
  };
}

export function planMirror(input: MirrorInput): MirrorPlan {
  const plan: MirrorPlan = { create: [], update: [], remove: [], absent: [], unassigned: 0, incomplete: 0 };
  const { repository } = input;
  const ref: RepositoryReference = { kind: repository.kind ?? 'Repository', name: repository.name };
  // Judged: Backups whose snapshot the operator recorded (status), in the namespace owning its identity.
  const judged = input.backups.filter((b) => {
    const s = b.status?.snapshot;
    return !unfinished(b) && !!s?.id && !!s.identity && input.ownerOf(s.identity as Required<Identity>) === b.metadata.namespace;
  });
  const bySnapshot = new Map<string, MirroredBackup[]>();
  for (const b of judged) {
    const id = b.status!.snapshot!.id!;
    bySnapshot.set(id, [...(bySnapshot.get(id) ?? []), b]);
  }
  // Not finished yet: matched by the id their spec names, and written only after the check of whose it is.
  const adopting = new Map<string, MirroredBackup[]>();
  for (const b of input.backups.filter(unfinished)) {
    const id = b.spec.snapshot!.id;
    adopting.set(id, [...(adopting.get(id) ?? []), b]);
  }
  const complete = input.snapshots.filter((s) => !s.incompleteReason);
  plan.incomplete = input.snapshots.length - complete.length;
  const listed = new Set(complete.map((s) => s.id));
  // Objects whose id kopia no longer lists, by what would find their snapshot under a new id.
  const unlistedByFacts = new Map<string, MirroredBackup[]>();
  for (const b of judged) {
    const facts = factsOfBackup(b);
    const id = b.status!.snapshot!.id!;
    if (facts && !listed.has(id) && !b.metadata.deletionTimestamp)
      unlistedByFacts.set(factsKey(facts), [...(unlistedByFacts.get(factsKey(facts)) ?? []), b]);
  }
  for (const s of complete) {
    const shown = bySnapshot.get(s.id) ?? [];
    // Every object still showing the id kopia saved this snapshot under before (a pin change) follows it, even
    // when another object shows the new id already: one left behind would be judged gone, its snapshot alive.
    const moved = (unlistedByFacts.get(factsKey(s)) ?? []).filter((b) => sameSnapshot(s, factsOfBackup(b)!));
    unlistedByFacts.delete(factsKey(s));
    for (const b of moved) listed.add(b.status!.snapshot!.id!); // found again: not absent
    const existing = [...shown, ...moved];
    for (const b of existing) {
      const snapshotID = moved.includes(b) ? s.id : undefined;
      // Retention reasons move with every new snapshot; stats and pins (and with them the id) may change too.
      const status = b.status ?? {};
      let next = { ...status, ...snapshotFacts(s, status) };
      // Judged gone before, yet listed now (its removal never finished): it is not gone.
      if (snapshotGone(b)) next = { ...next, conditions: foundAgain(next, s, input.now) };
      if (snapshotID || !deepEqual(status, next))
        plan.update.push({ namespace: b.metadata.namespace!, name: b.metadata.name!, status: next, ...(snapshotID ? { snapshotID } : {}) });
    }
    const adoptions = adopting.get(s.id) ?? [];
    for (const b of adoptions) {
      // Written whole, but only where the snapshot's identity belongs; elsewhere refused, with no snapshot named.
      const refused = input.refusal(b.metadata.namespace!, identityOf(s));
      plan.update.push({
        namespace: b.metadata.namespace!,
        name: b.metadata.name!,
        status: refused ? refusedStatus(s.id, refused, input.now) : discoveredStatus(s, ref, input.now),
        ...(refused ? { refused } : {}),
      });
    }
    if (existing.length) continue;
    const namespace = input.ownerOf(identityOf(s));
    if (!namespace) {
      plan.unassigned++;
      continue;
    }
    if (adoptions.some((b) => b.metadata.namespace === namespace) || input.shownElsewhere?.has(`${namespace}/${s.id}`)) continue;
    plan.create.push({ snapshot: s, namespace });
  }
  // A mark left on an object this listing does not judge (its identity is another namespace's now) goes once
  // its snapshot is listed: it is not gone, and Stalled would fail a GitOps health check for nothing.
  const completeByID = new Map(complete.map((s) => [s.id, s]));
  const judgedHere = new Set(judged);
  for (const b of input.backups) {
    const listedAgain = completeByID.get(b.status?.snapshot?.id ?? '');
    if (!listedAgain || !snapshotGone(b) || judgedHere.has(b)) continue;
    plan.update.push({
      namespace: b.metadata.namespace!,
      name: b.metadata.name!,
      status: { ...b.status, conditions: foundAgain(b.status!, listedAgain, input.now) },
    });
  }
  // Objects another repository recorded (its ID in their label): this listing says nothing of their snapshots. A
  // repository object pointed elsewhere, or re-made on another bucket, must not remove them. Labels are a tenant's
  // to write, so the label only ever keeps an object, never removes one.
  const otherRepository = (b: MirroredBackup) => {
    const label = b.metadata.labels?.[REPOSITORY_ID_LABEL];
    return !!label && label !== repositoryLabel(repository.uniqueID);
  };
  for (const b of judged) {
    const id = b.status!.snapshot!.id!;
    const uid = b.metadata.uid;
    if (!uid || listed.has(id) || b.metadata.deletionTimestamp || otherRepository(b)) continue;
    // Judged gone by an earlier listing whose removal did not finish (a conflict, a restart): this one finishes it.
    if (snapshotGone(b)) {
      plan.remove.push(removal(b, undefined));
      continue;
    }
    // Only a listing asked for after the Backup completed can lack its snapshot for a reason.
    if (b.status?.phase !== 'Succeeded' || !(knownSince(b) + 1000 <= input.listingStartedAt.getTime())) continue;
    plan.absent.push(uid);
    if (!input.absentBefore.has(uid)) continue;
    plan.remove.push(removal(b, goneStatus(b, input.now)));
  }
  return plan;
}

function removal(b: MirroredBackup, status: BackupStatus | undefined): MirrorRemoval {
  return {
    namespace: b.metadata.namespace!,
    name: b.metadata.name!,
    uid: b.metadata.uid!,
    resourceVersion: b.metadata.resourceVersion!,
    goneStatus: status,
  };
}

/** A Backup's status once two listings lacked its snapshot: Ready False, SnapshotGone (Stalled: it is being removed). */
export function goneStatus(b: MirroredBackup, now: Date): BackupStatus {
  const status = b.status ?? {};
  const message = `kopia no longer keeps snapshot ${status.snapshot?.id}: two complete listings lacked it; this object is removed, nothing is deleted from the repository`;
  return {
    ...status,
    conditions: setReady(status.conditions, { status: 'False', reason: Reason.SnapshotGone, message }, status.observedGeneration, now),
  };
}

/** Ready again for a Backup judged gone whose snapshot a later listing shows after all. */
function foundAgain(status: BackupStatus, s: MirroredSnapshot, now: Date): BackupStatus['conditions'] {
  const message = `snapshot ${s.id} of ${s.source.username}@${s.source.hostname}:${s.source.path} found in the repository again`;
  return setReady(status.conditions, { status: 'True', reason: Reason.SnapshotMirrored, message }, status.observedGeneration, now);
}

/**
 * When the operator learned that a Backup's snapshot exists, on the operator's own clock,
 * to the second (the fraction was cut, hence the caller's added second): completionTime
 * for the Backups it took; for mirrored ones — whose completionTime is kopia's, from
 * another machine's clock — when the mirror recorded them. NaN when unknown: never judged.
 */
function knownSince(b: MirroredBackup): number {
  const status = b.status ?? {};
  if (status.origin !== 'Discovered') return status.completionTime ? Date.parse(status.completionTime) : NaN;
  const mirrored = status.conditions?.find((c) => c.type === ConditionType.Ready && c.reason === Reason.SnapshotMirrored);
  return mirrored ? Date.parse(mirrored.lastTransitionTime) : NaN;
}

/** Whether an informer event tells of a backup that has just succeeded: its repository is listed again soon. */
export function backupJustSucceeded(event: InformerEvent, b: MirroredBackup, old?: MirroredBackup): boolean {
  // Only a change seen happening: a resync, or the first sight of an object at start, re-announces a backup long made.
  if (event !== 'MODIFIED' || !old || b.spec.snapshot) return false;
  return b.status?.phase === 'Succeeded' && old.status?.phase !== 'Succeeded';
}

/**
 * Seconds from a catalog Job's start (the operator's own mark; the Job's creation for an
 * older operator's Job) to now, when its listing is mirrored; undefined without either.
 */
export function catalogSyncSeconds(job: KubeObject, now: Date): number | undefined {
  const marked = Date.parse(job.metadata.annotations?.[LISTING_STARTED_ANNOTATION] ?? '');
  const started = Number.isNaN(marked) ? Date.parse(job.metadata.creationTimestamp ?? '') : marked;
  return Number.isNaN(started) ? undefined : Math.max(0, (now.getTime() - started) / 1000);
}

/** How long a failed listing waits before the next try, at most: a minute. */
export const LISTING_RETRY_MS = 60_000;

/**
 * When the next listing of a repository is due after one was collected: its interval, and
 * after a failure a retry within a minute, though never later than the interval the user
 * asked for (a 10 s catalog retried only after 60 s would wait six intervals).
 */
export function nextListingAfterMs(intervalMs: number, failed: boolean): number {
  return failed ? Math.min(LISTING_RETRY_MS, intervalMs) : intervalMs;
}
