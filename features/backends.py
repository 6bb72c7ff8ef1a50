"""Connect the engines that run feature expressions (DuckDB, PySpark) and register input tables.

The feature code is engine-neutral Ibis; this module is the only place that
knows which engine runs it.
"""

from __future__ import annotations

import csv
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import ibis
import ibis.expr.datatypes as dt
import ibis.expr.types as ir
import pyarrow as pa
import pyarrow.parquet as pq

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
OPTIONAL_FEATURE_TABLES: tuple[str, ...] = ("social_care_events", "social_care_returns")
"""Optional contract tables the feature build reads when the extract has them (their features are left out otherwise)."""

_IBIS_TYPES = {
    "string": "string",
    "date": "date",
    "datetime": "timestamp",
    "integer": "int64",
    "float": "float64",
}


@ibis.udf.scalar.builtin(name="timezone", signature=((dt.string, dt.Timestamp(timezone="UTC")), dt.timestamp))
def _duckdb_wall_clock(zone: str, moment: ir.TimestampValue) -> ir.TimestampValue:  # type: ignore[empty-body]
    """DuckDB's ``timezone(zone, timestamptz)``: the wall-clock time in ``zone``, without a zone."""


@ibis.udf.scalar.builtin(name="from_utc_timestamp", signature=((dt.timestamp, dt.string), dt.timestamp))
def _spark_wall_clock(moment: ir.TimestampValue, zone: str) -> ir.TimestampValue:  # type: ignore[empty-body]
    """Spark's ``from_utc_timestamp(ts, zone)``: the wall-clock time in ``zone`` (session time zone UTC)."""


def to_local_naive(value: ir.Value, aware: bool = False) -> ir.Value:
    """A time-zone-aware timestamp as naive Europe/London wall-clock time (naive ones unchanged).

    The same convention as the gate's reader (:func:`riskstrat.ingest.readers.to_london_naive`),
    written explicitly so that it does not depend on the engine's session time zone
    (on PySpark it assumes the UTC session time zone that :func:`spark_session` sets;
    a Parquet timestamp Spark reads as a plain timestamp is converted when the
    file's schema says it is time-zone-aware).

    Args:
        value: A column.
        aware: Whether the file stores it time-zone-aware (PySpark reads such a
            Parquet column as a plain timestamp, so the file's schema says it).
    """
    kind = value.type()
    if not kind.is_timestamp() or not (aware or kind.timezone is not None):
        return value
    backend = value._find_backend(use_default=True) if hasattr(value, "_find_backend") else None
    if backend is not None and backend.name == "pyspark":
        return _spark_wall_clock(value, readers.LOCAL_TIME_ZONE)
    if kind.timezone is None:
        return value
    return _duckdb_wall_clock(readers.LOCAL_TIME_ZONE, value)


def _aware_columns(path: Path) -> frozenset[str]:
    """Columns of a Parquet file stored as time-zone-aware timestamps (UTC instants)."""
    try:
        schema = pq.read_schema(path)
    except Exception:  # unreadable files are the gate's to report
        return frozenset()
    return frozenset(f.name for f in schema if pa.types.is_timestamp(f.type) and f.type.tz is not None)


def _text_to_timestamp(value: ir.StringValue) -> ir.Value:
    """ISO date-time text as naive London time: values with a UTC offset converted, others as they are."""
    offset = value.re_search(readers.UTC_OFFSET + "$")
    return ibis.ifelse(
        offset, to_local_naive(value.cast(dt.Timestamp(timezone="UTC"))), value.cast("timestamp")
    )


def connect_duckdb(settings: FeatureSettings | None = None) -> ibis.BaseBackend:
    """An in-memory DuckDB connection, with the thread and memory limits and spill folder of ``settings``."""
    settings = settings or FeatureSettings()
    config: dict[str, Any] = {"temp_directory": str(duckdb_temp_directory(settings))}
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


def duckdb_temp_directory(settings: FeatureSettings) -> Path:
    """The folder DuckDB spills to (``duckdb_temp_directory``, else ``riskstrat-duckdb`` under TMPDIR), created.

    Raises:
        RiskstratError: If the folder cannot be created.
    """
    folder = Path(settings.duckdb_temp_directory or Path(tempfile.gettempdir()) / "riskstrat-duckdb")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise RiskstratError(
            f"cannot create DuckDB's spill folder {folder}: {exc.strerror or exc}",
            hint="Set duckdb_temp_directory in configs/features.yaml to a writable folder.",
        ) from exc
    return folder


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


def conform_to_contract(
    table: ir.Table, contract: Table, aware_columns: frozenset[str] = frozenset()
) -> ir.Table:
    """Cast contract columns to their contract types and add missing optional columns as nulls.

    Columns that are already of the right type are left alone, so the cast costs
    nothing on typed Parquet. Time-zone-aware timestamps (``aware_columns``: those
    the file stores with a zone) become naive Europe/London wall-clock time first.
    """
    columns = {}
    for column in contract.columns:
        target = _IBIS_TYPES[column.type]
        if column.name in table.columns:
            value = table[column.name]
            if column.type in ("date", "datetime"):
                # One time-zone convention with the gate: London wall-clock time, then the date.
                if value.type().is_string() and column.type == "datetime":
                    value = _text_to_timestamp(value)
                else:
                    value = to_local_naive(value, aware=column.name in aware_columns)
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
        names: Contract tables to register. The default, the feature build's tables, also
            registers each of :data:`OPTIONAL_FEATURE_TABLES` the folder has.

    Returns:
        Ibis tables by contract name.
    """
    if names == FEATURE_TABLES:
        names = (
            *names,
            *(n for n in OPTIONAL_FEATURE_TABLES if readers.find_table_file(folder, n) is not None),
        )
    tables = {}
    for name in names:
        path = find_table_file(folder, name)
        if path.suffix == ".parquet":
            raw, aware = con.read_parquet(path, table_name=name), _aware_columns(path)
        else:
            raw, aware = _read_csv(con, path, CONTRACT[name]), frozenset()
        tables[name] = conform_to_contract(raw, CONTRACT[name], aware)
    return tables


def _read_csv(con: ibis.BaseBackend, path: Path, contract: Table) -> ir.Table:
    """Read a CSV with its text, date and date-time columns as text, as the gate reads them.

    Type sniffing would turn ``0205`` into 205 and ``01`` into 1; the contract's
    cast then types each column (dates, numbers) exactly as the gate does.
    """
    if con.name != "duckdb":
        return con.read_csv(path, table_name=contract.name)
    with open(path, encoding="utf-8-sig", newline="") as handle:
        header = next(csv.reader(handle), [])
    kinds = {c.name: c.type for c in contract.columns}
    as_text = {c: "VARCHAR" for c in header if kinds.get(c) in ("string", "date", "datetime")}
    return (
        con.read_csv(path, table_name=contract.name, types=as_text)
        if as_text
        else con.read_csv(path, table_name=contract.name)
    )


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
