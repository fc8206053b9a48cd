// The restore operation: one pinned snapshot into the volume at /data. The snapshot is
// looked up before kopia restores it (kopia takes an unknown hex id for an object id and
// fails late and obscurely), symlinks and special files in the volume are moved out of
// kopia's way first (restore-target.ts), and the result says whether owners came back.
import { lstatSync, readFileSync } from 'node:fs';
import type { Logger } from '../runtime/logger.js';
import { snapshotListAllCommand, snapshotRestoreCommand } from './kopia-command.js';
import { classifyRestoreError } from './kopia-errors.js';
import { parseSnapshotList } from './kopia-json.js';
import { connect, invalidRequest, KopiaFailure, type KopiaSession } from './kopia-session.js';
import { MOVER_PATHS, type MoverSuccess, type RestoreRequest } from './mover-contract.js';
import {
  CAP_CHOWN,
  effectiveCapabilities,
  hasCapability,
  ownersDecision,
  parseRestoreSummary,
  restoredCounts,
  findPinnedSnapshot,
  restoreRequestProblem,
} from './restore-plan.js';
import { chownWorksIn, discard, putBack, recoverLeftovers, setAside, type Aside } from './restore-target.js';

const target = MOVER_PATHS.data;

function fail(message: string, errorClass: 'Other' | 'SnapshotNotFound' = 'Other'): KopiaFailure {
  return new KopiaFailure({ ok: false, operation: 'restore', errorClass, message });
}

function capabilities(): bigint | undefined {
  try {
    return effectiveCapabilities(readFileSync('/proc/self/status', 'utf8'));
  } catch {
    return undefined;
  }
}

export async function restore(kopia: KopiaSession, log: Logger, req: RestoreRequest): Promise<MoverSuccess> {
  const problem = restoreRequestProblem(req);
  if (problem) throw invalidRequest('restore', problem);
  const { options } = req;

  // A restore reads: a repository that is not there is an error, never one to create.
  await connect(kopia, log, { ...req, repository: { ...req.repository, create: undefined } });
  const snapshot = findPinnedSnapshot(parseSnapshotList(await kopia.runOrFail('restore', snapshotListAllCommand())), req);
  if (!snapshot) throw fail(`snapshot ${req.snapshotID} is not in the repository; nothing was restored`, 'SnapshotNotFound');
  const snapshotID = snapshot.id;
  if (snapshotID !== req.snapshotID)
    log.info('the pinned snapshot was saved again under a new id (pin change)', { asked: req.snapshotID, snapshotID });
  if (snapshot.incomplete)
    throw fail(`snapshot ${snapshotID} is incomplete (${snapshot.incomplete}) and not restorable; nothing was restored`);
  if (!lstatSync(target, { throwIfNoEntry: false })?.isDirectory()) throw fail(`no data volume is mounted at ${target}`);

  const caps = capabilities();
  const canChown = options.restoreOwners && hasCapability(caps, CAP_CHOWN) && chownWorksIn(target);
  const owners = ownersDecision(options.restoreOwners, canChown, options.ignorePermissionErrors);
  const who = `uid ${process.getuid?.()}`;
  if (owners === 'refuse')
    throw fail(
      `owners were requested and permission errors are not ignored, but the mover (${who}) cannot change owners in ${target} ` +
        `(${hasCapability(caps, CAP_CHOWN) ? 'the volume refuses chown' : 'no CAP_CHOWN'}); nothing was restored`,
    );
  if (options.restoreOwners && owners === 'skip') log.warn('owners requested but the mover cannot change them: skipped', { who });

  const recovered = recoverLeftovers(target);
  if (recovered.dirs.length > 0) log.warn('put back entries a previous restore had set aside', recovered);
  let aside: Aside | undefined;
  try {
    aside = setAside(target);
  } catch (e) {
    throw fail((e as Error).message);
  }
  if (aside) log.info('symlinks and special files set aside for the restore', { count: aside.entries.length, dir: aside.dir });

  let out;
  let stuck: string[] = [];
  try {
    out = await kopia.run(
      snapshotRestoreCommand(snapshotID, {
        parallel: options.parallel,
        deleteExtra: options.deleteExtra,
        ignorePermissionErrors: options.ignorePermissionErrors,
        skipOwners: owners !== 'restore',
      }),
    );
  } finally {
    if (aside && options.deleteExtra) discard(target, aside);
    else if (aside) {
      const back = putBack(target, aside);
      stuck = back.failed;
      log.info('set-aside entries settled', { returned: back.returned, replaced: back.replaced, failed: back.failed.length });
      if (stuck.length > 0) log.warn('entries could not be put back; they stay in the aside directory', { dir: aside.dir, entries: stuck });
    }
  }
  if (out.code !== 0)
    throw new KopiaFailure({ ok: false, operation: 'restore', ...classifyRestoreError(out.stderr || out.stdout, target) });

  const summary = parseRestoreSummary(out.stderr);
  if (!summary) log.warn('kopia printed no restore summary: counts are the snapshot totals');
  return {
    ok: true,
    operation: 'restore',
    restored: {
      ...restoredCounts(snapshot, summary),
      errors: (summary?.ignoredErrors ?? 0) + stuck.length,
      ownersRestored: owners === 'restore',
      ...(snapshotID !== req.snapshotID ? { snapshotID } : {}),
    },
  };
}
