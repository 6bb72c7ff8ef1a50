"""Fairness audit flow pieces: audit -> render -> write under ``<output_dir>/reports/`` -> log to MLflow.

Run after every retrain (on the challenger, before promotion) and monthly on
the champion. The lead wires :func:`fairness_audit` to the real model runs and
the ``riskstrat audit`` command; the promotion step calls
``riskstrat.evaluation.fairness.open_flags`` on the returned audit.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from prefect import flow, task
from prefect.cache_policies import NO_CACHE

from riskstrat.evaluation.fairness import FairnessAudit, Flag, open_flags, run_audit
from riskstrat.evaluation.report import ModelInfo, payload_json, render_report
from riskstrat.evaluation.settings import FairnessSettings
from riskstrat.io import atomic_path
from riskstrat.pipelines.logs import run_logger

REPORTS_FOLDER = "reports"
MLFLOW_ARTIFACT_PATH = "fairness_report"


@dataclass(frozen=True)
class AuditResult:
    """What the audit flow returns.

    Attributes:
        audit: The fairness audit (raw figures; not for logs).
        html_path: The written HTML report.
        json_path: The written JSON of every (disclosed) number.
        open_flags: Flags that block promotion (not accepted in configs).
    """

    audit: FairnessAudit
    html_path: Path
    json_path: Path
    open_flags: list[Flag]


def report_stem(model: ModelInfo) -> str:
    """File name stem of a report, e.g. ``fairness_emergency_admission_v3``."""
    raw = f"fairness_{model.outcome}_{model.model_name}_v{model.model_version}"
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", raw)


@task(name="fairness-audit", cache_policy=NO_CACHE)
def audit_task(
    predictions: pd.DataFrame, selections: pd.DataFrame, settings: FairnessSettings
) -> FairnessAudit:
    """Run the fairness audit on test-row predictions and list selections."""
    audit = run_audit(predictions, selections, settings)
    counts = {s: sum(f.status == s for f in audit.flags) for s in ("raised", "uncertain", "explained")}
    run_logger(__name__).info("fairness audit: %s", ", ".join(f"{v} {k}" for k, v in counts.items()))
    return audit


@task(name="render-fairness-report", cache_policy=NO_CACHE)
def render_task(audit: FairnessAudit, model: ModelInfo) -> tuple[str, dict]:
    """Render the HTML report and its disclosed JSON payload."""
    return render_report(audit, model)


@task(name="write-fairness-report", cache_policy=NO_CACHE)
def write_report_task(html: str, payload: dict, output_dir: Path, stem: str) -> tuple[Path, Path]:
    """Write ``<output_dir>/reports/<stem>.html`` and ``.json`` atomically.

    Returns:
        The HTML and JSON paths.
    """
    folder = Path(output_dir) / REPORTS_FOLDER
    html_path, json_path = folder / f"{stem}.html", folder / f"{stem}.json"
    with atomic_path(json_path) as tmp:
        tmp.write_text(payload_json(payload), encoding="utf-8")
    with atomic_path(html_path) as tmp:
        tmp.write_text(html, encoding="utf-8")
    run_logger(__name__).info("fairness report written to %s", html_path)
    return html_path, json_path


@task(name="log-fairness-report", cache_policy=NO_CACHE)
def log_report_task(paths: tuple[Path, ...], run_id: str, tracking_uri: str) -> None:
    """Log the report files as artifacts of the model's MLflow run (under ``fairness_report/``)."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=tracking_uri)
    for path in paths:
        client.log_artifact(run_id, str(path), artifact_path=MLFLOW_ARTIFACT_PATH)
    run_logger(__name__).info("fairness report logged to MLflow run %s", run_id)


def _audit_run_name() -> str:
    from prefect.runtime import flow_run

    model = flow_run.parameters.get("model")
    return f"fairness-audit-{model.outcome}-v{model.model_version}" if model is not None else "fairness-audit"


@flow(name="fairness-audit", flow_run_name=_audit_run_name, validate_parameters=False)
def fairness_audit(
    predictions: pd.DataFrame,
    selections: pd.DataFrame,
    settings: FairnessSettings,
    model: ModelInfo,
    output_dir: Path,
    run_id: str | None = None,
    tracking_uri: str | None = None,
) -> AuditResult:
    """Audit a model for fairness and write and log its governance report.

    Args:
        predictions: Test-row predictions (see ``riskstrat.evaluation.fairness``).
        selections: List selections for the scored population.
        settings: Fairness settings (``configs/fairness.yaml``).
        model: What the report says about the model.
        output_dir: Output folder; the report goes to ``<output_dir>/reports/``.
        run_id: The model's MLflow run; with ``tracking_uri``, the report is logged there.
        tracking_uri: MLflow tracking URI.

    Returns:
        The audit, the written paths and the flags that block promotion.
    """
    audit = audit_task(predictions, selections, settings)
    html, payload = render_task(audit, model)
    html_path, json_path = write_report_task(html, payload, Path(output_dir), report_stem(model))
    if run_id and tracking_uri:
        log_report_task((html_path, json_path), run_id, tracking_uri)
    blocking = open_flags(audit, settings)
    if blocking:
        run_logger(__name__).warning(
            "%d open fairness flags block promotion: %s",
            len(blocking),
            ", ".join(f.flag_id for f in blocking),
        )
    return AuditResult(audit=audit, html_path=html_path, json_path=json_path, open_flags=blocking)
