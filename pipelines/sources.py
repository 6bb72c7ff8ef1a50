"""The ``read-national-extracts`` flow: raw national files in, contract tables out.

Every enabled source adapter (:mod:`riskstrat.ingest.sources`) reads its raw file
from ``sources.raw_dir`` and maps it onto contract tables
(:func:`~riskstrat.ingest.sources.extract.adapt_extract`); this module only wires:
it writes the tables as Parquet to ``data.extract_dir``, copies the contract-format
files (``sources.contract_tables``) and writes the mapping coverage beside them as
``mapping_coverage.json``, which the validation gate turns into checks. The
extract folder is swapped in atomically: a failed run leaves last week's extract
as it was.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from dataclasses import dataclass, field
from datetime import date
from functools import partial
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
from prefect import flow, task
from prefect.cache_policies import NO_CACHE

from riskstrat.catalog import MAPPING_COVERAGE
from riskstrat.errors import SettingsError
from riskstrat.ingest.contract import CONTRACT
from riskstrat.ingest.sources.extract import AdaptedExtract, adapt_extract
from riskstrat.io import atomic_directory
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
            adapted = adapt_extract(raw_dir, config.sources, partial(write_table, staging))
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
