"""Pipelines: Prefect flows, deployments and the command line. All reading, writing and wiring lives here."""
