"""Features: point-in-time features by source (demographics, primary, community, acute) and outcomes."""
