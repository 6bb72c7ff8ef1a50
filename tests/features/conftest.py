"""Fixtures for the feature tests; the builders live in feature_fixtures.py.

``backend`` runs a hand-worked test once on DuckDB and once on PySpark (one Spark
session for the whole run; the PySpark cases are marked ``slow`` and ``spark``).
"""

from collections.abc import Callable
from typing import Any

import ibis
import pyarrow as pa
import pytest
from feature_fixtures import feature_settings, hand_worked, outcome_settings  # noqa: F401

from riskstrat.features.backends import connect_duckdb, connect_pyspark, register_frames, spark_session

BACKENDS = ["duckdb", pytest.param("pyspark", marks=[pytest.mark.slow, pytest.mark.spark])]
"""The engines every hand-worked test runs on."""


@pytest.fixture(scope="session")
def spark() -> Any:
    pytest.importorskip("pyspark")
    session = spark_session("local[2]", "riskstrat-tests")
    session.conf.set("spark.sql.shuffle.partitions", "1")
    yield session
    session.stop()


@pytest.fixture(scope="module", params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> ibis.BaseBackend:
    """A connection to each engine in turn."""
    if request.param == "pyspark":
        return connect_pyspark(request.getfixturevalue("spark"))
    return connect_duckdb()


@pytest.fixture(scope="module")
def on_engine(backend: ibis.BaseBackend) -> Callable[[dict[str, pa.Table]], dict[str, ibis.Table]]:
    """Register contract frames on the engine under test, typed as the contract says."""
    return lambda frames: register_frames(backend, frames)
