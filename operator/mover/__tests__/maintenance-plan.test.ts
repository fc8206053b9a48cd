// The maintenance operation's pure parts: the owner decision, the kopia command lines, and
// kopia 0.23.1's maintenance output, captured from the real binary as fixtures.
import { indexListCommand, maintenanceInfoCommand, maintenanceRunCommand, maintenanceSetOwnerCommand } from '../kopia-command.js';
import {
  lastRunTime,
  maintenanceOwnerDecision,
  maintenanceRequestProblem,
  notOwnedBy,
  ownedByOtherMessage,
  parseIndexList,
  parseMaintenanceInfo,
  reclaimedBytes,
  runsSince,
  runWindow,
  type KopiaMaintenanceInfo,
} from '../maintenance-plan.js';
import type { MaintenanceRequest } from '../mover-contract.js';

/** `maintenance info --json` of a repository just created by kopia-operator@verify.team-a: kopia made the creator the owner. */
const freshInfo =
  '{"owner":"kopia-operator@verify.team-a","quick":{"enabled":true,"interval":3600000000000},"full":{"enabled":true,"interval":86400000000000},"logRetention":{"maxTotalSize":1073741824,"maxCount":10000,"maxAge":2592000000000000},"extendObjectLocks":false,"listParallelism":0,"schedule":{"nextFullMaintenance":"0001-01-01T00:00:00Z","nextQuickMaintenance":"0001-01-01T00:00:00Z","runs":null}}';

/** The same after one quick run: an epoch-format repository's quick run only compacts an epoch and advances epochs. */
const afterQuickInfo =
  '{"owner":"kopia-operator@verify.team-a","quick":{"enabled":true,"interval":3600000000000},"full":{"enabled":true,"interval":86400000000000},"logRetention":{"maxTotalSize":1073741824,"maxCount":10000,"maxAge":2592000000000000},"extendObjectLocks":false,"listParallelism":0,"schedule":{"nextFullMaintenance":"0001-01-01T00:00:00Z","nextQuickMaintenance":"2026-11-27T18:54:34.931073043Z","runs":{"advance-epoch":[{"start":"2026-11-27T17:54:34.933973312Z","end":"2026-11-27T17:54:34.933979851Z","success":true,"extra":[{"kind":"advanceEpochStats","data":{"currentEpoch":0,"wasAdvanced":false}}]}],"compact-single-epoch":[{"start":"2026-11-27T17:54:34.933172309Z","end":"2026-11-27T17:54:34.933187341Z","success":true,"extra":[{"kind":"compactSingleEpochStats","data":null}]}]}}}';

/**
 * After a quick run, a full run, a snapshot of 3 MB deleted and a third, full run (plain kopia with
 * --safety=none, only to capture a history in which packs were deleted; the mover always runs --safety=full).
 */
const afterFullInfo =
  '{"owner":"kopia-operator@verify.team-a","quick":{"enabled":true,"interval":3600000000000},"full":{"enabled":true,"interval":86400000000000},"logRetention":{"maxTotalSize":1073741824,"maxCount":3,"maxAge":2592000000000000},"extendObjectLocks":false,"listParallelism":0,"schedule":{"nextFullMaintenance":"2026-11-28T17:54:43.888020702Z","nextQuickMaintenance":"2026-11-27T18:54:43.888020852Z","runs":{"advance-epoch":[{"start":"2026-11-27T17:54:43.912537897Z","end":"2026-11-27T17:54:43.912570676Z","success":true,"extra":[{"kind":"advanceEpochStats","data":{"currentEpoch":0,"wasAdvanced":false}}]},{"start":"2026-11-27T17:54:35.795647832Z","end":"2026-11-27T17:54:35.795673971Z","success":true,"extra":[{"kind":"advanceEpochStats","data":{"currentEpoch":0,"wasAdvanced":false}}]},{"start":"2026-11-27T17:54:34.933973312Z","end":"2026-11-27T17:54:34.933979851Z","success":true,"extra":[{"kind":"advanceEpochStats","data":{"currentEpoch":0,"wasAdvanced":false}}]}],"cleanup-epoch-markers":[{"start":"2026-11-27T17:54:43.914156267Z","end":"2026-11-27T17:54:43.914257478Z","success":true,"extra":[{"kind":"cleanupMarkersStats","data":{"deletedEpochMarkerBlobCount":0,"deletedWatermarkBlobCount":0}}]},{"start":"2026-11-27T17:54:35.796990181Z","end":"2026-11-27T17:54:35.797037331Z","success":true,"extra":[{"kind":"cleanupMarkersStats","data":{"deletedEpochMarkerBlobCount":0,"deletedWatermarkBlobCount":0}}]}],"cleanup-logs":[{"start":"2026-11-27T17:54:43.916746494Z","end":"2026-11-27T17:54:43.917617902Z","success":true,"extra":[{"kind":"cleanupLogsStats","data":{"toDeleteBlobCount":3,"toDeleteBlobSize":4703,"deletedBlobCount":3,"deletedBlobSize":4703,"retainedBlobCount":3,"retainedBlobSize":3009}}]},{"start":"2026-11-27T17:54:35.799242365Z","end":"2026-11-27T17:54:35.799484205Z","success":true,"extra":[{"kind":"cleanupLogsStats","data":{"toDeleteBlobCount":0,"toDeleteBlobSize":0,"deletedBlobCount":0,"deletedBlobSize":0,"retainedBlobCount":2,"retainedBlobSize":1811}}]}],"compact-single-epoch":[{"start":"2026-11-27T17:54:43.911640541Z","end":"2026-11-27T17:54:43.911704075Z","success":true,"extra":[{"kind":"compactSingleEpochStats","data":null}]},{"start":"2026-11-27T17:54:35.795006016Z","end":"2026-11-27T17:54:35.795027418Z","success":true,"extra":[{"kind":"compactSingleEpochStats","data":null}]},{"start":"2026-11-27T17:54:34.933172309Z","end":"2026-11-27T17:54:34.933187341Z","success":true,"extra":[{"kind":"compactSingleEpochStats","data":null}]}],"delete-superseded-epoch-indexes":[{"start":"2026-11-27T17:54:43.914995707Z","end":"2026-11-27T17:54:43.915904941Z","success":true,"extra":[{"kind":"cleanupSupersededIndexesStats","data":{"maxReplacementTime":"2026-11-27T13:54:43.892829788Z","deletedBlobCount":0,"deletedTotalSize":0}}]},{"start":"2026-11-27T17:54:35.797685606Z","end":"2026-11-27T17:54:35.79849397Z","success":true,"extra":[{"kind":"cleanupSupersededIndexesStats","data":{"maxReplacementTime":"2026-11-27T13:54:34.404829445Z","deletedBlobCount":0,"deletedTotalSize":0}}]}],"full-delete-blobs":[{"start":"2026-11-27T17:54:43.903341231Z","end":"2026-11-27T17:54:43.910574002Z","success":true,"extra":[{"kind":"deleteUnreferencedPacksStats","data":{"unreferencedPackCount":5,"unreferencedTotalSize":3019805,"deletedPackCount":5,"deletedTotalSize":3019805,"retainedPackCount":0,"retainedTotalSize":0}}]},{"start":"2026-11-27T17:54:35.789778201Z","end":"2026-11-27T17:54:35.79416943Z","success":true,"extra":[{"kind":"deleteUnreferencedPacksStats","data":{"unreferencedPackCount":0,"unreferencedTotalSize":0,"deletedPackCount":0,"deletedTotalSize":0,"retainedPackCount":0,"retainedTotalSize":0}}]}],"full-drop-deleted-content":[{"start":"2026-11-27T17:54:43.901226783Z","end":"2026-11-27T17:54:43.90252788Z","success":true,"extra":[{"kind":"compactIndexesStats","data":{"droppedContentsDeletedBefore":"2026-11-27T17:54:43.901215456Z"}}]},{"start":"2026-11-27T17:54:35.787857411Z","end":"2026-11-27T17:54:35.789074283Z","success":true,"extra":[{"kind":"compactIndexesStats","data":{"droppedContentsDeletedBefore":"2026-11-27T17:54:35.787848267Z"}}]}],"full-rewrite-contents":[{"start":"2026-11-27T17:54:43.894818399Z","end":"2026-11-27T17:54:43.900265621Z","success":true,"extra":[{"kind":"rewriteContentsStats","data":{"toRewriteContentCount":5,"toRewriteContentSize":1964,"rewrittenContentCount":5,"rewrittenContentSize":1964,"retainedContentCount":0,"retainedContentSize":0}}]},{"start":"2026-11-27T17:54:35.786991431Z","end":"2026-11-27T17:54:35.787091836Z","success":true,"extra":[{"kind":"rewriteContentsStats","data":{"toRewriteContentCount":0,"toRewriteContentSize":0,"rewrittenContentCount":0,"rewrittenContentSize":0,"retainedContentCount":0,"retainedContentSize":0}}]}],"generate-epoch-range-index":[{"start":"2026-11-27T17:54:43.913303727Z","end":"2026-11-27T17:54:43.913365399Z","success":true,"extra":[{"kind":"generateRangeCheckpointStats","data":null}]},{"start":"2026-11-27T17:54:35.796320223Z","end":"2026-11-27T17:54:35.796349847Z","success":true,"extra":[{"kind":"generateRangeCheckpointStats","data":null}]}],"snapshot-gc":[{"start":"2026-11-27T17:54:43.889960501Z","end":"2026-11-27T17:54:43.893909481Z","success":true,"extra":[{"kind":"snapshotGCStats","data":{"unreferencedContentCount":2,"unreferencedContentSize":3000265,"deletedContentCount":2,"deletedContentSize":3000265,"unreferencedRecentContentCount":0,"unreferencedRecentContentSize":0,"inUseContentCount":0,"inUseContentSize":0,"inUseSystemContentCount":4,"inUseSystemContentSize":1727,"recoveredContentCount":0,"recoveredContentSize":0}}]},{"start":"2026-11-27T17:54:35.785879505Z","end":"2026-11-27T17:54:35.786155776Z","success":true,"extra":[{"kind":"snapshotGCStats","data":{"unreferencedContentCount":0,"unreferencedContentSize":0,"deletedContentCount":0,"deletedContentSize":0,"unreferencedRecentContentCount":0,"unreferencedRecentContentSize":0,"inUseContentCount":0,"inUseContentSize":0,"inUseSystemContentCount":1,"inUseSystemContentSize":689,"recoveredContentCount":0,"recoveredContentSize":0}}]}]}}}';

/** `index list --json` of the fresh repository. */
const indexList =
  '[\n {"id":"xn0_aaf073b64a73014a0e61c490efb2a9cd-sae6b92aebd75e5e2147-c1","length":143,"timestamp":"2026-11-27T17:54:34.404829445Z","Superseded":null}\n]\n';

/** The history as it was before the third run: kopia only prepends to it. */
function withoutRunsStartedAt(info: string, prefix: string): string {
  const parsed = JSON.parse(info) as { schedule: { runs: Record<string, { start: string }[]> } };
  for (const [task, list] of Object.entries(parsed.schedule.runs)) {
    const kept = list.filter((r) => !r.start.startsWith(prefix));
    if (kept.length) parsed.schedule.runs[task] = kept;
    else delete parsed.schedule.runs[task];
  }
  return JSON.stringify(parsed);
}
const beforeThirdRunInfo = withoutRunsStartedAt(afterFullInfo, '2026-11-27T17:54:43');

describe('the owner decision', () => {
  const me = 'kopia-operator@maintenance.team-a';
  const verify = 'kopia-operator@verify.team-a';
  it.each([
    [me, [], false, 'run'],
    [me, [me], true, 'run'],
    ['', [], false, 'adopt'],
    [verify, [verify], false, 'adopt'],
    [verify, [verify], true, 'adopt'],
    ['alice@laptop', [verify], true, 'takeover'],
    ['alice@laptop', [verify], false, 'refuse'],
    // only exact owners are adoptable
    ['kopia-operator@verify.team-b', [verify], false, 'refuse'],
    [verify, [], false, 'refuse'],
  ])('owner %j, adoptable %j, takeover %j: %s', (owner, adoptable, takeover, decision) =>
    expect(maintenanceOwnerDecision(owner, me, adoptable, takeover)).toBe(decision),
  );
});

describe('maintenance request', () => {
  const request = (over: Partial<MaintenanceRequest> = {}) =>
    ({
      operation: 'maintenance',
      identity: { username: 'kopia-operator', hostname: 'maintenance.team-a' },
      mode: 'quick',
      takeover: false,
      adoptableOwners: ['kopia-operator@verify.team-a'],
      ...over,
    }) as MaintenanceRequest;
  it('accepts a well-formed request', () => expect(maintenanceRequestProblem(request())).toBeUndefined());
  it.each([
    [request({ mode: 'weekly' as 'quick' }), /mode must be quick or full/],
    [request({ takeover: 'yes' as unknown as boolean }), /takeover must be true or false/],
    [request({ identity: { username: 'a@b', hostname: 'c' } }), /identity must name a user and a host/],
    [request({ identity: { username: 'a', hostname: '' } }), /identity/],
    [request({ identity: undefined as unknown as MaintenanceRequest['identity'] }), /identity/],
    [request({ adoptableOwners: 'x@y' as unknown as string[] }), /adoptableOwners/],
  ])('refuses %#', (req, message) => expect(maintenanceRequestProblem(req)).toMatch(message));
});

describe('maintenance command lines', () => {
  it('runs quick and full with the safety level spelled out, never none, and no automatic maintenance', () => {
    expect(maintenanceRunCommand('quick')).toEqual([
      'maintenance',
      'run',
      '--no-full',
      '--safety=full',
      '--config-file=/kopia/config/repository.config',
      '--log-dir=/kopia/logs',
      '--no-auto-maintenance',
    ]);
    expect(maintenanceRunCommand('full').slice(0, 4)).toEqual(['maintenance', 'run', '--full', '--safety=full']);
    expect(() => maintenanceRunCommand('none' as 'quick')).toThrow(/unknown maintenance mode/);
  });

  it('names the new owner (never "me")', () => {
    expect(maintenanceSetOwnerCommand('kopia-operator@maintenance.team-a')).toEqual([
      'maintenance',
      'set',
      '--owner=kopia-operator@maintenance.team-a',
      '--config-file=/kopia/config/repository.config',
      '--log-dir=/kopia/logs',
      '--no-auto-maintenance',
    ]);
    for (const bad of ['me', '', 'a@b@c', 'a b@c', '@host', 'user@'])
      expect(() => maintenanceSetOwnerCommand(bad)).toThrow(/not a maintenance owner/);
  });

  it('reads the owner and the index blobs as JSON', () => {
    expect(maintenanceInfoCommand().slice(0, 3)).toEqual(['maintenance', 'info', '--json']);
    expect(indexListCommand().slice(0, 3)).toEqual(['index', 'list', '--json']);
    expect(indexListCommand()).not.toContain('--superseded');
  });
});

describe("kopia's maintenance info", () => {
  it('reads the owner of a repository never maintained, with no runs', () => {
    const info = parseMaintenanceInfo(freshInfo);
    expect(info).toEqual({ owner: 'kopia-operator@verify.team-a', runs: {} });
    expect(lastRunTime(info)).toBeUndefined();
  });

  it('reads an empty owner as none', () => {
    expect(parseMaintenanceInfo('{"owner":"","schedule":{"runs":null}}').owner).toBe('');
    expect(parseMaintenanceInfo('{"schedule":{}}').owner).toBe('');
  });

  it('refuses output that is not maintenance info', () => {
    expect(() => parseMaintenanceInfo('[]')).toThrow(/not print a JSON object/);
    expect(() => parseMaintenanceInfo('{"owner":3}')).toThrow(/owner that is not a string/);
    expect(() => parseMaintenanceInfo('{"owner":"a@b","schedule":{"runs":{"snapshot-gc":{}}}}')).toThrow(/not a list/);
  });

  it('gives the last run as the newest end of any task, in milliseconds', () => {
    expect(lastRunTime(parseMaintenanceInfo(afterQuickInfo))).toBe('2026-11-27T17:54:34.933Z');
    expect(lastRunTime(parseMaintenanceInfo(afterFullInfo))).toBe('2026-11-27T17:54:43.917Z');
  });

  it('ignores Go zero times', () => {
    const info: KopiaMaintenanceInfo = { owner: 'a@b', runs: { x: [{ start: '0001-01-01T00:00:00Z', end: '0001-01-01T00:00:00Z' }] } };
    expect(lastRunTime(info)).toBeUndefined();
    expect(runWindow([{ run: info.runs.x[0] }])).toBeUndefined();
  });
});

describe('one run in the history', () => {
  it('is what the history gained: a quick run on a fresh repository', () => {
    const runs = runsSince(parseMaintenanceInfo(freshInfo), parseMaintenanceInfo(afterQuickInfo));
    expect(runs.map((r) => r.task).sort()).toEqual(['advance-epoch', 'compact-single-epoch']);
    expect(runWindow(runs)).toEqual({ startTime: '2026-11-27T17:54:34.933Z', endTime: '2026-11-27T17:54:34.933Z' });
    // no task of a quick epoch run deletes blobs: nothing to report
    expect(reclaimedBytes(runs)).toBeUndefined();
  });

  it('of a full run counts the bytes of every blob it deleted, exactly (packs and logs here)', () => {
    const runs = runsSince(parseMaintenanceInfo(beforeThirdRunInfo), parseMaintenanceInfo(afterFullInfo));
    expect(runs).toHaveLength(10);
    expect(new Set(runs.map((r) => r.task)).size).toBe(10);
    expect(runWindow(runs)).toEqual({ startTime: '2026-11-27T17:54:43.889Z', endTime: '2026-11-27T17:54:43.917Z' });
    // 3,019,805 bytes of packs and 4,703 of logs; kopia printed "3 MB".
    expect(reclaimedBytes(runs)).toBe(3_019_805 + 4_703);
  });

  it('of the previous full run, that deleted nothing, reports 0 (a run that could have deleted)', () => {
    const second = withoutRunsStartedAt(beforeThirdRunInfo, '2026-11-27T17:54:35');
    const runs = runsSince(parseMaintenanceInfo(second), parseMaintenanceInfo(beforeThirdRunInfo));
    expect(runs.map((r) => r.task)).toContain('full-delete-blobs');
    expect(reclaimedBytes(runs)).toBe(0);
  });

  it('is empty when nothing changed', () => {
    expect(runsSince(parseMaintenanceInfo(afterFullInfo), parseMaintenanceInfo(afterFullInfo))).toEqual([]);
  });
});

describe('index blobs and refusals', () => {
  it('counts the active index blobs kopia lists', () => {
    expect(parseIndexList(indexList)).toBe(1);
    expect(parseIndexList('[]')).toBe(0);
    expect(() => parseIndexList('{}')).toThrow(/not print a JSON array/);
  });

  it("reads the owner from kopia's refusal to run for a non-owner", () => {
    expect(notOwnedBy('ERROR maintenance must be run by designated user: creator@verify\n')).toBe('creator@verify');
    expect(notOwnedBy('ERROR invalid repository password')).toBeUndefined();
  });

  it('names the owner and its last run', () => {
    expect(ownedByOtherMessage('alice@laptop', '2026-11-27T17:54:43.917Z')).toBe(
      'maintenance is owned by alice@laptop (last run 2026-11-27T17:54:43.917Z); takeover was not requested (takeoverPolicy Never): nothing was run or changed',
    );
    expect(ownedByOtherMessage('alice@laptop', undefined)).toMatch(/alice@laptop \(no run recorded\)/);
  });
});
