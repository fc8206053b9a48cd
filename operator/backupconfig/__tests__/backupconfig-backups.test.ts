import { lastBackups, reservedIdentityPath } from '../backupconfig-backups.js';

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

describe('where the data may be mounted', () => {
  it.each([
    ['/data', undefined],
    ['/var/lib/app', undefined],
    ['/', 'the data cannot be mounted at /'],
    ['/kopia', 'the mover uses /kopia'],
    ['/tmp/x', 'the mover uses /tmp'],
    ['/etc', 'the mover uses /etc/kopia-secrets'],
  ])('%s', (path, problem) => {
    const found = reservedIdentityPath(path);
    if (problem === undefined) expect(found).toBeUndefined();
    else expect(found).toContain(problem);
  });
});
