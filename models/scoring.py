"""Scoring: calibrated probabilities from the registered champion (pandas; on Spark see ``spark_scoring``).

``load_champion`` returns a :class:`~riskstrat.models.training.RiskModel`, which
holds the calibrated predictor and, for worklist reasons, the raw LightGBM
booster (``.booster``) and its input columns (``.feature_names``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from riskstrat.errors import RiskstratError
from riskstrat.models.registry import CHAMPION, alias_version, load_model
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
