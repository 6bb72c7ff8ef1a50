"""The validation gate: run Great Expectations on an extract before anything is built from it.

:func:`run_validation` validates a folder, writes the report JSON and the
row-count history, and returns the report (``riskstrat validate DIR`` calls
it). :func:`validation_gate` is the Prefect task at the start of every flow
that reads extracts: it raises a :class:`~riskstrat.errors.ContractError` on
any critical failure, so the flow stops before anything downstream is written.

Outputs (all under ``output_dir``):
    data_docs/index.html             Data Docs, static HTML built by Great Expectations
    validation/<snapshot_hash>.json  the report: aggregates and pseudonymised examples only
    validation/latest.json           the same, for the latest run
    validation/row_counts.json       row counts of accepted extracts (for the row-count check)

The row-count baseline is the pipeline's: the row counts of the last extract
that a pipeline run (a flow's gate: weekly run, retrain, features) accepted,
whatever folder it came from, so a weekly extract delivered in a new dated folder
is still compared with last week's. ``riskstrat validate DIR`` is a check only:
it compares DIR with that baseline and never changes it, so validating a test
or partial folder cannot reset what the next weekly run is compared with.
"""

from __future__ import annotations

import json
from collections.abc import Collection
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE
from rich.table import Table as RichTable

from riskstrat.ingest.validation import ValidationReport, extract_snapshot, validate_extract
from riskstrat.ingest.validation_settings import ValidationSettings
from riskstrat.io import atomic_path
from riskstrat.pipelines.logs import run_logger
from riskstrat.settings import default_config_dir, load_settings

HISTORY_FILE = "row_counts.json"
HISTORY_LENGTH = 20
"""Accepted extracts kept in the row-count history."""


def load_validation_settings(path: Path | None = None) -> ValidationSettings:
    """Load ``configs/validation.yaml`` (or ``path``) into :class:`ValidationSettings`."""
    return load_settings(path or default_config_dir() / "validation.yaml", ValidationSettings)


def validation_dir(output_dir: Path) -> Path:
    """Folder of the report JSON files and the row-count history."""
    return Path(output_dir) / "validation"


def read_history(output_dir: Path) -> list[dict[str, Any]]:
    """Row counts of earlier accepted extracts, oldest first (empty if none recorded)."""
    path = validation_dir(output_dir) / HISTORY_FILE
    if not path.is_file():
        return []
    try:
        entries = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        # A damaged history only loses the row-count comparison; it must not stop the gate.
        return []
    return [e for e in entries if isinstance(e, dict) and isinstance(e.get("row_counts"), dict)]


def previous_row_counts(history: list[dict[str, Any]], snapshot_hash: str) -> dict[str, int] | None:
    """Row counts of the latest extract a pipeline run accepted, other than ``snapshot_hash``.

    Args:
        history: The row-count history (:func:`read_history`).
        snapshot_hash: The extract being validated (its own earlier entry is skipped).

    Returns:
        Row counts by table, or None if no pipeline run has accepted an extract yet.
    """
    for entry in reversed(history):
        if entry.get("snapshot_hash") != snapshot_hash:
            return {str(k): int(v) for k, v in entry["row_counts"].items()}
    return None


def _write_json(path: Path, payload: Any) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(payload, indent=2, default=str), encoding="utf-8")


def record_row_counts(output_dir: Path, report: ValidationReport) -> None:
    """Make an extract a pipeline run accepted the baseline (the history keeps the last 20)."""
    history = [e for e in read_history(output_dir) if e.get("snapshot_hash") != report.snapshot_hash]
    history.append(
        {
            "snapshot_hash": report.snapshot_hash,
            "extract_dir": str(Path(report.extract_dir).resolve()),
            "extract_date": report.extract_date.isoformat(),
            "recorded": datetime.now(UTC).isoformat(timespec="seconds"),
            "row_counts": report.row_counts,
        }
    )
    _write_json(validation_dir(output_dir) / HISTORY_FILE, history[-HISTORY_LENGTH:])


def write_report(output_dir: Path, report: ValidationReport) -> Path:
    """Write the report JSON as ``<snapshot_hash>.json`` and ``latest.json``; return the first."""
    payload = report.to_dict()
    target = validation_dir(output_dir) / f"{report.snapshot_hash}.json"
    _write_json(target, payload)
    _write_json(validation_dir(output_dir) / "latest.json", payload)
    return target


def run_validation(
    extract_dir: Path,
    output_dir: Path,
    settings: ValidationSettings | None = None,
    extract_date: date | None = None,
    keep_tables: bool | Collection[str] = True,
    record_baseline: bool = True,
) -> ValidationReport:
    """Validate an extract folder, build Data Docs and write the report; never raises on bad data.

    Args:
        extract_dir: Folder with one Parquet or CSV file per contract table.
        output_dir: The run's output folder (``data_docs/`` and ``validation/`` go under it).
        settings: The gate's settings (default: ``configs/validation.yaml``).
        extract_date: Date the extract was taken (``data.extract_date``); no event may
            be later. None: the day the validation runs.
        keep_tables: Return the typed tables in ``report.tables``: True for all, or the
            names of the tables to keep (fewer lowers
            peak memory, e.g. for ``riskstrat validate`` alone).
        record_baseline: Make the extract, if accepted, the row-count baseline of later
            runs: True in a pipeline's gate, False for a check alone (``riskstrat validate``).

    Returns:
        The report. ``report.passed`` is False when a critical check failed;
        ``report.tables`` holds the typed tables for the flow to reuse.
    """
    settings = settings or load_validation_settings()
    history = read_history(output_dir)
    snapshot = extract_snapshot(extract_dir)
    previous = previous_row_counts(history, snapshot)
    report = validate_extract(
        extract_dir,
        output_dir,
        settings,
        extract_date,
        previous,
        keep_tables=keep_tables,
        snapshot_hash=snapshot,
    )
    write_report(output_dir, report)
    if report.passed and record_baseline:
        # Only extracts a pipeline accepted become the baseline, so a truncated extract is never the
        # "previous" one, and checking some other folder never resets it.
        record_row_counts(output_dir, report)
    return report


@task(name="validation-gate", cache_policy=NO_CACHE)
def validation_gate(
    extract_dir: Path,
    output_dir: Path,
    settings: ValidationSettings | None = None,
    extract_date: date | None = None,
    keep_tables: bool | Collection[str] = True,
) -> ValidationReport:
    """Prefect task at the start of every flow that reads extracts.

    Args:
        extract_dir: Folder with one file per contract table.
        output_dir: The run's output folder.
        settings: The gate's settings (default: ``configs/validation.yaml``).
        extract_date: Date the extract was taken; None: today.
        keep_tables: Which typed tables to hand on in ``report.tables`` (True: all).

    Returns:
        The report, with ``report.tables`` holding the typed tables kept.

    Raises:
        ContractError: On any critical failure, one line per failed check (table,
            column, what was expected, rows failing, up to five pseudonymised
            examples). Nothing downstream has been written.
    """
    logger = run_logger(__name__)
    report = run_validation(extract_dir, output_dir, settings, extract_date, keep_tables)
    for line in report.warning_lines():
        logger.warning("validation warning: %s", line)
    logger.info(
        "validated extract %s: %d checks, %d critical failures, %d warnings; Data Docs: %s",
        report.snapshot_hash,
        len(report.results),
        len(report.critical_failures),
        len(report.warnings),
        report.data_docs_index,
    )
    if not report.passed:
        raise report.contract_error()
    return report


def summary_table(report: ValidationReport, show_passed: bool = False) -> RichTable:
    """A short rich table of the checks that failed (or all of them) for the CLI.

    Args:
        report: The validation report.
        show_passed: Also list checks that passed.

    Returns:
        A rich Table: severity, table.column, expectation, rows failing, examples.
        Every cell is plain text (never markup, control characters escaped) and
        cells fold rather than being cut short.
    """
    from riskstrat.errors import one_line
    from riskstrat.pipelines.terminal import plain

    status = "passed" if report.passed else "FAILED"
    title = (
        f"Extract {report.snapshot_hash}: {status} - {len(report.results)} checks, "
        f"{len(report.critical_failures)} critical, {len(report.warnings)} warnings"
    )
    table = RichTable(title=plain(title), show_lines=False)
    for header in ("result", "where", "expected", "rows failing", "examples"):
        table.add_column(header, overflow="fold", justify="right" if header == "rows failing" else "left")
    shown = [r for r in report.results if show_passed or not r.passed]
    order = {"critical": 0, "warning": 1}
    for result in sorted(shown, key=lambda r: (r.passed, order[r.severity], r.table, r.column)):
        label = "pass" if result.passed else result.severity
        style = "green" if result.passed else ("red" if result.severity == "critical" else "yellow")
        where = f"{result.table}.{result.column}" if result.column else result.table
        table.add_row(
            plain(label, style),
            plain(where),
            plain(result.expected),
            plain(f"{result.n_rows:,}" if result.n_rows else ""),
            plain(", ".join(one_line(e) for e in result.examples)),
        )
    return table
