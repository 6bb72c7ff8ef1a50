"""Run every enabled source adapter over a folder of raw national files."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from riskstrat.errors import ContractError, ContractProblem
from riskstrat.ingest.contract import CONTRACT
from riskstrat.ingest.readers import find_table_file
from riskstrat.ingest.sources import SOURCES
from riskstrat.ingest.sources.base import FieldCoverage, Source, raw_file, read_raw
from riskstrat.ingest.sources.settings import SourceSettings

log = logging.getLogger(__name__)


@dataclass
class AdaptedExtract:
    """Contract tables made from raw files, with the coverage of every mapped field.

    Attributes:
        tables: Contract tables made by the adapters, by name (empty when they went to a sink).
        row_counts: Rows of each contract table the adapters made.
        copied: Contract-format files found in the raw folder, copied as they are.
        coverage: One record per coded field of every source read.
        notes: Aggregate sentences for the run summary (never patient-level).
        files: Source name -> the raw file read.
    """

    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    row_counts: dict[str, int] = field(default_factory=dict)
    copied: dict[str, Path] = field(default_factory=dict)
    coverage: list[FieldCoverage] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    files: dict[str, str] = field(default_factory=dict)

    def coverage_payload(self) -> dict:
        """The coverage as JSON-ready data (codes and counts only)."""
        return {
            "files": self.files,
            "notes": self.notes,
            "fields": [c.as_dict() for c in self.coverage],
        }


def adapt_extract(
    raw_dir: Path, settings: SourceSettings, sink: Callable[[str, pd.DataFrame], None] | None = None
) -> AdaptedExtract:
    """Read every enabled source's raw file in ``raw_dir`` and map it onto contract tables.

    Every file is found before any is read, so a missing one fails at once. Sources
    are adapted one at a time; with a ``sink`` each contract table is handed to it as
    soon as its source is done and not kept, so memory holds one source at a time
    (a million people's GP medication issues are tens of millions of rows).

    Args:
        raw_dir: Folder of raw national files.
        settings: Which sources to read, their files and column renames.
        sink: Called with (contract table name, frame) for each table made (e.g. to write it);
            None keeps the tables in the result.

    Returns:
        The contract tables (without a sink), row counts, the contract-format files to copy,
        and the coverage.

    Raises:
        ContractError: If a raw file is missing or malformed, naming the dataset, the
            field, the number of rows and examples; or if a contract table would come
            from two places (two adapters, or an adapter and a contract-format file).
    """
    raw_dir = Path(raw_dir)
    adapted = AdaptedExtract()
    plan, missing = _find_files(raw_dir, settings, adapted)
    if missing:
        raise ContractError(
            missing,
            hint="Put the raw files in sources.raw_dir, or point raw_dir at them (configs/sources.yaml).",
        )
    for name, source, path, renames in plan:
        started = time.perf_counter()
        frame = read_raw(path, source, renames)
        rows = len(frame)
        output = source.adapt(frame)
        del frame
        for table, data in output.tables.items():
            adapted.row_counts[table] = len(data)
            if sink is None:
                adapted.tables[table] = data
            else:
                sink(table, data)
        del output.tables
        adapted.coverage += output.coverage
        adapted.notes += output.notes
        adapted.files[name] = path.name
        log.info(
            "%s: %s rows read from %s (%.1f s)",
            source.title,
            f"{rows:,}",
            path.name,
            time.perf_counter() - started,
        )
    return adapted


def _find_files(
    raw_dir: Path, settings: SourceSettings, adapted: AdaptedExtract
) -> tuple[list[tuple[str, Source, Path, dict[str, str]]], list[ContractProblem]]:
    """Each enabled source's raw file, the contract-format files (into ``adapted.copied``), and what is missing.

    Raises:
        ContractError: If a contract table would come from two places, or from none.
    """
    plan: list[tuple[str, Source, Path, dict[str, str]]] = []
    missing: list[ContractProblem] = []
    writer: dict[str, str] = {}
    for name, source in SOURCES.items():
        section = settings.section(name)
        if not section.enabled:
            continue
        for table in source.writes:
            if table in writer:
                raise ContractError(
                    [
                        ContractProblem(
                            table,
                            "",
                            f"one source for table {table}; {writer[table]} and {name} both write it",
                        )
                    ],
                    hint="Disable one of them in configs/sources.yaml.",
                )
            writer[table] = name
        stem = section.file or source.file
        path = raw_file(raw_dir, stem)
        if path is None:
            missing.append(
                ContractProblem(source.title, "", f"a file {stem}.parquet or {stem}.csv in {raw_dir}")
            )
            continue
        plan.append((name, source, path, dict(section.columns)))
    for table in settings.contract_tables:
        if table in writer:
            raise ContractError(
                [
                    ContractProblem(
                        table, "", "one source for the table; an adapter and contract_tables both give it"
                    )
                ],
                hint="Remove the table from contract_tables in configs/sources.yaml, or disable the adapter.",
            )
        path = find_table_file(raw_dir, table)
        if path is None:
            missing.append(ContractProblem(table, "", f"a file {table}.parquet or {table}.csv in {raw_dir}"))
            continue
        adapted.copied[table] = path
    absent = [t for t in CONTRACT if t not in writer and t not in settings.contract_tables]
    if absent:
        raise ContractError(
            [
                ContractProblem(t, "", "a source: an enabled adapter or an entry in contract_tables")
                for t in absent
            ]
        )
    return plan, missing
