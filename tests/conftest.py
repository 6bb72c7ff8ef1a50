"""Shared fixtures: one Prefect test server for the whole session, isolated from the user's Prefect home."""

from __future__ import annotations

import os

import pytest

# Before Prefect or Great Expectations are imported anywhere: no analytics, no phoning home.
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")


@pytest.fixture(scope="session")
def prefect_harness(tmp_path_factory):
    """A temporary Prefect home and test server; use it in tests that run real flows."""
    home = tmp_path_factory.mktemp("prefect_home")
    previous = os.environ.get("PREFECT_HOME")
    os.environ["PREFECT_HOME"] = str(home)
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness():
        yield
    if previous is None:
        os.environ.pop("PREFECT_HOME", None)
    else:
        os.environ["PREFECT_HOME"] = previous
