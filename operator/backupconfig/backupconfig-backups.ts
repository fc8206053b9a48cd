// What a BackupConfig's status says about its Backups. Pure.
import type { BackupConfigStatus, BackupStatus } from '../../generated/types.js';

interface FinishedBackup {
  name: string;
  status?: BackupStatus;
}

/** The newest finished Backup, and the newest successful one. */
export function lastBackups(
  backups: FinishedBackup[],
): Pick<BackupConfigStatus, 'lastBackup' | 'lastBackupTime' | 'lastSuccessfulBackup' | 'lastSuccessTime'> {
  const finished = backups
    .filter((b) => (b.status?.phase === 'Succeeded' || b.status?.phase === 'Failed') && b.status.completionTime)
    .sort((a, b) => b.status!.completionTime!.localeCompare(a.status!.completionTime!));
  const last = finished[0];
  const success = finished.find((b) => b.status?.phase === 'Succeeded');
  return {
    ...(last ? { lastBackup: last.name, lastBackupTime: last.status!.completionTime } : {}),
    ...(success ? { lastSuccessfulBackup: success.name, lastSuccessTime: success.status!.completionTime } : {}),
  };
}
