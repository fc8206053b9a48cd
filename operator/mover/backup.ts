// The backup operation: the source's Kopia-native policy set from the request, the
// mass-deletion breaker checked against what that policy would expire, then one snapshot
// of the volume at MOVER_PATHS.data, filed under the pinned identity (user@host:path).
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from '../runtime/logger.js';
import { firstMeaningfulLine, classifyKopiaError } from './kopia-errors.js';
import {
  canonicalPath,
  policyChanges,
  policyDeleteCommand,
  policyExportCommand,
  policyImportCommand,
  policySetCommand,
  policyShowCommand,
  snapshotCreateCommand,
  snapshotListCommand,
  sourceOf,
} from './kopia-command.js';
import {
  fileErrorsOf,
  isSameSource,
  parseCreatedSnapshot,
  parseEffectivePolicy,
  parsePolicyExport,
  parseSnapshotList,
  toCatalogSnapshot,
  type KopiaPolicy,
  type KopiaSnapshot,
} from './kopia-json.js';
import { confirmDeletions, stillListed, undoneExpiries, type DeletionCheckResult } from './deletion-check.js';
import { connect, invalidRequest, KopiaFailure, type KopiaSession } from './kopia-session.js';
import { MOVER_PATHS, type BackupRequest, type MoverSuccess } from './mover-contract.js';
import { expiredBySnapshotAt, expiredNow, parseKopiaTime, type RetentionCandidate } from './retention.js';

/** Tags the mover adds to every snapshot: who read the files (restores run as that identity). */
export const MOVER_UID_TAG = 'mover-uid';
export const MOVER_GID_TAG = 'mover-gid';

type Source = { username: string; hostname: string; path: string };

export async function backup(kopia: KopiaSession, log: Logger, req: BackupRequest): Promise<MoverSuccess> {
  const mover = { uid: process.getuid?.() ?? -1, gid: process.getgid?.() ?? -1 };
  let source: string;
  let identity: Source;
  let tags: Record<string, string>;
  try {
    identity = { username: req.identity.username, hostname: req.identity.hostname, path: canonicalPath(req.identity.path) };
    source = sourceOf(identity);
    // The mover's own tags win over requested ones of the same name.
    tags = { ...req.tags, [MOVER_UID_TAG]: String(mover.uid), [MOVER_GID_TAG]: String(mover.gid) };
    snapshotCreateCommand(identity, tags, req.pin === true); // refuses bad tags before anything is changed
  } catch (e) {
    throw invalidRequest('backup', (e as Error).message);
  }

  await connect(kopia, log, req);

  const defined: KopiaPolicy | undefined = parsePolicyExport(await kopia.runOrFail('backup', policyExportCommand()))[source];
  const changes = policyChanges(req.policy ?? {}, defined);
  if (changes.length > 0) await kopia.runOrFail('backup', policySetCommand(source, changes));
  else log.info('policy already as requested', { source });

  // The snapshot's start time is fixed here, so that the expiries predicted for it are the ones kopia makes.
  const snapshotStart = new Date(Math.floor(Date.now() / 1000) * 1000);
  const before = await predictExpiry(kopia, log, source, identity, snapshotStart);
  log.info('mass-deletion breaker', { source, wouldExpire: before.wouldExpire, expireLimit: req.expireLimit });
  if (req.expireLimit !== undefined && before.wouldExpire > req.expireLimit) {
    const restored = changes.length === 0 || (await restorePolicy(kopia, log, source, defined));
    throw new KopiaFailure({
      ok: false,
      operation: 'backup',
      errorClass: 'ExpireLimitExceeded',
      wouldExpire: before.wouldExpire,
      message:
        `the retention policy would expire ${before.wouldExpire} snapshot(s) of ${source} at this backup, more than the ${req.expireLimit} allowed; ` +
        `nothing was snapshotted or expired${restored ? ' and the policy is as it was' : ', but the previous policy could not be put back'}`,
    });
  }

  const out = await kopia.run(snapshotCreateCommand(identity, tags, req.pin === true, snapshotStart));
  // kopia prints the manifest once it is saved, and exits 1 afterwards for fatal file errors:
  // the snapshot exists and its id must not be lost.
  let saved = parseCreatedSnapshot(out.stdout);
  if (!saved && out.code !== 0) saved = await findSavedSince(kopia, log, source, identity, snapshotStart, mover);
  if (!saved) {
    if (out.code !== 0) throw new KopiaFailure({ ok: false, operation: 'backup', ...classifyKopiaError(out.stderr || out.stdout) });
    throw new KopiaFailure({
      ok: false,
      operation: 'backup',
      errorClass: 'Other',
      message: 'kopia snapshot create ended without saving a snapshot',
    });
  }
  const fileErrors = fileErrorsOf(saved);
  if (out.code !== 0 && !fileErrors)
    log.warn('kopia failed after saving the snapshot', { id: saved.id, error: firstMeaningfulLine(out.stderr) });

  const { id, startTime, endTime, incompleteReason, rootID, stats } = toCatalogSnapshot(saved);
  const snapshot: NonNullable<MoverSuccess['snapshot']> = { id, startTime, endTime, incompleteReason, rootID, stats };
  const first = await listAfter(kopia, log, source, identity);
  const checked =
    first && before.predictedIDs.length > 0
      ? await confirmExpiries(kopia, log, source, identity, before, req.expireLimit, saved.id)
      : undefined;
  const after = checked?.listing ?? first;
  const retentionReasons = after?.find((s) => s.id === saved.id)?.retentionReason ?? (after ? [] : undefined);
  if (retentionReasons) snapshot.retentionReasons = retentionReasons;
  // What retention expired: the snapshots there before and gone now, and those deleted again
  // after a concurrent compaction undid it (unknown listing: the prediction, exact for this start time).
  const remaining = new Set(after?.map((s) => s.id));
  const gone = new Set([...before.existingIDs.filter((id) => !remaining.has(id)), ...(checked?.deletedAgain ?? [])]);
  const expired = after ? gone.size : before.wouldExpire;
  if (req.expireLimit !== undefined && expired > req.expireLimit)
    log.error('retention expired more than predicted', { source, expired, wouldExpire: before.wouldExpire, expireLimit: req.expireLimit });
  return { ok: true, operation: 'backup', snapshot, expired, ...(fileErrors ? { fileErrors } : {}), mover };
}

/**
 * Retention's deletions can be undone by another client's concurrent manifest compaction
 * (deletion-check.ts): looks again and expires again what came back — only snapshots
 * predicted to expire at this run, and no more than predicted or the breaker allows.
 */
async function confirmExpiries(
  kopia: KopiaSession,
  log: Logger,
  source: string,
  identity: Source,
  before: Prediction,
  expireLimit: number | undefined,
  savedID: string,
): Promise<DeletionCheckResult> {
  const budget = Math.min(expireLimit ?? Number.POSITIVE_INFINITY, before.wouldExpire);
  const goneFrom = (listing: KopiaSnapshot[]) => before.existingIDs.length - stillListed(before.existingIDs, listing).length;
  return confirmDeletions(kopia, log, {
    operation: 'backup',
    list: async () =>
      parseSnapshotList(await kopia.runOrFail('backup', snapshotListCommand(source))).filter((s) => isSameSource(s, identity)),
    undone: (listing) => undoneExpiries(before.predictedIDs, listing, budget - goneFrom(listing), savedID),
  });
}

function candidates(snapshots: KopiaSnapshot[]): RetentionCandidate[] {
  return snapshots.map((s) => ({
    id: s.id,
    startTime: s.startTime,
    endTime: s.endTime,
    incomplete: !!s.incomplete,
    pinned: (s.pins?.length ?? 0) > 0,
  }));
}

interface Prediction {
  /** How many snapshots retention expires at this run (the breaker's measure). */
  wouldExpire: number;
  /** Which: the model's answer for this start time, and those kopia already gives no reason to stay. */
  predictedIDs: string[];
  /** The source's snapshots now. */
  existingIDs: string[];
}

/**
 * How many of the source's snapshots the policy now on it would expire when the next
 * snapshot, started at `startTime`, is saved; and which snapshots exist now. kopia's own
 * retention reasons (from `snapshot list`, without the new snapshot) are a lower bound: one
 * more snapshot never gives an older one a reason to stay. The model (retention.ts) adds
 * the new snapshot; should it ever disagree with kopia on the existing snapshots, the
 * larger count stands, so the breaker errs towards stopping.
 */
async function predictExpiry(kopia: KopiaSession, log: Logger, source: string, identity: Source, startTime: Date): Promise<Prediction> {
  const listed = parseSnapshotList(await kopia.runOrFail('backup', snapshotListCommand(source))).filter((s) => isSameSource(s, identity));
  const retention = parseEffectivePolicy(await kopia.runOrFail('backup', policyShowCommand(source))).retention ?? {};
  const existing = candidates(listed);
  const kopiaExpires = listed.filter((s) => !s.pins?.length && !s.retentionReason?.length).map((s) => s.id);
  const modelExpires = expiredNow(existing, retention).length;
  if (modelExpires !== kopiaExpires.length)
    log.warn('retention model disagrees with kopia', { source, kopiaExpires: kopiaExpires.length, modelExpires });
  const atThisRun = expiredBySnapshotAt(existing, retention, startTime);
  return {
    wouldExpire: Math.max(atThisRun.length, kopiaExpires.length),
    predictedIDs: [...new Set([...atThisRun, ...kopiaExpires])],
    existingIDs: listed.map((s) => s.id),
  };
}

/** Puts back the policy the source had before this run (none: the source's policy removed). */
async function restorePolicy(kopia: KopiaSession, log: Logger, source: string, previous: KopiaPolicy | undefined): Promise<boolean> {
  try {
    if (previous) {
      const file = join(MOVER_PATHS.scratch, 'previous-policy.json');
      writeFileSync(file, JSON.stringify({ [source]: previous }));
      await kopia.runOrFail('backup', policyImportCommand(source, file));
    } else {
      await kopia.runOrFail('backup', policyDeleteCommand(source));
    }
    return true;
  } catch (e) {
    log.error('cannot put the previous policy back', { source, error: (e as Error).message });
    return false;
  }
}

/**
 * kopia failed without printing a manifest, but may have saved one before failing (e.g.
 * applying retention after the save). The source belongs to this mover (pinned identity),
 * so a complete snapshot of it that started after this run's start, with this mover's
 * tags, is this run's.
 */
async function findSavedSince(
  kopia: KopiaSession,
  log: Logger,
  source: string,
  identity: Source,
  since: Date,
  mover: { uid: number; gid: number },
): Promise<KopiaSnapshot | undefined> {
  const out = await kopia.run(snapshotListCommand(source));
  if (out.code !== 0) return undefined;
  const floor = BigInt(since.getTime() - 1000) * 1_000_000n;
  const ours = parseSnapshotList(out.stdout)
    .filter((s) => isSameSource(s, identity) && !s.incomplete && parseKopiaTime(s.startTime) >= floor)
    .filter((s) => s.tags?.[`tag:${MOVER_UID_TAG}`] === String(mover.uid) && s.tags?.[`tag:${MOVER_GID_TAG}`] === String(mover.gid))
    .sort((a, b) => (parseKopiaTime(b.startTime) > parseKopiaTime(a.startTime) ? 1 : -1));
  if (ours[0]) log.warn('kopia failed but had saved the snapshot', { id: ours[0].id });
  return ours[0];
}

/** The source's snapshots once kopia applied retention; not fatal when unknown. */
async function listAfter(kopia: KopiaSession, log: Logger, source: string, identity: Source): Promise<KopiaSnapshot[] | undefined> {
  const out = await kopia.run(snapshotListCommand(source));
  try {
    if (out.code !== 0) throw new Error(firstMeaningfulLine(out.stderr));
    return parseSnapshotList(out.stdout).filter((s) => isSameSource(s, identity));
  } catch (e) {
    log.warn('cannot list the source after the snapshot', { source, error: (e as Error).message });
    return undefined;
  }
}
