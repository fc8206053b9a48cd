-- kopia.io/Restore: Completed (and Ready) is Healthy; Failed is final.
return kopiaHealth({ successPhase = "Completed", failedPhase = "Failed" })
