"""The validation gate and the ``validate`` flow: Great Expectations on an extract before anything is built from it.

:func:`run_validation` validates a folder, writes the report JSON and the
row-count history, and returns the report (``riskstrat validate DIR`` calls
it through :func:`run_validate`). :func:`validation_gate` is the Prefect task
at the start of every flow that reads extracts: it raises a
:class:`~riskstrat.errors.ContractError` on any critical failure, so the flow
stops before anything downstream is written.

Outputs (all under ``output_dir``):
    data_docs/index.html             Data Docs: every validation kept, newest first (static HTML, offline)
    data_docs/<hash>/index.html      one validated extract's page (and its mapping coverage page)
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
import logging
from collections.abc import Collection
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from prefect import flow, task
from prefect.runtime import flow_run
from rich.table import Table as RichTable

from riskstrat.catalog import output_catalog
from riskstrat.errors import ContractError, one_line
from riskstrat.ingest.contract import SOCIAL_CARE_EVENTS
from riskstrat.ingest.readers import table_files
from riskstrat.ingest.sources.settings import SocialCareSettings
from riskstrat.ingest.validation import ValidationReport, extract_snapshot, validate_extract
from riskstrat.ingest.validation_settings import ValidationSettings
from riskstrat.io import atomic_path
from riskstrat.pipelines.config import Config
from riskstrat.pipelines.logs import run_logger
from riskstrat.pipelines.shared import IO_RETRIES, holds_output_lock, load_run_config
from riskstrat.pipelines.terminal import make_console, plain, say
from riskstrat.settings import default_config_dir, load_settings

logger = logging.getLogger(__name__)

HISTORY_LENGTH = 20
"""Accepted extracts kept in the row-count history."""


def load_validation_settings(path: Path | None = None) -> ValidationSettings:
    """Load ``configs/validation.yaml`` (or ``path``) into :class:`ValidationSettings`."""
    return load_settings(path or default_config_dir() / "validation.yaml", ValidationSettings)


def read_history(output_dir: Path) -> list[dict[str, Any]]:
    """Row counts of earlier accepted extracts, oldest first (empty if none recorded)."""
    path = output_catalog(output_dir).row_count_history
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
    _write_json(output_catalog(output_dir).row_count_history, history[-HISTORY_LENGTH:])


def write_report(output_dir: Path, report: ValidationReport) -> Path:
    """Write the report JSON as ``<snapshot_hash>.json`` and ``latest.json``; return the first."""
    payload = report.to_dict()
    outputs = output_catalog(output_dir)
    target = outputs.validation_report(report.snapshot_hash)
    _write_json(target, payload)
    _write_json(outputs.latest_validation, payload)
    return target


def run_validation(
    extract_dir: Path,
    output_dir: Path,
    settings: ValidationSettings | None = None,
    extract_date: date | None = None,
    keep_tables: bool | Collection[str] = True,
    record_baseline: bool = True,
    social_care: SocialCareSettings | None = None,
    spark: Any | None = None,
    returns_date: date | None = None,
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
        social_care: The social care returns check's settings (``sources.social_care``).
        spark: A Spark session to run the checks on (:func:`gate_session`); None: pandas
            on this process. The report is the same either way.
        returns_date: The data date social care returns must be due by
            (:func:`social_care_returns_date`); None: ``extract_date``, else the day it runs.

    Returns:
        The report. ``report.passed`` is False when a critical check failed;
        ``report.tables`` holds the typed tables kept.
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
        social_care=social_care,
        spark=spark,
        returns_date=returns_date,
    )
    write_report(output_dir, report)
    if report.passed and record_baseline:
        # Only extracts a pipeline accepted become the baseline, so a truncated extract is never the
        # "previous" one, and checking some other folder never resets it.
        record_row_counts(output_dir, report)
    return report


@task(name="validation-gate", **IO_RETRIES)
def validation_gate(
    extract_dir: Path,
    output_dir: Path,
    settings: ValidationSettings | None = None,
    extract_date: date | None = None,
    keep_tables: bool | Collection[str] = True,
    social_care: SocialCareSettings | None = None,
    spark: Any | None = None,
    returns_date: date | None = None,
) -> ValidationReport:
    """Prefect task at the start of every flow that reads extracts.

    Args:
        extract_dir: Folder with one file per contract table.
        output_dir: The run's output folder.
        settings: The gate's settings (default: ``configs/validation.yaml``).
        extract_date: Date the extract was taken; None: today.
        keep_tables: Which typed tables to keep in ``report.tables`` (True: all; flows keep
            none, see :func:`run_gate`).
        social_care: The social care returns check's settings (``sources.social_care``).
        spark: A Spark session to run the checks on (:func:`gate_session`); None: pandas.
        returns_date: The data date social care returns must be due by; None: ``extract_date``.

    Returns:
        The report, with ``report.tables`` holding the typed tables kept.

    Raises:
        ContractError: On any critical failure, one line per failed check (table,
            column, what was expected, rows failing, up to five pseudonymised
            examples); the error names the report holding the examples (logs and
            Prefect get it without them). Nothing downstream has been written.
    """
    logger = run_logger(__name__)
    latest = output_catalog(output_dir).latest_validation
    try:
        report = run_validation(
            extract_dir,
            output_dir,
            settings,
            extract_date,
            keep_tables,
            social_care=social_care,
            spark=spark,
            returns_date=returns_date,
        )
    except ContractError as exc:
        exc.report = latest
        raise
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
        error = report.contract_error()
        error.report = latest
        raise error
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


def coverage_table(report: ValidationReport) -> RichTable | None:
    """The "Mapping coverage" table for the CLI (per source and field), or None for a contract-format extract."""
    if not report.mapping_coverage:
        return None
    table = RichTable(title="Mapping coverage", show_lines=False)
    for header in ("source", "field", "share mapped", "rows", "result", "top unmapped codes"):
        table.add_column(
            header, overflow="fold", justify="right" if header in ("share mapped", "rows") else "left"
        )
    for c in report.mapping_coverage:
        style = {"pass": "green", "warning": "yellow", "critical": "red"}[c["status"]]
        codes = ", ".join(f"{u['code']} ({u['rows']:,})" for u in c["unmapped"][:5])
        table.add_row(
            plain(c["source"]),
            plain(c["field"]),
            plain(f"{c['share']:.1%}"),
            plain(f"{c['rows']:,}"),
            plain(c["status"], style),
            plain(codes),
        )
    return table


# ----------------------------------------------------------------------------- the validate flow and command


def _validate_name() -> str:
    extract = flow_run.parameters.get("extract_dir") or "default-extract"
    return f"validate-{Path(str(extract)).name}"


@flow(name="validate", flow_run_name=_validate_name, validate_parameters=False)
@holds_output_lock("validate")
def validate_flow(config_dir: str | None = None, extract_dir: str | None = None) -> dict[str, Any]:
    """Run the Great Expectations gate on an extract; fails on any critical check.

    Returns:
        A summary: snapshot hash, checks, warnings and the Data Docs path.
    """
    config = load_run_config(config_dir)
    report = run_gate(config, Path(extract_dir or config.data.extract_dir))
    return {
        "snapshot": report.snapshot_hash,
        "checks": len(report.results),
        "warnings": [w.expected for w in report.warnings],
        "data_docs": str(report.data_docs_index),
        "mapping_coverage": report.mapping_coverage,
    }


def gate_session(config: Config) -> Any | None:
    """The Spark session the gate runs on with ``backend: pyspark``, else None (pandas on this process).

    It is the Spark flows' session (:func:`~riskstrat.pipelines.spark.weekly_session`: the
    active one, else one on ``features.spark_master``), so the gate makes it and the
    feature build, scoring and reasons reuse it.
    """
    if config.features.backend != "pyspark":
        return None
    from riskstrat.pipelines.spark import weekly_session  # the Spark modules load only when used

    return weekly_session(config.features)


def social_care_returns_date(config: Config, extract_dir: Path) -> date | None:
    """The data date the social care returns check counts due quarters by: the weekly run's.

    ``data.extract_date`` when set, else the latest event date of the health tables
    (:func:`riskstrat.pipelines.features.data_date`), so an extract checked later than
    it was taken is not told of returns not yet due at its date. None (the day the check
    runs) without a ``social_care_events`` table or when the extract cannot give a date
    (the gate reports what is wrong with it).
    """
    if config.data.extract_date:
        return config.data.extract_date
    if not table_files(Path(extract_dir), SOCIAL_CARE_EVENTS.name):
        return None
    from riskstrat.pipelines.features import data_date  # imports this module: only at call time

    try:
        return data_date.fn(Path(extract_dir), config.features)
    except Exception as exc:  # any unreadable extract: the gate itself reports what is wrong
        # The error's type only: its text could quote a value from the extract.
        logger.warning(
            "social care returns checked to today: no data date in %s (%s)", extract_dir, type(exc).__name__
        )
        return None


def run_gate(config: Config, extract_dir: Path) -> ValidationReport:
    """The gate at the start of a flow, with the run's settings (:func:`validation_gate`).

    No table is handed on: flows read the extract through the feature backend, and
    each table is released once validated, which keeps the gate's memory to a chunk.
    """
    return validation_gate(
        extract_dir,
        config.data.output_dir,
        config.validation,
        config.data.extract_date,
        keep_tables=False,
        social_care=config.sources.social_care,
        spark=gate_session(config),
        returns_date=social_care_returns_date(config, extract_dir),
    )


@holds_output_lock("validate")
def run_validate(config: Config, extract_dir: Path) -> ValidationReport:
    """The ``riskstrat validate`` command: the gate alone, with a summary table, never raising on bad data."""
    report = run_validation(
        extract_dir,
        config.data.output_dir,
        config.validation,
        config.data.extract_date,
        keep_tables=False,
        record_baseline=False,  # a check alone: only pipeline runs move the row-count baseline
        social_care=config.sources.social_care,
        spark=gate_session(config),
        returns_date=social_care_returns_date(config, extract_dir),
    )
    console = make_console()
    console.print(summary_table(report))
    coverage = coverage_table(report)
    if coverage is not None:
        console.print(coverage)
    if report.social_care_returns:
        say(console, report.social_care_returns["headline"])
    say(console, f"Data Docs: {report.data_docs_index}")
    return report
