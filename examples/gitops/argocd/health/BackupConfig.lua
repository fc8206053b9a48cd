-- kopia.io/BackupConfig: Ready decides.
return kopiaHealth({})
