// The maintenance operation: one quick or full run under one owner. kopia lets only the
// maintenance owner (user@host) run maintenance and has no repository-wide lock, so the
// owner is checked first: the identity runs, an owner the operator left behind (or none) is
// adopted, another owner is taken over only when asked, else nothing is run or changed.
import type { Logger } from '../runtime/logger.js';
import { indexListCommand, maintenanceInfoCommand, maintenanceRunCommand, maintenanceSetOwnerCommand } from './kopia-command.js';
import { classifyKopiaError } from './kopia-errors.js';
import { connect, invalidRequest, KopiaFailure, type KopiaSession } from './kopia-session.js';
import {
  lastRunTime,
  maintenanceOwnerDecision,
  maintenanceRequestProblem,
  notOwnedBy,
  ownedByOtherMessage,
  ownerName,
  parseIndexList,
  parseMaintenanceInfo,
  reclaimedBytes,
  runsSince,
  runWindow,
  type KopiaMaintenanceInfo,
} from './maintenance-plan.js';
import type { MaintenanceRequest, MoverSuccess } from './mover-contract.js';

async function readInfo(kopia: KopiaSession): Promise<KopiaMaintenanceInfo> {
  return parseMaintenanceInfo(await kopia.runOrFail('maintenance', maintenanceInfoCommand()));
}

async function indexBlobCount(kopia: KopiaSession): Promise<number> {
  return parseIndexList(await kopia.runOrFail('maintenance', indexListCommand()));
}

/** OwnedByOther, with the owner's last run and the index blob count (left out if it cannot be read). */
async function ownedByOther(kopia: KopiaSession, log: Logger, info: KopiaMaintenanceInfo, message: string): Promise<KopiaFailure> {
  let indexBlobs: number | undefined;
  try {
    indexBlobs = await indexBlobCount(kopia);
  } catch (e) {
    log.warn('cannot count index blobs', { error: (e as Error).message });
  }
  const lastRun = lastRunTime(info);
  return new KopiaFailure({
    ok: false,
    operation: 'maintenance',
    errorClass: 'OwnedByOther',
    message,
    maintenanceOwner: {
      owner: info.owner,
      ...(lastRun ? { lastRunTime: lastRun } : {}),
      ...(indexBlobs !== undefined ? { indexBlobs } : {}),
    },
  });
}

export async function maintenance(kopia: KopiaSession, log: Logger, req: MaintenanceRequest): Promise<MoverSuccess> {
  const problem = maintenanceRequestProblem(req);
  if (problem) throw invalidRequest('maintenance', problem);
  const identity = ownerName(req.identity);

  // Maintenance never creates a repository.
  await connect(kopia, log, { ...req, repository: { ...req.repository, create: undefined } });
  const before = await readInfo(kopia);
  const decision = maintenanceOwnerDecision(before.owner, identity, req.adoptableOwners, req.takeover);
  log.info('maintenance owner', { owner: before.owner, identity, decision });
  if (decision === 'refuse') throw await ownedByOther(kopia, log, before, ownedByOtherMessage(before.owner, lastRunTime(before)));
  if (decision !== 'run') await kopia.runOrFail('maintenance', maintenanceSetOwnerCommand(identity));

  const started = new Date();
  const out = await kopia.run(maintenanceRunCommand(req.mode));
  const ended = new Date();
  if (out.code !== 0) {
    // Another client set another owner between the check (or our claim) and the run: kopia ran nothing.
    const other = notOwnedBy(out.stderr || out.stdout);
    if (other !== undefined) {
      const now = await readInfo(kopia);
      throw await ownedByOther(
        kopia,
        log,
        now,
        `maintenance became owned by ${now.owner || other} while this run started (${decision === 'run' ? 'it was ' + identity : 'claimed for ' + identity}); nothing was run`,
      );
    }
    throw new KopiaFailure({ ok: false, operation: 'maintenance', ...classifyKopiaError(out.stderr || out.stdout) });
  }

  const runs = runsSince(before, await readInfo(kopia));
  let window = runWindow(runs);
  if (!window) {
    log.warn("kopia recorded no maintenance task for this run: reporting the mover's own times");
    window = { startTime: started.toISOString(), endTime: ended.toISOString() };
  }
  const reclaimed = reclaimedBytes(runs);
  return {
    ok: true,
    operation: 'maintenance',
    maintenance: {
      mode: req.mode,
      owner: identity,
      // '' when the repository had no owner.
      ...(decision === 'run' ? {} : { previousOwner: before.owner }),
      tookOver: decision === 'takeover',
      ...window,
      ...(reclaimed !== undefined ? { reclaimedBytes: reclaimed } : {}),
      indexBlobs: await indexBlobCount(kopia),
    },
  };
}
