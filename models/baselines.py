"""Baselines every LightGBM model is compared with on the same test rows.

- prior utilisation: rank by emergency admissions in the last 12 months, then by
  age (older first); a ranking, not a probability, so only ranking metrics apply.
- logistic regression on the same features (missing values imputed with the
  training median, standardised), fitted on the same training rows.
- oracle: the synthetic population's true risk, when a truth frame is given.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

from riskstrat.errors import RiskstratError

PRIOR_UTILISATION = "prior_utilisation"
LOGISTIC = "logistic_regression"
ORACLE = "oracle"
LIGHTGBM = "lightgbm"


def prior_utilisation_score(features: pd.DataFrame) -> np.ndarray:
    """Rank score of the prior-utilisation rule: emergency admissions in 365 days, then age.

    Age (years, < 1000) is scaled below one admission, so it only orders people
    with the same number of admissions.

    Args:
        features: Frame with ``emergency_admissions_365d`` and ``age``.

    Returns:
        A score: higher means higher on the list.
    """
    missing = [c for c in ("emergency_admissions_365d", "age") if c not in features.columns]
    if missing:
        raise RiskstratError(
            f"the prior-utilisation baseline needs column(s) {', '.join(missing)} in the training table",
            hint="Build features with the default feature set (configs/features.yaml).",
        )
    admissions = features["emergency_admissions_365d"].astype(float).fillna(0).to_numpy()
    age = features["age"].astype(float).fillna(0).clip(0, 999).to_numpy()
    return admissions + age / 1000.0


def fit_logistic(
    features: pd.DataFrame, y: np.ndarray, feature_names: Sequence[str], seed: int = 42
) -> Pipeline:
    """Fit the logistic-regression baseline on the training rows.

    Args:
        features: Training rows.
        y: 0/1 outcomes.
        feature_names: Model input columns (the same as LightGBM's).
        seed: Seed (the solver is deterministic; kept for symmetry).

    Returns:
        A fitted scikit-learn pipeline (median imputation, scaling, logistic regression).
    """
    pipeline = make_pipeline(
        SimpleImputer(strategy="median", keep_empty_features=True),
        StandardScaler(),
        LogisticRegression(max_iter=2000, random_state=seed),
    )
    pipeline.fit(features[list(feature_names)].to_numpy(dtype=float), np.asarray(y).astype(int))
    return pipeline


def logistic_score(model: Pipeline, features: pd.DataFrame, feature_names: Sequence[str]) -> np.ndarray:
    """Predicted probabilities of the logistic baseline."""
    return model.predict_proba(features[list(feature_names)].to_numpy(dtype=float))[:, 1]


def oracle_score(rows: pd.DataFrame, truth: pd.DataFrame, column: str) -> np.ndarray:
    """The true risk of each row from the synthetic truth frame.

    Args:
        rows: Rows with ``person_id`` and ``as_of``.
        truth: ``truth/risk.parquet``: ``person_id``, ``as_of`` and the outcome's truth column.
        column: The outcome's truth column (its spec's ``truth_column``, e.g. ``p_emergency_admission``).

    Returns:
        The true probability of each row, in the order of ``rows``.

    Raises:
        RiskstratError: If the truth lacks the column or some rows.
    """
    if column not in truth.columns:
        raise RiskstratError(f"the truth frame has no column {column}", hint="Regenerate the synthetic data.")
    keys = rows[["person_id", "as_of"]].copy()
    keys["as_of"] = pd.to_datetime(keys["as_of"])
    lookup = truth[["person_id", "as_of", column]].copy()
    lookup["as_of"] = pd.to_datetime(lookup["as_of"])
    lookup["person_id"] = lookup["person_id"].astype(keys["person_id"].dtype)
    merged = keys.merge(lookup, on=["person_id", "as_of"], how="left", validate="many_to_one")
    n_missing = int(merged[column].isna().sum())
    if n_missing:
        raise RiskstratError(
            f"the truth frame lacks {n_missing:,} of {len(rows):,} test rows",
            details=f"e.g. person {merged.loc[merged[column].isna(), 'person_id'].iloc[0]}",
            hint="Use the truth written with the same synthetic extract.",
        )
    return merged[column].to_numpy(dtype=float)
