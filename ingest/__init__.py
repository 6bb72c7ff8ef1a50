"""Ingest: the data contract, readers, Great Expectations suites, reference data and the synthetic population."""
