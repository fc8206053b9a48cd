// make bench, many objects: 1,000 BackupConfigs with 1,000 BackupSchedules converging and
// then at rest; a repository with 10,000 real kopia snapshots (500 sources × 20) mirrored
// as Discovered Backups, re-synced with nothing changed, and at rest; 1,000 of those
// snapshots deleted through their Backup objects. Numbers only: the targets are printed
// beside them, never asserted.
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  Jobs,
  KopiaBackupConfigs,
  KopiaBackups,
  KopiaBackupSchedules,
  KopiaRepositories,
  PersistentVolumeClaims,
  Secrets,
} from '../operator/kube/resources.js';
import { LABELS, MOVER_SELECTOR } from '../operator/jobs/job-builder.js';
import { claimObject, repositoryObject, secretObject } from '../e2e/support/objects.js';
import {
  createConfigsAndSchedules,
  BENCH_PASSWORD,
  callsBetween,
  cpuBetween,
  inParallel,
  isReady,
  PLAIN_MOUNTS,
  PlainKopia,
  readyRepository,
  say,
  secs,
  startBenchWorld,
  until,
  type BenchWorld,
  type Calls,
  type Obj,
} from './bench-support.js';

/* eslint-disable @typescript-eslint/no-explicit-any -- status is read structurally */
const backupWrites = (calls: Calls) =>
  Object.entries(calls)
    .filter(([k]) => /^(POST|PUT|PATCH|DELETE) backups$/.test(k))
    .reduce((n, [, v]) => n + v, 0);
const key = (o: Obj) => `${o.metadata.namespace}/${o.metadata.name}`;

export async function benchSchedules(): Promise<Record<string, unknown>> {
  const n = Number(process.env.BENCH_SCHEDULES ?? 1000);
  const bw = await startBenchWorld('bench-schedules');
  try {
    const { client, ns } = bw;
    await readyRepository(bw, 'nas');
    await client.create(PersistentVolumeClaims, claimObject({ name: 'app-data', namespace: ns }));

    const readyConfigs = new Set<string>();
    const scheduled = new Set<string>();
    let converged: number | undefined;
    const check = () => {
      if (converged === undefined && readyConfigs.size === n && scheduled.size === n) converged = Date.now();
    };
    await bw.watch<Obj>(KopiaBackupConfigs, { namespace: ns }, (event, c) => {
      const ok = event !== 'DELETED' && isReady(c) && c.status?.observedGeneration === c.metadata.generation;
      if (ok) readyConfigs.add(key(c));
      else readyConfigs.delete(key(c));
      check();
    });
    await bw.watch<Obj>(KopiaBackupSchedules, { namespace: ns }, (event, s) => {
      if (event !== 'DELETED' && s.status?.nextScheduleTime) scheduled.add(key(s));
      else scheduled.delete(key(s));
      check();
    });
    const backups = await bw.watch<Obj>(KopiaBackups, { namespace: ns });

    // Daily, twelve hours from now: no run falls into the benchmark (jitter is at most 30 min).
    const cron = `0 ${(new Date().getUTCHours() + 12) % 24} * * *`;
    say(`schedules: creating ${n} BackupConfigs and ${n} BackupSchedules (cron "${cron}" UTC, jitter 30m)`);
    const before = await bw.metrics();
    const t0 = Date.now();
    await createConfigsAndSchedules(client, ns, n, cron);
    const createdMs = Date.now() - t0;
    say(`schedules: ${2 * n} objects created in ${secs(createdMs)} s; waiting for them to converge`);
    await until(`${n} configs Ready and ${n} schedules with a next time`, async () => converged !== undefined, 600000, 100);
    const convergeMs = converged! - t0;
    const duringConvergence = callsBetween(before, await bw.metrics());
    say(
      `schedules: ${n} BackupConfigs Ready and ${n} BackupSchedules with nextScheduleTime ${secs(convergeMs)} s after the first create (target: under 30 s)`,
    );
    const memoryConverged = bw.memory();

    const rest = await bw.rest();
    const memory = bw.memory();
    say(
      `schedules at rest for ${rest.windowSeconds} s: ${rest.apiWrites} API writes besides ${rest.leaseRenewals} Lease renewals; ${rest.requestsPerMinute} requests/min in all (target: 0 writes)`,
    );
    say(
      `schedules: operator resident memory ${memory.rssMB} MB (${memory.anonMB} MB anonymous, ${memory.fileMB} MB file-backed), peak ${memory.peakMB} MB; ${bw.idleMemory.rssMB} MB before any object (target: under 150 MB)`,
    );
    return {
      configs: n,
      schedules: n,
      createSeconds: secs(createdMs),
      convergeSeconds: secs(convergeMs),
      afterLastCreateSeconds: secs(convergeMs - createdMs),
      convergeTarget: 'every config Ready and every schedule with a nextScheduleTime under 30 s after the first create',
      requestsWhileConverging: duringConvergence,
      backupsMade: backups.list().length,
      atRest: { ...rest, target: 'zero writes per minute at rest (Lease renewals counted apart)' },
      operatorMemory: {
        ...memory,
        rssAfterConvergeMB: memoryConverged.rssMB,
        idle: bw.idleMemory,
        target: 'operator resident memory under 150 MB',
      },
    };
  } finally {
    await bw.stop();
  }
}

/**
 * 10,000 kopia snapshots over 500 identities. Real ones are made for the first host's
 * sources: `rounds` times one `kopia snapshot create` over its tiny directories, a file
 * changed each round. kopia 0.23 scans every manifest for each source it snapshots, so
 * making all 10,000 that way grows quadratically (about 9 minutes here); instead the first
 * host's history is copied to the other hosts with `kopia snapshot copy-history`, as kopia
 * does when a machine is renamed: each copy is a snapshot manifest of its own, listed and
 * mirrored like any other.
 */
async function makeSnapshots(bw: BenchWorld, repoDir: string, scratch: string, sizes: { sources: number; rounds: number; hosts: number }) {
  const { rounds, hosts } = sizes;
  const perHost = Math.ceil(sizes.sources / hosts);
  const host = (h: number) => ({ username: 'laptop', hostname: `h${String(h).padStart(2, '0')}` });
  const clients = [0, 1].map(() => new PlainKopia(bw.world.kopiaBinDir, BENCH_PASSWORD, { repository: repoDir, data: scratch }));
  try {
    const t0 = Date.now();
    await clients[0].create(host(0));
    // Every snapshot of a source must be kept (kopia's default keeps the latest 10).
    await clients[0].run('policy', 'set', '--global', `--keep-latest=${rounds * 2}`, '--no-auto-maintenance');
    await clients[1].connect(host(0));
    const names = Array.from({ length: perHost }, (_, i) => String(i).padStart(3, '0'));
    for (const name of names) mkdirSync(join(scratch, name), { recursive: true, mode: 0o755 });
    for (let round = 0; round < rounds; round++) {
      for (const name of names) writeFileSync(join(scratch, name, 'notes.txt'), `source ${name}, version ${round}\n`, { mode: 0o644 });
      await clients[round % 2].run('snapshot', 'create', ...names.map((n) => `${PLAIN_MOUNTS.data}/${n}`), '--no-auto-maintenance');
    }
    const realMs = Date.now() - t0;
    say(
      `catalog: ${perHost * rounds} snapshots made with kopia snapshot create in ${secs(realMs)} s; copying that history to ${hosts - 1} more hosts`,
    );
    const from = `${host(0).username}@${host(0).hostname}`;
    await inParallel(
      Array.from({ length: hosts - 1 }, (_, i) => i + 1),
      2,
      async (h, i) =>
        void (await clients[i % 2].run(
          'snapshot',
          'copy-history',
          from,
          `${host(h).username}@${host(h).hostname}`,
          '--no-auto-maintenance',
        )),
    );
    const makeMs = Date.now() - t0;
    const listed = await clients[0].run('snapshot', 'list', '--all', '--json');
    const count = (JSON.parse(listed.stdout) as unknown[]).length;
    return { makeMs, realMs, real: perHost * rounds, identities: perHost * hosts, count, plainListMs: listed.ms };
  } finally {
    for (const c of clients) c.close();
  }
}

/** After a spec change: the repository verified again and no Job left. */
async function settled(bw: BenchWorld, name: string): Promise<void> {
  await until(
    'the re-verification after a spec change',
    async () => {
      const r = await bw.client.get<Obj>(KopiaRepositories, bw.ns, name);
      const jobs = (await bw.client.list<Obj>(Jobs, bw.ns)).items.length;
      return isReady(r) && r.status?.observedGeneration === r.metadata.generation && jobs === 0;
    },
    300000,
    250,
  );
}

export async function benchCatalog(opts: {
  deletions: boolean;
  /** Snapshots per source (default BENCH_CATALOG_ROUNDS, 20: 10,000 snapshots). */
  rounds?: number;
  /** Only the first mirror and the operator's memory (no re-sync, rest or deletions): the large run. */
  mirrorOnly?: boolean;
}): Promise<{ catalog: Record<string, unknown>; deletions?: Record<string, unknown> }> {
  const sources = Number(process.env.BENCH_CATALOG_SOURCES ?? 500);
  const rounds = opts.rounds ?? Number(process.env.BENCH_CATALOG_ROUNDS ?? 20);
  const hosts = Number(process.env.BENCH_CATALOG_HOSTS ?? 20);
  if (sources % hosts) throw new Error('BENCH_CATALOG_SOURCES must be a multiple of BENCH_CATALOG_HOSTS');
  const total = sources * rounds;
  const bw = await startBenchWorld('bench-catalog');
  const scratch = mkdtempSync(join(tmpdir(), 'bench-catalog-'));
  chmodSync(scratch, 0o755);
  try {
    const { client, ns } = bw;
    const name = 'catalog';
    await client.create(Secrets, secretObject({ name: `${name}-password`, namespace: ns, stringData: { KOPIA_PASSWORD: BENCH_PASSWORD } }));
    await client.create(PersistentVolumeClaims, claimObject({ name, namespace: ns }));
    const repoDir = await bw.volumeDir(ns, name);

    say(`catalog: preparing ${total} snapshots (${sources} sources × ${rounds}) with plain kopia, outside the measured time`);
    const made = await makeSnapshots(bw, repoDir, scratch, { sources, rounds, hosts });
    say(`catalog: ${made.count} snapshots made in ${secs(made.makeMs)} s; plain kopia lists them in ${secs(made.plainListMs)} s`);
    if (made.count !== total) throw new Error(`expected ${total} snapshots, kopia lists ${made.count}`);

    // What the operator does, as it happens. No watch of the 10,000 Backups while they are
    // made: the bench would compete for the two cores. The mirror is done when the status
    // that records it is written (after the last Backup write), polled with a cheap GET.
    const times: Record<string, number> = {};
    const jobs = new Map<string, { operation: string; seen: number; created: string; finished?: number }>();
    const syncs: { seen: number; lastSyncTime: string; snapshots?: number }[] = [];
    await bw.watch<Obj>(Jobs, { namespace: ns, labelSelector: MOVER_SELECTOR }, (event, j) => {
      if (event === 'DELETED') return;
      const uid = j.metadata.uid!;
      if (!jobs.has(uid))
        jobs.set(uid, {
          operation: j.metadata.labels?.[LABELS.operation] ?? '?',
          seen: Date.now(),
          created: j.metadata.creationTimestamp!,
        });
      const done = (j.status?.conditions ?? []).some((c: any) => ['Complete', 'Failed'].includes(c.type) && c.status === 'True');
      if (done) jobs.get(uid)!.finished ??= Date.now();
    });
    await bw.watch<Obj>(KopiaRepositories, { namespace: ns }, (event, r) => {
      if (event === 'DELETED') return;
      if (isReady(r)) times.ready ??= Date.now();
      const c = r.status?.catalog;
      if (c?.lastSyncTime && syncs[syncs.length - 1]?.lastSyncTime !== c.lastSyncTime)
        syncs.push({ seen: Date.now(), lastSyncTime: c.lastSyncTime, snapshots: c.snapshots });
    });
    const jobsOf = (operation: string) => [...jobs.values()].filter((j) => j.operation === operation).sort((a, b) => a.seen - b.seen);

    // A cluster rebuilt over an existing repository: the Repository object is all that is new.
    const before = await bw.metrics();
    times.created = Date.now();
    await client.create(
      KopiaRepositories,
      repositoryObject({ name, namespace: ns, create: false, spec: { catalog: { refreshInterval: '10s' } } }),
    );
    let cpuAtJob: Record<string, number> | undefined;
    let cpuAtMirror: Record<string, number> | undefined;
    await until(
      `the catalog of ${total} snapshots to be mirrored`,
      async () => {
        const job = jobsOf('catalog')[0];
        if (job && !cpuAtJob) cpuAtJob = bw.cpu();
        if (job?.finished && !cpuAtMirror) cpuAtMirror = bw.cpu();
        if ((await client.get<Obj>(KopiaRepositories, ns, name)).status?.catalog?.snapshots !== total) return false;
        times.mirrored = Date.now();
        return true;
      },
      900000,
      100,
    );
    const cpuAtEnd = bw.cpu();
    const firstSync = callsBetween(before, await bw.metrics());
    const catalogJob = jobsOf('catalog')[0];
    // Counted once it is over, with the API server's own times (whole seconds) beside the bench's.
    const listed = (await client.list<Obj>(KopiaBackups, ns)).items;
    const discovered = listed.filter((b) => b.status?.origin === 'Discovered' && b.status?.phase === 'Succeeded').length;
    const lastStatusWrite = Math.max(
      ...listed.flatMap((b) =>
        ((b.metadata as any).managedFields ?? []).filter((m: any) => m.subresource === 'status').map((m: any) => Date.parse(m.time)),
      ),
    );
    const firstCreated = Math.min(...listed.map((b) => Date.parse(b.metadata.creationTimestamp!)));
    const mirror = {
      snapshots: total,
      sources,
      discoveredBackups: discovered,
      preparation: {
        seconds: secs(made.makeMs),
        how:
          `plain kopia 0.23 as the movers' uid: ${made.real} real snapshots (${rounds} rounds of one \`kopia snapshot create\` over ${sources / hosts} tiny directories, ` +
          `a file changed each round; global keep-latest ${rounds * 2}) in ${secs(made.realMs)} s, then \`kopia snapshot copy-history\` of that host to ${hosts - 1} more ` +
          `(${sources} identities in all); making all ${total} with snapshot create took 9.4 min in a trial here (kopia scans every manifest per source)`,
        plainKopiaListSeconds: secs(made.plainListMs),
      },
      fromRepositoryCreatedSeconds: secs(times.mirrored - times.created),
      verificationSeconds: secs(times.ready - times.created),
      fromCatalogTriggerSeconds: secs(times.mirrored - catalogJob.seen),
      catalogJobSeconds: catalogJob.finished ? secs(catalogJob.finished - catalogJob.seen) : undefined,
      mirrorSeconds: catalogJob.finished ? secs(times.mirrored - catalogJob.finished) : undefined,
      apiServerTimes: {
        note: 'whole seconds, from the catalog Job creationTimestamp',
        firstBackupCreatedSeconds: (firstCreated - Date.parse(catalogJob.created)) / 1000,
        lastBackupStatusWrittenSeconds: (lastStatusWrite - Date.parse(catalogJob.created)) / 1000,
      },
      target: `${total} snapshots mirrored as Backup objects in under 60 s (from the catalog Job's creation, the trigger)`,
      requests: firstSync,
      cpuSeconds: {
        catalogJob: cpuAtJob && cpuAtMirror ? cpuBetween(cpuAtJob, cpuAtMirror) : undefined,
        mirroring: cpuAtMirror ? cpuBetween(cpuAtMirror, cpuAtEnd) : undefined,
      },
    };
    say(
      `catalog: ${discovered} Discovered Backups ${mirror.fromCatalogTriggerSeconds} s after the catalog Job was created (target: under 60 s): ` +
        `Job (list + upload) ${mirror.catalogJobSeconds} s, mirroring ${mirror.mirrorSeconds} s; ${mirror.fromRepositoryCreatedSeconds} s from the Repository's creation (verification ${mirror.verificationSeconds} s)`,
    );
    say(
      `catalog: CPU seconds while mirroring: ${JSON.stringify(mirror.cpuSeconds.mirroring)}; during the Job: ${JSON.stringify(mirror.cpuSeconds.catalogJob)}`,
    );
    if (opts.mirrorOnly) {
      const memory = bw.memory();
      say(
        `catalog (${total}): operator resident memory ${memory.rssMB} MB, peak ${memory.peakMB} MB; ${bw.idleMemory.rssMB} MB before any object`,
      );
      return { catalog: { ...mirror, operatorMemory: { ...memory, idle: bw.idleMemory } } };
    }
    if (opts.mirrorOnly) {
      const memory = bw.memory();
      say(
        `catalog (${total}): operator resident memory ${memory.rssMB} MB, peak ${memory.peakMB} MB; ${bw.idleMemory.rssMB} MB before any object`,
      );
      return { catalog: { ...mirror, operatorMemory: { ...memory, idle: bw.idleMemory } } };
    }
    const backups = await bw.watch<Obj>(KopiaBackups, { namespace: ns });

    // One full re-sync with nothing changed: a catalog Job created and its sync recorded inside the window.
    await until('the first catalog Job to be gone', async () => (await client.list<Obj>(Jobs, ns)).items.length === 0, 120000, 100);
    const beforeResync = await bw.metrics();
    const resyncStart = Date.now();
    const resyncJob = () => jobsOf('catalog').find((j) => j.seen > resyncStart);
    const resyncSync = () => syncs.find((x) => x.seen > (resyncJob()?.finished ?? Infinity));
    await until('a re-sync', async () => !!resyncSync(), 300000, 100);
    const resyncCalls = callsBetween(beforeResync, await bw.metrics());
    const resync = {
      backupWrites: backupWrites(resyncCalls),
      target: 'zero writes of Backup objects on a re-sync with nothing changed',
      catalogJobToSyncedSeconds: secs(resyncSync()!.seen - resyncJob()!.seen),
      windowSeconds: secs(Date.now() - resyncStart),
      requests: resyncCalls,
    };
    say(
      `catalog re-sync, nothing changed: ${resync.backupWrites} writes of Backup objects (target: 0); catalog Job to recorded sync ${resync.catalogJobToSyncedSeconds} s; calls ${JSON.stringify(resyncCalls)}`,
    );

    // At rest with 10,000 Backups: the default interval again, so no catalog Job falls into the window.
    await client.patch(KopiaRepositories, ns, name, { spec: { catalog: { refreshInterval: '15m' } } });
    await settled(bw, name);
    const rest = await bw.rest();
    const memory = bw.memory();
    say(
      `catalog at rest with ${backups.list().length} Backups for ${rest.windowSeconds} s: ${rest.requestsPerMinute} requests/min, ${rest.apiWrites} writes besides ${rest.leaseRenewals} Lease renewals`,
    );
    say(
      `catalog: operator resident memory ${memory.rssMB} MB (${memory.anonMB} MB anonymous), peak ${memory.peakMB} MB; ${bw.idleMemory.rssMB} MB before any object`,
    );
    const catalog = {
      ...mirror,
      resync,
      atRest: {
        backups: backups.list().length,
        ...rest,
        target: 'reads from the cache: no LIST of Backups, no writes besides Lease renewals',
      },
      operatorMemory: { ...memory, idle: bw.idleMemory },
    };
    if (!opts.deletions) return { catalog };
    return { catalog, deletions: await benchDeletions(bw, name, backups, jobsOf, total, rounds) };
  } finally {
    await bw.stop();
    rmSync(scratch, { recursive: true, force: true });
  }
}

async function benchDeletions(
  bw: BenchWorld,
  repository: string,
  backups: { list(): Obj[]; get(key: string): Obj | undefined },
  jobsOf: (operation: string) => { seen: number; finished?: number }[],
  total: number,
  perSource: number,
): Promise<Record<string, unknown>> {
  const { client, ns } = bw;
  const n = Number(process.env.BENCH_DELETIONS ?? 1000);
  // Every snapshot of the first n / 20 sources, as when old machines are retired.
  const chosen = backups
    .list()
    .map((b) => ({ b, order: `${b.status.snapshot.identity.hostname}:${b.status.snapshot.identity.path}/${b.metadata.name}` }))
    .sort((x, y) => x.order.localeCompare(y.order))
    .map(({ b }) => b)
    .slice(0, n);
  const ids = new Set(chosen.map((b) => b.spec.snapshot.id as string));
  say(`deletions: marking ${n} Backups (every snapshot of ${Math.ceil(n / perSource)} sources) deletionPolicy Delete`);
  await inParallel(
    chosen,
    16,
    async (b) => void (await client.patch(KopiaBackups, ns, b.metadata.name!, { spec: { deletionPolicy: 'Delete' } })),
  );
  await until(
    `finalizers on ${n} Backups`,
    async () => chosen.every((b) => backups.get(key(b))?.metadata.finalizers?.includes('kopia.io/snapshot-deletion')),
    300000,
    250,
  );
  // An administrator expecting this many raises the breaker's limit first. (The release
  // annotation lets through one batch only: deletions arriving over more than the 3 s the
  // operator waits for a burst to settle become several batches, and the later ones stop at
  // the breaker again.)
  await client.patch(KopiaRepositories, ns, repository, { spec: { deletionBreaker: { maxDeletions: n } } });
  await settled(bw, repository);
  const editsBefore = jobsOf('edit').length;
  const before = await bw.metrics();
  const cpuBefore = bw.cpu();
  const t0 = Date.now();
  await inParallel(chosen, 16, async (b) => void (await client.delete(KopiaBackups, ns, b.metadata.name!)));
  const deletedMs = Date.now() - t0;
  await until(`${n} Backups gone`, async () => chosen.every((b) => !backups.get(key(b))), 900000, 100);
  const goneMs = Date.now() - t0;
  const cpu = cpuBetween(cpuBefore, bw.cpu());
  const calls = callsBetween(before, await bw.metrics());
  const edits = jobsOf('edit').slice(editsBefore);
  const repoDir = await bw.volumeDir(ns, repository);
  const plain = new PlainKopia(bw.world.kopiaBinDir, BENCH_PASSWORD, { repository: repoDir });
  let left: { id: string }[];
  try {
    await plain.connect();
    left = await plain.snapshots();
  } finally {
    plain.close();
  }
  const stillThere = left.filter((s) => ids.has(s.id)).length;
  const result = {
    deletions: n,
    deleteCallsSeconds: secs(deletedMs),
    allGoneSeconds: secs(goneMs),
    breaker: `spec.deletionBreaker.maxDeletions raised to ${n} beforehand`,
    batches: edits.length,
    editJobs: edits.map((j) => ({
      startedAfterSeconds: secs(j.seen - t0),
      runSeconds: j.finished ? secs(j.finished - j.seen) : undefined,
    })),
    snapshotsLeftInKopia: left.length,
    deletedSnapshotsStillInKopia: stillThere,
    operatorCalls: calls,
    cpuSeconds: cpu,
    settleSeconds: 3,
    target: 'none in the design; wall time until every object and its snapshot is gone',
  };
  say(
    `deletions: ${n} Backups (deletionPolicy Delete, maxDeletions ${n}) gone ${result.allGoneSeconds} s after the first DELETE (the DELETEs took ${result.deleteCallsSeconds} s); ` +
      `edit Job(s) ${JSON.stringify(result.editJobs)}; kopia keeps ${left.length} of ${total} snapshots, ${stillThere} of the deleted ones`,
  );
  return result;
}
