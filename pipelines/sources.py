"""The ``read-national-extracts`` flow: raw national files in, contract tables out.

Every enabled source adapter (:mod:`riskstrat.ingest.sources`) reads its raw file
from ``sources.raw_dir`` and maps it onto contract tables
(:func:`~riskstrat.ingest.sources.extract.adapt_extract`); this module only wires:
it writes the tables as Parquet to ``data.extract_dir``, copies the contract-format
files (``sources.contract_tables``) and writes the mapping coverage beside them as
``mapping_coverage.json``, which the validation gate turns into checks. The
extract folder is swapped in atomically: a failed run leaves last week's extract
as it was.

Tables arrive a batch at a time (``sources.batch_rows``) and are appended to their
files (:class:`ExtractWriter`). With ``backend: pyspark`` the adapters run on the
executors (:func:`spark_runner`): they write Parquet parts, which are joined here
into one file per table, a row group at a time.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from prefect import flow, task
from prefect.cache_policies import NO_CACHE

from riskstrat.catalog import MAPPING_COVERAGE
from riskstrat.errors import SettingsError
from riskstrat.ingest.contract import CONTRACT
from riskstrat.ingest.sources.base import Source
from riskstrat.ingest.sources.extract import AdaptedExtract, SourceRunner, adapt_extract
from riskstrat.io import atomic_directory, atomic_path
from riskstrat.pipelines.config import Config
from riskstrat.pipelines.generate import contract_schema, to_arrow
from riskstrat.pipelines.logs import run_logger
from riskstrat.pipelines.shared import holds_output_lock, load_run_config


@dataclass(frozen=True)
class AdaptResult:
    """What ``riskstrat adapt`` wrote.

    Attributes:
        raw_dir: The raw folder read.
        extract_dir: The extract folder written.
        coverage_file: ``mapping_coverage.json`` in the extract folder.
        row_counts: Rows per contract table written or copied.
        lowest: The coded field with the lowest share mapped (``source.field``, share, rows), if any.
        notes: The adapters' aggregate notes.
        seconds: Wall time.
    """

    raw_dir: Path
    extract_dir: Path
    coverage_file: Path
    row_counts: dict[str, int] = field(default_factory=dict)
    lowest: tuple[str, float, int] | None = None
    notes: tuple[str, ...] = ()
    seconds: float = 0.0

    def coverage_headline(self) -> str:
        """One line: the lowest-coverage field, or that no field was mapped."""
        if self.lowest is None:
            return "no coded fields were mapped"
        name, share, rows = self.lowest
        return f"lowest mapping coverage: {name} {share:.1%} of {rows:,} rows"


def resolved_raw_dir(config: Config, raw_dir: Path | str | None = None) -> Path:
    """The raw folder: ``raw_dir`` if given, else ``sources.raw_dir`` (relative paths as ``data.extract_dir``).

    Raises:
        SettingsError: If neither names a folder (``sources.raw_dir`` empty: no adapters run).
    """
    folder = raw_dir if raw_dir is not None else config.sources.raw_dir
    if folder is None:
        raise SettingsError(
            "sources.raw_dir is empty: there are no raw national files to read",
            hint="Set raw_dir in configs/sources.yaml (or pass --raw), or put contract tables in "
            "data.extract_dir and run `riskstrat validate` directly.",
        )
    return Path(folder)


def lowest_coverage(payload: dict) -> tuple[str, float, int] | None:
    """The coded field with the lowest share mapped among fields with values (``source.field``, share, rows)."""
    fields = [f for f in payload.get("fields", []) if f.get("rows")]
    if not fields:
        return None
    worst = min(fields, key=lambda f: (f["share"], -f["rows"]))
    return f"{worst['source']}.{worst['field']}", float(worst["share"]), int(worst["rows"])


WRITE_BATCH_ROWS = 2_000_000
"""Rows converted to Arrow at a time when writing a table (bounds the copy a large table needs)."""


def write_table(folder: Path, name: str, frame: pd.DataFrame) -> None:
    """Write one adapted contract table into ``folder`` as Parquet in the contract schema, in row batches."""
    schema = contract_schema(CONTRACT[name])
    with pq.ParquetWriter(folder / f"{name}.parquet", schema) as writer:
        for start in range(0, max(len(frame), 1), WRITE_BATCH_ROWS):
            writer.write_table(to_arrow(frame.iloc[start : start + WRITE_BATCH_ROWS], schema))


class ExtractWriter:
    """Appends adapted batches to one Parquet file per contract table (the contract schema), in ``folder``.

    The adapters hand over each table a batch at a time; each file stays open until
    :meth:`close`, so a table of tens of millions of rows is never whole in memory.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self._writers: dict[str, pq.ParquetWriter] = {}

    def __call__(self, name: str, frame: pd.DataFrame) -> None:
        """Append ``frame`` (rows of contract table ``name``); the first batch creates the file."""
        schema = contract_schema(CONTRACT[name])
        if name not in self._writers:
            self._writers[name] = pq.ParquetWriter(self.folder / f"{name}.parquet", schema)
        elif frame.empty:
            return
        for start in range(0, max(len(frame), 1), WRITE_BATCH_ROWS):
            self._writers[name].write_table(to_arrow(frame.iloc[start : start + WRITE_BATCH_ROWS], schema))

    def close(self) -> None:
        """Finish every file."""
        for writer in self._writers.values():
            writer.close()
        self._writers.clear()


PARTS = ".adapter_parts"
"""Folder in the staging extract where Spark executors write contract tables' parts (removed after merging)."""


def write_part(name: str, frame: pd.DataFrame, file: Path) -> None:
    """Write one partition's rows of contract table ``name`` (runs on a Spark executor).

    Written under a temporary name and renamed: a retried task replaces its part, never adds one.
    """
    schema = contract_schema(CONTRACT[name])
    with atomic_path(file) as tmp:
        pq.write_table(to_arrow(frame, schema), tmp)


def merge_parts(parts: Path, target: Path, schema: pa.Schema) -> None:
    """Join a table's part files into one Parquet file, a row group at a time (the contract: one file per table)."""
    with pq.ParquetWriter(target, schema) as writer:
        for part in sorted(parts.glob("part-*.parquet")) if parts.is_dir() else []:
            file = pq.ParquetFile(part)
            for group in range(file.num_row_groups):
                writer.write_table(file.read_row_group(group).cast(schema))
            part.unlink()


def spark_runner(session: Any, staging: Path, batch_rows: int | None) -> SourceRunner:
    """Adapt each raw file on Spark (:func:`~riskstrat.ingest.sources.spark.spark_adapt_file`) into ``staging``.

    The executors write each partition's rows as parts; the driver then joins each
    table's parts into ``<table>.parquet``, streaming row groups, so the extract keeps
    one file per table (what the gate and the feature readers read) and no table is
    whole in the driver's memory.
    """
    from riskstrat.ingest.sources.spark import spark_adapt_file

    def run(source: Source, path: Path, renames: Mapping[str, str]) -> tuple[Any, int, dict[str, int]]:
        parts = staging / PARTS
        try:
            output, rows, written = spark_adapt_file(
                session, source, path, renames, batch_rows, parts, write_part
            )
            for table in source.writes:
                merge_parts(parts / table, staging / f"{table}.parquet", contract_schema(CONTRACT[table]))
                if table in source.merged:  # a small table whose partitions' rows combine (Source.merged)
                    file = staging / f"{table}.parquet"
                    frame = source.merged[table](pq.read_table(file).to_pandas())
                    write_table(staging, table, frame)
                    written[table] = len(frame)
        finally:
            shutil.rmtree(parts, ignore_errors=True)
        return output, rows, written

    return run


def write_adapted(adapted: AdaptedExtract, folder: Path) -> dict[str, int]:
    """Write what the adapters kept (tables not yet written), the copied files and the coverage JSON into ``folder``.

    Returns:
        Rows per contract table.
    """
    counts: dict[str, int] = dict(adapted.row_counts)
    for name, frame in adapted.tables.items():
        write_table(folder, name, frame)
        counts[name] = len(frame)
    for name, path in adapted.copied.items():
        shutil.copy2(path, folder / path.name)
        counts[name] = (
            pq.ParquetFile(path).metadata.num_rows
            if path.suffix == ".parquet"
            else max(sum(1 for _ in path.open(encoding="utf-8")) - 1, 0)
        )
    payload = adapted.coverage_payload()
    (folder / MAPPING_COVERAGE).write_text(json.dumps(payload, indent=2), encoding="utf-8")
    return counts


class _Forward(logging.Handler):
    """Forward the adapters' progress lines (one per source: rows and seconds) to the run's log."""

    def __init__(self, target: logging.Logger | logging.LoggerAdapter) -> None:
        super().__init__(logging.INFO)
        self.target = target

    def emit(self, record: logging.LogRecord) -> None:
        self.target.info(record.getMessage())


@task(name="adapt-national-extracts", cache_policy=NO_CACHE)
def adapt_task(config: Config, raw_dir: Path, extract_dir: Path) -> AdaptResult:
    """Run the adapters over ``raw_dir`` and swap the contract tables into ``extract_dir`` atomically.

    Raises:
        ContractError: From an adapter (a missing or malformed raw file): nothing is
            written, and the previous extract stays as it was.
    """
    logger = run_logger(__name__)
    started = time.perf_counter()
    progress = logging.getLogger(adapt_extract.__module__)
    forward, level, propagate = _Forward(logger), progress.level, progress.propagate
    progress.addHandler(forward)
    progress.setLevel(logging.INFO)
    progress.propagate = False  # each line once, through the run's log
    try:
        # Each table is written to the staging folder as soon as its source is adapted (one
        # source in memory at a time); a failure discards the staging folder, so last week's
        # extract stays as it was.
        with atomic_directory(extract_dir) as staging:
            writer = ExtractWriter(staging)
            runner = None
            if config.features.backend == "pyspark":
                from riskstrat.pipelines.spark import weekly_session

                runner = spark_runner(weekly_session(config.features), staging, config.sources.batch_rows)
            try:
                adapted = adapt_extract(raw_dir, config.sources, writer, runner)
            finally:
                writer.close()
            counts = write_adapted(adapted, staging)
    finally:
        progress.removeHandler(forward)
        progress.setLevel(level)
        progress.propagate = propagate
    for name, rows in adapted.row_counts.items():
        logger.info("contract table %s: %s rows", name, f"{rows:,}")
    for note in adapted.notes:
        logger.info("adapters: %s", note)
    payload = adapted.coverage_payload()
    result = AdaptResult(
        raw_dir=raw_dir,
        extract_dir=extract_dir,
        coverage_file=extract_dir / MAPPING_COVERAGE,
        row_counts=counts,
        lowest=lowest_coverage(payload),
        notes=tuple(adapted.notes),
        seconds=time.perf_counter() - started,
    )
    logger.info(
        "national extracts in %s adapted to %s in %.1f s; %s",
        raw_dir,
        extract_dir,
        result.seconds,
        result.coverage_headline(),
    )
    return result


def _adapt_name() -> str:
    return f"read-national-extracts-{date.today().isoformat()}"


@flow(name="read-national-extracts", flow_run_name=_adapt_name, validate_parameters=False)
@holds_output_lock("adapt")
def adapt_flow(
    config_dir: str | None = None, raw_dir: str | None = None, extract_dir: str | None = None
) -> AdaptResult:
    """Read the raw national files (``sources.raw_dir``) into contract tables in ``data.extract_dir``.

    Args:
        config_dir: Settings folder.
        raw_dir: Raw folder (default: ``sources.raw_dir``).
        extract_dir: Extract folder to write (default: ``data.extract_dir``).

    Returns:
        Where the tables and the coverage were written, and the coverage headline.
    """
    config = load_run_config(config_dir)
    raw = resolved_raw_dir(config, raw_dir)
    target = Path(extract_dir) if extract_dir else Path(config.data.extract_dir)
    return adapt_task(config, raw, target)
