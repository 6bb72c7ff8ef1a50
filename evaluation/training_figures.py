"""The evaluation plots logged with every training run (aggregates only).

Made here, in evaluation, and handed to :func:`riskstrat.models.registry.log_training_run`
by the retrain flow, so the models stage never imports evaluation.
"""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd
from matplotlib.figure import Figure

from riskstrat.evaluation import plots
from riskstrat.models.baselines import LOGISTIC, PRIOR_UTILISATION
from riskstrat.models.calibration import reliability_table
from riskstrat.models.explain import contributions
from riskstrat.models.training import TrainingResult

SHAP_SAMPLE_ROWS = 5000
"""Test rows the SHAP summary is computed on (only mean |SHAP| per feature is plotted)."""


def training_figures(result: TrainingResult, test_features: pd.DataFrame | None = None) -> dict[str, Figure]:
    """The plots of one training run, by file name (``roc.png``, ``calibration.png``, ...).

    Args:
        result: The output of :func:`riskstrat.models.training.train_outcome`.
        test_features: The test rows' features, for the SHAP summary (left out when None).

    Returns:
        File name -> figure; close them with :func:`close_figures` once logged.
    """
    scores = {name: result.test_scores[name].to_numpy() for name in result.metrics["model"].unique()}
    probability_scores = {k: v for k, v in scores.items() if k != PRIOR_UTILISATION}
    y = result.test_scores["y"].to_numpy()
    reliability = {
        "LightGBM before calibration": result.reliability_test["before"],
        "LightGBM after calibration": result.reliability_test["after"],
    }
    if LOGISTIC in scores:
        reliability["logistic regression"] = reliability_table(
            y, scores[LOGISTIC], len(reliability["LightGBM after calibration"])
        )
    booster = result.model.booster
    importance = pd.Series(
        booster.feature_importance(importance_type="gain"), index=booster.feature_name(), name="gain"
    )
    figures = {
        "roc.png": plots.roc_plot(y, scores),
        "precision_recall.png": plots.precision_recall_plot(y, scores),
        "calibration.png": plots.calibration_plot(reliability),
        "risk_distribution.png": plots.risk_distribution_plot(y, probability_scores),
        "ppv_at_top.png": plots.lift_plot(y, scores),
        "feature_importance.png": plots.feature_importance_plot(importance),
    }
    if test_features is not None:
        sample = test_features.sample(n=min(len(test_features), SHAP_SAMPLE_ROWS), random_state=0)
        contrib = contributions(booster, sample, result.model.feature_names)
        figures["shap_summary.png"] = plots.shap_summary_plot(
            contrib.drop(columns=["bias"]).to_numpy(), sample, result.model.feature_names, plot_type="bar"
        )
    return figures


def close_figures(figures: Mapping[str, Figure]) -> None:
    """Release the figures' memory once they are logged."""
    for figure in figures.values():
        plots.plt.close(figure)
