"""The ``fairness_audit`` flow and its pieces: audit -> render -> write the report -> log it to MLflow.

Run after every retrain (on the challenger, before promotion: the
``fairness-audit`` subflow) and monthly on the champion (``fairness_audit``,
``riskstrat audit``). Reports go to the catalog's ``reports/`` folder. The monthly
audit also runs the impact evaluation (:mod:`riskstrat.pipelines.impact`) for the
report's "Is the programme working?" section, once ``impact.min_weeks`` of list
history have ended their follow-up.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path
from typing import Any

import pandas as pd
from mlflow.tracking import MlflowClient
from prefect import flow, task
from prefect.cache_policies import NO_CACHE
from prefect.runtime import flow_run

from riskstrat.catalog import output_catalog
from riskstrat.evaluation.audit_rows import audit_rows
from riskstrat.evaluation.fairness import FairnessAudit, Flag, open_flags, run_audit
from riskstrat.evaluation.groups import GROUPINGS, left_out_groupings
from riskstrat.evaluation.model_card import is_synthetic, model_card
from riskstrat.evaluation.report import ModelInfo, payload_json, render_report
from riskstrat.evaluation.settings import FairnessSettings
from riskstrat.io import atomic_path, file_sha256
from riskstrat.models.registry import (
    CHAMPION,
    Registration,
    load_model,
    logged_test_metrics,
    registered_version,
)
from riskstrat.models.settings import ModelSettings
from riskstrat.models.training import RiskModel
from riskstrat.pipelines.config import Config
from riskstrat.pipelines.decisions import board_decisions
from riskstrat.pipelines.features import held_out_test_rows, need_at
from riskstrat.pipelines.impact import evaluate_impact, write_impact
from riskstrat.pipelines.logs import run_logger
from riskstrat.pipelines.shared import holds_output_lock, load_run_config, tracking_uri
from riskstrat.pipelines.validate import run_gate
from riskstrat.worklists.backtest import back_test_lists
from riskstrat.worklists.settings import MdtSettings, read_practices, resolve_mdts

MLFLOW_ARTIFACT_PATH = "fairness_report"
AUDIT_ROWS_TAG = "audit_rows_sha256"
"""MLflow run tag holding the SHA-256 of the stored audited rows (the rows themselves never enter MLflow)."""


@dataclass(frozen=True)
class AuditResult:
    """What the audit flow returns.

    Attributes:
        audit: The fairness audit (raw figures; not for logs).
        html_path: The written HTML report.
        json_path: The written JSON of every (disclosed) number.
        open_flags: Flags that block promotion (not accepted in configs).
        rows_path: The stored audited test rows (Parquet, beside the feature cache).
        rows_sha256: Their SHA-256, as the report and the MLflow run carry it.
    """

    audit: FairnessAudit
    html_path: Path
    json_path: Path
    open_flags: list[Flag]
    rows_path: Path | None = None
    rows_sha256: str | None = None


def report_stem(model: ModelInfo) -> str:
    """File name stem of a report, e.g. ``fairness_emergency_admission_v3``."""
    raw = f"fairness_{model.outcome}_{model.model_name}_v{model.model_version}"
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", raw)


def rows_stem(model: ModelInfo) -> str:
    """File name stem of the stored audited rows, e.g. ``audit_rows_emergency_admission_v3``."""
    return report_stem(model).replace("fairness_", "audit_rows_", 1)


@task(name="fairness-audit", cache_policy=NO_CACHE)
def audit_task(
    predictions: pd.DataFrame, selections: pd.DataFrame, settings: FairnessSettings
) -> FairnessAudit:
    """Run the fairness audit on test-row predictions and list selections (it checks both against their schemas)."""
    audit = run_audit(predictions, selections, settings)
    counts = {s: sum(f.status == s for f in audit.flags) for s in ("raised", "explained")}
    run_logger(__name__).info("fairness audit: %s", ", ".join(f"{v} {k}" for k, v in counts.items()))
    left_out = left_out_groupings(audit.groupings)
    if left_out:
        # Said once per audit, naming groupings only: a place needs its column and two or more places.
        run_logger(__name__).info(
            "not audited (no column, or fewer than two groups in the test rows): %s",
            ", ".join(GROUPINGS[name].label for name in left_out),
        )
    return audit


@task(name="store-audited-rows", cache_policy=NO_CACHE)
def store_rows_task(
    predictions: pd.DataFrame,
    selections: pd.DataFrame,
    settings: FairnessSettings,
    output_dir: Path,
    stem: str,
) -> tuple[Path, str]:
    """Write the audited test rows to ``<output_dir>/features/audited/<stem>.parquet`` atomically.

    Returns:
        The file and its SHA-256.
    """
    path = output_catalog(output_dir).audited_rows(stem)
    rows = audit_rows(predictions, selections, settings)
    with atomic_path(path) as tmp:
        rows.to_parquet(tmp, index=False)
    digest = file_sha256(path)
    run_logger(__name__).info("audited rows (%d) stored, SHA-256 %s", len(rows), digest)
    return path, digest


@task(name="render-fairness-report", cache_policy=NO_CACHE)
def render_task(
    audit: FairnessAudit, model: ModelInfo, decisions: dict | None = None, impact: dict | None = None
) -> tuple[str, dict]:
    """Render the HTML report and its disclosed JSON payload (with decisions and the impact evaluation, if any)."""
    return render_report(audit, model, decisions, impact)


@task(name="impact-evaluation", cache_policy=NO_CACHE)
def impact_task(config: Config, extract_dir: Path, outcome: str) -> dict:
    """Is the programme working? The impact payload for the report (or why there is none yet).

    Also written to ``impact/impact_<outcome>.json``, as ``riskstrat evaluate-impact`` writes it.
    """
    payload = evaluate_impact(config, extract_dir, outcome)
    write_impact(Path(config.data.output_dir), outcome, payload)
    run_logger(__name__).info("impact evaluation for the report: %s", payload["status"])
    return payload


@task(name="write-fairness-report", cache_policy=NO_CACHE)
def write_report_task(html: str, payload: dict, output_dir: Path, stem: str) -> tuple[Path, Path]:
    """Write ``<output_dir>/reports/<stem>.html`` and ``.json`` atomically.

    Returns:
        The HTML and JSON paths.
    """
    folder = output_catalog(output_dir).reports
    html_path, json_path = folder / f"{stem}.html", folder / f"{stem}.json"
    with atomic_path(json_path) as tmp:
        tmp.write_text(payload_json(payload), encoding="utf-8")
    with atomic_path(html_path) as tmp:
        tmp.write_text(html, encoding="utf-8")
    run_logger(__name__).info("fairness report written to %s", html_path)
    return html_path, json_path


@task(name="log-fairness-report", cache_policy=NO_CACHE)
def log_report_task(
    paths: tuple[Path, ...], run_id: str, tracking_uri: str, rows_sha256: str | None = None
) -> None:
    """Log the report files as artifacts of the model's MLflow run (under ``fairness_report/``).

    The audited rows' SHA-256 goes on the run as the tag ``audit_rows_sha256``: the rows stay
    beside the feature cache.
    """
    client = MlflowClient(tracking_uri=tracking_uri)
    for path in paths:
        client.log_artifact(run_id, str(path), artifact_path=MLFLOW_ARTIFACT_PATH)
    if rows_sha256:
        client.set_tag(run_id, AUDIT_ROWS_TAG, rows_sha256)
    run_logger(__name__).info("fairness report logged to MLflow run %s", run_id)


def _audit_run_name() -> str:
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
    impact: dict | None = None,
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
        impact: Is the programme working? (:func:`riskstrat.pipelines.impact.evaluate_impact`, disclosed),
            or None when the impact evaluation did not run (a retrain's audit).

    Returns:
        The audit, the written paths (report and audited rows), the rows' hash and the flags
        that block promotion.
    """
    audit = audit_task(predictions, selections, settings)
    rows_path, rows_sha256 = store_rows_task(
        predictions, selections, settings, Path(output_dir), rows_stem(model)
    )
    model = replace(model, audit_rows_sha256=rows_sha256)
    # What the MDTs did with the lists (None until decisions come back): disclosure-controlled.
    html, payload = render_task(audit, model, board_decisions(Path(output_dir), model.outcome), impact)
    html_path, json_path = write_report_task(html, payload, Path(output_dir), report_stem(model))
    if run_id and tracking_uri:
        log_report_task((html_path, json_path), run_id, tracking_uri, rows_sha256)
    blocking = open_flags(audit, settings)
    if blocking:
        run_logger(__name__).warning(
            "%d open fairness flags block promotion: %s",
            len(blocking),
            ", ".join(f.flag_id for f in blocking),
        )
    return AuditResult(
        audit=audit,
        html_path=html_path,
        json_path=json_path,
        open_flags=blocking,
        rows_path=rows_path,
        rows_sha256=rows_sha256,
    )


# ----------------------------------------------------------------------------- inputs and the monthly flow


def back_tested_lists(
    test: pd.DataFrame,
    probabilities: Any,
    outcome: str,
    mdt_settings: MdtSettings,
    model_settings: ModelSettings,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Test-row predictions and each MDT's list drawn up on them by the weekly selector, for the audit.

    The MDTs come from ``configs/mdts.yaml`` and the practices file; without the
    file every test row is one list at ``model.evaluation.capacity_share``
    (:func:`riskstrat.worklists.backtest.back_test_lists`).
    """
    practices_file = mdt_settings.practices_file
    mdts = []
    if practices_file and Path(practices_file).is_file():
        mdts = resolve_mdts(mdt_settings, read_practices(Path(practices_file)))
    return back_test_lists(
        test,
        probabilities,
        outcome,
        mdts,
        mdt_settings.risk_bands,
        model_settings.split.test,
        model_settings.evaluation.capacity_share,
    )


def audit_registered_model(
    config: Config,
    registration: Registration,
    model: RiskModel,
    test: pd.DataFrame,
    probabilities: Any,
    test_metrics: pd.DataFrame,
    table: pd.DataFrame,
    impact: dict | None = None,
) -> AuditResult:
    """Back-test each MDT's list on the test rows, then audit the model and write its governance report.

    Shared by the retrain (on the challenger just trained) and the monthly audit
    (on a registered model); ``table`` is what the model card describes the
    training data from; ``impact`` is the impact evaluation the report shows (the
    monthly audit's; None for a retrain).
    """
    predictions, selections = back_tested_lists(
        test, probabilities, registration.outcome, config.mdts, config.model
    )
    card = model_card(
        registration,
        model,
        test_metrics,
        table,
        config.model,
        config.outcomes,
        is_synthetic(config.data.truth_dir),
    )
    return fairness_audit(
        predictions,
        selections,
        config.fairness,
        card,
        config.data.output_dir,
        run_id=registration.run_id,
        tracking_uri=registration.tracking_uri,
        impact=impact,
    )


@flow(
    name="fairness_audit",
    flow_run_name=lambda: f"fairness-audit-{date.today().isoformat()}",
    validate_parameters=False,
)
@holds_output_lock("audit")
def fairness_audit_flow(
    config_dir: str | None = None,
    outcome: str = "emergency_admission",
    alias: str = CHAMPION,
    extract_dir: str | None = None,
) -> str:
    """Audit a registered model on its test rows and write the governance report (monthly on the champion)."""
    config = load_run_config(config_dir)
    extract = Path(extract_dir or config.data.extract_dir)
    report = run_gate(config, extract)
    registration, _ = registered_version(
        outcome, config.model.mlflow.registered_models[outcome], alias, tracking_uri(config)
    )
    model = load_model(f"models:/{registration.model_name}/{registration.version}", registration.tracking_uri)
    test = held_out_test_rows(config, extract, report.snapshot_hash)
    need = need_at(extract, config.model.as_of.test, test["person_id"], config.features, config.outcomes)
    test = test.merge(need, on=["person_id", "as_of"], how="left", validate="one_to_one")
    # Is the programme working? Once enough list history has matured (impact.yaml min_weeks).
    impact = impact_task(config, extract, outcome)
    result = audit_registered_model(
        config,
        registration,
        model,
        test,
        model.predict_proba(test),
        logged_test_metrics(registration),
        test,
        impact=impact,
    )
    return str(result.html_path)
