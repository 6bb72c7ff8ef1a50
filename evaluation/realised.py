"""Realised performance: once a published week's outcome window has passed, how did its scores do?

The SPARRA-style outcome report of one stored week: observed against expected
events overall, by band of expected risk (deciles), by GP practice and by MDT,
and the AUROC, each with a 95% interval.

* Expected events are the sum of each person's probability of an event in the
  window read. For an early read (e.g. 90 days into a 365-day model's horizon)
  :func:`expected_within` converts the horizon probability assuming a constant
  hazard over the horizon, ``1 - (1 - p) ** (days / horizon)``: an approximation
  (risk is often front-loaded after a bad spell, so early reads may run a little
  above 1).
* O/E intervals are exact Poisson (Garwood) intervals on the observed count,
  with the expected count taken as fixed.
* The AUROC interval is DeLong's (the variance of the placement values), in
  O(n log n).

Everything returned is an aggregate (counts, sums, ratios): no person ID. The
result holds exact counts (for the stored history); whatever shows it to people
passes it through ``riskstrat.evaluation.disclosure``. Alarm messages and
figures already do: counts 1-7 suppressed, others rounded to 5, O/E from the
rounded count.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from riskstrat.errors import RiskstratError
from riskstrat.evaluation.alarms import Alarm
from riskstrat.evaluation.disclosure import SMALL_COUNT_MAX, SUPPRESSED, count, rounding_factor, statistic
from riskstrat.evaluation.monitoring_settings import RealisedSettings

REALISED_COLUMNS = ["person_id", "practice_code", "mdt", "expected", "event"]
"""Columns of the frame :func:`realised_performance` reads."""

NO_MDT = "(no MDT)"
"""The ``mdt`` of people registered with a practice no MDT covers."""

Z95 = float(stats.norm.ppf(0.975))


def expected_within(probability: np.ndarray, horizon_days: int, model_horizon_days: int) -> np.ndarray:
    """Probability of an event within ``horizon_days`` from the model's ``model_horizon_days`` probability.

    Assumes a constant hazard over the model's horizon: ``1 - (1 - p) ** (horizon / model horizon)``
    (an approximation; the full horizon returns ``p`` unchanged).
    """
    if horizon_days <= 0 or model_horizon_days <= 0:
        raise ValueError("horizons must be positive numbers of days")
    p = np.clip(np.asarray(probability, dtype=float), 0.0, 1.0)
    return 1 - (1 - p) ** (horizon_days / model_horizon_days)


def poisson_interval(observed: float, confidence: float = 0.95) -> tuple[float, float]:
    """Exact (Garwood) interval of a Poisson count ``observed``."""
    tail = (1 - confidence) / 2
    low = 0.0 if observed <= 0 else float(stats.chi2.ppf(tail, 2 * observed) / 2)
    high = float(stats.chi2.ppf(1 - tail, 2 * observed + 2) / 2)
    return low, high


def _oe(events: float, expected: float) -> dict[str, float]:
    low, high = poisson_interval(events)
    if expected <= 0:
        return {"oe": float("nan"), "low": float("nan"), "high": float("nan")}
    return {"oe": events / expected, "low": low / expected, "high": high / expected}


def auroc_delong(event: np.ndarray, score: np.ndarray) -> tuple[float, float, float]:
    """AUROC (ties one half) and its DeLong 95% interval (clipped to [0, 1]); NaNs without both classes."""
    event = np.asarray(event).astype(bool)
    score = np.asarray(score, dtype=float)
    positives, negatives = score[event], score[~event]
    m, n = len(positives), len(negatives)
    if m == 0 or n == 0:
        return float("nan"), float("nan"), float("nan")
    every = stats.rankdata(score)
    # Placements: the share of the other class each case scores above (ties one half).
    v10 = (every[event] - stats.rankdata(positives)) / n
    v01 = 1 - (every[~event] - stats.rankdata(negatives)) / m
    auc = float(v10.mean())
    variance = (v10.var(ddof=1) / m if m > 1 else 0.0) + (v01.var(ddof=1) / n if n > 1 else 0.0)
    half = Z95 * float(np.sqrt(variance))
    return auc, max(0.0, auc - half), min(1.0, auc + half)


def _groups(frame: pd.DataFrame, column: str, name: str) -> list[dict[str, Any]]:
    summary = frame.groupby(column, sort=True, observed=True).agg(
        n=("event", "size"), events=("event", "sum"), expected=("expected", "sum")
    )
    rows = []
    for key, row in summary.iterrows():
        events, expected = float(row["events"]), float(row["expected"])
        rows.append(
            {
                name: key.item() if hasattr(key, "item") else key,
                "n": int(row["n"]),
                "events": int(events),
                "expected": expected,
                **_oe(events, expected),
            }
        )
    return rows


def realised_performance(frame: pd.DataFrame, settings: RealisedSettings) -> dict[str, Any]:
    """Observed against expected events, and the AUROC, of one published week's scores.

    Args:
        frame: One row per person scored that week: person_id, practice_code, mdt
            (None where no MDT covers the practice), expected (probability of an event in
            the window read), event (0/1, the event happened in that window).
        settings: Realised-performance settings (deciles).

    Returns:
        Aggregates only: ``overall`` {n, events, expected, oe, oe_low, oe_high, auroc,
        auroc_low, auroc_high}, and ``by_decile`` (band 1 = lowest expected risk),
        ``by_practice``, ``by_mdt`` lists of {key, n, events, expected, oe, low, high}.

    Raises:
        RiskstratError: If a column is missing or an expected probability is outside [0, 1].
    """
    missing = [c for c in REALISED_COLUMNS if c not in frame.columns]
    if missing:
        raise RiskstratError(
            f"realised performance: the scored week has no column {missing[0]!r}",
            hint=f"Expected columns {REALISED_COLUMNS}.",
        )
    expected = frame["expected"].to_numpy(float)
    bad = ~((expected >= 0) & (expected <= 1))
    if bad.any():
        raise RiskstratError(
            f"realised performance: {int(bad.sum())} rows have an expected probability outside [0, 1] or missing",
            hint="Score every person of the stored week; probabilities come from the calibrated model.",
            details=f"e.g. person_id {frame['person_id'].iloc[int(np.flatnonzero(bad)[0])]}",
        )
    data = pd.DataFrame(
        {
            "practice_code": frame["practice_code"].astype(object).to_numpy(),
            "mdt": frame["mdt"].astype(object).where(frame["mdt"].notna(), NO_MDT).to_numpy(),
            "expected": expected,
            "event": frame["event"].astype(int).to_numpy(),
        }
    )
    n, events, total = len(data), float(data["event"].sum()), float(data["expected"].sum())
    oe = _oe(events, total)
    auroc, auroc_low, auroc_high = auroc_delong(data["event"].to_numpy(), expected)
    bands = min(settings.deciles, max(n, 1))
    if n:
        data["decile"] = pd.qcut(pd.Series(expected).rank(method="first"), bands, labels=False) + 1
    else:
        data["decile"] = pd.Series(dtype="int64")
    return {
        "overall": {
            "n": n,
            "events": int(events),
            "expected": total,
            "oe": oe["oe"],
            "oe_low": oe["low"],
            "oe_high": oe["high"],
            "auroc": auroc,
            "auroc_low": auroc_low,
            "auroc_high": auroc_high,
        },
        "by_decile": _groups(data, "decile", "decile"),
        "by_practice": _groups(data, "practice_code", "practice_code"),
        "by_mdt": _groups(data, "mdt", "mdt"),
    }


def _outside(low: float, high: float, tolerance: float) -> str | None:
    """Whether the whole O/E interval is above the tolerance ("under"), below its inverse ("over"), or neither."""
    if not (np.isfinite(low) and np.isfinite(high)):
        return None
    if low > tolerance:
        return "under"
    if high < 1 / tolerance:
        return "over"
    return None


def realised_alarms(
    result: dict[str, Any],
    week: date,
    horizon_days: int,
    settings: RealisedSettings,
    outcome: str | None = None,
    reference_auroc: float | None = None,
) -> list[Alarm]:
    """Warnings on one week's realised performance: overall and per MDT O/E, and the AUROC.

    O/E: a warning when the 95% interval lies wholly outside [1/oe_tolerance, oe_tolerance]
    and at least ``min_events`` events were expected. AUROC: a warning when it is
    ``auroc_drop_warning`` below ``reference_auroc`` (the champion's test AUROC; no check
    without it) and its whole interval lies below it. Practices are reported, not alarmed
    (many small cells).

    Args:
        result: :func:`realised_performance` of the week.
        week: The published week read.
        horizon_days: The window read (days after the week's data date).
        settings: Realised-performance settings.
        outcome: The outcome's name (default ``result["outcome"]`` when present).
        reference_auroc: The champion's AUROC on its test rows.
    """
    outcome = outcome or result.get("outcome") or "model"
    when = f"{outcome}, week {week.isoformat()}, {horizon_days} days"
    alarms = []
    places = [("overall", None, result["overall"])] + [
        ("mdt", row["mdt"], row) for row in result.get("by_mdt", [])
    ]
    for kind, name, row in places:
        low = row.get("oe_low", row.get("low"))
        high = row.get("oe_high", row.get("high"))
        if row["expected"] < settings.min_events:
            continue
        way = _outside(low, high, settings.oe_tolerance)
        if way is None:
            continue
        who = "" if kind == "overall" else f" for MDT {name}"
        reading = "under-predicts" if way == "under" else "over-predicts"
        # Disclosure control: the count as shown (1-7 suppressed, else rounded to 5), and O/E
        # and its interval on the shown count (none at all when it is suppressed).
        events = row["events"]
        shown, factor = count(events), rounding_factor(events)
        if shown == SUPPRESSED:
            sized = "(O/E not shown: fewer than 8 events)"
            observed = f"1 to {SMALL_COUNT_MAX} events"
        else:
            sized = f"(O/E {row['oe'] * factor:.2f}, 95% interval {low * factor:.2f} to {high * factor:.2f})"
            observed = f"{shown:,} events"
        message = (
            f"{when}{who}: {observed} observed against {row['expected']:,.0f} expected {sized}: "
            f"the model {reading} risk"
        )
        figures = {
            "outcome": outcome,
            "week": week.isoformat(),
            "horizon_days": horizon_days,
            "group": name,
            "events": shown,
            "expected": float(row["expected"]),
            "oe": statistic(row["oe"] * factor, [events]),
            "oe_low": statistic(low * factor, [events]),
            "oe_high": statistic(high * factor, [events]),
        }
        alarms.append(
            Alarm("realised", "warning", outcome if name is None else f"{outcome}:{name}", message, figures)
        )
    overall = result["overall"]
    auroc, high = overall.get("auroc"), overall.get("auroc_high")
    if (
        reference_auroc is not None
        and auroc is not None
        and np.isfinite(auroc)
        and auroc <= reference_auroc - settings.auroc_drop_warning
        and high < reference_auroc
    ):
        message = (
            f"{when}: realised AUROC {auroc:.3f} (95% interval {overall['auroc_low']:.3f} to {high:.3f}) is "
            f"below the champion's test AUROC {reference_auroc:.3f}"
        )
        figures = {
            "outcome": outcome,
            "week": week.isoformat(),
            "horizon_days": horizon_days,
            "auroc": float(auroc),
            "auroc_low": float(overall["auroc_low"]),
            "auroc_high": float(high),
            "reference_auroc": float(reference_auroc),
        }
        alarms.append(Alarm("realised", "warning", outcome, message, figures))
    return alarms
