-- kopia.io/ClusterRepository: Ready decides.
return kopiaHealth({})
