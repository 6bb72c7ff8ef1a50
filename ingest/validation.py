"""Validate an extract folder with Great Expectations and summarise the result.

Every contract table is read (:mod:`riskstrat.ingest.readers`), the suites
generated in :mod:`riskstrat.ingest.expectations` are run through Great
Expectations checkpoints in an ephemeral context, and the results are summed
into a :class:`ValidationReport`. Data Docs are built as static HTML under
``<output_dir>/data_docs/`` (replaced atomically on each run).

Large tables are validated in chunks of ``chunk_size`` rows: whole-table
checks (columns present, row counts) run once on the whole table, value checks
run on each chunk, and unexpected counts and examples are summed across
chunks. Checks that span rows or tables (unique IDs, person in patients,
after death) are computed on the whole table first, so chunking never misses
a duplicate or an orphan.
"""

from __future__ import annotations

import os
import time
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import pandas as pd

os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")

import great_expectations as gx
from great_expectations.core.run_identifier import RunIdentifier
from great_expectations.data_context.types.base import (
    DataContextConfig,
    InMemoryStoreBackendDefaults,
    ProgressBarsConfig,
)

from riskstrat.errors import ContractError, ContractProblem
from riskstrat.ingest.contract import CONTRACT, Table
from riskstrat.ingest.expectations import Check, build_checks, derive_flags
from riskstrat.ingest.readers import coerce, load_raw
from riskstrat.ingest.validation_settings import Severity, ValidationSettings
from riskstrat.io import atomic_directory, folder_snapshot_hash

DATASOURCE = "riskstrat_extract"
DOCS_SITE = "riskstrat"
EXAMPLE_KINDS_WITH_VALUE = ("codes_in_set", "condition_in_vocabulary", "lsoa_well_formed")
"""Kinds whose examples also show the offending code (codes, never dates)."""


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
        data_docs_index: The Data Docs ``index.html`` (None if not built).
        seconds: Wall time of the validation.
        tables: The typed tables (from ``readers.coerce``) that could be read, so
            that a flow need not read the extract twice. Not written to JSON.
    """

    snapshot_hash: str
    extract_dir: Path
    extract_date: date
    results: list[ExpectationResult]
    row_counts: dict[str, int]
    data_docs_index: Path | None = None
    seconds: float = 0.0
    tables: dict[str, pd.DataFrame] = field(default_factory=dict, repr=False, compare=False)

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
        }


def gx_context() -> Any:
    """An ephemeral Great Expectations context (suites, checkpoints and results in memory).

    Suites are generated from the contract on every run, so nothing needs
    keeping between runs; the lasting record is the Data Docs site and the
    report JSON. In memory is also several times faster than a file context,
    which rewrites its YAML and JSON stores on every registration.

    Returns:
        The Great Expectations EphemeralDataContext.
    """
    config = DataContextConfig(
        store_backend_defaults=InMemoryStoreBackendDefaults(init_temp_docs_sites=False),
        progress_bars=ProgressBarsConfig(globally=False, metric_calculations=False),
    )
    return gx.get_context(mode="ephemeral", project_config=config)


def build_data_docs(context: Any, docs_dir: Path) -> Path:
    """Build Data Docs for this run's results as static HTML in ``docs_dir``, swapped in atomically.

    Args:
        context: The context holding this run's validation results.
        docs_dir: Target folder, e.g. ``<output_dir>/data_docs``.

    Returns:
        The site's ``index.html``.
    """
    docs_dir = Path(docs_dir).resolve()
    with atomic_directory(docs_dir) as staging:
        site = {
            "class_name": "SiteBuilder",
            "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
            "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(staging)},
        }
        if DOCS_SITE in context.list_data_docs_sites():
            context.delete_data_docs_site(DOCS_SITE)
        context.add_data_docs_site(DOCS_SITE, site)
        context.build_data_docs(site_names=[DOCS_SITE])
    return docs_dir / "index.html"


def _batch_definition(context: Any, table: str, scope: str) -> Any:
    try:
        source = context.data_sources.get(DATASOURCE)
    except (KeyError, ValueError, LookupError):
        source = context.data_sources.add_pandas(DATASOURCE)
    try:
        asset = source.get_asset(table)
    except (KeyError, LookupError):
        asset = source.add_dataframe_asset(table)
    try:
        return asset.get_batch_definition(scope)
    except (KeyError, LookupError):
        return asset.add_batch_definition_whole_dataframe(scope)


def _checkpoint(context: Any, table: str, scope: str, checks: list[Check], result_format: dict) -> Any:
    """Register the suite, validation definition and checkpoint for one table and scope.

    The context is new on every run, so each name is added once (``add`` is much
    cheaper than ``add_or_update``, which compares every expectation).
    """
    name = table if scope == "all" else f"{table}.{scope}"
    suite = context.suites.add(gx.ExpectationSuite(name=name, expectations=[c.expectation for c in checks]))
    definition = context.validation_definitions.add(
        gx.ValidationDefinition(name=name, data=_batch_definition(context, table, scope), suite=suite)
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


def _add_chunk_result(tally: _Tally, result: Any, id_column: str | None, max_examples: int) -> None:
    config = result.expectation_config
    tally.expectation = config.type
    info = result.exception_info or {}
    if info.get("raised_exception"):
        tally.failed = True
        tally.error = str(info.get("exception_message", "")).splitlines()[0][:200]
        return
    details = result.result or {}
    tally.unexpected += int(details.get("unexpected_count") or 0)
    tally.checked += int(details.get("element_count") or 0) - int(details.get("missing_count") or 0)
    if "observed_value" in details:
        tally.observed = str(details["observed_value"])
    if not result.success:
        tally.failed = True
    column = config.kwargs.get("column")
    for row in details.get("partial_unexpected_index_list") or []:
        if len(tally.examples) >= max_examples or not isinstance(row, dict):
            break
        example = f"{id_column}={row.get(id_column)}" if id_column else ""
        if tally.check.kind in EXAMPLE_KINDS_WITH_VALUE and column in row:
            value = f"{column}={row[column]}"
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


def _run_checks(
    context: Any,
    table: Table,
    frame: pd.DataFrame,
    present: set[str],
    checks: list[Check],
    flags: pd.DataFrame,
    settings: ValidationSettings,
    snapshot_hash: str,
) -> list[ExpectationResult]:
    """Run one table's suites through checkpoints (value checks chunk by chunk) and sum the results."""
    id_column = _id_column(table, present)
    result_format: dict[str, Any] = {
        "result_format": "SUMMARY",
        "partial_unexpected_count": max(settings.max_examples, 1),
    }
    if id_column:
        result_format["unexpected_index_column_names"] = [id_column]
    columns = [c for c in frame.columns if c in present]
    tallies = {c.check_id: _Tally(c) for c in checks}
    n = len(frame)
    if n <= settings.chunk_size:
        # One batch: every check in one checkpoint run (one Data Docs page per table).
        runs = [("all", checks, [(0, n)])]
    else:
        # Whole-table checks once on the whole table, value checks chunk by chunk.
        chunks = [(start, min(start + settings.chunk_size, n)) for start in range(0, n, settings.chunk_size)]
        runs = [
            ("table", [c for c in checks if c.scope == "table"], [(0, n)]),
            ("rows", [c for c in checks if c.scope == "rows"], chunks),
        ]
    for scope, scoped, slices in runs:
        if not scoped:
            continue
        checkpoint = _checkpoint(context, table.name, scope, scoped, result_format)
        for start, stop in slices:
            if scope == "table":
                batch = frame[columns]
            else:
                batch = pd.concat([frame[columns].iloc[start:stop], flags.iloc[start:stop]], axis=1)
            run_id = RunIdentifier(run_name=f"{snapshot_hash}-{table.name}-rows-{start}-{stop}")
            outcome = checkpoint.run(batch_parameters={"dataframe": batch}, run_id=run_id)
            for suite_result in outcome.run_results.values():
                for result in suite_result.results:
                    check_id = (result.expectation_config.meta or {}).get("check_id")
                    if check_id in tallies:
                        _add_chunk_result(tallies[check_id], result, id_column, settings.max_examples)
    return [_finish(tallies[c.check_id]) for c in checks]


def _reader_results(
    table: Table, problems: list[ContractProblem], present: set[str], severity: Severity
) -> list[ExpectationResult]:
    """Values that do not parse (the readers' findings) as critical results.

    Missing required columns are left to Great Expectations' column-exists check.
    """
    results = []
    for problem in problems:
        if problem.column and problem.column not in present:
            continue
        results.append(
            ExpectationResult(
                table=table.name,
                column=problem.column,
                kind="types_parse",
                expectation="values_parse",
                severity=severity,
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


def _file_result(table: Table, severity: Severity, expected: str, passed: bool) -> ExpectationResult:
    return ExpectationResult(
        table.name, "", "table_present", "file_readable", severity, expected, 0, 0, (), passed
    )


def validate_extract(
    extract_dir: Path,
    output_dir: Path,
    settings: ValidationSettings,
    extract_date: date | None = None,
    previous_row_counts: dict[str, int] | None = None,
    build_docs: bool = True,
    keep_tables: bool | Collection[str] = True,
    snapshot_hash: str | None = None,
) -> ValidationReport:
    """Validate every contract table in ``extract_dir`` with Great Expectations.

    Tables are read and validated one at a time, patients first (events are
    checked against it).

    Args:
        extract_dir: Folder with one Parquet or CSV file per contract table.
        output_dir: Output folder; Data Docs go to ``data_docs/`` under it.
        settings: The gate's settings.
        extract_date: No date may be later. None: the day the validation runs
            (an extract cannot hold events from the future, and a default taken
            from the data itself could never catch a future date).
        previous_row_counts: Row counts of the previous accepted extract by table.
        build_docs: Build Data Docs (static HTML) after validating.
        keep_tables: Keep the typed tables in ``report.tables`` for the flow to
            reuse: True for all, a collection of table names for those only, or
            False; anything less than all lowers peak memory (only patients and
            one event table are held at a time, plus the tables kept).
        snapshot_hash: The extract's hash if the caller has it (default: computed).

    Returns:
        The report (with the typed tables that could be read, if ``keep_tables``).
    """
    started = time.perf_counter()
    extract_dir = Path(extract_dir)
    extract_date = extract_date or date.today()
    previous_row_counts = previous_row_counts or {}
    snapshot = snapshot_hash or (folder_snapshot_hash(extract_dir) if extract_dir.is_dir() else "missing")
    context = gx_context()
    severity = settings.severity
    results: list[ExpectationResult] = []
    kept: dict[str, pd.DataFrame] = {}
    row_counts: dict[str, int] = {}
    patients: pd.DataFrame | None = None

    for table in CONTRACT.values():  # patients comes first in the contract
        if not extract_dir.is_dir():
            results.append(
                _file_result(table, severity.table_present, f"an extract folder at {extract_dir}", False)
            )
            continue
        try:
            raw = load_raw(extract_dir, table.name)
        except ContractError as exc:
            results.append(_file_result(table, severity.table_present, exc.problems[0].expected, False))
            continue
        present = set(raw.frame.columns)
        frame, problems = coerce(raw)
        del raw
        results.append(
            _file_result(
                table,
                severity.table_present,
                f"a readable file {table.name}.parquet or {table.name}.csv",
                True,
            )
        )
        parse_failures = _reader_results(table, problems, present, severity.types_parse)
        results.extend(parse_failures or [_parse_check_passed(table, len(frame), severity.types_parse)])
        if table.name == "patients" and "person_id" in present:
            # Events are checked against patients only if its person_id column was supplied.
            patients = frame
        checks = build_checks(
            table,
            present,
            settings,
            extract_date,
            previous_row_counts.get(table.name),
            cross_table=patients is not None,
        )
        flags = derive_flags(frame, table, present, settings, extract_date, patients)
        results.extend(_run_checks(context, table, frame, present, checks, flags, settings, snapshot))
        del flags
        row_counts[table.name] = len(frame)
        if keep_tables is True or (keep_tables and table.name in keep_tables):
            kept[table.name] = frame
        del frame

    docs_index = None
    if build_docs:
        docs_index = build_data_docs(context, Path(output_dir) / "data_docs")
    return ValidationReport(
        snapshot_hash=snapshot,
        extract_dir=extract_dir,
        extract_date=extract_date,
        results=results,
        row_counts=row_counts,
        data_docs_index=docs_index,
        seconds=time.perf_counter() - started,
        tables=kept,
    )
