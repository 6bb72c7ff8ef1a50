"""Connect the engines that run feature expressions (DuckDB, PySpark) and register input tables.

The feature code is engine-neutral Ibis; this module is the only place that
knows which engine runs it.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import ibis
import ibis.expr.types as ir
import pyarrow as pa

from riskstrat.errors import RiskstratError
from riskstrat.features.settings import FeatureSettings
from riskstrat.ingest import readers
from riskstrat.ingest.contract import CONTRACT, Table

FEATURE_TABLES: tuple[str, ...] = (
    "patients",
    "gp_diagnoses",
    "gp_appointments",
    "gp_medications",
    "community_contacts",
    "ae_attendances",
    "apc_spells",
)
"""Contract tables the feature build and the outcomes read."""

_IBIS_TYPES = {
    "string": "string",
    "date": "date",
    "datetime": "timestamp",
    "integer": "int64",
    "float": "float64",
}


def connect_duckdb(settings: FeatureSettings | None = None) -> ibis.BaseBackend:
    """An in-memory DuckDB connection, with the thread and memory limits of ``settings``."""
    settings = settings or FeatureSettings()
    config: dict[str, Any] = {}
    if settings.duckdb_threads:
        config["threads"] = settings.duckdb_threads
    if settings.duckdb_memory_limit:
        config["memory_limit"] = settings.duckdb_memory_limit
    con = ibis.duckdb.connect(**config)
    # The feature matrix left-joins each per-person aggregate onto the cohort. DuckDB
    # underestimates the filtered cohort and swaps the join sides, building a hash table
    # of the ever-wider joined rows at every step; as written, each hash table holds one
    # aggregate (about 15% less work on the whole build).
    con.raw_sql("SET disabled_optimizers = 'build_side_probe_side'")
    return con


def spark_session(master: str | None = "local[2]", app_name: str = "riskstrat-features") -> Any:
    """The active Spark session, else a new one: UTC session time zone, no UI, few shuffle partitions.

    On a cluster (e.g. Databricks, a notebook) the session already running is
    returned unchanged. ``master`` None or empty leaves the master to
    spark-submit or ``spark-defaults.conf``.
    """
    try:
        from pyspark.sql import SparkSession
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise RiskstratError(
            "PySpark is not installed",
            hint="Install riskstrat with the 'spark' extra, or use backend: duckdb.",
        ) from exc
    active = SparkSession.getActiveSession()
    if active is not None:
        return active
    builder = SparkSession.builder.master(master) if master else SparkSession.builder
    if (master or "").startswith("local"):
        # Local Python workers (scoring, reasons) must run this interpreter, which has riskstrat installed.
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    return (
        builder.appName(app_name)
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.shuffle.partitions", "4")
        .getOrCreate()
    )


def connect_pyspark(session: Any | None = None) -> ibis.BaseBackend:
    """An Ibis PySpark backend on ``session`` (a local[2] session if None)."""
    return ibis.pyspark.connect(session if session is not None else spark_session())


def connect(settings: FeatureSettings | None = None) -> ibis.BaseBackend:
    """The backend ``settings.backend`` names (duckdb by default)."""
    settings = settings or FeatureSettings()
    if settings.backend == "pyspark":
        return connect_pyspark(spark_session(settings.spark_master))
    return connect_duckdb(settings)


def conform_to_contract(table: ir.Table, contract: Table) -> ir.Table:
    """Cast contract columns to their contract types and add missing optional columns as nulls.

    Columns that are already of the right type are left alone, so the cast costs
    nothing on typed Parquet.
    """
    columns = {}
    for column in contract.columns:
        target = _IBIS_TYPES[column.type]
        if column.name in table.columns:
            value = table[column.name]
            if str(value.type().copy(nullable=True)) != str(ibis.dtype(target).copy(nullable=True)):
                value = value.cast(target)
            columns[column.name] = value
        elif column.required:
            raise RiskstratError(
                f"{contract.name}: required column {column.name!r} is missing",
                hint="See docs/data-contract.md for each table's columns.",
            )
        else:
            columns[column.name] = ibis.null(target)
    return table.select(**columns)


def find_table_file(folder: Path, name: str) -> Path:
    """The file of contract table ``name`` in ``folder`` (``<name>.parquet`` or ``<name>.csv``).

    Raises:
        RiskstratError: If neither file exists.
    """
    path = readers.find_table_file(folder, name)
    if path is None:
        raise RiskstratError(
            f"table {name!r} not found in {folder} (looked for {name}.parquet and {name}.csv)",
            hint="Point configs/data.yaml extract_dir at a folder with one file per contract table.",
        )
    return path


def read_extract(
    con: ibis.BaseBackend, folder: Path, names: tuple[str, ...] = FEATURE_TABLES
) -> dict[str, ir.Table]:
    """Register the extract's tables on ``con`` (lazily; nothing is loaded yet), typed as the contract says.

    Args:
        con: An Ibis backend (DuckDB or PySpark).
        folder: Extract folder with ``<table>.parquet`` (or ``.csv``) files.
        names: Contract tables to register.

    Returns:
        Ibis tables by contract name.
    """
    tables = {}
    for name in names:
        path = find_table_file(folder, name)
        raw = (
            con.read_parquet(path, table_name=name)
            if path.suffix == ".parquet"
            else con.read_csv(path, table_name=name)
        )
        tables[name] = conform_to_contract(raw, CONTRACT[name])
    return tables


def register_frames(con: ibis.BaseBackend, frames: dict[str, Any]) -> dict[str, ir.Table]:
    """Register in-memory frames (pandas or pyarrow) on ``con``, typed as the contract says.

    On PySpark the frames become temporary views (nothing is written to a
    warehouse folder); on DuckDB they become in-memory tables.
    """
    tables = {}
    for name, frame in frames.items():
        if con.name == "pyspark":
            # Through Arrow: a memtable goes via pandas and loses integers in columns with nulls.
            arrow = (
                frame if isinstance(frame, pa.Table) else pa.Table.from_pandas(frame, preserve_index=False)
            )
            con._session.createDataFrame(arrow).createOrReplaceTempView(name)
            raw = con.table(name)
        else:
            raw = con.create_table(name, frame, overwrite=True)
        tables[name] = conform_to_contract(raw, CONTRACT[name]) if name in CONTRACT else raw
    return tables
