"""The fairness audit: performance, lists and need at equal risk, by group, with flags.

Inputs (column contracts):

* **Test-row predictions** (:func:`predictions_schema`): one row per person
  scored on the held-out test as-of date: ``person_id``, ``as_of``, ``y`` (0/1
  outcome), ``p`` (calibrated probability), the grouping columns (by default
  ``imd_quintile``, ``ethnic_group``, ``sex``, ``age_band``), and the realised-need columns named
  in ``FairnessSettings.need_measures`` (by default ``ltc_count``,
  ``efi_score``, ``emergency_admissions_next_year``, ``bed_days_next_year``:
  counts in the outcome window).
* **List selections** (:func:`selections_schema`): one row per person in the
  scored population: ``person_id``, ``mdt``, ``selected`` (bool), the grouping
  columns, and ``y`` when the outcome is known (else missing). For a back-test,
  ``riskstrat.worklists.backtest.back_test_lists`` draws them up with the weekly selector.

Methods (decided here, shown in the report):

* By-group point estimates come from fairlearn's ``MetricFrame`` with
  scikit-learn metrics; their 95% intervals are percentile bootstraps within the
  group (``riskstrat.models.metrics.evaluate_scores``), or Wilson intervals
  for proportions.
* A gap to a reference group (AUROC difference, sensitivity ratio) uses the two
  groups' independent uncertainty: a normal approximation from the bootstrap
  standard errors for AUROC, the Katz log interval for the sensitivity ratio.
* Need at equal risk compares each group with *everyone else* in the same
  predicted-risk percentile band (Obermeyer et al., Science 2019), summarised by
  a standardised need ratio: the group's total realised need divided by what it
  would be if each of its members had the mean need of everyone else in their
  band. Its interval is a parametric bootstrap of the band means.
* A flag is raised ("a real gap, not noise") only when the whole interval lies
  beyond the tolerance; "possible, uncertain" when the estimate does but the
  interval reaches back inside it. Cells with insufficient data raise none.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd
from fairlearn.metrics import MetricFrame
from scipy import stats
from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score
from statsmodels.stats.proportion import proportion_confint

from riskstrat.errors import RiskstratError
from riskstrat.evaluation import disclosure
from riskstrat.evaluation.groups import (
    INSUFFICIENT,
    Grouping,
    assign_groups,
    group_label,
    grouping_columns,
    is_intersection,
    is_sufficient,
)
from riskstrat.evaluation.groups import reference_group as pick_reference
from riskstrat.evaluation.settings import AcceptedFlag, FairnessSettings
from riskstrat.frames import Column, FrameSchema, Kind
from riskstrat.models.metrics import evaluate_scores

ALL_MDTS = "All MDTs"
"""Scope name of the lists taken together."""

OVERALL = "overall"
EVERYONE = "Everyone"

PERFORMANCE_METRICS = ("auroc", "auprc", "brier", "oe_ratio", "calibration_intercept", "calibration_slope")
"""Metrics with bootstrap intervals in the performance table (plus the Wilson event rate)."""


@dataclass(frozen=True)
class Flag:
    """A gap beyond the configured tolerance, explained in one sentence.

    Attributes:
        flag_id: Stable id, ``<kind>:<grouping>:<group>[:<measure>]``, used to accept it.
        kind: calibration_oe, sensitivity_ratio, auroc_gap or need_at_equal_risk.
        grouping: The grouping (e.g. ethnic_group).
        group: The group (e.g. Black).
        measure: The need measure, for need flags.
        estimate: The figure compared with the tolerance.
        lower: Lower end of its interval.
        upper: Upper end of its interval.
        tolerance: The tolerance in words, e.g. "0.8 to 1.25".
        status: "raised" (a real gap, not noise), "uncertain" (possible, uncertain: the
            interval includes the tolerance) or "explained" (a list gap that follows the
            group's different risk while the model is calibrated and need-neutral for it).
        sentence: The plain-English explanation, with figures as the report may show them.
        accepted: The board's acceptance, when configured.
        shown: ``estimate``, ``lower`` and ``upper`` as the report may show them, when they
            rest on counts and so pass disclosure control (computed from the rounded counts,
            or ``"*"`` when a count is 1-7); None when the figures may be shown as they are.
            The status is always decided on the exact figures.
    """

    flag_id: str
    kind: str
    grouping: str
    group: str
    measure: str
    estimate: float
    lower: float
    upper: float
    tolerance: str
    status: str
    sentence: str
    accepted: AcceptedFlag | None = None
    shown: tuple[float | str, float | str, float | str] | None = None


@dataclass
class FairnessAudit:
    """Everything the audit found; raw (not yet disclosure-controlled) figures.

    Attributes:
        performance: One row per grouping x group (plus overall): n, events, status
            and each metric with ``_lower`` / ``_upper``.
        calibration: Calibration-curve bins per sufficient group.
        lists: One row per MDT scope x grouping x group: counts and list metrics.
        need_bands: Mean realised need per grouping x group x risk band x measure.
        need_ratios: Standardised need ratio per grouping x group x measure.
        need_ranking: Each group's share of a list of the same size ranked by risk vs by need.
        flags: Every raised or uncertain flag (accepted ones included, marked).
        references: Reference group of each grouping.
        groupings: The groupings, in report order.
        settings: The settings used.
        list_fraction: Share of the population the lists select (used for need ranking).
    """

    performance: pd.DataFrame
    calibration: pd.DataFrame
    lists: pd.DataFrame
    need_bands: pd.DataFrame
    need_ratios: pd.DataFrame
    need_ranking: pd.DataFrame
    flags: list[Flag]
    references: dict[str, str]
    groupings: list[Grouping]
    settings: FairnessSettings
    list_fraction: float
    band_labels: list[str] = field(default_factory=list)


# --- inputs -------------------------------------------------------------------------------


def predictions_schema(settings: FairnessSettings) -> FrameSchema:
    """The test-row predictions the audit reads.

    Keys, the 0/1 outcome, the probability, each grouping's column (read from the registry
    when called, so a grouping registered later is required too) and the need measures.
    """
    return FrameSchema(
        name="predictions",
        columns=(
            Column("person_id", Kind.TEXT),
            Column("as_of", Kind.DATE),
            Column("y", Kind.BOOLEAN),
            Column("p", Kind.PROBABILITY),
            # Any value: each grouping's recoder checks its own column (evaluation.groups).
            *(Column(name, Kind.ANY, nullable=True) for name in grouping_columns()),
            *(Column(measure, Kind.NUMBER) for measure in settings.need_measures),
        ),
        key=("person_id", "as_of"),
        hint="Audit the model's test-row predictions: y the 0/1 outcome, p the calibrated probability.",
    )


def selections_schema() -> FrameSchema:
    """The list selections the audit reads: person, MDT, whether listed, each grouping's column, ``y`` where known."""
    return FrameSchema(
        name="selections",
        columns=(
            Column("person_id", Kind.TEXT),
            Column("mdt", Kind.TEXT),
            Column("selected", Kind.BOOLEAN),
            *(Column(name, Kind.ANY, nullable=True) for name in grouping_columns()),
            Column("y", Kind.BOOLEAN, nullable=True, required=False),
        ),
        key=("person_id",),
        hint="Pass the scored population with who was selected (worklists.backtest.back_test_lists).",
    )


def validate_predictions(predictions: pd.DataFrame, settings: FairnessSettings) -> None:
    """Check the test-row predictions against :func:`predictions_schema`; need is never negative.

    Raises:
        RiskstratError: Naming the column, how many rows break it and an example person_id.
    """
    predictions_schema(settings).check(predictions)
    if predictions.empty:
        raise RiskstratError("predictions: no rows", hint="Audit the model's test-row predictions.")
    for measure in settings.need_measures:
        bad = pd.to_numeric(predictions[measure], errors="coerce") < 0
        if bad.any():
            raise RiskstratError(
                f"predictions.{measure}: {int(bad.sum())} rows are negative",
                details=f"e.g. person_id {predictions.loc[bad, 'person_id'].iloc[0]}",
                hint="Realised need is a count or score >= 0 for every test row (0 when none).",
            )


def validate_selections(selections: pd.DataFrame) -> None:
    """Check the list selections against :func:`selections_schema`.

    Raises:
        RiskstratError: Naming the column, how many rows break it and an example person_id.
    """
    selections_schema().check(selections)
    if selections.empty:
        raise RiskstratError("selections: no rows", hint="Pass the scored population with who was selected.")


# --- helpers ------------------------------------------------------------------------------


def wilson(successes: float, total: float, confidence: float) -> tuple[float, float]:
    """Wilson score interval of a proportion (NaN when ``total`` is 0)."""
    if total <= 0:
        return float("nan"), float("nan")
    low, high = proportion_confint(successes, total, alpha=1 - confidence, method="wilson")
    return float(low), float(high)


def _z(confidence: float) -> float:
    return float(stats.norm.ppf(0.5 + confidence / 2))


def _guarded(metric: Callable[[np.ndarray, np.ndarray], float]) -> Callable[[np.ndarray, np.ndarray], float]:
    """A metric that returns NaN for a group with only one outcome class."""

    def wrapped(y_true: np.ndarray, y_pred: np.ndarray) -> float:
        y_true = np.asarray(y_true)
        if len(y_true) == 0 or y_true.min() == y_true.max():
            return float("nan")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                return float(metric(y_true, np.asarray(y_pred)))
            except (ValueError, np.linalg.LinAlgError):
                return float("nan")

    return wrapped


def _oe(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    expected = float(np.sum(y_pred))
    return float(np.sum(y_true)) / expected if expected > 0 else float("nan")


def point_metrics() -> dict[str, Callable[[np.ndarray, np.ndarray], float]]:
    """The by-group metrics fairlearn's MetricFrame computes with scikit-learn.

    Counts, rates, O/E and the logistic recalibration are computed alongside
    (fairlearn's per-call overhead grows with rows, so it gets only what needs it).
    """
    return {
        "auroc": _guarded(roc_auc_score),
        "auprc": _guarded(average_precision_score),
        "brier": _guarded(brier_score_loss),
    }


def _status_between(estimate: float, lower: float, upper: float, low: float, high: float) -> str | None:
    """'raised', 'uncertain' or None for an estimate against a two-sided tolerance [low, high]."""
    if any(math.isnan(v) for v in (estimate, lower, upper)):
        return None
    if upper < low or lower > high:
        return "raised"
    if estimate < low or estimate > high:
        return "uncertain"
    return None


def _verdict(status: str) -> str:
    return (
        "a real gap, not noise"
        if status == "raised"
        else "possible, uncertain: the interval includes the tolerance"
    )


def _fmt(value: float, digits: int = 2) -> str:
    return f"{value:.{digits}f}"


# --- performance by group -----------------------------------------------------------------


def _performance(frame: pd.DataFrame, groupings: list[Grouping], settings: FairnessSettings) -> pd.DataFrame:
    y = frame["y"].to_numpy(dtype=float)
    p = frame["p"].to_numpy(dtype=float)
    rows: list[dict[str, object]] = []
    scopes: list[tuple[str, pd.Series]] = [(OVERALL, pd.Series(EVERYONE, index=frame.index))]
    scopes += [(g.name, frame[g.name]) for g in groupings]
    for grouping_name, column in scopes:
        grouping = next((g for g in groupings if g.name == grouping_name), None)
        groups = list(grouping.groups) if grouping else [EVERYONE]
        sums = frame.groupby(column.to_numpy())[["y", "p"]].agg(["size", "sum"]).reindex(groups)
        sufficient_groups = [
            g
            for g in groups
            if is_sufficient(
                float(np.nan_to_num(sums.loc[g, ("y", "size")])),
                float(np.nan_to_num(sums.loc[g, ("y", "sum")])),
                settings.min_cell_n,
                settings.min_cell_events,
            )
        ]
        by_group = pd.DataFrame(index=groups, columns=list(point_metrics()), dtype=float)
        if sufficient_groups:
            # Only cells large enough to judge are computed (the rest are "insufficient data").
            keep = column.isin(sufficient_groups).to_numpy()
            mf = MetricFrame(
                metrics=point_metrics(),
                y_true=y[keep],
                y_pred=p[keep],
                sensitive_features=column[keep].rename("group"),
            )
            by_group.loc[sufficient_groups] = mf.by_group.reindex(sufficient_groups).to_numpy(dtype=float)
        for group in groups:
            n = float(np.nan_to_num(sums.loc[group, ("y", "size")]))
            events = float(np.nan_to_num(sums.loc[group, ("y", "sum")]))
            expected = float(np.nan_to_num(sums.loc[group, ("p", "sum")]))
            sufficient = group in sufficient_groups
            low, high = wilson(events, n, settings.confidence)
            row: dict[str, object] = {
                "grouping": grouping_name,
                "group": group,
                "label": group_label(grouping_name, group),
                "n": n,
                "events": events,
                "status": "ok" if sufficient else INSUFFICIENT,
                "event_rate": events / n if n else float("nan"),
                "event_rate_lower": low,
                "event_rate_upper": high,
                "mean_risk": expected / n if n else float("nan"),
            }
            if sufficient:
                mask = (column == group).to_numpy()
                boot = evaluate_scores(
                    y[mask],
                    p[mask],
                    top_fractions=(),
                    n_boot=settings.bootstrap_n,
                    seed=settings.bootstrap_seed,
                ).set_index("metric")
                # evaluate_scores gives 95% percentile intervals; other coverages scale them normally.
                scale = _z(settings.confidence) / _z(0.95)
                for metric in PERFORMANCE_METRICS:
                    centre = (
                        float(by_group.loc[group, metric])
                        if metric in by_group.columns
                        else float(boot.loc[metric, "value"])
                    )
                    row[metric] = centre
                    row[f"{metric}_lower"] = centre - scale * (centre - float(boot.loc[metric, "ci_low"]))
                    row[f"{metric}_upper"] = centre + scale * (float(boot.loc[metric, "ci_high"]) - centre)
            else:
                for metric in PERFORMANCE_METRICS:
                    row[metric] = row[f"{metric}_lower"] = row[f"{metric}_upper"] = float("nan")
            rows.append(row)
    return pd.DataFrame(rows)


def _calibration_curves(
    frame: pd.DataFrame, groupings: list[Grouping], performance: pd.DataFrame, settings: FairnessSettings
) -> pd.DataFrame:
    rows: list[dict[str, object]] = []
    sufficient = performance[performance["status"] == "ok"]
    scopes = [(OVERALL, EVERYONE, frame)]
    for _, cell in sufficient[sufficient["grouping"] != OVERALL].iterrows():
        scopes.append((cell["grouping"], cell["group"], frame[frame[cell["grouping"]] == cell["group"]]))
    for grouping, group, rows_in in scopes:
        bins = pd.qcut(rows_in["p"].rank(method="first"), settings.calibration_bins, labels=False)
        table = rows_in.groupby(bins).agg(n=("y", "size"), events=("y", "sum"), mean_risk=("p", "mean"))
        for bin_index, cell in table.iterrows():
            low, high = wilson(cell["events"], cell["n"], settings.confidence)
            rows.append(
                {
                    "grouping": grouping,
                    "group": group,
                    "bin": int(bin_index) + 1,
                    "n": float(cell["n"]),
                    "events": float(cell["events"]),
                    "mean_risk": float(cell["mean_risk"]),
                    "observed_rate": float(cell["events"] / cell["n"]),
                    "observed_lower": low,
                    "observed_upper": high,
                }
            )
    return pd.DataFrame(rows)


# --- the lists by group -------------------------------------------------------------------


def _list_rows(scope: pd.DataFrame, mdt: str, grouping: Grouping, settings: FairnessSettings) -> list[dict]:
    selected = scope["selected"].astype(bool)
    y = (
        pd.to_numeric(scope["y"], errors="coerce")
        if "y" in scope.columns
        else pd.Series(np.nan, index=scope.index)
    )
    known = y.notna()
    total_selected = float(selected.sum())
    total_population = float(len(scope))
    total_events = float((y == 1).sum())
    rows = []
    for group in grouping.groups:
        in_group = scope[grouping.name] == group
        n = float(in_group.sum())
        sel = float((in_group & selected).sum())
        g_known = in_group & known
        tp = float((g_known & selected & (y == 1)).sum())
        fp = float((g_known & selected & (y == 0)).sum())
        fn = float((g_known & ~selected & (y == 1)).sum())
        tn = float((g_known & ~selected & (y == 0)).sum())
        positives = tp + fn
        sufficient = is_sufficient(n, positives, settings.min_cell_n, settings.min_cell_events)
        row = {
            "mdt": mdt,
            "grouping": grouping.name,
            "group": group,
            "label": group_label(grouping.name, group),
            "n": n,
            "selected": sel,
            "n_known": float(g_known.sum()),
            "events": positives,
            "n_list": total_selected,
            "status": "ok" if sufficient else INSUFFICIENT,
            "true_positives": tp,
            "false_positives": fp,
            "false_negatives": fn,
            "true_negatives": tn,
            "share_of_population": n / total_population if total_population else float("nan"),
            "share_of_list": sel / total_selected if total_selected else float("nan"),
            "share_of_outcomes": positives / total_events if total_events else float("nan"),
        }
        for name, num, den in (
            ("selection_rate", sel, n),
            ("ppv", tp, tp + fp),
            ("sensitivity", tp, positives),
            ("false_negative_rate", fn, positives),
            ("false_omission_rate", fn, fn + tn),
        ):
            low, high = wilson(num, den, settings.confidence)
            row[name] = num / den if den else float("nan")
            row[f"{name}_lower"], row[f"{name}_upper"] = low, high
            row[f"{name}_denominator"] = den
        rows.append(row)
    return rows


def _lists(selections: pd.DataFrame, groupings: list[Grouping], settings: FairnessSettings) -> pd.DataFrame:
    rows: list[dict] = []
    for grouping in groupings:
        rows += _list_rows(selections, ALL_MDTS, grouping, settings)
    for mdt in sorted(selections["mdt"].astype(str).unique()):
        scope = selections[selections["mdt"].astype(str) == mdt]
        for grouping in groupings:
            # An intersection's cells would be too small MDT by MDT.
            if not is_intersection(grouping.name):
                rows += _list_rows(scope, mdt, grouping, settings)
    return pd.DataFrame(rows)


# --- need at equal risk -------------------------------------------------------------------


def risk_band(p: pd.Series, edges: tuple[float, ...]) -> tuple[pd.Series, list[str]]:
    """Each row's predicted-risk percentile band (0 = lowest) and the bands' labels."""
    percentile = p.rank(method="average", pct=True) * 100
    inner = np.asarray(edges[1:-1], dtype=float)
    band = pd.Series(np.searchsorted(inner, percentile.to_numpy(), side="left"), index=p.index)
    labels = [f"{edges[i]:g}-{edges[i + 1]:g}th percentile" for i in range(len(edges) - 1)]
    return band, labels


def _need(
    frame: pd.DataFrame,
    groupings: list[Grouping],
    settings: FairnessSettings,
) -> tuple[pd.DataFrame, pd.DataFrame, list[str]]:
    band, labels = risk_band(frame["p"], settings.risk_bands)
    n_bands = len(labels)
    rng = np.random.default_rng(settings.bootstrap_seed)
    alpha = (1 - settings.confidence) / 2
    band_rows: list[dict] = []
    ratio_rows: list[dict] = []
    for grouping in groupings:
        for group in grouping.groups:
            in_group = (frame[grouping.name] == group).to_numpy()
            n_group = float(in_group.sum())
            for measure, measure_label in settings.need_measures.items():
                values = frame[measure].to_numpy(dtype=float)
                stats_g = _band_stats(values[in_group], band.to_numpy()[in_group], n_bands)
                stats_o = _band_stats(values[~in_group], band.to_numpy()[~in_group], n_bands)
                for b in range(n_bands):
                    band_rows.append(
                        {
                            "grouping": grouping.name,
                            "group": group,
                            "measure": measure,
                            "band": labels[b],
                            "band_index": b,
                            "n": stats_g[0][b],
                            "mean": stats_g[1][b],
                            "n_others": stats_o[0][b],
                            "others_mean": stats_o[1][b],
                        }
                    )
                ratio, low, high = _standardised_need_ratio(
                    stats_g, stats_o, settings.bootstrap_n, rng, alpha
                )
                sufficient = n_group >= settings.min_cell_n
                ratio_rows.append(
                    {
                        "grouping": grouping.name,
                        "group": group,
                        "label": group_label(grouping.name, group),
                        "measure": measure,
                        "measure_label": measure_label,
                        "n": n_group,
                        "status": "ok" if sufficient else INSUFFICIENT,
                        "need_ratio": ratio if sufficient else float("nan"),
                        "need_ratio_lower": low if sufficient else float("nan"),
                        "need_ratio_upper": high if sufficient else float("nan"),
                    }
                )
    return pd.DataFrame(band_rows), pd.DataFrame(ratio_rows), labels


def _band_stats(
    values: np.ndarray, band: np.ndarray, n_bands: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    n = np.bincount(band, minlength=n_bands).astype(float)
    total = np.bincount(band, weights=values, minlength=n_bands)
    squares = np.bincount(band, weights=values**2, minlength=n_bands)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(n > 0, total / np.maximum(n, 1), np.nan)
        var = np.where(n > 1, (squares - n * mean**2) / np.maximum(n - 1, 1), 0.0)
    return n, mean, np.maximum(var, 0.0)


def _standardised_need_ratio(
    group: tuple[np.ndarray, np.ndarray, np.ndarray],
    others: tuple[np.ndarray, np.ndarray, np.ndarray],
    n_boot: int,
    rng: np.random.Generator,
    alpha: float,
) -> tuple[float, float, float]:
    """Observed need / need expected at everyone else's band means, with a parametric bootstrap interval."""
    n_g, mean_g, var_g = group
    n_o, mean_o, var_o = others
    use = (n_g > 0) & (n_o > 0)
    if not use.any():
        return float("nan"), float("nan"), float("nan")
    n_g, mean_g, var_g, n_o, mean_o, var_o = (a[use] for a in (n_g, mean_g, var_g, n_o, mean_o, var_o))
    expected = float(np.sum(n_g * mean_o))
    if expected <= 0:
        return float("nan"), float("nan"), float("nan")
    ratio = float(np.sum(n_g * mean_g)) / expected
    # Band means are approximately normal (CLT); draw them independently for the group and the rest.
    draws_g = rng.normal(mean_g, np.sqrt(var_g / n_g), size=(n_boot, len(n_g)))
    draws_o = rng.normal(mean_o, np.sqrt(var_o / n_o), size=(n_boot, len(n_o)))
    with np.errstate(invalid="ignore", divide="ignore"):
        reps = (draws_g * n_g).sum(axis=1) / (draws_o * n_g).sum(axis=1)
    reps = reps[np.isfinite(reps)]
    return ratio, float(np.quantile(reps, alpha)), float(np.quantile(reps, 1 - alpha))


def _need_ranking(
    frame: pd.DataFrame, groupings: list[Grouping], settings: FairnessSettings, list_fraction: float
) -> pd.DataFrame:
    k = max(1, math.ceil(list_fraction * len(frame)))
    by_risk = frame.sort_values("p", ascending=False, kind="stable").index[:k]
    lists = {"predicted risk": by_risk}
    for measure in settings.need_measures:
        # Ties in realised need (many zeros) are broken by predicted risk.
        lists[measure] = frame.sort_values([measure, "p"], ascending=False, kind="stable").index[:k]
    rows = []
    for grouping in groupings:
        for group in grouping.groups:
            members = frame.index[frame[grouping.name] == group]
            row = {
                "grouping": grouping.name,
                "group": group,
                "label": group_label(grouping.name, group),
                "n": float(len(members)),
                "n_list": float(k),
                "share_of_population": len(members) / len(frame),
            }
            for name, chosen in lists.items():
                key = "risk" if name == "predicted risk" else name
                count = float(len(members.intersection(chosen)))
                row[f"selected_by_{key}"] = count
                row[f"share_by_{key}"] = count / k
            rows.append(row)
    return pd.DataFrame(rows)


# --- flags --------------------------------------------------------------------------------


def _flag(settings: FairnessSettings, **kwargs: object) -> Flag:
    flag_id = str(kwargs["flag_id"])
    return Flag(accepted=settings.accepted(flag_id), **kwargs)  # type: ignore[arg-type]


def _oe_flags(performance: pd.DataFrame, settings: FairnessSettings) -> list[Flag]:
    tol = settings.tolerances
    flags = []
    for _, row in performance[
        (performance["status"] == "ok") & (performance["grouping"] != OVERALL)
    ].iterrows():
        status = _status_between(
            row["oe_ratio"], row["oe_ratio_lower"], row["oe_ratio_upper"], tol.oe_low, tol.oe_high
        )
        if status is None:
            continue
        # Quoted from the rounded events, as the report shows O/E (see report._performance_payload).
        to_rounded = disclosure.rounding_factor(row["events"])
        oe, low, high = (row[k] * to_rounded for k in ("oe_ratio", "oe_ratio_lower", "oe_ratio_upper"))
        if oe > 1:
            what = (
                f"the model under-estimates risk for {row['label']}: "
                f"{100 * (oe - 1):.0f}% more people had the "
                "outcome than it predicted"
            )
        else:
            what = (
                f"the model over-estimates risk for {row['label']}: "
                f"{100 * (1 - oe):.0f}% fewer people had the "
                "outcome than it predicted"
            )
        sentence = (
            f"Calibration: {what} (observed/expected {_fmt(oe)}, 95% CI {_fmt(low)} to "
            f"{_fmt(high)}; tolerance {tol.oe_low:g} "
            f"to {tol.oe_high:g}) - {_verdict(status)}."
        )
        flags.append(
            _flag(
                settings,
                flag_id=f"calibration_oe:{row['grouping']}:{row['group']}",
                kind="calibration_oe",
                grouping=row["grouping"],
                group=row["group"],
                measure="",
                estimate=row["oe_ratio"],
                lower=row["oe_ratio_lower"],
                upper=row["oe_ratio_upper"],
                tolerance=f"{tol.oe_low:g} to {tol.oe_high:g}",
                status=status,
                sentence=sentence,
                shown=(oe, low, high),
            )
        )
    return flags


def _auroc_flags(
    performance: pd.DataFrame, references: dict[str, str], settings: FairnessSettings
) -> list[Flag]:
    gap = settings.tolerances.auroc_gap
    z = _z(settings.confidence)
    flags = []
    for grouping, reference in references.items():
        cells = performance[performance["grouping"] == grouping].set_index("group")
        ref = cells.loc[reference]
        if ref["status"] != "ok":
            continue
        ref_se = (ref["auroc_upper"] - ref["auroc_lower"]) / (2 * _z(0.95))
        for group, row in cells.iterrows():
            if group == reference or row["status"] != "ok":
                continue
            se = (row["auroc_upper"] - row["auroc_lower"]) / (2 * _z(0.95))
            diff = row["auroc"] - ref["auroc"]
            half = z * math.sqrt(se**2 + ref_se**2)
            # Only a group the model ranks worse is failed by it; a better-ranked group is not flagged.
            status = _status_between(diff, diff - half, diff + half, -gap, math.inf)
            if status is None:
                continue
            direction = "worse"
            sentence = (
                f"Discrimination: the model ranks people in {row['label']} {direction} than in the reference "
                f"group {ref['label']} (AUROC {_fmt(row['auroc'])} vs {_fmt(ref['auroc'])}, difference "
                f"{diff:+.3f}, 95% CI {diff - half:+.3f} to {diff + half:+.3f}; tolerance -{gap:g})"
                f" - {_verdict(status)}."
            )
            flags.append(
                _flag(
                    settings,
                    flag_id=f"auroc_gap:{grouping}:{group}",
                    kind="auroc_gap",
                    grouping=grouping,
                    group=str(group),
                    measure="",
                    estimate=diff,
                    lower=diff - half,
                    upper=diff + half,
                    tolerance=f"no worse than -{gap:g}",
                    status=status,
                    sentence=sentence,
                )
            )
    return flags


def katz_ratio(
    tp_a: float, pos_a: float, tp_b: float, pos_b: float, confidence: float
) -> tuple[float, float, float]:
    """Ratio of two independent proportions with the Katz log interval (0.5 added to a zero count)."""
    if pos_a <= 0 or pos_b <= 0:
        return float("nan"), float("nan"), float("nan")
    a, b = max(tp_a, 0.5), max(tp_b, 0.5)
    ratio = (tp_a / pos_a) / (tp_b / pos_b) if tp_b > 0 else float("nan")
    se = math.sqrt(max(1 / a - 1 / pos_a + 1 / b - 1 / pos_b, 0.0))
    log_centre = math.log((a / pos_a) / (b / pos_b))
    z = _z(confidence)
    return ratio, math.exp(log_centre - z * se), math.exp(log_centre + z * se)


def disclosed_sensitivity_ratio(
    found: float, events: float, found_reference: float, events_reference: float, confidence: float
) -> tuple[float, float, float, float, float] | None:
    """Two groups' sensitivities and their ratio with its interval, as the report may show them.

    Computed from the rounded counts (see :mod:`riskstrat.evaluation.disclosure`): the exact
    figures would give back the exact numbers found, and from those and the rounded totals
    a suppressed cell.

    Returns:
        Sensitivity, reference sensitivity, ratio, lower, upper; None when a count they rest
        on (found or missed, in either group) is 1-7.
    """
    counts = (found, events - found, found_reference, events_reference - found_reference)
    if disclosure.any_suppressed(counts):
        return None
    tp, positives, tp_ref, positives_ref = (
        disclosure.rounded(c) for c in (found, events, found_reference, events_reference)
    )
    if not positives or not positives_ref:
        return None
    ratio, low, high = katz_ratio(tp, positives, tp_ref, positives_ref, confidence)
    return tp / positives, tp_ref / positives_ref, ratio, low, high


def _sensitivity_flags(
    lists: pd.DataFrame, references: dict[str, str], settings: FairnessSettings
) -> list[Flag]:
    tol = settings.tolerances
    flags = []
    overall = lists[lists["mdt"] == ALL_MDTS]
    for grouping, reference in references.items():
        cells = overall[overall["grouping"] == grouping].set_index("group")
        if reference not in cells.index or cells.loc[reference, "status"] != "ok":
            continue
        ref = cells.loc[reference]
        for group, row in cells.iterrows():
            if group == reference or row["status"] != "ok":
                continue
            ratio, low, high = katz_ratio(
                row["true_positives"],
                row["events"],
                ref["true_positives"],
                ref["events"],
                settings.confidence,
            )
            status = _status_between(ratio, low, high, tol.sensitivity_ratio_low, tol.sensitivity_ratio_high)
            if status is None:
                continue
            direction = "a smaller" if ratio < 1 else "a larger"
            shown = disclosed_sensitivity_ratio(
                row["true_positives"],
                row["events"],
                ref["true_positives"],
                ref["events"],
                settings.confidence,
            )
            if shown is None:
                figures = "figures not shown: fewer than 8 people found or missed in one of the groups"
                shown_ratio: tuple[float | str, float | str, float | str] = (disclosure.SUPPRESSED,) * 3
            else:
                found, found_ref, *shown_ratio = shown
                figures = (
                    f"sensitivity {100 * found:.1f}% vs {100 * found_ref:.1f}%, ratio {_fmt(shown_ratio[0])}, "
                    f"95% CI {_fmt(shown_ratio[1])} to {_fmt(shown_ratio[2])}"
                )
            sentence = (
                f"The lists: of the people in {row['label']} who "
                "went on to have the outcome, the lists found "
                f"{direction} share than in {ref['label']} ({figures}; "
                f"tolerance {tol.sensitivity_ratio_low:g} to {tol.sensitivity_ratio_high:g}) - "
                f"{_verdict(status)}. A group at higher predicted risk is found more often; check the "
                "calibration and need-at-equal-risk results before reading this as unfair."
            )
            flags.append(
                _flag(
                    settings,
                    flag_id=f"sensitivity_ratio:{grouping}:{group}",
                    kind="sensitivity_ratio",
                    grouping=grouping,
                    group=str(group),
                    measure="",
                    estimate=ratio,
                    lower=low,
                    upper=high,
                    tolerance=f"{tol.sensitivity_ratio_low:g} to {tol.sensitivity_ratio_high:g}",
                    status=status,
                    sentence=sentence,
                    shown=tuple(shown_ratio),
                )
            )
    return flags


def _need_flags(need_ratios: pd.DataFrame, settings: FairnessSettings) -> list[Flag]:
    limit = settings.tolerances.need_ratio
    flags = []
    rows = need_ratios[
        (need_ratios["status"] == "ok") & need_ratios["measure"].isin(settings.need_flag_measures)
    ]
    for _, row in rows.iterrows():
        ratio, low, high = row["need_ratio"], row["need_ratio_lower"], row["need_ratio_upper"]
        if math.isnan(ratio) or ratio <= limit:
            continue
        status = "raised" if low > limit else "uncertain"
        sentence = (
            f"Need at equal risk: at the same predicted risk, people in {row['label']} had "
            f"{100 * (ratio - 1):.0f}% more {row['measure_label']} than everyone else (standardised need "
            f"ratio {_fmt(ratio)}, 95% CI {_fmt(low)} to {_fmt(high)}; tolerance {limit:g}) - "
            f"{_verdict(status)}. The model may under-rank this group's need."
        )
        flags.append(
            _flag(
                settings,
                flag_id=f"need_at_equal_risk:{row['grouping']}:{row['group']}:{row['measure']}",
                kind="need_at_equal_risk",
                grouping=row["grouping"],
                group=row["group"],
                measure=row["measure"],
                estimate=ratio,
                lower=low,
                upper=high,
                tolerance=f"up to {limit:g}",
                status=status,
                sentence=sentence,
            )
        )
    return flags


def _explain_sensitivity(
    flags: list[Flag],
    model_flags: list[Flag],
    performance: pd.DataFrame,
    references: dict[str, str],
    settings: FairnessSettings,
) -> list[Flag]:
    """Mark sensitivity gaps that follow from a group's different risk as explained.

    When neither the group nor the reference group has a raised calibration (O/E) or need
    flag (more of a flagged need measure at equal predicted risk), both have enough data, and the gap goes the way of the groups' predicted risk (the group at
    lower risk has fewer of its events on the list), ranking by risk is ranking by need on
    a capacity-limited list: the difference is explained, not a fault. A group at higher
    predicted risk found less often is never explained this way.
    """
    # Only raised model flags withhold the explanation: an uncertain one is not evidence of a
    # fault, and in a sound model about one cell in twenty is uncertain by chance.
    troubled = {(f.grouping, f.group) for f in model_flags if f.status == "raised"}
    judged = set(
        performance.loc[performance["status"] == "ok", ["grouping", "group"]].itertuples(index=False)
    )
    by_group = performance.set_index(["grouping", "group"])
    measures = [settings.need_measures.get(m, m) for m in settings.need_flag_measures]
    need_words = ", ".join(measures[:-1]) + f" or {measures[-1]}" if len(measures) > 1 else "".join(measures)
    out = []
    for flag in flags:
        pair, ref = (flag.grouping, flag.group), (flag.grouping, references[flag.grouping])
        unflagged = pair not in troubled and ref not in troubled and pair in judged and ref in judged
        # The group found less often must be the one at lower predicted risk.
        lower = flag.estimate < 1
        follows_risk = unflagged and lower == (
            by_group.loc[pair, "mean_risk"] < by_group.loc[ref, "mean_risk"]
        )
        if follows_risk:
            sentence = flag.sentence.rsplit(" - ", 1)[0] + (
                " - explained: neither group has a raised calibration flag or a raised flag for more "
                f"{need_words} at equal predicted risk, and the group found less often is the one at "
                "lower predicted risk, so the lists follow the groups' different risk; this is not a "
                "fault of the model."
            )
            flag = replace(flag, status="explained", sentence=sentence)
        out.append(flag)
    return out


# --- the audit ----------------------------------------------------------------------------


def run_audit(
    predictions: pd.DataFrame, selections: pd.DataFrame, settings: FairnessSettings
) -> FairnessAudit:
    """Audit a model's test-row predictions and its lists, by group.

    Args:
        predictions: Test-row predictions (:func:`predictions_schema`).
        selections: List selections (:func:`selections_schema`, ``y`` where known).
        settings: The fairness settings.

    Returns:
        The audit (raw figures; the report applies disclosure control).

    Raises:
        RiskstratError: If an input breaks its column contract or a reference group is unknown.
    """
    validate_predictions(predictions, settings)
    validate_selections(selections)
    frame, groupings = assign_groups(predictions.reset_index(drop=True))
    frame["y"] = pd.to_numeric(frame["y"]).astype(int)
    frame["p"] = pd.to_numeric(frame["p"]).astype(float)
    chosen, _ = assign_groups(selections.reset_index(drop=True))
    # Groupings follow the predictions; groups only seen in the lists are added so none is dropped.
    columns = list(grouping_columns())
    _, list_groupings = assign_groups(pd.concat([predictions[columns], selections[columns]]))

    performance = _performance(frame, groupings, settings)
    sizes = performance.set_index(["grouping", "group"])["n"]
    references = {
        g.name: pick_reference(g, sizes.loc[g.name], settings.reference_for(g.name)) for g in groupings
    }
    calibration = _calibration_curves(frame, groupings, performance, settings)
    lists = _lists(chosen, list_groupings, settings)
    need_bands, need_ratios, band_labels = _need(frame, groupings, settings)
    list_fraction = float(chosen["selected"].astype(bool).mean())
    need_ranking = _need_ranking(frame, groupings, settings, list_fraction)

    model_flags = _oe_flags(performance, settings) + _need_flags(need_ratios, settings)
    flags = (
        model_flags
        + _auroc_flags(performance, references, settings)
        + _explain_sensitivity(
            _sensitivity_flags(lists, references, settings), model_flags, performance, references, settings
        )
    )
    order = {"raised": 0, "uncertain": 1, "explained": 2}
    flags.sort(key=lambda f: (order[f.status], f.kind, f.grouping, f.group, f.measure))
    return FairnessAudit(
        performance=performance,
        calibration=calibration,
        lists=lists,
        need_bands=need_bands,
        need_ratios=need_ratios,
        need_ranking=need_ranking,
        flags=flags,
        references=references,
        groupings=groupings,
        settings=settings,
        list_fraction=list_fraction,
        band_labels=band_labels,
    )


def open_flags(audit: FairnessAudit, settings: FairnessSettings) -> list[Flag]:
    """Flags that block promotion: raised (and, if configured, uncertain) flags not accepted in configs.

    Args:
        audit: The challenger's audit.
        settings: The fairness settings holding the accepted flags (read afresh, so an
            acceptance added after the audit ran counts).

    Returns:
        The open flags; an empty list means the fairness gate passes.
    """
    blocking = {"raised", "uncertain"} if settings.gate_on_uncertain else {"raised"}
    return [
        f
        for f in audit.flags
        if f.status in blocking
        and f.grouping in settings.gating_groupings
        and settings.accepted(f.flag_id) is None
    ]
