"""The model card: what the governance report says about a registered model.

Built from the model's registration, its test metrics, the table it was
trained on and the settings in force; the report renders it.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from riskstrat.evaluation.disclosure import count
from riskstrat.evaluation.report import ModelInfo
from riskstrat.features.outcomes import outcome_definition
from riskstrat.features.settings import OutcomeSettings
from riskstrat.models.baselines import LIGHTGBM
from riskstrat.models.promotion import calibration_checks
from riskstrat.models.registry import Registration
from riskstrat.models.settings import ModelSettings
from riskstrat.models.training import RiskModel

MISSING_DATA = "Missing event history means no events; LightGBM handles missing numeric values natively."


def training_data_text(table: pd.DataFrame, model_settings: ModelSettings) -> str:
    """What the model was trained on: people and rows (disclosure-controlled) and the as-of dates."""
    as_of = model_settings.as_of
    return (
        f"{count(table['person_id'].nunique()):,} people, {count(len(table)):,} person-time rows at as-of dates "
        f"{', '.join(str(d) for d in sorted(set(table['as_of'])))}; trained on {', '.join(map(str, as_of.train))}, "
        f"calibrated on {as_of.validation}, tested on {as_of.test}"
    )


def model_card(
    registration: Registration,
    model: RiskModel,
    test_metrics: pd.DataFrame,
    table: pd.DataFrame,
    model_settings: ModelSettings,
    outcome_settings: OutcomeSettings,
    synthetic: bool,
) -> ModelInfo:
    """The model card of a registered model.

    Args:
        registration: The model version (outcome, name, version, run).
        model: The model itself (its predictors and calibration).
        test_metrics: The tidy test metrics logged with its training run.
        table: The rows described as training data (the training table or the test rows).
        model_settings: Model settings (as-of dates, promotion gates).
        outcome_settings: Outcome settings (the outcome's definition).
        synthetic: True when the data are synthetic (the report says so).

    Returns:
        What the report says about the model.
    """
    metrics = test_metrics.query(f"model == '{LIGHTGBM}'").set_index("metric")["value"].to_dict()
    as_of = model_settings.as_of
    return ModelInfo(
        outcome=registration.outcome,
        model_name=registration.model_name,
        model_version=registration.version,
        training_data=training_data_text(table, model_settings),
        outcome_definition=outcome_definition(registration.outcome, outcome_settings),
        metrics={k: float(v) for k, v in metrics.items()},
        run_id=registration.run_id,
        test_as_of=str(as_of.test),
        predictors=tuple(model.feature_names),
        calibration_method=f"{model.calibrator.method} on the validation as-of date ({as_of.validation})",
        missing_data=MISSING_DATA,
        synthetic=synthetic,
        # Quoted on the events as the report shows them, so the report gives one O/E for the test rows.
        promotion_checks=tuple(
            calibration_checks(
                test_metrics, model_settings.promotion, shown_events=_shown_events(test_metrics)
            )[1]
        ),
    )


def _shown_events(test_metrics: pd.DataFrame) -> float | str | None:
    """The test rows' events as the report shows them: rounded to 5, ``"*"`` when 1-7, None when unknown."""
    rows = test_metrics[(test_metrics["model"] == LIGHTGBM) & (test_metrics["metric"] == "oe_ratio")]
    if rows.empty or "events" not in rows.columns:
        return None
    shown = count(float(rows["events"].iloc[0]))
    return float(shown) if isinstance(shown, int) else shown


def is_synthetic(truth_dir: Path | None) -> bool:
    """True when the run has synthetic ground truth beside its extract (``data.truth_dir`` exists)."""
    return truth_dir is not None and Path(truth_dir).is_dir()
