"""The ``retrain`` flow: validate -> features -> train -> calibrate -> evaluate -> register -> audit -> promote.

Also ``riskstrat promote`` (:func:`run_promotion`). All model logic lives in
``riskstrat.models``; these tasks only pass data and settings between the
stages and write nothing but MLflow runs and the governance reports.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, is_dataclass
from datetime import date
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from prefect import flow, task

from riskstrat.errors import RiskstratError
from riskstrat.evaluation.training_figures import close_figures, training_figures
from riskstrat.features.dictionary import feature_names
from riskstrat.features.matrix import feature_matrix_schema, matrix_frame, stack_tables, trained_dictionary
from riskstrat.features.outcomes import outcome_columns
from riskstrat.models.promotion import PromotionDecision, promote
from riskstrat.models.registry import (
    CHALLENGER,
    FAIRNESS_FLAGS_TAG,
    Registration,
    load_model,
    log_training_run,
    logged_test_metrics,
    open_fairness_flags,
    registered_version,
    tag_run,
)
from riskstrat.models.settings import ModelSettings
from riskstrat.models.training import TrainingResult, train_outcome
from riskstrat.pipelines.audit import audit_registered_model
from riskstrat.pipelines.config import Config
from riskstrat.pipelines.environment import configure_environment
from riskstrat.pipelines.features import build_feature_file, held_out_test_rows, need_at
from riskstrat.pipelines.logs import run_logger
from riskstrat.pipelines.monitor import REFERENCE_ARTIFACT, log_reference, reference_for
from riskstrat.pipelines.shared import IO_RETRIES, holds_output_lock, load_run_config, tracking_uri
from riskstrat.pipelines.validate import run_gate


def feature_names_from(dictionary: pd.DataFrame) -> list[str]:
    """Model input columns: the feature dictionary's ``name`` column, in order."""
    return [str(name) for name in dictionary["name"]]


@task(name="train-models")
def train_models(
    training_table: pd.DataFrame,
    dictionary: pd.DataFrame,
    settings: ModelSettings,
    truth: pd.DataFrame | None = None,
) -> dict[str, TrainingResult]:
    """Train, calibrate and evaluate one model per configured outcome.

    Args:
        training_table: Stacked training table from the features stage.
        dictionary: Feature dictionary (its ``name`` column lists the model inputs).
        settings: Model settings.
        truth: Synthetic ground truth for the oracle baseline (None on real data).

    Returns:
        Outcome -> training result.
    """
    names = feature_names_from(dictionary)
    results = {}
    for outcome in settings.outcomes:
        results[outcome] = train_outcome(training_table, names, outcome, settings, truth=truth)
        run_logger(__name__).info(
            "%s: test AUROC %.3f, calibration %s",
            outcome,
            results[outcome].metrics.query("model == 'lightgbm' and metric == 'auroc'")["value"].iloc[0],
            results[outcome].model.calibrator.method,
        )
    return results


@task(name="register-challenger")
def register_challenger(
    result: TrainingResult,
    training_table: pd.DataFrame,
    dictionary: pd.DataFrame,
    settings: ModelSettings,
    output_dir: Path,
    extract_snapshot_hash: str = "unknown",
    settings_hash: str = "unknown",
    validation_warnings: Sequence[str] = (),
) -> Registration:
    """Log the run to MLflow, with its evaluation plots, and register the model version as ``challenger``."""
    test = held_out_part(training_table, result)
    figures = training_figures(result, test)
    try:
        return log_training_run(
            result,
            settings,
            settings.mlflow.resolved_tracking_uri(output_dir),
            settings.mlflow.resolved_artifact_dir(output_dir),
            feature_dictionary=dictionary,
            extract_snapshot_hash=extract_snapshot_hash,
            settings_hash=settings_hash,
            validation_warnings=validation_warnings,
            figures=figures,
        )
    finally:
        close_figures(figures)


@task(name="drift-reference")
def store_drift_reference(
    registration: Registration, result: TrainingResult, training_table: pd.DataFrame, config: Config
) -> None:
    """Log the model's drift reference (``monitoring/reference.json``) on its training run.

    The reference holds its test rows' score and top-feature distributions and its gain
    importance; the weekly monitoring measures drift against it.
    """
    test = held_out_part(training_table, result)
    reference = reference_for(
        result.test_scores["lightgbm"].to_numpy(), test, result.model, result.outcome, config.monitoring
    )
    log_reference(registration.run_id, registration.tracking_uri, reference)
    run_logger(__name__).info("%s: drift reference logged as %s", result.outcome, REFERENCE_ARTIFACT)


@task(name="promote")
def promote_challenger(
    registration: Registration,
    result: TrainingResult,
    training_table: pd.DataFrame,
    settings: ModelSettings,
    apply: bool | None = None,
    open_fairness_flags: Sequence[str] = (),
) -> PromotionDecision:
    """Judge the challenger on its test rows and move ``champion`` when the gates pass."""
    test = held_out_part(training_table, result)
    decision = promote(
        registration,
        test,
        test[result.outcome].to_numpy(),
        result.metrics,
        settings,
        apply=apply,
        open_fairness_flags=open_fairness_flags,
        challenger=result.model,
    )
    run_logger(__name__).info(decision.summary())
    return decision


def held_out_part(table: pd.DataFrame, result: TrainingResult) -> pd.DataFrame:
    """The test rows of ``result`` as a frame of their own (consolidated: the audit adds columns to it)."""
    return table.iloc[result.test_rows].copy()


# ----------------------------------------------------------------------------- the retrain flow


@dataclass
class RetrainResult:
    """What a retrain produced, per outcome (aggregates only)."""

    decisions: dict[str, Any] = field(default_factory=dict)
    registrations: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, dict[str, float]] = field(default_factory=dict)
    reports: dict[str, str] = field(default_factory=dict)
    open_flags: dict[str, list[str]] = field(default_factory=dict)

    def summary(self) -> str:
        """Plain-text summary for the command line."""
        lines = []
        for outcome, decision in self.decisions.items():
            m = self.metrics.get(outcome, {})
            lines.append(
                f"{outcome}: AUROC {m.get('auroc', float('nan')):.3f} "
                f"(95% CI {m.get('auroc_ci_low', float('nan')):.3f}-{m.get('auroc_ci_high', float('nan')):.3f}), "
                f"calibration slope {m.get('calibration_slope', float('nan')):.2f}; report {self.reports.get(outcome)}"
            )
            lines.append(decision.summary())
        return "\n".join(lines)


@task(name="training-table", **IO_RETRIES)
def training_table(config: Config, extract_dir: Path, snapshot_hash: str | None = None) -> pd.DataFrame:
    """Features and outcomes stacked over the training, validation and test as-of dates, with need columns.

    ``snapshot_hash``: the gate's hash of the extract (default: hashed by each feature build).
    Each date's matrix is read and joined to its need columns in Arrow, the dates are stacked
    and sorted in Arrow, and the table comes to pandas once (features float32): the table is
    never copied whole, so memory grows with it and no faster (docs/performance.md).
    """
    as_of = config.model.as_of
    schema = feature_matrix_schema(feature_names(config.features), outcome_columns(config.outcomes))
    dates = sorted({*as_of.train, as_of.validation, as_of.test})
    # Every date's matrix is built (or found) and written first, so the engine's working memory
    # is never held alongside the dates already read.
    built = {
        when: build_feature_file(
            extract_dir,
            config.data.output_dir,
            when,
            config.features,
            config.outcomes,
            config.data.extract_date,
            snapshot_hash,
            config.sources.social_care.county_of_district,
        )
        for when in dates
    }
    stacked = stack_tables(training_part(config, extract_dir, when, built[when]) for when in dates)
    return schema.check(matrix_frame(stacked))


def training_part(config: Config, extract_dir: Path, when: date, built: Path) -> pa.Table:
    """One as-of date's rows of the training table (Arrow): its stored feature matrix ``built`` and need columns."""
    matrix = pq.read_table(built)
    need = need_at.fn(
        extract_dir, when, matrix.column("person_id").to_pandas(), config.features, config.outcomes
    )
    # A left join on person_id that keeps the matrix's row order (need has one row per person).
    need = pa.Table.from_pandas(need.drop(columns="as_of"), preserve_index=False)
    if pc.count_distinct(need.column("person_id")).as_py() != need.num_rows:
        raise RiskstratError(
            f"the need columns at {when} repeat a person",
            hint="realised_need must return one row per person.",
        )
    rows = pc.index_in(matrix.column("person_id"), value_set=need.column("person_id"))
    for name in need.column_names:
        if name != "person_id":
            matrix = matrix.append_column(name, pc.take(need.column(name), rows))
    return matrix


def read_training_table(path: Path) -> pd.DataFrame:
    """A training table written to Parquet, as :func:`training_table` returns it (converted once)."""
    return matrix_frame(pq.read_table(path))


@task(name="read-truth", **IO_RETRIES)
def read_truth(truth_dir: Path | None) -> pd.DataFrame | None:
    """Synthetic ground truth for the oracle baseline (``data.truth_dir``), or None on real data."""
    if truth_dir is None or not (Path(truth_dir) / "risk.parquet").is_file():
        return None
    truth = pd.read_parquet(Path(truth_dir) / "risk.parquet")
    truth["as_of"] = pd.to_datetime(truth["as_of"]).dt.date
    return truth


def dictionary_frame(dictionary: Mapping[str, Any]) -> pd.DataFrame:
    """The feature dictionary as a table (one row per feature, in model order)."""
    rows = [asdict(spec) if is_dataclass(spec) else dict(spec) for spec in dictionary.values()]
    frame = pd.DataFrame(rows)
    if "name" not in frame.columns:
        frame.insert(0, "name", list(dictionary))
    return frame


def _metric_summary(metrics: pd.DataFrame) -> dict[str, float]:
    """LightGBM's test metrics with their intervals, flat (``auroc``, ``auroc_ci_low``, ...)."""
    lightgbm = metrics.query("model == 'lightgbm'").set_index("metric")
    return {
        **lightgbm["value"].to_dict(),
        **{f"{k}_ci_low": v for k, v in lightgbm["ci_low"].to_dict().items()},
        **{f"{k}_ci_high": v for k, v in lightgbm["ci_high"].to_dict().items()},
    }


@flow(name="retrain", flow_run_name=lambda: f"retrain-{date.today().isoformat()}", validate_parameters=False)
@holds_output_lock("train")
def retrain_flow(config_dir: str | None = None, extract_dir: str | None = None) -> RetrainResult:
    """Validate -> features -> train -> calibrate -> evaluate -> register challenger -> audit -> promote.

    Promotion happens only when every gate passes, including no open fairness
    flag, and ``model.promotion.auto_promote`` is on.
    """
    config = load_run_config(config_dir)
    extract = Path(extract_dir or config.data.extract_dir)
    report = run_gate(config, extract)
    warnings = [f"{w.table}.{w.column}: {w.expected}" for w in report.warnings]
    table = training_table(config, extract, report.snapshot_hash)
    # The features the table has: the social care ones only when the extract has the table.
    dictionary = dictionary_frame(trained_dictionary(config.features, table.columns))
    truth = read_truth(config.data.truth_dir)
    results = train_models(table, dictionary, config.model, truth)
    retrained = RetrainResult()
    for outcome, result in results.items():
        registration = register_challenger(
            result,
            table,
            dictionary,
            config.model,
            config.data.output_dir,
            report.snapshot_hash,
            config.settings_hash(),
            warnings,
        )
        store_drift_reference(registration, result, table, config)
        audit = audit_registered_model(
            config,
            registration,
            result.model,
            held_out_part(table, result),
            result.test_scores["lightgbm"].to_numpy(),
            result.metrics,
            table,
        )
        flags = [f.flag_id for f in audit.open_flags]
        tag_run(registration, FAIRNESS_FLAGS_TAG, json.dumps(flags))
        retrained.decisions[outcome] = promote_challenger(
            registration, result, table, config.model, None, flags
        )
        retrained.registrations[outcome] = registration
        retrained.metrics[outcome] = _metric_summary(result.metrics)
        retrained.reports[outcome] = str(audit.html_path)
        retrained.open_flags[outcome] = flags
    return retrained


# ----------------------------------------------------------------------------- promotion (CLI)


@holds_output_lock("promote")
def run_promotion(config: Config, outcome: str | None = None) -> list[PromotionDecision]:
    """``riskstrat promote``: judge each challenger against its champion on the challenger's test rows.

    The test rows are rebuilt from the cached feature matrix at the test as-of
    date and the person split, exactly as training chose them; the challenger's
    logged test metrics and open fairness flags are read from its MLflow run.
    """
    configure_environment(config.data.output_dir)
    modelled = tuple(config.model.outcomes)
    outcomes = [outcome] if outcome else list(modelled)
    uri = tracking_uri(config)
    test = None
    decisions = []
    for name in outcomes:
        if name not in modelled:
            raise RiskstratError(
                f"--outcome {name!r} is not a modelled outcome",
                hint=f"Use one of {', '.join(modelled)} (model.outcomes in configs/model.yaml).",
            )
        registration, run = registered_version(
            name, config.model.mlflow.registered_models[name], CHALLENGER, uri
        )
        # Both outcomes share the test rows: read them once.
        test = held_out_test_rows(config, Path(config.data.extract_dir)) if test is None else test
        decisions.append(
            promote(
                registration,
                test,
                test[name].to_numpy(),
                logged_test_metrics(registration),
                config.model,
                apply=True,
                open_fairness_flags=open_fairness_flags(run),
                challenger=load_model(
                    f"models:/{registration.model_name}/{registration.version}", registration.tracking_uri
                ),
            )
        )
    return decisions
