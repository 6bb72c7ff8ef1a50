"""Per-person explanations: TreeSHAP contributions from LightGBM's own ``pred_contrib``.

LightGBM's ``pred_contrib=True`` is exact TreeSHAP (the same numbers as
``shap.TreeExplainer``) on the raw log-odds scale: for each row the
contributions plus ``bias`` (the expected raw score) add up to the model's raw
score. Compute them only for the rows that need reasons (e.g. listed people).
"""

from __future__ import annotations

from collections.abc import Sequence

import lightgbm as lgb
import numpy as np
import pandas as pd

BIAS = "bias"
"""Column holding the expected raw score (SHAP base value) in :func:`contributions`."""


def contributions(booster: lgb.Booster, features: pd.DataFrame, feature_names: Sequence[str]) -> pd.DataFrame:
    """TreeSHAP contribution of every feature for the given rows, on the log-odds scale.

    Args:
        booster: The fitted LightGBM booster (e.g. ``RiskModel.booster``).
        features: The rows to explain (only those; explaining a population is slow).
        feature_names: The booster's input columns, in its order.

    Returns:
        A frame indexed like ``features``: one column per feature plus ``bias``;
        each row sums to the raw score.
    """
    names = list(feature_names)
    matrix = features[names].to_numpy(dtype=np.float64, na_value=np.nan)
    values = booster.predict(matrix, pred_contrib=True)
    return pd.DataFrame(values, index=features.index, columns=[*names, BIAS])


def mean_absolute_contribution(contrib: pd.DataFrame) -> pd.Series:
    """Mean |contribution| per feature (a global importance; aggregate, safe to share)."""
    return contrib.drop(columns=[BIAS]).abs().mean().sort_values(ascending=False).rename("mean_abs_shap")
