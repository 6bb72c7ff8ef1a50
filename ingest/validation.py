"""Validate an extract folder with Great Expectations and summarise the result.

Every contract table is read (:mod:`riskstrat.ingest.readers`), the suites
generated in :mod:`riskstrat.ingest.expectations` are run through Great
Expectations checkpoints in an ephemeral context, and the results are summed
into a :class:`ValidationReport`. Data Docs are written as static HTML, one folder per
validated extract under ``<output_dir>/data_docs/`` with an index of past validations
(:mod:`riskstrat.ingest.validation_docs`).

Tables are streamed from their files in chunks of ``chunk_size`` rows
(:func:`~riskstrat.ingest.readers.iter_raw`), so only one chunk of a large
table is ever in memory. Each chunk is typed, gets its flag columns, and runs
through the table's value checkpoint; unexpected counts and examples are
summed across chunks. Checks that span rows or tables see the whole table
through small facts gathered first: the keys that occur more than once (read
from the key column alone) and the patients' IDs and dates of death, so
chunking never misses a duplicate or an orphan. Whole-table checks (columns
present, row counts) run once, after the last chunk, on a stand-in frame with
the table's columns and row count but none of its values. A table that fits
in one chunk runs every check in one checkpoint on the real frame.
"""

from __future__ import annotations

import copy
import os
import time
from collections.abc import Collection, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")

import great_expectations as gx
from great_expectations.core.run_identifier import RunIdentifier
from great_expectations.data_context.types.base import (
    DataContextConfig,
    InMemoryStoreBackendDefaults,
    ProgressBarsConfig,
)

from riskstrat.catalog import output_catalog
from riskstrat.errors import ContractError, ContractProblem
from riskstrat.ingest import readers
from riskstrat.ingest.contract import CONTRACT, Table
from riskstrat.ingest.expectations import (
    Check,
    PatientLookup,
    build_checks,
    derive_flags,
    duplicate_values,
)
from riskstrat.ingest.readers import (
    ParseFailure,
    RawTable,
    as_text,
    coerce_chunk,
    escape_text,
    iter_raw,
    shown_id,
    table_files,
    unsupported_files,
    value_shape,
)
from riskstrat.ingest.social_care import (
    RETURNS_TABLE,
    ReturnsCoverage,
    expected_local_authorities,
    social_care_returns,
)
from riskstrat.ingest.sources.settings import SocialCareSettings
from riskstrat.ingest.validation_coverage import coverage_page, coverage_results, read_coverage
from riskstrat.ingest.validation_docs import build_data_docs
from riskstrat.ingest.validation_settings import Severity, ValidationSettings
from riskstrat.io import folder_snapshot_hash

DATASOURCE = "riskstrat_extract"
SPARK_DATASOURCE = "riskstrat_extract_spark"
"""The Great Expectations Spark datasource of the gate on Spark (:mod:`riskstrat.ingest.validation_spark`)."""
EXAMPLE_KINDS_WITH_VALUE = ("codes_in_set", "condition_in_vocabulary", "lsoa_well_formed", "text_printable")
"""Kinds whose examples also show the offending code (codes, never dates; invisible characters escaped)."""
EXAMPLE_KINDS_QUOTED = ("text_trimmed", "text_printable")
"""Kinds whose examples quote the ID when the ID itself fails, so its spaces show."""
EXAMPLE_KINDS_AS_SHAPE = ("id_not_nhs_number",)
"""Kinds whose examples show only the shape of the ID (``999 999 9999``), never the value."""


@dataclass(frozen=True)
class ExpectationResult:
    """The outcome of one check on one table, summed over chunks.

    Attributes:
        table: Contract table.
        column: Contract column ("" for the whole table).
        kind: Kind of check (a key of ``severity`` in ``configs/validation.yaml``).
        expectation: Great Expectations expectation type (or ``file_readable`` /
            ``values_parse`` for checks the readers make).
        severity: critical or warning.
        expected: What was expected, in plain words (with what was found, if it failed).
        n_rows: Rows that failed (0 for whole-table checks).
        n_checked: Rows checked (0 for whole-table checks).
        examples: Up to five examples: pseudonymised IDs and codes, never dates.
        passed: Whether the check passed.
    """

    table: str
    column: str
    kind: str
    expectation: str
    severity: Severity
    expected: str
    n_rows: int
    n_checked: int
    examples: tuple[str, ...]
    passed: bool

    def problem(self) -> ContractProblem:
        """The failure as a ContractProblem (one line of a ContractError)."""
        return ContractProblem(self.table, self.column, self.expected, self.n_rows, self.examples)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (aggregates and pseudonymised examples only)."""
        return {
            "table": self.table,
            "column": self.column,
            "kind": self.kind,
            "expectation": self.expectation,
            "severity": self.severity,
            "expected": self.expected,
            "n_rows": self.n_rows,
            "n_checked": self.n_checked,
            "examples": list(self.examples),
            "passed": self.passed,
        }


@dataclass
class ValidationReport:
    """Everything the gate found in one extract.

    Attributes:
        snapshot_hash: Hash of the extract's files (names and bytes).
        extract_dir: The folder validated.
        extract_date: The date no event may be later than.
        results: One entry per check per table.
        row_counts: Rows per table that could be read.
        data_docs_index: This validation's Data Docs page (None if not built).
        seconds: Wall time of the validation.
        tables: The typed tables (from ``readers.coerce``) that could be read, so
            that a flow need not read the extract twice. Not written to JSON.
        mapping_coverage: Per source and coded field of the raw national files (when the
            extract was made by ``riskstrat adapt``): share mapped, rows, limits, result
            and the most frequent unmapped codes. Empty for a contract-format extract.
        social_care_returns: Which local authorities' CLD returns are in ``social_care_events``
            per quarter, the missing ones and the latest per LA
            (:meth:`~riskstrat.ingest.social_care.ReturnsCoverage.to_dict`); empty without the table.
    """

    snapshot_hash: str
    extract_dir: Path
    extract_date: date
    results: list[ExpectationResult]
    row_counts: dict[str, int]
    data_docs_index: Path | None = None
    seconds: float = 0.0
    tables: dict[str, pd.DataFrame] = field(default_factory=dict, repr=False, compare=False)
    mapping_coverage: list[dict[str, Any]] = field(default_factory=list)
    social_care_returns: dict[str, Any] = field(default_factory=dict)

    @property
    def critical_failures(self) -> list[ExpectationResult]:
        """Failed checks that stop the run."""
        return [r for r in self.results if not r.passed and r.severity == "critical"]

    @property
    def warnings(self) -> list[ExpectationResult]:
        """Failed checks that are reported while the run goes on."""
        return [r for r in self.results if not r.passed and r.severity == "warning"]

    @property
    def passed(self) -> bool:
        """True when no critical check failed."""
        return not self.critical_failures

    def warning_lines(self) -> list[str]:
        """One line per warning without examples, safe for logs, run summaries and MLflow tags."""
        lines = []
        for result in self.warnings:
            where = f"{result.table}.{result.column}" if result.column else result.table
            rows = f"; {result.n_rows:,} rows" if result.n_rows else ""
            lines.append(f"{where}: expected {result.expected}{rows}")
        return lines

    def contract_error(self) -> ContractError:
        """A ContractError with one line per critical failure."""
        docs = f" Data Docs: {self.data_docs_index}" if self.data_docs_index else ""
        return ContractError(
            [r.problem() for r in self.critical_failures],
            hint="Fix the extract (or the export that made it) and run again; "
            f"nothing downstream was written.{docs}",
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary: counts, checks and pseudonymised examples; no rows."""
        return {
            "snapshot_hash": self.snapshot_hash,
            "extract_dir": str(self.extract_dir),
            "extract_date": self.extract_date.isoformat(),
            "passed": self.passed,
            "n_checks": len(self.results),
            "n_critical_failures": len(self.critical_failures),
            "n_warnings": len(self.warnings),
            "row_counts": dict(self.row_counts),
            "data_docs_index": str(self.data_docs_index) if self.data_docs_index else None,
            "seconds": round(self.seconds, 2),
            "results": [r.to_dict() for r in self.results],
            "mapping_coverage": list(self.mapping_coverage),
            "social_care_returns": dict(self.social_care_returns),
        }


def _skip_batch_fingerprints() -> None:
    """Stop Great Expectations hashing every in-memory batch under 1 GB.

    The hash only fills the batch marker ``pandas_data_fingerprint``, which
    nothing reads, yet it costs as much as running a chunk's checks. The
    module constant is what Great Expectations compares a batch's size with.
    """
    from great_expectations.execution_engine import pandas_execution_engine

    if hasattr(pandas_execution_engine, "HASH_THRESHOLD"):
        pandas_execution_engine.HASH_THRESHOLD = 0


def gx_context() -> Any:
    """An ephemeral Great Expectations context (suites, checkpoints and results in memory).

    Suites are generated from the contract on every run, so nothing needs
    keeping between runs; the lasting record is the Data Docs site and the
    report JSON. In memory is also several times faster than a file context,
    which rewrites its YAML and JSON stores on every registration.

    Returns:
        The Great Expectations EphemeralDataContext.
    """
    _skip_batch_fingerprints()
    config = DataContextConfig(
        store_backend_defaults=InMemoryStoreBackendDefaults(init_temp_docs_sites=False),
        progress_bars=ProgressBarsConfig(globally=False, metric_calculations=False),
    )
    return gx.get_context(mode="ephemeral", project_config=config)


def _batch_definition(context: Any, table: str, scope: str, spark: bool = False) -> Any:
    name = SPARK_DATASOURCE if spark else DATASOURCE
    try:
        source = context.data_sources.get(name)
    except (KeyError, ValueError, LookupError):
        # The Spark gate keeps its typed table cached itself; Great Expectations must not cache it twice.
        source = (
            context.data_sources.add_spark(name, persist=False)
            if spark
            else context.data_sources.add_pandas(name)
        )
    try:
        asset = source.get_asset(table)
    except (KeyError, LookupError):
        asset = source.add_dataframe_asset(table)
    try:
        return asset.get_batch_definition(scope)
    except (KeyError, LookupError):
        return asset.add_batch_definition_whole_dataframe(scope)


def _checkpoint(
    context: Any, table: str, scope: str, checks: list[Check], result_format: dict, spark: bool = False
) -> Any:
    """Register the suite, validation definition and checkpoint for one table and scope.

    The context is new on every run, so each name is added once (``add`` is much
    cheaper than ``add_or_update``, which compares every expectation). With
    ``spark`` the batches are Spark DataFrames (Great Expectations' Spark datasource).
    """
    name = table if scope == "all" else f"{table}.{scope}"
    suite = context.suites.add(gx.ExpectationSuite(name=name, expectations=[c.expectation for c in checks]))
    definition = context.validation_definitions.add(
        gx.ValidationDefinition(name=name, data=_batch_definition(context, table, scope, spark), suite=suite)
    )
    return context.checkpoints.add(
        gx.Checkpoint(name=name, validation_definitions=[definition], actions=[], result_format=result_format)
    )


@dataclass
class _Tally:
    """Sums of one check's results across chunks."""

    check: Check
    expectation: str = ""
    unexpected: int = 0
    checked: int = 0
    examples: list[str] = field(default_factory=list)
    failed: bool = False
    observed: str = ""
    error: str = ""


def _id_column(table: Table, present: set[str]) -> str | None:
    for column in (table.key, "person_id"):
        if column and column in present:
            return column
    return None


def _add_chunk_result(tally: _Tally, result: Any) -> int:
    """Add one chunk's counts to the tally; return the chunk's unexpected rows."""
    config = result.expectation_config
    tally.expectation = config.type
    info = result.exception_info or {}
    if info.get("raised_exception"):
        tally.failed = True
        tally.error = str(info.get("exception_message", "")).splitlines()[0][:200]
        return 0
    details = result.result or {}
    unexpected = int(details.get("unexpected_count") or 0)
    tally.unexpected += unexpected
    tally.checked += int(details.get("element_count") or 0) - int(details.get("missing_count") or 0)
    if "observed_value" in details:
        tally.observed = str(details["observed_value"])
    if not result.success:
        tally.failed = True
    return unexpected


def _add_examples(tally: _Tally, result: Any, id_column: str | None, max_examples: int) -> None:
    """Add the pseudonymised IDs (and codes) of a result's first unexpected rows to the tally."""
    column = tally.check.column or result.expectation_config.kwargs.get("column")
    details = result.result or {}
    for row in details.get("partial_unexpected_index_list") or []:
        if len(tally.examples) >= max_examples or not isinstance(row, dict):
            break
        if tally.check.kind in EXAMPLE_KINDS_AS_SHAPE and tally.check.column == id_column:
            shown = value_shape(row.get(id_column))
        elif tally.check.kind in EXAMPLE_KINDS_QUOTED and tally.check.column == id_column:
            shown = (
                f"'{shown_id(row.get(id_column))}'"  # quoted (invisible characters escaped), so spaces show
            )
        else:
            # An ID that looks like an NHS number is shown as its shape in every example.
            shown = shown_id(row.get(id_column))
        example = f"{id_column}={shown}" if id_column else ""
        if tally.check.kind in EXAMPLE_KINDS_WITH_VALUE and column in row and column != id_column:
            value = f"{column}={escape_text(row[column])}"
            example = f"{example} ({value})" if example else value
        if example and example not in tally.examples:
            tally.examples.append(example)


def _finish(tally: _Tally) -> ExpectationResult:
    check = tally.check
    if check.max_share is not None and not tally.error:
        share = tally.unexpected / tally.checked if tally.checked else 0.0
        passed = share <= check.max_share + 1e-12
        expected = f"{check.expected}; found {share:.1%}"
    else:
        passed = not tally.failed
        expected = check.expected
        if not passed and tally.observed and check.scope == "table":
            expected = f"{expected}; found {int(float(tally.observed)):,} rows"
    if tally.error:
        passed = False
        expected = f"{expected}; could not be checked ({tally.error})"
    return ExpectationResult(
        table=check.table,
        column=check.column,
        kind=check.kind,
        expectation=tally.expectation or type(check.expectation).__name__,
        severity=check.severity,
        expected=expected,
        n_rows=tally.unexpected,
        n_checked=tally.checked,
        examples=tuple(tally.examples) if not passed else (),
        passed=passed,
    )


def _result_format(
    settings: ValidationSettings,
    id_column: str | None,
    with_examples: bool,
    also: list[str] | tuple[str, ...] = (),
) -> dict[str, Any]:
    """Great Expectations' result format: counts only, or with the IDs of unexpected rows.

    The checkpoints that see every row count (BASIC); the runs that fetch
    examples list IDs (SUMMARY), which walks every unexpected row of their
    batch in Python, with the values of the columns ``also`` (codes shown
    beside the ID).
    """
    result_format: dict[str, Any] = {
        "result_format": "SUMMARY" if with_examples else "BASIC",
        "partial_unexpected_count": max(settings.max_examples, 1),
    }
    if id_column and with_examples:
        result_format["unexpected_index_column_names"] = [id_column, *also]
    return result_format


def _shape_of(columns: list[str], n_rows: int) -> pd.DataFrame:
    """A stand-in for a whole table in the whole-table checks: its columns and row count, no values.

    Every column shares one array of one byte a row, so the stand-in of a
    49-million-row table costs 49 MB instead of the table.
    """
    filler = pd.Categorical.from_codes(np.zeros(n_rows, dtype=np.int8), categories=["-"])
    return pd.DataFrame({column: filler for column in columns}, copy=False)


def _run_checkpoint(checkpoint: Any, batch: pd.DataFrame, run_name: str) -> list[Any]:
    """Run a checkpoint on a batch; return the expectation results."""
    outcome = checkpoint.run(batch_parameters={"dataframe": batch}, run_id=RunIdentifier(run_name=run_name))
    return [result for suite_result in outcome.run_results.values() for result in suite_result.results]


def _check_id(result: Any) -> str | None:
    return (result.expectation_config.meta or {}).get("check_id")


@dataclass
class _Examples:
    """Fetches the IDs of a chunk's first unexpected rows through Great Expectations.

    The checkpoints that see every row count unexpected rows only (BASIC),
    because listing IDs (SUMMARY) walks every unexpected row in Python. When a
    check has unexpected rows in a chunk and still wants examples, its
    expectation is run again in SUMMARY on the chunk's first rows, a few at
    first and four times as many until they hold enough unexpected rows (or
    are the whole chunk), so the examples are the chunk's first unexpected rows
    as a SUMMARY run on the whole chunk would give. These runs use a context
    of their own, so Data Docs show only the runs over every row.
    """

    settings: ValidationSettings
    context: Any = None
    checkpoints: dict[tuple[str, ...], Any] = field(default_factory=dict)

    def _checkpoint(self, table: str, tallies: list[_Tally], id_column: str | None) -> Any:
        key = (table, *(t.check.check_id for t in tallies))
        if key not in self.checkpoints:
            if self.context is None:
                self.context = gx_context()
            checks = [replace(t.check, expectation=copy.copy(t.check.expectation)) for t in tallies]
            name = f"examples-{len(self.checkpoints)}"
            # Checks on a flag column whose examples show the contract column's value list it too.
            shown = sorted(
                {
                    t.check.column
                    for t in tallies
                    if t.check.kind in EXAMPLE_KINDS_WITH_VALUE
                    and t.check.column not in ("", id_column)
                    and t.check.expectation.column != t.check.column
                }
            )
            result_format = _result_format(self.settings, id_column, with_examples=True, also=shown)
            self.checkpoints[key] = _checkpoint(self.context, table, name, checks, result_format)
        return self.checkpoints[key]

    def fetch(
        self,
        table: str,
        batch: pd.DataFrame,
        pending: dict[str, tuple[_Tally, int]],
        id_column: str | None,
        run_name: str,
    ) -> None:
        """Add examples to each pending tally (by check id: tally and unexpected rows in ``batch``)."""
        wanted = max(self.settings.max_examples, 1)
        n = len(batch)
        sparsest = min(unexpected for _, unexpected in pending.values())
        rows = min(n, max(1024, -(-4 * wanted * n // sparsest)))
        todo = [tally for tally, _ in pending.values()]
        while todo:
            checkpoint = self._checkpoint(table, todo, id_column)
            results = _run_checkpoint(checkpoint, batch.iloc[:rows], f"{run_name}-examples-{rows}")
            by_id = {t.check.check_id: t for t in todo}
            todo = []
            for result in results:
                tally = by_id.get(_check_id(result))
                if tally is None or (result.exception_info or {}).get("raised_exception"):
                    continue
                found = int((result.result or {}).get("unexpected_count") or 0)
                if found >= wanted or rows >= n:
                    _add_examples(tally, result, id_column, self.settings.max_examples)
                else:
                    todo.append(tally)
            rows = min(n, rows * 4)


# The patients columns PatientLookup.of reads.
_PATIENT_LOOKUP_COLUMNS = ("person_id", "birth_date", "date_of_death")


@dataclass
class _TableRun:
    """One table's results, row count and (if asked) typed frame."""

    results: list[ExpectationResult]
    present: set[str]
    n_rows: int = 0
    frame: pd.DataFrame | None = None


def _duplicate_keys(extract_dir: Path, table: Table, chunk_rows: int) -> pa.Array:
    """The table's key values that occur more than once, reading the key column alone."""
    keys = [
        pa.array(as_text(raw.frame[table.key], strip=False), from_pandas=True)
        for raw in iter_raw(extract_dir, table.name, chunk_rows, columns=[table.key])
    ]
    return duplicate_values(pa.chunked_array(keys, type=pa.large_string()))


def _stream(first: RawTable, second: RawTable | None, rest: Iterator[RawTable]) -> Iterator[RawTable]:
    """The first two chunks (read ahead to see whether there is more than one), then the rest."""
    yield first
    del first
    if second is not None:
        yield second
        del second
        yield from rest


def _merge_failures(found: dict[tuple[str, str], ParseFailure], failures: list[ParseFailure]) -> None:
    for failure in failures:
        key = (failure.column, failure.kind)
        earlier = found.get(key)
        found[key] = earlier.merged(failure) if earlier else failure


def _check_batch(
    checkpoint: Any,
    batch: pd.DataFrame,
    run_name: str,
    tallies: dict[str, _Tally],
    examples: _Examples,
    table: str,
    id_column: str | None,
) -> None:
    """Run a checkpoint on a batch, add its counts to the tallies and fetch examples still wanted."""
    pending: dict[str, tuple[_Tally, int]] = {}
    for result in _run_checkpoint(checkpoint, batch, run_name):
        tally = tallies.get(_check_id(result))
        if tally is None:
            continue
        unexpected = _add_chunk_result(tally, result)
        if unexpected and id_column and len(tally.examples) < examples.settings.max_examples:
            pending[tally.check.check_id] = (tally, unexpected)
    if pending:
        examples.fetch(table, batch, pending, id_column, run_name)


def _validate_table(
    context: Any,
    examples: _Examples,
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
    """Stream one table through its checkpoints, chunk by chunk, and sum the results.

    If ``keep``, the typed table is returned too: only ``keep_columns`` (those
    present in the typed frame) if given, else every column.

    Raises:
        ContractError: If the file is missing or cannot be read (at any chunk).
    """
    chunks: Iterator[RawTable] = iter_raw(extract_dir, table.name, settings.chunk_size)
    first = next(chunks)
    second = next(chunks, None)
    single = second is None
    present = set(first.frame.columns)
    checks = build_checks(
        table, present, settings, extract_date, previous_rows, cross_table=patients is not None
    )
    duplicate_keys = None
    if not single and table.key and table.key in present:
        duplicate_keys = _duplicate_keys(extract_dir, table, settings.chunk_size)
    id_column = _id_column(table, present)
    result_format = _result_format(settings, id_column, with_examples=False)
    tallies = {c.check_id: _Tally(c) for c in checks}
    if single:
        # One batch: every check in one checkpoint run (one Data Docs page per table).
        row_scope, row_checks = "all", checks
    else:
        row_scope, row_checks = "rows", [c for c in checks if c.scope == "rows"]
    checkpoint = (
        _checkpoint(context, table.name, row_scope, row_checks, result_format) if row_checks else None
    )
    failures: dict[tuple[str, str], ParseFailure] = {}
    kept: list[pd.DataFrame] = []
    columns: list[str] = []
    n_rows = 0
    stream = _stream(first, second, chunks)
    first = second = None

    def prepare_next() -> tuple[pd.DataFrame, list[ParseFailure], pd.DataFrame] | None:
        raw = next(stream, None)
        if raw is None:
            return None
        frame, chunk_failures = coerce_chunk(raw)
        del raw
        flags = derive_flags(frame, table, present, settings, extract_date, patients, duplicate_keys)
        return frame, chunk_failures, flags

    # The next chunk is read, typed and flagged on a second thread while Great
    # Expectations checks this one (Arrow and most of pandas release the GIL).
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="riskstrat-gate-read") as pool:
        upcoming = pool.submit(prepare_next)
        while (prepared := upcoming.result()) is not None:
            upcoming = pool.submit(prepare_next)
            frame, chunk_failures, flags = prepared
            del prepared
            _merge_failures(failures, chunk_failures)
            columns = [c for c in frame.columns if c in present]
            start, n_rows = n_rows, n_rows + len(frame)
            if checkpoint is not None:
                batch = pd.concat([frame[columns], flags], axis=1)
                run_name = f"{snapshot_hash}-{table.name}-rows-{start}-{n_rows}"
                _check_batch(checkpoint, batch, run_name, tallies, examples, table.name, id_column)
                del batch
            del flags
            if keep:
                kept.append(frame if keep_columns is None else frame[[c for c in keep_columns if c in frame]])
            del frame
    table_checks = [c for c in checks if c.scope == "table"]
    if not single and table_checks:
        checkpoint = _checkpoint(context, table.name, "table", table_checks, result_format)
        run_name = f"{snapshot_hash}-{table.name}-table-0-{n_rows}"
        _check_batch(
            checkpoint, _shape_of(columns, n_rows), run_name, tallies, examples, table.name, id_column
        )
    # In contract order; per column, whitespace (text_trimmed) before values that do not parse.
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
    frame = None
    if keep:
        frame = kept[0] if len(kept) == 1 else pd.concat(kept, ignore_index=True)
    return _TableRun(results, present, n_rows, frame)


def _reader_results(
    table: Table, failures: list[ParseFailure], settings: ValidationSettings
) -> list[ExpectationResult]:
    """Values that do not parse (the readers' findings) as failed ``values_parse`` results.

    Each keeps the reader's kind: ``types_parse``, or ``text_trimmed`` for a
    date or number read from text with whitespace at either end (the same kind
    as the check on text columns, so one severity covers every column). The
    readers only report columns found in the file; a missing required column is
    left to Great Expectations' column-exists check.
    """
    results = []
    for failure in failures:
        problem = failure.problem()
        results.append(
            ExpectationResult(
                table=table.name,
                column=problem.column,
                kind=failure.kind,
                expectation="values_parse",
                severity=getattr(settings.severity, failure.kind),
                expected=problem.expected,
                n_rows=problem.n_rows,
                n_checked=0,
                examples=problem.examples,
                passed=False,
            )
        )
    return results


def _parse_check_passed(table: Table, n_rows: int, severity: Severity) -> ExpectationResult:
    """A passed ``values_parse`` result for a table whose values all parse, so the report lists the check."""
    return ExpectationResult(
        table.name,
        "",
        "types_parse",
        "values_parse",
        severity,
        "dates and numbers that parse",
        0,
        n_rows,
        (),
        True,
    )


OPTIONAL_ABSENT = "an optional table: not supplied, so the run goes on without it"
"""What the gate records for an optional table (social care) the extract leaves out."""


def _file_result(table: Table, severity: Severity, expected: str, passed: bool) -> ExpectationResult:
    return ExpectationResult(
        table.name, "", "table_present", "file_readable", severity, expected, 0, 0, (), passed
    )


def _column_frame(path: Path, columns: list[str]) -> pd.DataFrame:
    """Some columns of a Parquet or CSV table file, as stored (text for CSV)."""
    if path.suffix == ".parquet":
        return pq.read_table(path, columns=columns).to_pandas()
    return pd.read_csv(
        path, usecols=columns, dtype=str, keep_default_na=False, na_values=[""], encoding="utf-8-sig"
    )


def _registered_lsoas(patients_path: Path) -> pd.Series:
    """The LSOA of each person registered and alive (no registration end, no date of death)."""
    present = set(
        pq.read_schema(patients_path).names
        if patients_path.suffix == ".parquet"
        else pd.read_csv(patients_path, nrows=0, encoding="utf-8-sig").columns
    )
    ended = [c for c in ("registration_end", "date_of_death") if c in present]
    patients = _column_frame(patients_path, ["lsoa_code", *ended])
    current = patients[ended].isna().all(axis=1) if ended else pd.Series(True, index=patients.index)
    return patients.loc[current, "lsoa_code"]


def _spark_table(spark: Any, path: Path) -> Any:
    """A table file as a Spark DataFrame (CSV as text with a header row; empty values null)."""
    if path.suffix == ".parquet":
        return spark.read.parquet(str(path))
    return (
        spark.read.option("header", True).option("encoding", "UTF-8").option("multiLine", True).csv(str(path))
    )


def _spark_returns(spark: Any, events_path: Path) -> pd.DataFrame:
    """The events' (``la_code``, ``reporting_period_start``, ``rows``) counted on Spark: only those come back."""
    try:
        events = _spark_table(spark, events_path)
        counted = events.groupBy("la_code", "reporting_period_start").count()
        return counted.withColumnRenamed("count", "rows").toPandas()
    except Exception as error:  # Spark's own errors (a missing column): the check says it could not run
        raise ValueError(f"{events_path.name}: {error}") from error


def _spark_registered_lsoas(spark: Any, patients_path: Path) -> pd.Series:
    """:func:`_registered_lsoas` with the people per LSOA counted on Spark (one row per LSOA comes back)."""
    from pyspark.sql import functions as F

    try:
        patients = _spark_table(spark, patients_path)
        for column in ("registration_end", "date_of_death"):
            if column in patients.columns:
                patients = patients.filter(F.col(column).isNull())
        homes = patients.groupBy("lsoa_code").count().toPandas()
    except Exception as error:  # as in _spark_returns
        raise ValueError(f"{patients_path.name}: {error}") from error
    # One entry per person, as expected_local_authorities reads them (LSOA codes, not rows).
    return homes["lsoa_code"].repeat(homes["count"].to_numpy()).reset_index(drop=True)


def social_care_returns_check(
    extract_dir: Path,
    settings: SocialCareSettings,
    extract_date: date,
    severity: Severity,
    spark: Any | None = None,
) -> tuple[list[ExpectationResult], ReturnsCoverage | None]:
    """The returns check of ``social_care_events``: one warning per expected LA-quarter with no return.

    Returns received are read from ``social_care_returns`` when the extract has it, else
    inferred from the events (a quarter with rows there).

    Expected LAs are ``settings.local_authorities``, else those of the LSOAs of the
    registered, living patients holding at least 1% of them. Reads only the columns it needs (the table's own
    checks report anything malformed; values that do not parse are skipped here). With ``spark``
    the events' returns and the people per LSOA are counted on Spark; only the counts come to
    the driver, into the same functions.

    Returns:
        The results (one passing result when nothing is missing; one failing result naming
        the cause when the columns cannot be read) and the coverage (None then).
    """
    events_path = readers.find_table_file(extract_dir, "social_care_events")
    if events_path is None:
        return [], None
    # The returns the adapter recorded, when supplied; else inferred from the events (module note
    # of riskstrat.ingest.social_care).
    returns_path = readers.find_table_file(extract_dir, RETURNS_TABLE)
    try:
        if returns_path is not None:
            events = _column_frame(returns_path, ["la_code", "reporting_period_start", "rows"])
            events["rows"] = pd.to_numeric(events["rows"], errors="coerce")
        elif spark is not None:
            events = _spark_returns(spark, events_path)
        else:
            events = _column_frame(events_path, ["la_code", "reporting_period_start"])
        events = events.assign(
            reporting_period_start=pd.to_datetime(events["reporting_period_start"], errors="coerce")
        ).dropna()
        expected = list(settings.local_authorities)
        if not expected:
            patients_path = readers.find_table_file(extract_dir, "patients")
            expected = (
                expected_local_authorities(
                    _spark_registered_lsoas(spark, patients_path)
                    if spark is not None
                    else _registered_lsoas(patients_path),
                    settings.county_of_district,
                )
                if patients_path
                else []
            )
    except (OSError, ValueError, KeyError, pa.ArrowException, ContractError) as error:
        # Never dropped silently: one failing result says the check could not run, and why.
        cause = f"{type(error).__name__}: {error}".splitlines()[0][:200]
        failed = ExpectationResult(
            "social_care_events",
            "la_code",
            "social_care_returns",
            "return_received",
            severity,
            f"la_code and reporting_period_start readable for the CLD returns check; not readable ({cause})",
            0,
            0,
            (),
            False,
        )
        return [failed], None
    coverage = social_care_returns(events, expected, extract_date, settings.first_quarter)
    results = [
        ExpectationResult(
            "social_care_events",
            "la_code",
            "social_care_returns",
            "return_received",
            severity,
            f"a CLD return from {line}; none received",
            0,
            0,
            (la,),
            False,
        )
        for (la, _), line in zip(coverage.missing, coverage.missing_lines(), strict=True)
    ]
    if not results:
        results.append(
            ExpectationResult(
                "social_care_events",
                "la_code",
                "social_care_returns",
                "return_received",
                severity,
                coverage.headline(),
                0,
                0,
                (),
                True,
            )
        )
    return results, coverage


def extract_snapshot(extract_dir: Path) -> str:
    """The extract folder's snapshot hash, or "missing" when there is no folder."""
    return folder_snapshot_hash(extract_dir) if Path(extract_dir).is_dir() else "missing"


def validate_extract(
    extract_dir: Path,
    output_dir: Path,
    settings: ValidationSettings,
    extract_date: date | None = None,
    previous_row_counts: dict[str, int] | None = None,
    build_docs: bool = True,
    keep_tables: bool | Collection[str] = True,
    snapshot_hash: str | None = None,
    spark: Any | None = None,
    social_care: SocialCareSettings | None = None,
    returns_date: date | None = None,
) -> ValidationReport:
    """Validate every contract table in ``extract_dir`` with Great Expectations.

    Tables are streamed and validated one at a time, patients first (events
    are checked against its IDs and dates of death), in chunks of
    ``settings.chunk_size`` rows.

    Args:
        extract_dir: Folder with one Parquet or CSV file per contract table.
        output_dir: Output folder; Data Docs go to ``data_docs/<extract hash>/`` under it.
        settings: The gate's settings.
        extract_date: No date may be later. None: the day the validation runs
            (an extract cannot hold events from the future, and a default taken
            from the data itself could never catch a future date).
        previous_row_counts: Row counts of the previous accepted extract by table.
        build_docs: Build Data Docs (static HTML) after validating.
        keep_tables: Keep the typed tables in ``report.tables`` (to inspect them;
            the flows keep none): True for all, a collection of table names for
            those only, or False. Tables not kept are never held whole: memory is
            about two chunks, the patients' IDs and dates of death, plus the tables kept.
        snapshot_hash: The extract's hash if the caller has it (default: computed).
        spark: A Spark session: run each table's checks on Spark
            (:mod:`riskstrat.ingest.validation_spark`), so no table comes to the
            driver; the report is the same as without it. None: pandas on this process.
        social_care: Expected local authorities and first quarter of the social care
            returns check (``social_care`` in ``configs/sources.yaml``; default: derived).
        returns_date: The data date the social care returns must be due by (the run's
            data date, as the weekly run and the features use it). None: ``extract_date``.

    Returns:
        The report (with the typed tables that could be read, if ``keep_tables``).
    """
    started = time.perf_counter()
    extract_dir = Path(extract_dir)
    extract_date = extract_date or date.today()
    previous_row_counts = previous_row_counts or {}
    snapshot = snapshot_hash or extract_snapshot(extract_dir)
    context = gx_context()
    examples = _Examples(settings)
    severity = settings.severity
    results: list[ExpectationResult] = []
    kept: dict[str, pd.DataFrame] = {}
    row_counts: dict[str, int] = {}
    patients: PatientLookup | None = None
    validate_table = _validate_table
    if spark is not None:
        from riskstrat.ingest.validation_spark import spark_table_validator

        validate_table = spark_table_validator(spark)

    for table in CONTRACT.values():  # patients comes first in the contract
        if not extract_dir.is_dir():
            results.append(
                _file_result(table, severity.table_present, f"an extract folder at {extract_dir}", False)
            )
            continue
        if (
            table.optional
            and not table_files(extract_dir, table.name)
            and not unsupported_files(extract_dir, table.name)
        ):
            # An optional table left out of the extract: the run goes on without it.
            results.append(_file_result(table, severity.table_present, OPTIONAL_ABSENT, True))
            continue
        keep = keep_tables is True or bool(keep_tables and table.name in keep_tables)
        # Patients is always read back for the lookup; only its IDs and death dates unless kept.
        lookup_only = table.name == "patients" and not keep
        try:
            run = validate_table(
                context,
                examples,
                extract_dir,
                table,
                settings,
                extract_date,
                previous_row_counts.get(table.name),
                patients,
                keep or lookup_only,
                snapshot,
                keep_columns=_PATIENT_LOOKUP_COLUMNS if lookup_only else None,
            )
        except ContractError as exc:
            results.append(_file_result(table, severity.table_present, exc.problems[0].expected, False))
            continue
        results.extend(run.results)
        row_counts[table.name] = run.n_rows
        if table.name == "patients" and run.frame is not None and "person_id" in run.present:
            # Events are checked against patients only if its person_id column was supplied.
            patients = PatientLookup.of(run.frame, settings, extract_date)
        if keep and run.frame is not None:
            kept[table.name] = run.frame
        del run

    returns: ReturnsCoverage | None = None
    if "social_care_events" in row_counts:  # supplied and read: are its local authorities' returns all in?
        found, returns = social_care_returns_check(
            extract_dir,
            social_care or SocialCareSettings(),
            returns_date or extract_date,
            severity.social_care_returns,
            spark,
        )
        results.extend(found)

    coverage_checks, coverage_page_html = [], None
    try:
        payload = read_coverage(extract_dir) if extract_dir.is_dir() else None
    except ContractError as exc:  # a damaged coverage file fails the gate; it never stops the report
        payload = None
        problem = exc.problems[0]
        results.append(
            ExpectationResult(
                problem.table,
                "",
                "mapping_coverage",
                "coverage_report",
                "critical",
                problem.expected,
                0,
                0,
                (),
                False,
            )
        )
    if payload is not None:
        coverage_checks, found = coverage_results(payload, settings.mapping_coverage)
        results.extend(
            ExpectationResult(table, column, kind, "coverage_report", sev, expected, n, checked, ex, ok)
            for table, column, kind, sev, expected, n, checked, ex, ok in found
        )
        coverage_page_html = coverage_page(
            coverage_checks, list(payload.get("notes", [])), dict(payload.get("files", {}))
        )
    report = ValidationReport(
        snapshot_hash=snapshot,
        extract_dir=extract_dir,
        extract_date=extract_date,
        results=results,
        row_counts=row_counts,
        tables=kept,
        mapping_coverage=[c.to_dict() for c in coverage_checks],
        social_care_returns=returns.to_dict() if returns is not None else {},
    )
    if build_docs:
        page = {"coverage_html": coverage_page_html} if coverage_page_html is not None else {}
        report.data_docs_index = build_data_docs(
            report.to_dict(), output_catalog(output_dir).data_docs, **page
        )
    report.seconds = time.perf_counter() - started
    return report
