"""Small helpers that import nothing above them: I/O of sample folders and grids, checkpoints,
EMA, seeding and devices, masks, geometry of masks, numeric precision, provenance, plots."""
