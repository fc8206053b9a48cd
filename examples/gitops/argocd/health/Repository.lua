-- kopia.io/Repository: Ready decides.
return kopiaHealth({})
