"""Run every enabled source adapter over a folder of raw national files."""

from __future__ import annotations

import logging
import math
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from riskstrat.errors import ContractError, ContractProblem
from riskstrat.ingest.contract import CONTRACT
from riskstrat.ingest.readers import find_table_file
from riskstrat.ingest.sources import SOURCES
from riskstrat.ingest.sources.base import (
    BY_PERSON,
    MAX_EXAMPLES,
    WHOLE,
    FieldCoverage,
    Source,
    SourceOutput,
    _local_names,
    merge_coverage,
    raw_batches,
    raw_file,
    raw_frame,
    raw_rows,
    read_raw,
)
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


SourceRunner = Callable[[Source, Path, Mapping[str, str]], tuple[SourceOutput, int, dict[str, int]]]
"""Adapts one raw file elsewhere (on Spark) and writes its tables itself: (source, file, renames) ->
(coverage, notes and counts; raw rows read; rows written per contract table)."""


def adapt_extract(
    raw_dir: Path,
    settings: SourceSettings,
    sink: Callable[[str, pd.DataFrame], None] | None = None,
    runner: SourceRunner | None = None,
) -> AdaptedExtract:
    """Read every enabled source's raw file in ``raw_dir`` and map it onto contract tables.

    Every file is found before any is read, so a missing one fails at once. Sources
    are adapted one at a time; with a ``sink`` each contract table is handed to it as
    soon as its source is done and not kept, so memory holds one source at a time
    (a million people's GP medication issues are tens of millions of rows).

    Args:
        raw_dir: Folder of raw national files.
        settings: Which sources to read, their files and column renames.
        sink: Called with (contract table name, frame) for each batch of a table made (e.g. to
            append it to the table's file; a table may come in several batches, in order); None
            keeps the tables in the result (batches joined).
        runner: Adapts each raw file instead of this process (e.g. on Spark, writing the
            tables itself); None adapts here, in batches of ``settings.batch_rows``.

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
    kept: dict[str, list[pd.DataFrame]] = {}

    def emit(table: str, data: pd.DataFrame) -> None:
        adapted.row_counts[table] = adapted.row_counts.get(table, 0) + len(data)
        if sink is None:
            kept.setdefault(table, []).append(data)
        else:
            sink(table, data)

    for name, source, path, renames in plan:
        started = time.perf_counter()
        if runner is None:
            output, rows = adapt_file(source, path, renames, settings.batch_rows, emit)
        else:
            output, rows, written = runner(source, path, renames)
            for table, count in written.items():
                adapted.row_counts[table] = adapted.row_counts.get(table, 0) + count
        for table, frames in kept.items():
            adapted.tables[table] = frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)
        kept.clear()
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


def adapt_file(
    source: Source,
    path: Path,
    renames: Mapping[str, str],
    batch_rows: int | None,
    emit: Callable[[str, pd.DataFrame], None],
) -> tuple[SourceOutput, int]:
    """Adapt one raw file, in batches of ``batch_rows`` rows when the source allows it.

    A source batched by rows reads the file a batch at a time; one batched by person
    first spreads the rows over temporary Parquet files by a hash of the person ID
    (every row of a person in one file, about ``batch_rows`` rows each) and adapts each
    file. Each batch's tables go to ``emit`` at once; coverage and counts are summed and
    the notes worded once from the sums, so the result is the whole file's. A batch that
    breaks the contract does not stop the others being checked: the problems of every
    batch are raised together, with the rows counted over the whole file.

    Returns:
        The source's coverage, notes and counts (no tables: they went to ``emit``), and the
        raw rows read.

    Raises:
        ContractError: If the file breaks the contract.
    """
    if source.batching == WHOLE or batch_rows is None:
        frame = read_raw(path, source, renames)
        rows = len(frame)
        output = source.adapt(frame)
        del frame
        for table, data in output.tables.items():
            emit(table, data)
        return SourceOutput({}, output.coverage, output.notes, output.counts), rows
    with tempfile.TemporaryDirectory(prefix="riskstrat-adapt-") as scratch:
        rows_in_file = raw_rows(path)
        if source.batching == BY_PERSON and (rows_in_file is None or rows_in_file > batch_rows):
            batches = person_batches(path, source, renames, batch_rows, Path(scratch))
        else:
            batches = raw_batches(path, source, renames, batch_rows)
        rows = 0
        held: dict[str, list[pd.DataFrame]] = {table: [] for table in source.merged}
        coverage: list[FieldCoverage] = []
        counts: dict[str, int] = {}
        problems: list[ContractProblem] = []
        hint = ""
        for batch in batches:
            frame = raw_frame(batch, source, renames)
            del batch
            rows += len(frame)
            try:
                output = source.adapt(frame)
            except ContractError as error:
                problems += error.problems
                hint = hint or error.hint
                continue
            finally:
                del frame
            if not problems:  # after a problem nothing is written: the run will stop
                for table, data in output.tables.items():
                    if table in held:
                        held[table].append(data)
                    else:
                        emit(table, data)
            del output.tables
            coverage = merge_coverage(coverage, output.coverage)
            for key, value in output.counts.items():
                counts[key] = counts.get(key, 0) + value
    if problems:
        raise ContractError(merged_problems(problems), hint=hint)
    for table, parts in held.items():
        if parts:
            emit(table, source.merged[table](pd.concat(parts, ignore_index=True)))
    assert source.describe is not None  # checked by Source
    return SourceOutput({}, coverage, source.describe(counts, coverage), counts), rows


def person_batches(
    path: Path, source: Source, renames: Mapping[str, str], batch_rows: int, scratch: Path
) -> Iterator[pa.Table]:
    """The raw file's rows (as :func:`raw_batches` gives them) regrouped so each person's rows are together.

    Rows go to one of ``parts`` temporary Parquet files in ``scratch`` by a hash of the
    person ID, ``parts`` chosen so each holds about ``batch_rows`` rows; each file is
    then given whole. Memory holds one batch at a time.
    """
    local = _local_names(source, renames)
    persons = [local[name] for name in source.person_fields]
    rows = raw_rows(path)
    if rows is None:  # CSV: count the rows first, reading one person column only (the last fallback)
        counted = _only(source, source.person_fields[-1])
        rows = sum(len(t) for t in raw_batches(path, counted, renames, batch_rows))
    parts = max(1, math.ceil(rows / batch_rows))
    writers: dict[int, pq.ParquetWriter] = {}
    try:
        for batch in raw_batches(path, source, renames, batch_rows):
            ids = _person_ids(batch, persons)
            part = (pd.util.hash_array(ids.to_numpy()) % parts).astype(np.int64)
            for number in np.unique(part):
                if number not in writers:
                    writers[number] = pq.ParquetWriter(scratch / f"part_{number}.parquet", batch.schema)
                writers[number].write_table(batch.filter(pa.array(part == number)))
    finally:
        for writer in writers.values():
            writer.close()
    for number in sorted(writers):
        file = scratch / f"part_{number}.parquet"
        table = pq.read_table(file)
        file.unlink()
        yield table


def _person_ids(batch: pa.Table, columns: Sequence[str]) -> pd.Series:
    """Each raw row's person: the first of ``columns`` given (a column absent from the file skipped).

    Rows with none share one batch; the adapter counts and leaves them out there.
    """
    ids = pd.Series([None] * batch.num_rows, dtype=object)
    for name in reversed([c for c in columns if c in batch.schema.names]):
        given = pd.Series(batch.column(name).to_numpy(zero_copy_only=False), dtype=object)
        ids = given.where(given.notna(), ids)
    return ids


def _only(source: Source, field_name: str) -> Source:
    """``source`` reading one field only (to count a CSV file's rows)."""
    kept = tuple(replace(f, required=True) for f in source.fields if f.name == field_name)
    return replace(source, fields=kept, batching=WHOLE, describe=None)


def merged_problems(problems: list[ContractProblem]) -> list[ContractProblem]:
    """Batches' problems as one per table, column and expectation: rows summed, the first examples kept."""
    merged: dict[tuple[str, str, str], ContractProblem] = {}
    for problem in problems:
        key = (problem.table, problem.column, problem.expected)
        if key in merged:
            before = merged[key]
            merged[key] = replace(
                before,
                n_rows=before.n_rows + problem.n_rows,
                examples=(*before.examples, *problem.examples)[:MAX_EXAMPLES],
            )
        else:
            merged[key] = problem
    return list(merged.values())


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
        if path is None and all(CONTRACT[t].optional for t in source.writes):
            # An optional dataset (social care) the ICS does not hold: the run goes on without it.
            adapted.notes.append(
                f"{source.title}: no file {stem}.parquet or {stem}.csv in {raw_dir}; "
                f"{', '.join(source.writes)} left out (optional)"
            )
            continue
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
    absent = [
        t
        for t in CONTRACT
        if t not in writer and t not in settings.contract_tables and not CONTRACT[t].optional
    ]
    if absent:
        raise ContractError(
            [
                ContractProblem(t, "", "a source: an enabled adapter or an entry in contract_tables")
                for t in absent
            ]
        )
    return plan, missing
