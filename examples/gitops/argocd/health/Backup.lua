-- kopia.io/Backup: Succeeded (and Ready) is Healthy; Failed is final.
return kopiaHealth({ successPhase = "Succeeded", failedPhase = "Failed" })
