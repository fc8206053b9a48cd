-- kopia.io/BackupSchedule: spec.suspend shows as Suspended.
return kopiaHealth({ suspendable = true })
