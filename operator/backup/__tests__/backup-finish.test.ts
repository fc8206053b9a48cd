// Which Backup events wake the Backups waiting on a source identity: only a run that has
// just finished frees one. Mirrored Backups never run, and a resync or a first sight
// re-announces an old finish; waking on those scanned every Backup once per event (the
// 30,000-snapshot mirror: quadratic CPU and hundreds of MB of garbage).
import type { BackupStatus } from '../../../generated/types.js';
import { justFinished } from '../backup-status.js';

const taken = (phase?: BackupStatus['phase']) => ({ spec: { configRef: { name: 'app' } }, status: phase ? { phase } : undefined });
const mirrored = (phase?: BackupStatus['phase']) => ({ spec: { snapshot: { id: 'k1' } }, status: phase ? { phase } : undefined });

describe('a Backup that has just finished', () => {
  it.each([
    { given: 'a run going from Running to Succeeded', event: 'MODIFIED', b: taken('Succeeded'), old: taken('Running'), expect: true },
    { given: 'a run going from Running to Failed', event: 'MODIFIED', b: taken('Failed'), old: taken('Running'), expect: true },
    {
      given: 'a finished run changed again (labels, pins)',
      event: 'MODIFIED',
      b: taken('Succeeded'),
      old: taken('Succeeded'),
      expect: false,
    },
    { given: 'a finished run at a resync', event: 'RESYNC', b: taken('Succeeded'), old: undefined, expect: false },
    { given: 'a finished run first seen (a restart)', event: 'ADDED', b: taken('Succeeded'), old: undefined, expect: false },
    { given: 'a mirrored Backup getting its status', event: 'MODIFIED', b: mirrored('Succeeded'), old: mirrored(), expect: false },
    { given: 'a run still going', event: 'MODIFIED', b: taken('Running'), old: taken('Pending'), expect: false },
  ])('$given: $expect', ({ event, b, old, expect: wanted }) => {
    expect(justFinished(event, b, old)).toBe(wanted);
  });
});
