"""The validation gate on Spark: the same checks on the executors, no table on the driver.

With ``backend: pyspark`` (``configs/features.yaml``) the gate validates each
table as a Spark DataFrame instead of streaming it through pandas on the
driver. :func:`validate_extract <riskstrat.ingest.validation.validate_extract>`
is the same function either way (patients first, the mapping coverage, the
report and Data Docs); only each table's run differs:

1. The table's file is cut into pieces of at most ``chunk_size`` rows (Parquet
   row groups, split further if larger; a CSV file is one piece, streamed in
   chunks by one task). Piece ``i`` is Spark partition ``i``, so the DataFrame
   keeps the file's row order and examples are the first failing rows.
2. Each executor task reads its piece with the gate's own readers, types it
   (:func:`~riskstrat.ingest.readers.coerce_chunk`) and adds the flag columns
   (:func:`~riskstrat.ingest.expectations.derive_flags`): the very functions the
   pandas gate runs, so each check means the same on both. The whole-table facts
   the flags need (the duplicated keys, found by a first pass over the key
   column alone, and the patients' IDs and dates) are broadcast. Values that do
   not parse travel as one small side row per chunk.
3. Great Expectations' Spark datasource runs the table's suite
   (:func:`~riskstrat.ingest.expectations.build_checks`, every check at once, as
   the pandas gate does for a table in one chunk) on the typed DataFrame, kept
   on the executors for the run; a second run in ``SUMMARY`` format fetches the
   IDs of the first failing rows of the checks that failed.

What comes to the driver: the side rows (row counts and parse failures), the
duplicated keys, the expectation results and their examples, and the patients'
IDs, birth and death dates for the lookup of the event tables (three narrow
columns, as the pandas gate holds them). The pandas gate is the reference:
``tests/ingest/test_validation_spark.py`` checks that both give the same
results on the hostile-input fixtures.
"""

from __future__ import annotations

import copy
import dataclasses
import itertools
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from riskstrat.errors import ContractError, ContractProblem
from riskstrat.ingest.contract import Table
from riskstrat.ingest.expectations import PatientLookup, build_checks, derive_flags
from riskstrat.ingest.readers import ParseFailure, RawTable, as_text, coerce_chunk, find_table_file, iter_raw
from riskstrat.ingest.validation import (
    EXAMPLE_KINDS_WITH_VALUE,
    _add_chunk_result,
    _add_examples,
    _checkpoint,
    _file_result,
    _finish,
    _id_column,
    _merge_failures,
    _parse_check_passed,
    _reader_results,
    _result_format,
    _run_checkpoint,
    _TableRun,
    _Tally,
)
from riskstrat.ingest.validation_settings import ValidationSettings

SIDE = "_riskstrat_chunk"
"""Column of the side rows: one per chunk, JSON with its row count and parse failures (data columns empty)."""
_SPARK_TYPES = {"string": "string", "date": "timestamp_ntz", "datetime": "timestamp_ntz", "integer": "bigint"}


@dataclass(frozen=True)
class Piece:
    """A part of a table's file that one Spark task reads.

    Attributes:
        row_group: Parquet row group (-1: the whole file, for CSV or a Parquet file without rows).
        chunk: Which ``chunk_rows`` slice of the row group.
    """

    row_group: int
    chunk: int


def table_pieces(path: Path, chunk_rows: int) -> list[Piece]:
    """The pieces of a table's file, in file order: each Parquet row group cut into ``chunk_rows`` slices."""
    if path.suffix != ".parquet":
        return [Piece(-1, 0)]
    metadata = pq.ParquetFile(path).metadata
    pieces = [
        Piece(group, chunk)
        for group in range(metadata.num_row_groups)
        for chunk in range(max(1, -(-metadata.row_group(group).num_rows // chunk_rows)))
    ]
    return pieces or [Piece(-1, 0)]


def read_piece(
    folder: Path, table: Table, piece: Piece, chunk_rows: int, columns: list[str] | None = None
) -> Iterator[RawTable]:
    """A piece of a table's file as the gate's reader gives it (:func:`~riskstrat.ingest.readers.iter_raw`).

    Raises:
        ContractError: If the file cannot be read.
    """
    if piece.row_group < 0:
        yield from iter_raw(folder, table.name, chunk_rows, columns)
        return
    path = find_table_file(folder, table.name)
    assert path is not None  # the driver found it before cutting it into pieces
    try:
        parquet = pq.ParquetFile(path)
        schema = parquet.schema_arrow
        if columns is not None:
            schema = pa.schema([schema.field(c) for c in columns], metadata=schema.metadata)
        batches = parquet.iter_batches(batch_size=chunk_rows, row_groups=[piece.row_group], columns=columns)
        batch = next(itertools.islice(batches, piece.chunk, None))
        # The same conversion as iter_raw, so the values typed are the same.
        frame = pa.Table.from_batches([batch], schema=schema).to_pandas(date_as_object=False)
    except Exception as exc:
        raise ContractError(
            [ContractProblem(table.name, "", f"a readable parquet file ({type(exc).__name__}: {exc})")]
        ) from None
    yield RawTable(table=table, path=path, frame=frame)


def _spark_schema(table: Table, columns: list[str], flags: list[str]) -> str:
    kinds = {c.name: c.type for c in table.columns}
    fields = [f"`{c}` {_SPARK_TYPES.get(kinds[c], 'double')}" for c in columns]
    fields += [f"`{f}` boolean" for f in flags]
    return ", ".join([*fields, f"`{SIDE}` string"])


def _side_row(names: list[str], record: dict[str, Any]) -> pd.DataFrame:
    row = pd.DataFrame({name: pd.Series([None], dtype=object) for name in names})
    row[SIDE] = json.dumps(record)
    return row


@dataclass(frozen=True)
class _TableJob:
    """What each executor task needs to check its piece (pickled to the executors)."""

    folder: str
    table: Table
    present: frozenset[str]
    columns: list[str]
    flags: list[str]
    settings: ValidationSettings
    extract_date: date
    pieces: list[Piece]

    def keys(self, parts: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        """The key column of this task's pieces, as the pandas gate reads it for duplicates."""
        key = self.table.key
        for part in parts:
            for index in part["id"]:
                piece = self.pieces[int(index)]
                chunks = read_piece(Path(self.folder), self.table, piece, self.settings.chunk_size, [key])
                for raw in chunks:
                    yield pd.DataFrame({key: as_text(raw.frame[key], strip=False).astype(object)})

    def rows(
        self, parts: Iterator[pd.DataFrame], patients: Any, duplicate_keys: Any
    ) -> Iterator[pd.DataFrame]:
        """This task's pieces typed, with their flag columns, each chunk followed by its side row."""
        names = [*self.columns, *self.flags]
        for part in parts:
            for index in part["id"]:
                piece = self.pieces[int(index)]
                chunks = read_piece(Path(self.folder), self.table, piece, self.settings.chunk_size)
                number = 0
                try:
                    for number, raw in enumerate(chunks):
                        frame, failures = coerce_chunk(raw)
                        del raw
                        flags = derive_flags(
                            frame,
                            self.table,
                            set(self.present),
                            self.settings,
                            self.extract_date,
                            patients.value if patients is not None else None,
                            duplicate_keys.value,
                        )
                        yield pd.concat([frame[self.columns], flags[self.flags]], axis=1).assign(
                            **{SIDE: None}
                        )
                        record = {
                            "piece": int(index),
                            "chunk": number,
                            "rows": len(frame),
                            "failures": [dataclasses.asdict(f) for f in failures],
                        }
                        yield _side_row(names, record)
                except ContractError as exc:
                    record = {"piece": int(index), "chunk": number, "error": exc.problems[0].expected}
                    yield _side_row(names, record)


def _failure(record: dict[str, Any]) -> ParseFailure:
    return ParseFailure(**{k: tuple(v) if k in ("shapes", "examples") else v for k, v in record.items()})


def _typed_frame(folder: Path, table: Table) -> tuple[set[str], pd.DataFrame]:
    """The columns of the table's file and an empty typed frame of them (checks the file is there).

    Raises:
        ContractError: As the pandas gate: missing, unreadable, or named twice.
    """
    chunks = iter_raw(folder, table.name, 1)
    try:
        first = next(chunks)
    finally:
        chunks.close()
    frame, _ = coerce_chunk(RawTable(first.table, first.path, first.frame.iloc[:0]))
    return set(first.frame.columns), frame


def _duplicate_keys(session: Any, job: _TableJob) -> pa.Array:
    """The table's key values found on more than one row, from the key column alone."""
    from pyspark.sql import functions as F

    key = job.table.key
    keys = session.range(0, len(job.pieces), 1, len(job.pieces)).mapInPandas(job.keys, f"`{key}` string")
    repeated = keys.where(F.col(key).isNotNull()).groupBy(key).count().where(F.col("count") > 1)
    values = [row[0] for row in repeated.select(key).collect()]
    return pa.array(values, type=pa.large_string())


def validate_table_spark(
    session: Any,
    context: Any,
    examples: Any,
    extract_dir: Path,
    table: Table,
    settings: ValidationSettings,
    extract_date: date,
    previous_rows: int | None,
    patients: PatientLookup | None,
    keep: bool,
    snapshot_hash: str,
    keep_columns: tuple[str, ...] | None = None,
) -> _TableRun:
    """Check one table on Spark; the same results as the pandas gate's ``_validate_table``.

    Args:
        session: The Spark session.
        context: The run's Great Expectations context.
        examples: Unused (the pandas gate's example fetcher; examples come from Spark here).
        extract_dir: The extract folder (readable by the executors under the same path).
        table: The contract table.
        settings: The gate's settings.
        extract_date: No date may be later.
        previous_rows: Rows of the previous accepted extract.
        patients: The patients' lookup (None for patients itself, or if it could not be read).
        keep: Bring the typed table (``keep_columns`` of it) to the driver, for the
            patients' lookup or when a caller asks to keep tables.
        snapshot_hash: The extract's hash (names the Great Expectations runs).
        keep_columns: The columns to keep (default: all).

    Returns:
        The table's results, columns, row count and, if ``keep``, its typed frame.

    Raises:
        ContractError: If the file is missing or cannot be read (at any piece).
    """
    from pyspark import StorageLevel
    from pyspark.sql import functions as F

    del examples
    extract_dir = Path(extract_dir)
    present, empty = _typed_frame(extract_dir, table)
    path = find_table_file(extract_dir, table.name)
    assert path is not None
    checks = build_checks(
        table, present, settings, extract_date, previous_rows, cross_table=patients is not None
    )
    columns = [c.name for c in table.columns if c.name in present]
    flags = list(derive_flags(empty, table, present, settings, extract_date, patients, None).columns)
    job = _TableJob(
        str(extract_dir),
        table,
        frozenset(present),
        columns,
        flags,
        settings,
        extract_date,
        table_pieces(path, settings.chunk_size),
    )
    duplicates = pa.array([], type=pa.large_string())
    if table.key and table.key in present:
        duplicates = _duplicate_keys(session, job)
    context_of = session.sparkContext
    lookup = context_of.broadcast(patients) if patients is not None else None
    repeated = context_of.broadcast(duplicates)

    def rows(parts: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        return job.rows(parts, lookup, repeated)

    pieces = session.range(0, len(job.pieces), 1, len(job.pieces))
    checked = pieces.mapInPandas(rows, _spark_schema(table, columns, flags)).persist(
        StorageLevel.MEMORY_AND_DISK
    )
    try:
        side = [json.loads(r[0]) for r in checked.where(F.col(SIDE).isNotNull()).select(SIDE).collect()]
        side.sort(key=lambda r: (r["piece"], r["chunk"]))
        errors = [r["error"] for r in side if "error" in r]
        if errors:
            raise ContractError([ContractProblem(table.name, "", errors[0])])
        failures: dict[tuple[str, str], ParseFailure] = {}
        for record in side:
            _merge_failures(failures, [_failure(f) for f in record["failures"]])
        n_rows = sum(int(r["rows"]) for r in side)
        batch = checked.where(F.col(SIDE).isNull()).drop(SIDE)
        tallies = _check(context, batch, table, present, checks, settings, snapshot_hash, n_rows)
        frame = None
        if keep:
            wanted = [c for c in (keep_columns or columns) if c in columns]
            frame = _conform(batch.select(*wanted).toPandas(), table)
    finally:
        checked.unpersist()
        repeated.destroy()
        if lookup is not None:
            lookup.destroy()
    found = sorted(failures.values(), key=lambda f: (table.column_names.index(f.column), f.kind))
    results = [
        _file_result(
            table,
            settings.severity.table_present,
            f"a readable file {table.name}.parquet or {table.name}.csv",
            True,
        )
    ]
    parse_failures = _reader_results(table, found, settings)
    if not any(r.kind == "types_parse" for r in parse_failures):
        results.append(_parse_check_passed(table, n_rows, settings.severity.types_parse))
    results.extend(parse_failures)
    results.extend(_finish(tallies[c.check_id]) for c in checks)
    return _TableRun(results, present, n_rows, frame)


def _check(
    context: Any,
    batch: Any,
    table: Table,
    present: set[str],
    checks: list[Any],
    settings: ValidationSettings,
    snapshot_hash: str,
    n_rows: int,
) -> dict[str, _Tally]:
    """Run the table's suite on the Spark batch, then fetch examples for the checks with failing rows."""
    id_column = _id_column(table, present)
    tallies = {c.check_id: _Tally(c) for c in checks}
    if not checks:
        return tallies
    run_name = f"{snapshot_hash}-{table.name}-spark-0-{n_rows}"
    # Counts only: with no unexpected values asked for, Great Expectations' Spark engine runs one
    # aggregate for the whole suite instead of one more Spark job per expectation.
    counts_only = {"result_format": "BASIC", "partial_unexpected_count": 0}
    checkpoint = _checkpoint(context, table.name, "all", checks, counts_only, spark=True)
    wanted = []
    for result in _run_checkpoint(checkpoint, batch, run_name):
        tally = tallies.get((result.expectation_config.meta or {}).get("check_id"))
        if tally is None:
            continue
        if _add_chunk_result(tally, result) and id_column and settings.max_examples > 0:
            wanted.append(tally)
    if wanted:
        shown = sorted(
            {
                t.check.column
                for t in wanted
                if t.check.kind in EXAMPLE_KINDS_WITH_VALUE
                and t.check.column not in ("", id_column)
                and t.check.expectation.column != t.check.column
            }
        )
        copies = [replace(t.check, expectation=copy.copy(t.check.expectation)) for t in wanted]
        result_format = _result_format(settings, id_column, with_examples=True, also=shown)
        checkpoint = _checkpoint(context, table.name, "examples", copies, result_format, spark=True)
        by_id = {t.check.check_id: t for t in wanted}
        for result in _run_checkpoint(checkpoint, batch, f"{run_name}-examples"):
            tally = by_id.get((result.expectation_config.meta or {}).get("check_id"))
            if tally is not None and not (result.exception_info or {}).get("raised_exception"):
                _add_examples(tally, result, id_column, settings.max_examples)
    return tallies


def _conform(frame: pd.DataFrame, table: Table) -> pd.DataFrame:
    """A collected typed table with the pandas gate's dtypes (text as string, whole numbers as Int64)."""
    for column in table.columns:
        if column.name not in frame:
            continue
        if column.type == "string":
            frame[column.name] = frame[column.name].astype("string")
        elif column.type == "integer":
            frame[column.name] = frame[column.name].astype("Int64")
        elif column.type in ("date", "datetime"):
            frame[column.name] = frame[column.name].astype("datetime64[us]")
    return frame


def spark_table_validator(session: Any) -> Callable[..., _TableRun]:
    """The table runner :func:`~riskstrat.ingest.validation.validate_extract` uses on ``session``."""

    def validate_table(*args: Any, **kwargs: Any) -> _TableRun:
        return validate_table_spark(session, *args, **kwargs)

    return validate_table
