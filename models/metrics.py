"""Discrimination, calibration and worklist metrics, each with a bootstrap 95% interval.

Every metric is computed from case weights over rows sorted once by risk: the
point estimate uses weight 1 for every row, a bootstrap resample uses how often
each row was drawn. The resamples come from one seeded generator, so every
model scored on the same rows is judged on the same resamples (paired).

Definitions:
    auroc: area under the ROC curve (ties count one half), as scikit-learn.
    auprc: average precision, as scikit-learn's ``average_precision_score``.
    brier: mean squared difference between predicted risk and outcome.
    calibration_intercept: calibration-in-the-large: the intercept ``a`` of
        ``logit P(y=1) = a + logit(p)`` (logit(p) as offset); 0 is ideal.
    calibration_slope: ``b`` in the logistic recalibration ``logit P(y=1) = a + b logit(p)``; 1 is ideal.
    oe_ratio: observed events / expected events (sum of predicted risk); 1 is ideal.
    ppv_top_<k>pct / sensitivity_top_<k>pct: among the ``ceil(k% x n)`` highest-risk
        people, the share who had the outcome / the share of all events they hold.
    ppv_at_capacity / sensitivity_at_capacity: the same at the worklist capacity share.
    auroc_difference (from :func:`compare_models` with a reference): the reference
        model's AUROC minus this model's, interval from the paired resamples.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence

import numpy as np
import pandas as pd
import statsmodels.api as sm

METRIC_COLUMNS = ["metric", "value", "ci_low", "ci_high", "n", "events"]
"""Columns of every tidy metric table (plus ``model`` when several models are compared)."""

RANKING_ONLY = {"auroc", "auprc"}
"""Metrics that use only the ordering of scores (the rest need probabilities)."""

AUROC_DIFFERENCE = "auroc_difference"
"""Metric of :func:`compare_models` rows: the reference model's AUROC minus this model's (paired)."""

_EPS = 1e-12


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(p, dtype=float), 1e-9, 1 - 1e-9)
    return np.log(p / (1 - p))


def fraction_label(fraction: float) -> str:
    """Name suffix of a top share, e.g. 0.01 -> ``top_1pct``, 0.005 -> ``top_0_5pct``."""
    pct = f"{fraction * 100:g}".replace(".", "_")
    return f"top_{pct}pct"


class _Sorted:
    """Outcome and score sorted once by descending score, with tie groups."""

    def __init__(self, y: np.ndarray, score: np.ndarray) -> None:
        order = np.argsort(-score, kind="stable")
        self.y = y[order].astype(float)
        self.score = score[order]
        self.order = order
        # Start of each run of equal scores: metrics treat tied rows as one threshold.
        change = np.r_[True, self.score[1:] != self.score[:-1]]
        self.group_starts = np.flatnonzero(change)

    def auroc(self, w: np.ndarray) -> float:
        pos = np.add.reduceat(w * self.y, self.group_starts)
        neg = np.add.reduceat(w * (1 - self.y), self.group_starts)
        total_pos, total_neg = pos.sum(), neg.sum()
        if total_pos <= 0 or total_neg <= 0:
            return float("nan")
        pos_above = np.cumsum(pos) - pos
        return float(np.sum(neg * (pos_above + 0.5 * pos)) / (total_pos * total_neg))

    def auprc(self, w: np.ndarray) -> float:
        pos = np.add.reduceat(w * self.y, self.group_starts)
        cnt = np.add.reduceat(w, self.group_starts)
        total_pos = pos.sum()
        if total_pos <= 0:
            return float("nan")
        tp = np.cumsum(pos)
        n_sel = np.cumsum(cnt)
        precision = np.divide(tp, n_sel, out=np.zeros_like(tp), where=n_sel > 0)
        recall = tp / total_pos
        return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))

    def top(self, w: np.ndarray, fraction: float) -> tuple[float, float]:
        """PPV and sensitivity among the top ``ceil(fraction * n)`` people (weights = copies)."""
        total = w.sum()
        k = math.ceil(fraction * total)
        cum = np.cumsum(w)
        # Rows wholly inside the top k, plus the part of the boundary row that fits.
        taken = np.clip(k - (cum - w), 0, w)
        tp = float(np.sum(taken * self.y))
        events = float(np.sum(w * self.y))
        ppv = tp / k if k > 0 else float("nan")
        sens = tp / events if events > 0 else float("nan")
        return ppv, sens


def _fit_logistic(z: np.ndarray, y: np.ndarray, w: np.ndarray, slope: bool) -> tuple[float, float]:
    """Weighted logistic recalibration by Newton steps (2 parameters, or intercept with offset z)."""
    a, b = 0.0, 1.0
    for _ in range(50):
        eta = a + b * z
        mu = 1 / (1 + np.exp(-np.clip(eta, -30, 30)))
        r = w * (y - mu)
        v = w * mu * (1 - mu)
        if slope:
            g = np.array([r.sum(), (r * z).sum()])
            h = np.array([[v.sum(), (v * z).sum()], [(v * z).sum(), (v * z * z).sum()]])
            try:
                step = np.linalg.solve(h, g)
            except np.linalg.LinAlgError:
                return float("nan"), float("nan")
            a, b = a + step[0], b + step[1]
            if np.max(np.abs(step)) < 1e-10:
                break
        else:
            if v.sum() <= 0:
                return float("nan"), 1.0
            step = r.sum() / v.sum()
            a += step
            if abs(step) < 1e-10:
                break
    return float(a), float(b)


def calibration_intercept_slope(y: np.ndarray, p: np.ndarray) -> tuple[float, float]:
    """Calibration-in-the-large and calibration slope by logistic recalibration (statsmodels).

    Args:
        y: 0/1 outcomes.
        p: Predicted probabilities.

    Returns:
        ``(intercept, slope)``: the intercept of ``logit P(y) = a + logit(p)`` and the
        slope ``b`` of ``logit P(y) = a + b logit(p)``.
    """
    y = np.asarray(y, dtype=float)
    z = _logit(p)
    slope_fit = sm.GLM(y, sm.add_constant(z), family=sm.families.Binomial()).fit()
    intercept_fit = sm.GLM(y, np.ones((len(y), 1)), family=sm.families.Binomial(), offset=z).fit()
    return float(intercept_fit.params[0]), float(slope_fit.params[1])


def _metric_names(top_fractions: Sequence[float], probabilities: bool) -> list[str]:
    names = ["auroc", "auprc"]
    if probabilities:
        names += ["brier", "calibration_intercept", "calibration_slope", "oe_ratio"]
    for f in top_fractions:
        names += [f"ppv_{fraction_label(f)}", f"sensitivity_{fraction_label(f)}"]
    names += ["ppv_at_capacity", "sensitivity_at_capacity"]
    return names


def _weighted_metrics(
    s: _Sorted,
    z: np.ndarray,
    w: np.ndarray,
    top_fractions: Sequence[float],
    capacity_share: float,
    probabilities: bool,
) -> list[float]:
    values = [s.auroc(w), s.auprc(w)]
    if probabilities:
        p = s.score
        total = w.sum()
        values.append(float(np.sum(w * (p - s.y) ** 2) / total))
        intercept, _ = _fit_logistic(z, s.y, w, slope=False)
        _, slope = _fit_logistic(z, s.y, w, slope=True)
        expected = float(np.sum(w * p))
        values += [intercept, slope, float(np.sum(w * s.y)) / expected if expected > 0 else float("nan")]
    for f in (*top_fractions, capacity_share):
        values.extend(s.top(w, f))
    return values


class BootstrapResamples:
    """Resample counts shared by every model evaluated on the same rows.

    Each resample says how often each of ``n`` rows was drawn. The index arrays
    come from one seeded generator and are drawn once: kept in memory when small
    (``n x n_boot`` up to 20 million), otherwise re-drawn identically from the seed.

    Args:
        n: Rows evaluated.
        n_boot: Resamples.
        seed: Seed of the generator.
    """

    _CACHE_LIMIT = 20_000_000

    def __init__(self, n: int, n_boot: int, seed: int) -> None:
        self.n, self.n_boot, self.seed = n, n_boot, seed
        self._cache: list[np.ndarray] | None = None
        if n * n_boot <= self._CACHE_LIMIT:
            self._cache = list(self._draw())

    def _draw(self) -> Iterator[np.ndarray]:
        rng = np.random.default_rng(self.seed)
        for _ in range(self.n_boot):
            yield np.bincount(rng.integers(0, self.n, size=self.n), minlength=self.n).astype(np.int32)

    def __iter__(self) -> Iterator[np.ndarray]:
        return iter(self._cache) if self._cache is not None else self._draw()

    def __len__(self) -> int:
        return self.n_boot


def evaluate_scores(
    y: np.ndarray,
    score: np.ndarray,
    *,
    probabilities: bool = True,
    top_fractions: Sequence[float] = (0.01, 0.02, 0.05),
    capacity_share: float = 0.005,
    n_boot: int = 200,
    seed: int = 20240101,
    resamples: BootstrapResamples | None = None,
) -> pd.DataFrame:
    """Every metric of one model's scores on the test rows, with bootstrap 95% intervals.

    Args:
        y: 0/1 outcomes.
        score: Predicted probabilities, or any risk score when ``probabilities`` is False.
        probabilities: Whether ``score`` is a probability; if not, only ranking metrics
            (AUROC, AUPRC, PPV and sensitivity) are reported.
        top_fractions: Shares of the population for PPV and sensitivity at the top.
        capacity_share: Worklist capacity as a share of the population.
        n_boot: Bootstrap resamples (percentile intervals).
        seed: Seed of the resamples.
        resamples: Resamples shared with other models on the same rows (overrides n_boot, seed).

    Returns:
        A tidy frame with columns metric, value, ci_low, ci_high, n, events.
    """
    if resamples is None:
        resamples = BootstrapResamples(len(y), n_boot, seed)
    table, _ = _evaluate(y, score, probabilities, top_fractions, capacity_share, resamples)
    return table


def _evaluate(
    y: np.ndarray,
    score: np.ndarray,
    probabilities: bool,
    top_fractions: Sequence[float],
    capacity_share: float,
    resamples: BootstrapResamples,
) -> tuple[pd.DataFrame, np.ndarray]:
    """:func:`evaluate_scores` and its bootstrap replicates (one row per resample, one column per metric)."""
    y = np.asarray(y).astype(float)
    score = np.asarray(score, dtype=float)
    if y.shape != score.shape:
        raise ValueError(f"outcome and score lengths differ: {y.shape} vs {score.shape}")
    if np.isnan(score).any():
        raise ValueError(f"{int(np.isnan(score).sum())} scores are missing (NaN)")
    s = _Sorted(y, score)
    z = _logit(s.score) if probabilities else s.score
    names = _metric_names(top_fractions, probabilities)
    values = _weighted_metrics(s, z, np.ones(len(y)), top_fractions, capacity_share, probabilities)
    if probabilities:
        # Point estimates of the recalibration come from statsmodels; bootstrap replicates
        # use the same model fitted by the small Newton solver above (same estimator).
        intercept, slope = calibration_intercept_slope(y, score)
        values[names.index("calibration_intercept")] = intercept
        values[names.index("calibration_slope")] = slope
    if resamples.n != len(y):
        raise ValueError(f"resamples are for {resamples.n} rows, not {len(y)}")
    reps = np.array(
        [
            _weighted_metrics(s, z, w[s.order].astype(float), top_fractions, capacity_share, probabilities)
            for w in resamples
        ]
    )
    with np.errstate(all="ignore"):
        low = np.nanpercentile(reps, 2.5, axis=0)
        high = np.nanpercentile(reps, 97.5, axis=0)
    table = pd.DataFrame(
        {
            "metric": names,
            "value": values,
            "ci_low": low,
            "ci_high": high,
            "n": len(y),
            "events": int(y.sum()),
        }
    )
    return table, reps


def compare_models(
    y: np.ndarray,
    scores: Mapping[str, np.ndarray],
    *,
    ranking_only: Sequence[str] = (),
    top_fractions: Sequence[float] = (0.01, 0.02, 0.05),
    capacity_share: float = 0.005,
    n_boot: int = 200,
    seed: int = 20240101,
    reference: str | None = None,
) -> pd.DataFrame:
    """Metrics of several models on the same rows and the same bootstrap resamples.

    Args:
        y: 0/1 outcomes.
        scores: Model name -> scores on the same rows.
        ranking_only: Names of models whose scores are not probabilities.
        top_fractions: Shares of the population for PPV and sensitivity at the top.
        capacity_share: Worklist capacity as a share of the population.
        n_boot: Bootstrap resamples.
        seed: Seed of the resamples.
        reference: A model in ``scores`` to compare the others with: each other model
            gets a row ``auroc_difference`` = AUROC of ``reference`` minus its own, with
            a paired interval (the same resamples for both), so "better than" carries
            its uncertainty.

    Returns:
        A tidy frame with columns model, metric, value, ci_low, ci_high, n, events.
    """
    resamples = BootstrapResamples(len(y), n_boot, seed)
    frames: list[pd.DataFrame] = []
    auroc: dict[str, tuple[float, np.ndarray]] = {}  # point estimate, bootstrap replicates
    for name, score in scores.items():
        table, reps = _evaluate(y, score, name not in ranking_only, top_fractions, capacity_share, resamples)
        column = table["metric"].tolist().index("auroc")
        auroc[name] = (float(table["value"].iloc[column]), reps[:, column])
        table.insert(0, "model", name)
        frames.append(table)
    if reference is not None:
        frames += [
            _auroc_difference(auroc[reference], auroc[name], name, frames[0])
            for name in scores
            if name != reference
        ]
    return pd.concat(frames, ignore_index=True)


def _auroc_difference(
    reference: tuple[float, np.ndarray], other: tuple[float, np.ndarray], name: str, counts_from: pd.DataFrame
) -> pd.DataFrame:
    """The ``auroc_difference`` row of model ``name``: reference minus it, point and paired interval."""
    with np.errstate(all="ignore"):
        low, high = np.nanpercentile(reference[1] - other[1], [2.5, 97.5])
    return pd.DataFrame(
        {
            "model": [name],
            "metric": [AUROC_DIFFERENCE],
            "value": [reference[0] - other[0]],
            "ci_low": [low],
            "ci_high": [high],
            "n": [counts_from["n"].iloc[0]],
            "events": [counts_from["events"].iloc[0]],
        }
    )


def metric_value(table: pd.DataFrame, metric: str, model: str | None = None) -> float:
    """The point estimate of ``metric`` (for ``model``) from a tidy metric table."""
    rows = table[table["metric"] == metric]
    if model is not None:
        rows = rows[rows["model"] == model]
    if rows.empty:
        raise KeyError(f"no metric {metric!r}" + (f" for model {model!r}" if model else ""))
    return float(rows["value"].iloc[0])
