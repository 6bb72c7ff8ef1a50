"""Evaluation plots: LightGBM side by side with its baselines on the same test rows.

Every function returns a matplotlib Figure (Agg backend, no display needed);
:func:`save_figure` writes it as PNG. Plots show aggregates (curves, binned
rates, histograms, mean contributions), never an identifiable row.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from sklearn.metrics import average_precision_score, precision_recall_curve, roc_auc_score, roc_curve

from riskstrat.io import atomic_path


def save_figure(figure: Figure, target: Path, dpi: int = 110) -> Path:
    """Write ``figure`` as PNG, atomically, and close it."""
    target = Path(target)
    with atomic_path(target) as tmp:
        figure.savefig(tmp, format="png", dpi=dpi, bbox_inches="tight")
    plt.close(figure)
    return target


def roc_plot(y: np.ndarray, scores: Mapping[str, np.ndarray], title: str = "ROC curve") -> Figure:
    """ROC curves of every model (AUROC in the legend)."""
    fig, ax = plt.subplots(figsize=(5.5, 5))
    for name, score in scores.items():
        fpr, tpr, _ = roc_curve(y, score)
        ax.plot(fpr, tpr, label=f"{name} (AUROC {roc_auc_score(y, score):.3f})")
    ax.plot([0, 1], [0, 1], linestyle=":", color="grey", label="chance")
    ax.set(xlabel="1 - specificity", ylabel="sensitivity", title=title)
    ax.legend(loc="lower right", fontsize=8)
    return fig


def precision_recall_plot(
    y: np.ndarray, scores: Mapping[str, np.ndarray], title: str = "Precision-recall curve"
) -> Figure:
    """Precision-recall curves of every model, with the event rate as reference."""
    fig, ax = plt.subplots(figsize=(5.5, 5))
    for name, score in scores.items():
        precision, recall, _ = precision_recall_curve(y, score)
        ax.plot(recall, precision, label=f"{name} (AP {average_precision_score(y, score):.3f})")
    ax.axhline(np.mean(y), linestyle=":", color="grey", label="event rate")
    ax.set(xlabel="recall (sensitivity)", ylabel="precision (PPV)", title=title)
    ax.legend(loc="upper right", fontsize=8)
    return fig


def calibration_plot(
    reliability: Mapping[str, pd.DataFrame], title: str = "Calibration (reliability)"
) -> Figure:
    """Observed event rate against mean predicted risk per bin, one line per table.

    Args:
        reliability: Label -> reliability table (``mean_predicted``, ``observed_rate``),
            e.g. LightGBM before and after calibration and the logistic baseline.
        title: Plot title.
    """
    fig, ax = plt.subplots(figsize=(5.5, 5))
    top = 0.0
    for name, table in reliability.items():
        ax.plot(table["mean_predicted"], table["observed_rate"], marker="o", label=name)
        top = max(top, float(table["mean_predicted"].max()), float(table["observed_rate"].max()))
    ax.plot([0, top], [0, top], linestyle=":", color="grey", label="perfect calibration")
    ax.set(xlabel="mean predicted risk", ylabel="observed event rate", title=title)
    ax.legend(loc="upper left", fontsize=8)
    return fig


def risk_distribution_plot(
    y: np.ndarray, scores: Mapping[str, np.ndarray], title: str = "Predicted risk distribution"
) -> Figure:
    """Histograms of predicted risk for people with and without the outcome, per model."""
    fig, axes = plt.subplots(1, len(scores), figsize=(4.5 * len(scores), 4), squeeze=False)
    y = np.asarray(y)
    for ax, (name, score) in zip(axes[0], scores.items(), strict=True):
        bins = np.linspace(0, float(np.quantile(score, 0.995)) or 1.0, 40)
        ax.hist(score[y == 0], bins=bins, alpha=0.6, density=True, label="no event")
        ax.hist(score[y == 1], bins=bins, alpha=0.6, density=True, label="event")
        ax.set(xlabel="predicted risk", ylabel="density", title=name)
        ax.legend(fontsize=8)
    fig.suptitle(title)
    return fig


def feature_importance_plot(
    importance: pd.Series, title: str = "Feature importance (gain)", top_n: int = 25
) -> Figure:
    """Horizontal bars of the largest importances."""
    top = importance.sort_values(ascending=True).tail(top_n)
    fig, ax = plt.subplots(figsize=(6, 0.3 * len(top) + 1.2))
    ax.barh(top.index.astype(str), top.to_numpy())
    ax.set(xlabel=importance.name or "importance", title=title)
    return fig


def shap_summary_plot(
    contributions: np.ndarray,
    features: pd.DataFrame,
    feature_names: Sequence[str],
    plot_type: str = "bar",
    title: str = "SHAP summary",
    max_display: int = 20,
) -> Figure:
    """SHAP summary of per-person contributions (log-odds scale).

    Args:
        contributions: ``(n, n_features)`` contributions (no bias column).
        features: The same rows' feature values (used by the beeswarm only).
        feature_names: Column names.
        plot_type: ``bar`` (mean |SHAP|, an aggregate: the default for anything logged)
            or ``dot`` (beeswarm: one point per person; keep it out of shared artifacts).
        title: Plot title.
        max_display: Most features shown.
    """
    # Deferred: shap takes about 8 s to import and only this plot needs it.
    import shap

    shap.summary_plot(
        contributions,
        features[list(feature_names)].to_numpy(dtype=float, na_value=np.nan),
        feature_names=list(feature_names),
        plot_type=plot_type,
        max_display=max_display,
        show=False,
    )
    fig = plt.gcf()
    fig.suptitle(title)
    return fig


def lift_plot(
    y: np.ndarray, scores: Mapping[str, np.ndarray], title: str = "PPV at the top of the list"
) -> Figure:
    """PPV among the top k% for k from 0.5% to 20%, per model."""
    shares = np.linspace(0.005, 0.2, 40)
    y = np.asarray(y, dtype=float)
    fig, ax = plt.subplots(figsize=(5.5, 4.5))
    for name, score in scores.items():
        order = np.argsort(-np.asarray(score), kind="stable")
        cum = np.cumsum(y[order])
        k = np.ceil(shares * len(y)).astype(int)
        ax.plot(shares * 100, cum[k - 1] / k, label=name)
    ax.axhline(y.mean(), linestyle=":", color="grey", label="event rate")
    ax.set(xlabel="top % of population", ylabel="PPV", title=title)
    ax.legend(fontsize=8)
    return fig
