"""Reports over run folders: seed-aggregated tables, curves, qualitative figures, architecture cards,
provenance."""
