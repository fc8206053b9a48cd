-- kopia.io/Maintenance: spec.suspend shows as Suspended.
return kopiaHealth({ suspendable = true })
