"""Retrain flow pieces: train -> calibrate -> evaluate -> register challenger -> promote.

The lead wires validate -> features in front of :func:`train_models`. All model
logic lives in ``riskstrat.models``; these tasks only pass data and settings
between the stages and write nothing but MLflow runs.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd
from prefect import flow, task

from riskstrat.models.promotion import PromotionDecision, promote
from riskstrat.models.registry import Registration, log_training_run
from riskstrat.models.settings import ModelSettings
from riskstrat.models.training import TrainingResult, train_outcome
from riskstrat.pipelines.logs import run_logger


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
    """Log the run to MLflow and register the model version as ``challenger``."""
    test = training_table.iloc[result.test_rows]
    return log_training_run(
        result,
        settings,
        settings.mlflow.resolved_tracking_uri(output_dir),
        settings.mlflow.resolved_artifact_dir(output_dir),
        feature_dictionary=dictionary,
        extract_snapshot_hash=extract_snapshot_hash,
        settings_hash=settings_hash,
        validation_warnings=validation_warnings,
        test_features=test,
    )


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
    test = training_table.iloc[result.test_rows]
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


@flow(name="train-register-promote")
def train_register_promote(
    training_table: pd.DataFrame,
    dictionary: pd.DataFrame,
    settings: ModelSettings,
    output_dir: Path,
    truth: pd.DataFrame | None = None,
    extract_snapshot_hash: str = "unknown",
    settings_hash: str = "unknown",
    validation_warnings: Sequence[str] = (),
) -> dict[str, PromotionDecision]:
    """The model half of the retrain flow (after validate and features)."""
    results = train_models(training_table, dictionary, settings, truth)
    decisions = {}
    for outcome, result in results.items():
        registration = register_challenger(
            result,
            training_table,
            dictionary,
            settings,
            output_dir,
            extract_snapshot_hash,
            settings_hash,
            validation_warnings,
        )
        decisions[outcome] = promote_challenger(registration, result, training_table, settings)
    return decisions
