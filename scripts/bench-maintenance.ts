// The maintenance planner's cost per pass, in-process: each pass holds the event loop that
// also renews the leader's Lease, so a catch-up after downtime must cost what a pass at rest
// costs (it walked every missed cron time before: ~0.9 s for a minutely cron a month behind).
import { planMaintenance, type MaintenanceInput } from '../operator/maintenance/maintenance-plan.js';
import { say } from './bench-support.js';

const PASSES = Number(process.env.BENCH_MAINTENANCE_PASSES ?? 2000);

const now = new Date('2026-12-01T00:00:30Z');
const base: MaintenanceInput = {
  spec: { repository: { name: 'nas' } },
  status: {
    owner: 'maintenance@bench',
    lastQuick: { startTime: '2026-11-30T18:10:00Z', endTime: '2026-11-30T18:11:00Z', result: 'Succeeded' },
    lastQuickScheduleTime: '2026-11-30T18:00:00Z',
    lastFullScheduleTime: '2026-11-30T03:00:00Z',
    lastSuccessfulFullTime: '2026-11-30T03:40:00Z',
  },
  namespace: 'bench',
  name: 'nas',
  generation: 1,
  creationTime: new Date('2026-01-01T00:00:00Z'),
  now,
  owner: 'maintenance@bench',
};
const monthBehind = { lastQuickScheduleTime: '2026-11-01T00:00:00Z', lastFullScheduleTime: '2026-11-01T03:00:00Z' };
const cases: Record<string, MaintenanceInput> = {
  atRest: base,
  minutelyMonthBehind: {
    ...base,
    spec: { repository: { name: 'nas' }, quick: { cron: '* * * * *' } },
    status: { ...base.status, ...monthBehind },
  },
  minutelyMonthBehindSuspended: {
    ...base,
    spec: { repository: { name: 'nas' }, quick: { cron: '* * * * *' }, suspend: true },
    status: { ...base.status, ...monthBehind },
  },
};

export function benchMaintenancePlan(): Record<string, unknown> {
  const results: Record<string, unknown> = { passes: PASSES, note: 'planMaintenance per pass, in-process (no target in DESIGN §5)' };
  for (const [name, input] of Object.entries(cases)) {
    for (let i = 0; i < 50; i++) planMaintenance(input); // warm up
    const start = process.hrtime.bigint();
    let slowest = 0;
    for (let i = 0; i < PASSES; i++) {
      const t = process.hrtime.bigint();
      planMaintenance(input);
      slowest = Math.max(slowest, Number(process.hrtime.bigint() - t) / 1e6);
    }
    const meanMs = Number(process.hrtime.bigint() - start) / 1e6 / PASSES;
    results[name] = { meanMs: Math.round(meanMs * 1000) / 1000, slowestMs: Math.round(slowest * 100) / 100 };
    say(`maintenance plan, ${name}: ${meanMs.toFixed(3)} ms per pass (slowest ${slowest.toFixed(2)} ms)`);
  }
  return results;
}
