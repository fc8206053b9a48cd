import { lastBackups } from '../backupconfig-backups.js';

describe("a config's last backups", () => {
  it('names the newest finished one and the newest successful one', () => {
    const b = (name: string, phase: string, completionTime?: string) => ({ name, status: { phase, completionTime } as never });
    expect(
      lastBackups([
        b('old-ok', 'Succeeded', '2026-11-27T10:00:00Z'),
        b('newer-failed', 'Failed', '2026-11-27T11:00:00Z'),
        b('running', 'Running'),
      ]),
    ).toEqual({
      lastBackup: 'newer-failed',
      lastBackupTime: '2026-11-27T11:00:00Z',
      lastSuccessfulBackup: 'old-ok',
      lastSuccessTime: '2026-11-27T10:00:00Z',
    });
    expect(lastBackups([])).toEqual({});
  });
});
