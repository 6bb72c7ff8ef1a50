"""Drift and estimated performance: has the population moved away from the champion's training data?

Drift compares this week's distribution of the champion's scores and of its
most important features (by LightGBM gain) with a reference taken when the
model was trained, by the population stability index (PSI):

    PSI = sum over bins of (current share - reference share) x ln(current share / reference share)

Bins are the reference's quantiles (``bins`` of them); a feature with at most
``bins`` distinct values (a flag, a count, a category) is binned by value, with
values unseen in the reference in an "other" bin. Missing values have a bin of
their own. Shares are floored at :data:`SHARE_FLOOR` so an empty bin does not
make the index infinite. The usual reading: below 0.1 no real change, 0.1 to
0.25 a moderate shift, above 0.25 a major one (``psi_warning``, ``psi_critical``).

Estimated performance (confidence-based performance estimation, CBPE, as in
nannyml): if the scores are calibrated, a person with score p has the event
with probability p, so the expected AUROC of this week's scores is

    sum_{i != j} p_i (1 - p_j) 1[s_i > s_j] (+ 1/2 for ties) / sum_{i != j} p_i (1 - p_j)

computed in O(n log n) by sorting, and its interval is the 2.5th and 97.5th
percentiles of the AUROC over Monte Carlo draws of outcomes y ~ Bernoulli(p)
(above :data:`EXACT_DRAWS_UP_TO` people, draws of the events' count and rank sum
from their normal approximation: the same interval at a thousandth of the cost).
It is an estimate that assumes calibration: it follows the score distribution
(drift) and cannot see a model whose calibration has decayed. Realised
performance (``riskstrat.evaluation.realised``) checks that once outcomes arrive.

Why a few functions and not a library: nannyml (CBPE, drift) cannot be
installed with riskstrat's pins (it needs lightgbm<4.6 and brings gcsfs, s3fs,
FLAML and usage telemetry); evidently brings 79 packages including a web
server. PSI, CBPE's AUROC and a Monte Carlo interval are about a hundred lines,
tested against brute force here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from riskstrat.errors import RiskstratError
from riskstrat.evaluation.alarms import Alarm, join_words
from riskstrat.evaluation.monitoring_settings import DriftSettings, EstimationSettings

SHARE_FLOOR = 1e-4
"""Smallest share a bin is given in the PSI (an empty bin would make it infinite)."""

MOVED_MOST = 5
"""Features named in :attr:`Drift.moved_most`."""

CBPE = "confidence-based (CBPE)"
"""The method name of :func:`estimated_performance`."""

ESTIMATE_NOTE = "An estimate from the calibrated scores alone: it assumes the model is still calibrated."

DRIFT_COLUMNS = ["kind", "outcome", "name", "psi", "level"]
"""Columns of :attr:`Drift.table` (kind "score" or "feature")."""


# --- binning ------------------------------------------------------------------------------------------


def _is_numeric(values: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)


def _bin_spec(values: pd.Series, bins: int) -> dict[str, Any]:
    """How to bin ``values`` (the reference): quantile edges, or the values themselves when few."""
    present = values.dropna()
    if _is_numeric(values):
        distinct = np.unique(present.to_numpy(float))
        if len(distinct) > bins:
            quantiles = np.quantile(present.to_numpy(float), np.arange(1, bins) / bins)
            edges = np.unique(quantiles)
            return {"kind": "numeric", "edges": [float(e) for e in edges]}
        return {"kind": "values", "values": [float(v) for v in distinct]}
    return {"kind": "values", "values": sorted({str(v) for v in present})}


def _bin_index(values: pd.Series, spec: Mapping[str, Any]) -> np.ndarray:
    """Bin of each value: 0.. for the spec's bins, then "other" (values only), then missing (last)."""
    missing = values.isna().to_numpy()
    # Training tables hold features as float32 (features.matrix.TRAINING_FEATURE_TYPE), the weekly
    # matrix float64: numbers are compared at float32, as the model reads them, or 1/3 would not be 1/3.
    if spec["kind"] == "numeric":
        edges = np.asarray(spec["edges"], dtype=np.float32)
        index = np.searchsorted(edges, values.to_numpy(np.float32, na_value=np.nan), side="right")
        index[missing] = len(edges) + 1
        return index
    known = spec["values"]
    other, absent = len(known), len(known) + 1
    if known and isinstance(known[0], float):
        keys = pd.Index(np.asarray(known, dtype=np.float32)).get_indexer(
            values.to_numpy(np.float32, na_value=np.nan)
        )
    else:
        keys = pd.Index(known, dtype=object).get_indexer(values.astype(str).to_numpy(object))
    index = np.where(keys < 0, other, keys).astype(np.int64)
    index[missing] = absent
    return index


def _bin_count(spec: Mapping[str, Any]) -> int:
    """Bins of a spec, "other" (values only) and missing included."""
    if spec["kind"] == "numeric":
        return len(spec["edges"]) + 2
    return len(spec["values"]) + 2


def _shares(values: pd.Series, spec: Mapping[str, Any]) -> np.ndarray:
    counts = np.bincount(_bin_index(values, spec), minlength=_bin_count(spec)).astype(float)
    total = counts.sum()
    return counts / total if total > 0 else counts


def population_stability_index(reference_shares: Any, current_shares: Any) -> float:
    """PSI of two distributions over the same bins (shares floored at :data:`SHARE_FLOOR`).

    Args:
        reference_shares: Share of the reference in each bin.
        current_shares: Share of this week's population in each bin.

    Returns:
        sum (current - reference) x ln(current / reference); 0 when identical.
    """
    reference = np.maximum(np.asarray(reference_shares, dtype=float), SHARE_FLOOR)
    current = np.maximum(np.asarray(current_shares, dtype=float), SHARE_FLOOR)
    if reference.shape != current.shape:
        raise ValueError(f"PSI needs the same bins: {reference.shape} and {current.shape}")
    return float(np.sum((current - reference) * np.log(current / reference)))


# --- the reference and this week's drift --------------------------------------------------------------


def _top_features(gains: Mapping[str, float], available: pd.Index, count: int) -> list[str]:
    ranked = sorted(
        ((float(g), name) for name, g in gains.items() if name in available), key=lambda x: (-x[0], x[1])
    )
    return [name for gain, name in ranked[:count] if gain > 0]


def drift_reference(
    scores: Mapping[str, np.ndarray],
    features: pd.DataFrame,
    importance: Mapping[str, Mapping[str, float]],
    settings: DriftSettings,
) -> dict[str, Any]:
    """The training reference drift compares with: bins and shares of each score and top feature.

    Args:
        scores: Outcome -> calibrated scores of the reference people (e.g. the test rows).
        features: The same people's feature matrix.
        importance: Outcome -> feature -> LightGBM gain of the champion.
        settings: Drift settings.

    Returns:
        A JSON-able mapping: ``bins``, ``n``, ``scores`` (outcome -> bin spec and
        shares), ``features`` (name -> bin spec and shares), ``top_features``
        (outcome -> names, most important first) and ``estimated_auroc`` (outcome ->
        CBPE point estimate on the reference, what this week's estimate is compared with).
    """
    reference: dict[str, Any] = {
        "bins": settings.bins,
        "n": len(features),
        "scores": {},
        "features": {},
        "top_features": {},
        "estimated_auroc": {},
    }
    for outcome, values in scores.items():
        series = pd.Series(np.asarray(values, dtype=float))
        spec = _bin_spec(series, settings.bins)
        reference["scores"][outcome] = {**spec, "shares": _shares(series, spec).tolist()}
        reference["estimated_auroc"][outcome] = expected_auroc(series.dropna().to_numpy())
    for outcome, gains in importance.items():
        top = _top_features(gains, features.columns, settings.top_features)
        reference["top_features"][outcome] = top
        for name in top:
            if name not in reference["features"]:
                spec = _bin_spec(features[name], settings.bins)
                reference["features"][name] = {**spec, "shares": _shares(features[name], spec).tolist()}
    return reference


@dataclass
class Drift:
    """This week's drift from the training reference.

    Attributes:
        table: One row per score and per (outcome, top feature): kind, outcome, name, psi, level.
        alarms: One alarm per outcome whose score moved, and one per level for the features.
        moved_most: The :data:`MOVED_MOST` features with the largest PSI, largest first.
    """

    table: pd.DataFrame
    alarms: list[Alarm] = field(default_factory=list)
    moved_most: list[str] = field(default_factory=list)


def _psi_level(psi: float, settings: DriftSettings) -> str | None:
    if psi >= settings.psi_critical:
        return "critical"
    return "warning" if psi >= settings.psi_warning else None


def drift(
    reference: Mapping[str, Any],
    scores: Mapping[str, np.ndarray],
    features: pd.DataFrame,
    settings: DriftSettings,
) -> Drift:
    """PSI of this week's scores and top features against ``reference`` (:func:`drift_reference`).

    Args:
        reference: The training reference.
        scores: Outcome -> this week's calibrated scores (outcomes absent from the reference are skipped).
        features: This week's feature matrix.
        settings: Drift settings (thresholds).

    Returns:
        The PSI table, the alarms and the features that moved most.

    Raises:
        RiskstratError: If a feature of the reference is missing from this week's matrix.
    """
    missing = sorted(set(reference["features"]) - set(features.columns))
    if missing:
        raise RiskstratError(
            f"drift: the feature matrix has no column {missing[0]!r} ({len(missing)} reference features missing)",
            hint="The champion's features changed since its reference was made: rebuild the reference.",
        )
    feature_psi = {
        name: population_stability_index(spec["shares"], _shares(features[name], spec))
        for name, spec in reference["features"].items()
    }
    rows = []
    for outcome, values in scores.items():
        spec = reference["scores"].get(outcome)
        if spec is None:
            continue
        psi = population_stability_index(
            spec["shares"], _shares(pd.Series(np.asarray(values, dtype=float)), spec)
        )
        rows.append({"kind": "score", "outcome": outcome, "name": f"p_{outcome}", "psi": psi})
    for outcome, names in reference["top_features"].items():
        rows.extend({"kind": "feature", "outcome": outcome, "name": n, "psi": feature_psi[n]} for n in names)
    table = pd.DataFrame(rows, columns=DRIFT_COLUMNS[:-1])
    table["level"] = pd.Series([_psi_level(p, settings) for p in table["psi"]], dtype=object)
    ranked = sorted(feature_psi.items(), key=lambda item: (-item[1], item[0]))
    moved_most = [name for name, _ in ranked[:MOVED_MOST]]
    alarms = []
    for row in table[(table["kind"] == "score") & table["level"].notna()].itertuples(index=False):
        threshold = settings.psi_critical if row.level == "critical" else settings.psi_warning
        message = (
            f"{row.outcome}: this week's scores moved from the training reference "
            f"(PSI {row.psi:.2f}, at or above {threshold:g}); features that moved most: {join_words(moved_most)}"
        )
        figures = {"outcome": row.outcome, "psi": float(row.psi), "moved_most": moved_most}
        alarms.append(Alarm("drift", row.level, row.outcome, message, figures))
    for level, threshold in (("critical", settings.psi_critical), ("warning", settings.psi_warning)):
        moved = [(n, p) for n, p in ranked if _psi_level(p, settings) == level]
        if not moved:
            continue
        listed = join_words([f"{n} ({p:.2f})" for n, p in moved])
        count = len(moved)
        message = (
            f"{count} feature{'s' if count > 1 else ''} moved from the training reference by PSI at or above "
            f"{threshold:g}: {listed}"
        )
        figures = {"features": {n: float(p) for n, p in moved}}
        alarms.append(Alarm("drift", level, "features", message, figures))
    return Drift(table=table, alarms=alarms, moved_most=moved_most)


# --- estimated performance (CBPE) ---------------------------------------------------------------------


def expected_auroc(probability: np.ndarray) -> float:
    """AUROC expected if ``probability`` is calibrated (the module docstring's formula), in O(n log n).

    Args:
        probability: Calibrated scores (also the ranking score).

    Returns:
        The expected AUROC (NaN for fewer than two people or no expected events or non-events).
    """
    p = np.asarray(probability, dtype=float)
    if len(p) < 2:
        return float("nan")
    p = np.sort(p)
    q = 1 - p
    # Tie groups of equal scores: non-events expected below each group, and within it.
    starts = np.flatnonzero(np.r_[True, p[1:] != p[:-1]])
    q_group = np.add.reduceat(q, starts)
    p_group = np.add.reduceat(p, starts)
    q_below = np.cumsum(q_group) - q_group
    # Pairs (i, j), i != j: i above j counts 1, a tie counts 1/2 (a person is never paired with itself).
    self_pairs = float(np.sum(p * q))
    numerator = float(np.sum(p_group * q_below) + 0.5 * (np.sum(p_group * q_group) - self_pairs))
    denominator = float(p.sum() * q.sum() - self_pairs)
    return numerator / denominator if denominator > 0 else float("nan")


def _midranks(values: np.ndarray) -> np.ndarray:
    return stats.rankdata(values, method="average")


def estimated_performance(
    probability: np.ndarray, settings: EstimationSettings, seed: int = 0
) -> dict[str, Any]:
    """This week's performance estimated from the calibrated scores alone (CBPE), clearly an estimate.

    Args:
        probability: This week's calibrated scores.
        settings: Estimation settings (draws).
        seed: Added to ``settings.seed`` (e.g. one per outcome) so reruns give the same interval.

    Returns:
        ``n``, ``expected_events`` (sum of scores), ``expected_rate``, ``estimated_auroc``,
        ``auroc_low``, ``auroc_high`` (2.5th and 97.5th percentiles of the AUROC over
        ``draws`` outcome draws y ~ Bernoulli(p)), ``method`` and ``note``.
    """
    p = np.asarray(probability, dtype=float)
    p = p[~np.isnan(p)]
    n = len(p)
    result: dict[str, Any] = {
        "n": int(n),
        "expected_events": float(p.sum()),
        "expected_rate": float(p.mean()) if n else float("nan"),
        "estimated_auroc": expected_auroc(p),
        "auroc_low": float("nan"),
        "auroc_high": float("nan"),
        "method": CBPE,
        "note": ESTIMATE_NOTE,
    }
    if n < 2:
        return result
    rng = np.random.default_rng(settings.seed + seed)
    draws = _auroc_draws(p, settings.draws, rng, exact=n <= EXACT_DRAWS_UP_TO)
    if len(draws):
        low, high = np.percentile(draws, [2.5, 97.5])
        result["auroc_low"], result["auroc_high"] = float(low), float(high)
    return result


EXACT_DRAWS_UP_TO = 200_000
"""Populations up to this size draw every person's outcome; larger ones draw the two sums the AUROC needs."""


def _auroc_draws(p: np.ndarray, draws: int, rng: np.random.Generator, exact: bool) -> np.ndarray:
    """AUROC of ``draws`` outcome draws y ~ Bernoulli(p), ranked by ``p``.

    A draw's AUROC needs only K = sum y (events) and S = sum y x rank (the events'
    rank sum): AUROC = (S - K (K + 1) / 2) / (K (n - K)). ``exact`` draws every y
    (n random numbers per draw); otherwise (S, K) are drawn from their normal
    approximation (sums of n independent terms; mean, variances and covariance exact),
    which at hundreds of thousands of people is indistinguishable and 1,000 times cheaper.
    """
    n = len(p)
    ranks = _midranks(p)
    if exact:
        p32 = p.astype(np.float32)
        pairs = []
        for _ in range(draws):
            y = rng.random(n, dtype=np.float32) < p32
            pairs.append((float(ranks[y].sum()), float(y.sum())))
        rank_sums, events = np.array(pairs).T
    else:
        variance = p * (1 - p)
        mean = [float(np.sum(p * ranks)), float(p.sum())]
        cov = [
            [float(np.sum(variance * ranks**2)), float(np.sum(variance * ranks))],
            [float(np.sum(variance * ranks)), float(variance.sum())],
        ]
        rank_sums, events = rng.multivariate_normal(mean, cov, size=draws).T
    usable = (events > 0) & (events < n)
    rank_sums, events = rank_sums[usable], events[usable]
    return (rank_sums - events * (events + 1) / 2) / (events * (n - events))


def estimated_alarms(
    estimates: Mapping[str, Mapping[str, Any]], reference: Mapping[str, Any], settings: EstimationSettings
) -> list[Alarm]:
    """A warning per outcome whose estimated AUROC fell ``auroc_drop_warning`` below the reference's estimate.

    Only when the whole interval also lies below the reference's estimate (a clear fall).

    Args:
        estimates: Outcome -> :func:`estimated_performance` of this week.
        reference: :func:`drift_reference` (its ``estimated_auroc``).
        settings: Estimation settings.
    """
    alarms = []
    for outcome, estimate in estimates.items():
        before = reference.get("estimated_auroc", {}).get(outcome)
        now, high = estimate.get("estimated_auroc"), estimate.get("auroc_high")
        if before is None or now is None or not np.isfinite(before) or not np.isfinite(now):
            continue
        if now <= before - settings.auroc_drop_warning and np.isfinite(high) and high < before:
            message = (
                f"{outcome}: estimated AUROC {now:.3f} (95% interval {estimate['auroc_low']:.3f} to {high:.3f}) "
                f"is below the training reference's {before:.3f}; an estimate that assumes calibration "
                f"(the score distribution moved)"
            )
            figures = {
                "outcome": outcome,
                "estimated_auroc": float(now),
                "auroc_low": float(estimate["auroc_low"]),
                "auroc_high": float(high),
                "reference_estimated_auroc": float(before),
            }
            alarms.append(Alarm("estimated", "warning", outcome, message, figures))
    return alarms
