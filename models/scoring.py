"""Scoring: calibrated probabilities from the registered champion (pandas; on Spark see ``spark_scoring``).

``load_champion`` returns a :class:`~riskstrat.models.training.RiskModel`, which
holds the calibrated predictor and, for worklist reasons, the raw LightGBM
booster (``.booster``) and its input columns (``.feature_names``).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping

import numpy as np
import pandas as pd

from riskstrat.errors import RiskstratError
from riskstrat.features.outcomes import outcome_names
from riskstrat.models.registry import CHAMPION, alias_label, alias_version, load_model
from riskstrat.models.spark_scoring import SCORED_COLUMNS, probability_column
from riskstrat.models.training import RiskModel


def load_champion(name: str, tracking_uri: str, alias: str = CHAMPION) -> RiskModel:
    """Load ``models:/<name>@champion`` from the registry.

    Args:
        name: Registered model name (``emergency_admission`` or ``frequent_attendance``).
        tracking_uri: MLflow tracking/registry URI.
        alias: Alias to load (``champion`` by default; ``challenger`` to preview).

    Returns:
        The model: ``predict_proba`` for calibrated probabilities, ``booster`` and
        ``feature_names`` for ``pred_contrib`` reasons.

    Raises:
        RiskstratError: If no version carries the alias yet.
    """
    if alias_version(name, alias, tracking_uri) is None:
        raise RiskstratError(
            f"no {name} model has the alias '{alias}' in {tracking_uri}",
            hint="Run the retrain flow (riskstrat retrain) and promote a model (riskstrat promote).",
        )
    return load_model(f"models:/{name}@{alias}", tracking_uri)


def score(model: RiskModel, features: pd.DataFrame) -> np.ndarray:
    """Calibrated probability of the outcome for every row of a feature matrix.

    Args:
        model: A loaded or in-memory model.
        features: Rows with (at least) the model's feature columns.

    Returns:
        One probability per row, in row order.
    """
    return model.predict_proba(features)


def champion_models(
    registered_models: Mapping[str, str], tracking_uri: str, required: Collection[str]
) -> tuple[dict[str, RiskModel], dict[str, str]]:
    """The champion of each outcome that has one, loaded once from the registry.

    An outcome in ``required`` (an MDT ranks its list by it) must have a
    champion; any other outcome without one is left out (and left unscored).

    Args:
        registered_models: Outcome -> registered model name (``model.mlflow.registered_models``).
        tracking_uri: MLflow tracking/registry URI.
        required: Outcomes that must have a champion.

    Returns:
        ``(models, versions)``: outcome -> model, and outcome -> "<name> v<version>".

    Raises:
        RiskstratError: If an outcome in ``required`` has no champion.
    """
    models, versions = {}, {}
    for outcome in outcome_names():
        name = registered_models[outcome]
        try:
            model = load_champion(name, tracking_uri)
        except RiskstratError as exc:
            if outcome in required:
                raise RiskstratError(
                    f"no champion model for {name} in {tracking_uri}, and an MDT ranks its list by {outcome}",
                    hint="Run `riskstrat train` (a first model becomes champion when it passes every gate) "
                    "or `riskstrat promote`; see the promotion reasons in MLflow.",
                ) from exc
            continue
        models[outcome] = model
        versions[outcome] = alias_label(name, CHAMPION, tracking_uri)
    return models, versions


def with_unscored_outcomes(scored: pd.DataFrame) -> pd.DataFrame:
    """Add an empty probability column for every outcome without a champion; probabilities last, in outcome order."""
    for outcome in outcome_names():
        if probability_column(outcome) not in scored.columns:
            scored[probability_column(outcome)] = float("nan")
    probabilities = [probability_column(o) for o in outcome_names()]
    return scored[[c for c in scored.columns if c not in probabilities] + probabilities]


def score_population(features: pd.DataFrame, models: Mapping[str, RiskModel]) -> pd.DataFrame:
    """Score every row of a feature matrix with each outcome's model.

    Args:
        features: The feature matrix (person_id, practice_code, age and the model inputs).
        models: Outcome -> champion (:func:`champion_models`).

    Returns:
        person_id, practice_code, age and one probability column per outcome
        (empty for an outcome without a model).
    """
    scored = features[list(SCORED_COLUMNS)].copy()
    for outcome, model in models.items():
        scored[probability_column(outcome)] = score(model, features)
    return with_unscored_outcomes(scored)
