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
* Every comparison of a group with a tolerance is a *check* with a one-sided
  p-value of "the true gap is within the tolerance", tested at the bound nearer
  the estimate with the standard error its interval implies. Within each kind of
  check the p-values are adjusted (Benjamini-Hochberg, ``false_discovery_rate``);
  a flag is raised ("a real gap, not noise") when its adjusted p-value is below
  the level and its whole interval lies beyond the tolerance. Cells with
  insufficient data are not checks; list-sensitivity checks without the power to
  see a gap at the tolerance (``min_power``) are withheld, with the reason.
* An intersection cell raised for the same kind as one of its margins is folded
  into the margin's finding. For each group, measures from independent sources
  pointing the same disadvantaging way are combined: a combined finding needs
  evidence of a gap (half the tolerance) from at least two sources (a partial
  conjunction test), Benjamini-Hochberg across groups.
* Figures quoted on rounded counts (disclosure control) are shown only when they
  tell the same story as the exact figures the decision used.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd
from fairlearn.metrics import MetricFrame
from scipy import stats
from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.proportion import proportion_confint

from riskstrat.errors import RiskstratError
from riskstrat.evaluation import disclosure, recording
from riskstrat.evaluation.groups import (
    GROUPINGS,
    INSUFFICIENT,
    INTERSECTION_SEPARATOR,
    Grouping,
    IntersectionSpec,
    assign_groups,
    group_label,
    grouping_columns,
    is_place,
    is_sufficient,
    reported_by_mdt,
    required_grouping_columns,
    same_people_label,
    same_people_places,
)
from riskstrat.evaluation.groups import reference_group as pick_reference
from riskstrat.evaluation.settings import COMBINED, FLAG_KINDS, AcceptedFlag, FairnessSettings
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
    """One check of a group against a tolerance, explained in one sentence.

    The audit judges many; :attr:`FairnessAudit.flags` keeps the raised and explained ones,
    :attr:`FairnessAudit.checks` all of them.

    Attributes:
        flag_id: Stable id, ``<kind>:<grouping>:<group>[:<measure>]``, used to accept it.
        kind: One of ``settings.FLAG_KINDS``.
        grouping: The grouping (e.g. ethnic_group).
        group: The group (e.g. Black).
        measure: The need measure, for need flags.
        estimate: The figure compared with the tolerance.
        lower: Lower end of its interval.
        upper: Upper end of its interval.
        tolerance: The tolerance in words, e.g. "0.8 to 1.25".
        status: "raised" (a real gap, not noise: adjusted p-value below the false discovery
            rate and the whole interval beyond the tolerance) or "explained" (a raised list
            gap that follows the group's different risk while the model is calibrated and
            need-neutral for it); in :attr:`FairnessAudit.checks` also "not raised" and
            "folded" (an intersection cell raised with one of its margins).
        sentence: The plain-English explanation, with figures as the report may show them.
        accepted: The board's acceptance, when configured.
        shown: ``estimate``, ``lower`` and ``upper`` as the report may show them, when they
            rest on counts and so pass disclosure control (computed from the rounded counts);
            all ``"*"`` when a count is 1-7 or when rounding would put a figure on the other
            side of a tolerance bound or of "no gap" than the exact figure; None when the
            figures may be shown as they are. The status is always decided on the exact figures.
        p_value: One-sided p-value of "the true gap is within the tolerance", tested at the
            tolerance bound nearer the estimate.
        q_value: The p-value adjusted (Benjamini-Hochberg) for the checks of its kind.
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
    p_value: float = float("nan")
    q_value: float = float("nan")


@dataclass(frozen=True)
class Finding:
    """What the board is told about one group: a raised flag, or several measures combined.

    Attributes:
        flag_id: The id the board accepts it by: the flag's id, or ``combined:<grouping>:<group>``.
        kind: The flag's kind, or ``"combined"``.
        grouping: The grouping.
        group: The group.
        label: The group's plain label.
        status: "raised" (only raised findings are listed).
        sentence: One plain paragraph with the figures as the report may show them.
        parts: The flag; for a combined finding, the strongest measure of each source pointing the
            disadvantaging way.
        detail: Intersection cells folded into it (flags, or combined findings of a cell).
        p_value: The flag's, or the combined one-sided p-value.
        q_value: Adjusted for the checks of its kind (for combined findings, across groups).
        accepted: The board's acceptance, when configured.
        gates: Whether its grouping gated promotion when the audit ran.
    """

    flag_id: str
    kind: str
    grouping: str
    group: str
    label: str
    status: str
    sentence: str
    parts: tuple[Flag, ...]
    detail: tuple[Flag | Finding, ...]
    p_value: float
    q_value: float
    accepted: AcceptedFlag | None
    gates: bool


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
        flags: Every raised or explained flag (accepted ones included, marked); an
            intersection cell folded into a margin's finding is not among them.
        references: Reference group of each grouping.
        groupings: The groupings, in report order.
        settings: The settings used.
        list_fraction: Share of the population the lists select (used for need ranking).
        band_labels: Labels of the predicted-risk bands of need at equal risk.
        checks: Every judged check, one row each, with its p-value, q-value and status.
        withheld: List-sensitivity checks not run for lack of power, with the reason.
        combined: One row per group with checks from two or more independent sources: how many
            point the disadvantaging way, the combined p-value, q-value and status.
        findings: What the board is told: one per raised flag and per raised combined test.
        error_control: The method, the false discovery rate, and per kind the checks run, raised,
            beyond the tolerance without evidence, and the false flags chance alone would give.
        recording: GP recording of hospital-recorded conditions by group (None without its columns).
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
    checks: pd.DataFrame = field(default_factory=pd.DataFrame)
    withheld: pd.DataFrame = field(default_factory=pd.DataFrame)
    combined: pd.DataFrame = field(default_factory=pd.DataFrame)
    findings: list[Finding] = field(default_factory=list)
    error_control: dict[str, object] = field(default_factory=dict)
    recording: pd.DataFrame | None = None


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
            *(
                Column(name, Kind.ANY, nullable=True, required=name in required_grouping_columns())
                for name in grouping_columns()
            ),
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
            *(
                Column(name, Kind.ANY, nullable=True, required=name in required_grouping_columns())
                for name in grouping_columns()
            ),
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
                    # A skewed bootstrap can leave the estimate outside its percentile interval; the
                    # interval is widened to hold it, so an estimate is never shown outside its interval.
                    low_end = centre - scale * (centre - float(boot.loc[metric, "ci_low"]))
                    high_end = centre + scale * (float(boot.loc[metric, "ci_high"]) - centre)
                    row[f"{metric}_lower"], row[f"{metric}_upper"] = (
                        min(low_end, centre),
                        max(high_end, centre),
                    )
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
            # An intersection's cells would be too small MDT by MDT; a place's table would be trivial.
            if reported_by_mdt(grouping.name):
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
    # Widened to hold the estimate when the draws are skewed: an estimate always lies inside its interval.
    return ratio, min(float(np.quantile(reps, alpha)), ratio), max(float(np.quantile(reps, 1 - alpha)), ratio)


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


# --- checks: every judged comparison, with its p-value ------------------------------------

VERDICT = "<verdict>"
"""Placeholder in a check's sentence for its decision, written once every check of its kind is judged."""

NOT_RAISED = "not raised"
"""Status of a judged check without evidence of a gap beyond its tolerance."""

FOLDED = "folded"
"""Status of an intersection cell raised for the same kind as one of its margins (detail of that finding)."""

COVERED = "covered"
"""Status of a combined test whose group already has one of its measures raised on its own."""

EVENTS_SOURCE = "calibration and hospital-recorded need"
GP_NEED_SOURCE = "GP-recorded need"
RANKING_SOURCE = "ranking"
RECORDING_SOURCE = "GP recording"
"""Independent sources of evidence a combined finding draws on (one strongest measure from each)."""


@dataclass(frozen=True)
class _Check:
    """A judged comparison: its flag (status not yet decided) and where its tolerance lies.

    Attributes:
        flag: The flag it would raise; ``sentence`` holds :data:`VERDICT` until judged.
        low: Flagged below this (NaN when only the other side is flagged).
        high: Flagged above this (NaN when only the other side is flagged).
        interval_beyond: The whole interval lies beyond the tolerance.
    """

    flag: Flag
    low: float
    high: float
    interval_beyond: bool

    @property
    def beyond(self) -> bool:
        """The point estimate lies beyond the tolerance."""
        estimate = self.flag.estimate
        return bool(estimate < self.low or estimate > self.high)


def one_sided_p(
    estimate: float, lower: float, upper: float, bound: float, above: bool, log_scale: bool, confidence: float
) -> float:
    """p-value of "the true value is on the tolerated side of ``bound``", tested at the bound.

    The standard error is read from the half of the estimate's interval that faces the
    bound (on the log scale for ratios), so the p-value is below (1 - confidence) / 2
    exactly when the interval lies wholly beyond the bound.

    Args:
        estimate: The point estimate.
        lower: Lower end of its interval.
        upper: Upper end of its interval.
        bound: The tolerance.
        above: True when a value above ``bound`` is a gap (else below).
        log_scale: Test on the log scale (ratios).
        confidence: Coverage of the interval.

    Returns:
        The one-sided p-value; NaN when the figures cannot be tested (missing or a zero interval).
    """
    values = (estimate, lower, upper, bound)
    if not all(math.isfinite(v) for v in values) or (log_scale and min(values) <= 0):
        return float("nan")
    est, low, high, edge = (math.log(v) for v in values) if log_scale else values
    half = (high - est) if edge > est else (est - low)
    if half <= 0:
        half = (high - low) / 2
    if half <= 0:
        return float("nan")
    se = half / _z(confidence)
    z = (est - edge) / se if above else (edge - est) / se
    return float(stats.norm.sf(z))


def _two_sided_p(
    estimate: float, lower: float, upper: float, low: float, high: float, confidence: float
) -> float:
    """One-sided p-value of a ratio against whichever tolerance bound (log scale) is nearer the estimate."""
    if not (estimate > 0):
        return float("nan")
    above = math.log(estimate) >= (math.log(low) + math.log(high)) / 2
    return one_sided_p(estimate, lower, upper, high if above else low, above, True, confidence)


def _verdict(status: str, checks: int, level: float, family: str) -> str:
    where = FAMILY_WORDS[family]
    if status == "raised":
        return (
            f"a real gap, not noise: it stands after allowing for the {checks} checks of this kind {where} "
            f"(false discovery rate {100 * level:g}%)"
        )
    return (
        f"not raised: no evidence of a gap beyond the tolerance once the {checks} checks of this kind "
        f"{where} are allowed for"
    )


def _fmt(value: float, digits: int = 2) -> str:
    return f"{value:.{digits}f}"


def _flag(settings: FairnessSettings, **kwargs: object) -> Flag:
    """A not-yet-judged flag; its id (``<kind>:<grouping>:<group>[:<measure>]``) derives from its fields."""
    parts = [kwargs["kind"], kwargs["grouping"], kwargs["group"]] + (
        [kwargs["measure"]] if kwargs["measure"] else []
    )
    flag_id = ":".join(str(part) for part in parts)
    return Flag(flag_id=flag_id, accepted=settings.accepted(flag_id), status=NOT_RAISED, **kwargs)  # type: ignore[arg-type]


def _side(value: float, low: float, high: float) -> int:
    """-1 below the tolerance, 1 above it, 0 within (a NaN bound is never crossed)."""
    return -1 if value < low else (1 if value > high else 0)


def consistent_shown(
    exact: tuple[float, float, float],
    shown: tuple[float, float, float],
    low: float,
    high: float,
    centre: float,
) -> bool:
    """Whether figures rounded for disclosure tell the same story as the exact ones.

    Same side of each tolerance bound and of ``centre`` (no gap) for the estimate, and for
    each end of the interval, and the shown estimate inside the shown interval.
    """
    est, lower, upper = shown
    if not lower <= est <= upper:
        return False
    return all(
        _side(s, low, high) == _side(e, low, high) and (s > centre) == (e > centre)
        for s, e in zip(shown, exact, strict=True)
    )


SUPPRESSED_FIGURES: tuple[str, str, str] = (disclosure.SUPPRESSED,) * 3
"""``Flag.shown`` when the figures may not be shown."""


def _oe_checks(performance: pd.DataFrame, settings: FairnessSettings) -> list[_Check]:
    tol = settings.tolerances
    checks = []
    for _, row in performance[
        (performance["status"] == "ok") & (performance["grouping"] != OVERALL)
    ].iterrows():
        exact = (row["oe_ratio"], row["oe_ratio_lower"], row["oe_ratio_upper"])
        p_value = _two_sided_p(*exact, tol.oe_low, tol.oe_high, settings.confidence)
        if math.isnan(p_value):
            continue
        # The report shows O/E on the rounded events (see report._performance_payload); where that
        # would tell a different story from the exact figures the decision used, none is shown.
        to_rounded = disclosure.rounding_factor(row["events"])
        rounded = tuple(v * to_rounded for v in exact)
        shown = rounded if consistent_shown(exact, rounded, tol.oe_low, tol.oe_high, 1.0) else None
        sentence = _oe_words(row, shown, exact[0], f"{tol.oe_low:g} to {tol.oe_high:g}")
        checks.append(
            _Check(
                _flag(
                    settings,
                    kind="calibration_oe",
                    grouping=row["grouping"],
                    group=row["group"],
                    measure="",
                    estimate=exact[0],
                    lower=exact[1],
                    upper=exact[2],
                    tolerance=f"{tol.oe_low:g} to {tol.oe_high:g}",
                    sentence=sentence,
                    shown=shown if shown is not None else SUPPRESSED_FIGURES,
                    p_value=p_value,
                ),
                low=tol.oe_low,
                high=tol.oe_high,
                interval_beyond=exact[1] > tol.oe_high or exact[2] < tol.oe_low,
            )
        )
    return checks


def _oe_words(row: pd.Series, shown: tuple[float, float, float] | None, exact: float, tolerance: str) -> str:
    """What a group's observed/expected says, with its figures as the report may show them."""
    label = row["label"]
    if shown is None:
        figures = "observed/expected not shown: small numbers, and rounding would change what it says"
    else:
        oe, low, high = shown
        share = f"{100 * abs(oe - 1):.0f}% {'more' if oe > 1 else 'fewer'}; "
        figures = f"{share}observed/expected {_fmt(oe)}, 95% CI {_fmt(low)} to {_fmt(high)}"
    caveat = ""
    if exact > 1:
        what = f"the model under-estimates risk for {label}: more people had the outcome than it predicted"
    elif is_place(row["grouping"]):
        what = f"fewer people in {label} had a recorded outcome than the model predicted"
        caveat = (
            " This place may have lost data rather than gained health: check that its hospital activity "
            "reaches the extract (for example admissions to a trust outside the area) before reading this "
            "as the model over-estimating risk."
        )
    else:
        what = f"the model over-estimates risk for {label}: fewer people had the outcome than it predicted"
    return f"Calibration: {what} ({figures}; tolerance {tolerance}) - {VERDICT}.{caveat}"


def _auroc_checks(
    performance: pd.DataFrame, references: dict[str, str], settings: FairnessSettings
) -> list[_Check]:
    gap = settings.tolerances.auroc_gap
    z = _z(settings.confidence)
    checks = []
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
            # Only a group the model ranks worse is failed by it: a one-sided check.
            p_value = one_sided_p(diff, diff - half, diff + half, -gap, False, False, settings.confidence)
            if math.isnan(p_value):
                continue
            sentence = (
                f"Discrimination: the model ranks people in {row['label']} "
                f"{'worse' if diff < 0 else 'no worse'} than in the reference group {ref['label']} "
                f"(AUROC {_fmt(row['auroc'])} vs {_fmt(ref['auroc'])}, difference {diff:+.3f}, 95% CI "
                f"{diff - half:+.3f} to {diff + half:+.3f}; tolerance -{gap:g}) - {VERDICT}."
            )
            checks.append(
                _Check(
                    _flag(
                        settings,
                        kind="auroc_gap",
                        grouping=grouping,
                        group=str(group),
                        measure="",
                        estimate=diff,
                        lower=diff - half,
                        upper=diff + half,
                        tolerance=f"no worse than -{gap:g}",
                        sentence=sentence,
                        p_value=p_value,
                    ),
                    low=-gap,
                    high=math.nan,
                    interval_beyond=diff + half < -gap,
                )
            )
    return checks


def katz_ratio(
    tp_a: float, pos_a: float, tp_b: float, pos_b: float, confidence: float
) -> tuple[float, float, float]:
    """Ratio of two independent proportions with the Katz log interval.

    When either group found nobody, 0.5 is added to each found count and 1 to each total
    (the usual correction), and the estimate is taken from the same corrected counts as its
    interval, so the estimate always lies inside it.
    """
    if pos_a <= 0 or pos_b <= 0:
        return float("nan"), float("nan"), float("nan")
    a, n_a, b, n_b = tp_a, pos_a, tp_b, pos_b
    if a <= 0 or b <= 0:
        a, n_a, b, n_b = a + 0.5, n_a + 1, b + 0.5, n_b + 1
    ratio = (a / n_a) / (b / n_b)
    se = math.sqrt(max(1 / a - 1 / n_a + 1 / b - 1 / n_b, 0.0))
    z = _z(confidence)
    return ratio, ratio * math.exp(-z * se), ratio * math.exp(z * se)


def sensitivity_power(
    events: float, events_reference: float, sensitivity: float, settings: FairnessSettings
) -> float:
    """Chance that a list-sensitivity check tells a ratio at the tolerance from no gap.

    Normal approximation on the Katz standard error at the two groups' pooled sensitivity,
    one-sided at the false discovery rate (the most lenient level a single check meets).
    It depends on the group sizes, not on the gap observed.
    """
    if events <= 0 or events_reference <= 0 or not 0 < sensitivity < 1:
        return 1.0 if sensitivity >= 1 else 0.0
    tol = settings.tolerances
    effect = min(-math.log(tol.sensitivity_ratio_low), math.log(tol.sensitivity_ratio_high))
    se = math.sqrt((1 - sensitivity) / sensitivity * (1 / events + 1 / events_reference))
    return float(stats.norm.cdf(effect / se - stats.norm.isf(settings.false_discovery_rate)))


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


def _sensitivity_checks(
    lists: pd.DataFrame, references: dict[str, str], settings: FairnessSettings
) -> tuple[list[_Check], list[dict[str, object]]]:
    """The list-sensitivity checks with power, and those withheld for lack of it (with the reason)."""
    tol = settings.tolerances
    checks, withheld = [], []
    overall = lists[lists["mdt"] == ALL_MDTS]
    for grouping, reference in references.items():
        cells = overall[overall["grouping"] == grouping].set_index("group")
        if reference not in cells.index or cells.loc[reference, "status"] != "ok":
            continue
        ref = cells.loc[reference]
        for group, row in cells.iterrows():
            if group == reference or row["status"] != "ok":
                continue
            pooled = (row["true_positives"] + ref["true_positives"]) / (row["events"] + ref["events"])
            power = sensitivity_power(row["events"], ref["events"], pooled, settings)
            if power < settings.min_power:
                withheld.append(
                    {
                        "kind": "sensitivity_ratio",
                        "grouping": grouping,
                        "group": str(group),
                        "label": row["label"],
                        "power": power,
                        "reason": (
                            f"too few events to detect a gap of {100 * (1 - tol.sensitivity_ratio_low):.0f}%: "
                            f"power {100 * power:.0f}%"
                        ),
                    }
                )
                continue
            exact = katz_ratio(
                row["true_positives"],
                row["events"],
                ref["true_positives"],
                ref["events"],
                settings.confidence,
            )
            p_value = _two_sided_p(
                *exact, tol.sensitivity_ratio_low, tol.sensitivity_ratio_high, settings.confidence
            )
            if math.isnan(p_value):
                continue
            disclosed = disclosed_sensitivity_ratio(
                row["true_positives"],
                row["events"],
                ref["true_positives"],
                ref["events"],
                settings.confidence,
            )
            figures = "figures not shown: fewer than 8 people found or missed in one of the groups"
            shown: tuple[float | str, float | str, float | str] = SUPPRESSED_FIGURES
            if disclosed is not None:
                found, found_ref, *rounded = disclosed
                if consistent_shown(
                    exact, tuple(rounded), tol.sensitivity_ratio_low, tol.sensitivity_ratio_high, 1.0
                ):
                    shown = tuple(rounded)  # type: ignore[assignment]
                    figures = (
                        f"sensitivity {100 * found:.1f}% vs {100 * found_ref:.1f}%, ratio {_fmt(rounded[0])}, "
                        f"95% CI {_fmt(rounded[1])} to {_fmt(rounded[2])}"
                    )
                else:
                    figures = "figures not shown: small numbers, and rounding would change what they say"
            sentence = (
                f"The lists: of the people in {row['label']} who went on to have the outcome, the lists "
                f"found {'a smaller' if exact[0] < 1 else 'a larger'} share than in {ref['label']} ({figures}; "
                f"tolerance {tol.sensitivity_ratio_low:g} to {tol.sensitivity_ratio_high:g}) - {VERDICT}. "
                "A group at higher predicted risk is found more often; check the calibration and "
                "need-at-equal-risk results before reading this as unfair."
            )
            checks.append(
                _Check(
                    _flag(
                        settings,
                        kind="sensitivity_ratio",
                        grouping=grouping,
                        group=str(group),
                        measure="",
                        estimate=exact[0],
                        lower=exact[1],
                        upper=exact[2],
                        tolerance=f"{tol.sensitivity_ratio_low:g} to {tol.sensitivity_ratio_high:g}",
                        sentence=sentence,
                        shown=shown,
                        p_value=p_value,
                    ),
                    low=tol.sensitivity_ratio_low,
                    high=tol.sensitivity_ratio_high,
                    interval_beyond=exact[1] > tol.sensitivity_ratio_high
                    or exact[2] < tol.sensitivity_ratio_low,
                )
            )
    return checks, withheld


def _need_checks(need_ratios: pd.DataFrame, settings: FairnessSettings) -> list[_Check]:
    limit = settings.tolerances.need_ratio
    checks = []
    rows = need_ratios[
        (need_ratios["status"] == "ok") & need_ratios["measure"].isin(settings.need_flag_measures)
    ]
    for _, row in rows.iterrows():
        ratio, low, high = row["need_ratio"], row["need_ratio_lower"], row["need_ratio_upper"]
        # A place is also judged on the low side: fewer recorded admissions or conditions than
        # people at the same predicted risk elsewhere is how lost data shows (a trust's activity
        # missing from the extract, a practice feed that stopped), even when the model, trained
        # on the same gap, predicts the place low too and its O/E stays inside the tolerance.
        place = is_place(row["grouping"])
        floor = 1 / limit if place else math.nan
        if place:
            p_value = _two_sided_p(ratio, low, high, floor, limit, settings.confidence)
        else:
            p_value = one_sided_p(ratio, low, high, limit, True, True, settings.confidence)
        if math.isnan(p_value):
            continue
        more = f"{100 * (ratio - 1):.0f}% more" if ratio >= 1 else f"{100 * (1 - ratio):.0f}% less"
        if place and ratio < 1:
            sentence = (
                f"Recorded need at equal risk: at the same predicted risk, people in {row['label']} had "
                f"{more} {row['measure_label']} recorded than everyone else (standardised ratio "
                f"{_fmt(ratio)}, 95% CI {_fmt(low)} to {_fmt(high)}; tolerance {floor:.2f} to {limit:g}) - "
                f"{VERDICT}. This place may have lost data rather than gained health: check that its "
                "records reach the extract (hospital activity at a trust outside the area, a practice "
                "feed that stopped) before trusting its lists or the model's figures for it."
            )
        else:
            sentence = (
                f"Need at equal risk: at the same predicted risk, people in {row['label']} had "
                f"{more} {row['measure_label']} than everyone else (standardised need "
                f"ratio {_fmt(ratio)}, 95% CI {_fmt(low)} to {_fmt(high)}; tolerance {limit:g}) - "
                f"{VERDICT}. The model may under-rank this group's need."
            )
        checks.append(
            _Check(
                _flag(
                    settings,
                    kind="need_at_equal_risk",
                    grouping=row["grouping"],
                    group=row["group"],
                    measure=row["measure"],
                    estimate=ratio,
                    lower=low,
                    upper=high,
                    tolerance=f"{floor:.2f} to {limit:g}" if place else f"up to {limit:g}",
                    sentence=sentence,
                    p_value=p_value,
                ),
                low=floor,
                high=limit,
                interval_beyond=low > limit or high < floor,
            )
        )
    return checks


def _recording_checks(recording: pd.DataFrame | None, settings: FairnessSettings) -> list[_Check]:
    """GP-recording checks from helper table :func:`riskstrat.evaluation.recording.gp_recording`."""
    if recording is None or recording.empty:
        return []
    limit = settings.tolerances.gp_recording_ratio
    checks = []
    for _, row in recording[recording["status"] == "ok"].iterrows():
        exact = (row["ratio"], row["ratio_lower"], row["ratio_upper"])
        p_value = float(row["p_value"])
        if not all(math.isfinite(v) for v in (*exact, p_value)):
            continue
        shown = _shown_recording(row, exact, limit)
        if shown is None:
            figures = "figures not shown: small numbers"
        else:
            figures = (
                f"{100 * row['share'] * shown[0] / exact[0]:.0f}% against {100 * row['others_share']:.0f}% "
                f"of everyone else, ratio {_fmt(shown[0])}, 95% CI {_fmt(shown[1])} to {_fmt(shown[2])}"
            )
        sentence = (
            f"GP recording: of the people in {row['label']} with a long-term condition recorded in "
            f"hospital, {'fewer' if exact[0] < 1 else 'no fewer'} also had it on their GP record than "
            f"everyone else ({figures}; tolerance {limit:g}) - {VERDICT}. Their GP record may under-record "
            "their conditions, and a model that reads it may under-rate their risk."
        )
        checks.append(
            _Check(
                _flag(
                    settings,
                    kind="gp_recording",
                    grouping=row["grouping"],
                    group=row["group"],
                    measure="",
                    estimate=exact[0],
                    lower=exact[1],
                    upper=exact[2],
                    tolerance=f"at least {limit:g}",
                    sentence=sentence,
                    shown=shown if shown is not None else SUPPRESSED_FIGURES,
                    p_value=p_value,
                ),
                low=limit,
                high=math.nan,
                interval_beyond=exact[2] < limit,
            )
        )
    return checks


def _shown_recording(
    row: pd.Series, exact: tuple[float, float, float], limit: float
) -> tuple[float, float, float] | None:
    """The recording ratio on the rounded counts of the group, or None when it may not be shown."""
    also, total = row["n_also_gp"], row["n_hospital_ltc"]
    if disclosure.any_suppressed((also, total - also)) or not row["share"] or not total:
        return None
    shown_share = (disclosure.rounded(also) or 0.0) / (disclosure.rounded(total) or math.nan)
    factor = shown_share / row["share"]
    shown = tuple(v * factor for v in exact)
    return shown if consistent_shown(exact, shown, limit, math.nan, 1.0) else None  # type: ignore[return-value]


# --- judging the checks: false discovery rate, margins first, combined evidence -----------


GATING_FAMILY = "gating"
REPORTED_FAMILY = "reported"
"""The two families of each kind's checks: the groupings that decide promotion, and the others."""

FAMILY_WORDS = {
    GATING_FAMILY: "in the groupings that decide promotion",
    REPORTED_FAMILY: "in the groupings reported but not deciding promotion",
}


def check_family(grouping: str, settings: FairnessSettings) -> str:
    """The false-discovery family a grouping's checks belong to (within their kind).

    The groupings that decide promotion form one family and the others (age band, GP
    practice, with real gaps by design) another, so those with true gaps do not loosen
    the control of the flags that block promotion.
    """
    return GATING_FAMILY if grouping in settings.gating_groupings else REPORTED_FAMILY


def _judge(checks: list[_Check], settings: FairnessSettings) -> list[_Check]:
    """Benjamini-Hochberg across one family's checks (one kind, gating or not).

    A check is raised when its adjusted p-value (q-value) is below the false discovery rate
    and its whole interval lies beyond the tolerance (so the figures shown never contradict
    the decision).
    """
    if not checks:
        return []
    families = {check_family(c.flag.grouping, settings) for c in checks}
    if len(families) > 1:
        raise ValueError("judge the groupings that decide promotion and the others as separate families")
    (family,) = families
    level = settings.false_discovery_rate
    _, q_values, _, _ = multipletests([c.flag.p_value for c in checks], alpha=level, method="fdr_bh")
    judged = []
    for check, q_value in zip(checks, q_values, strict=True):
        status = "raised" if q_value < level and check.interval_beyond else NOT_RAISED
        sentence = check.flag.sentence.replace(VERDICT, _verdict(status, len(checks), level, family))
        judged.append(
            replace(check, flag=replace(check.flag, q_value=float(q_value), status=status, sentence=sentence))
        )
    return judged


def _judge_families(candidates: list[_Check], settings: FairnessSettings) -> list[_Check]:
    """Judge every family (kind x gating or not) on its own; the checks keep their kind's order."""
    judged = []
    for kind in FLAG_KINDS:
        mine = [c for c in candidates if c.flag.kind == kind]
        for family in FAMILY_WORDS:
            at = [i for i, c in enumerate(mine) if check_family(c.flag.grouping, settings) == family]
            for i, check in zip(at, _judge([mine[i] for i in at], settings), strict=True):
                mine[i] = check
        judged += mine
    return judged


def _margins(grouping: str, group: str) -> list[tuple[str, str]]:
    """The two (grouping, group) margins of an intersection cell; none for an ordinary group."""
    spec = GROUPINGS.get(grouping)
    if not isinstance(spec, IntersectionSpec):
        return []
    first, _, second = group.partition(INTERSECTION_SEPARATOR)
    return [(spec.parts[0], first), (spec.parts[1], second)]


def _fold_intersections(checks: list[_Check]) -> tuple[list[_Check], dict[str, list[Flag]]]:
    """Fold each raised intersection cell into a raised margin flag of the same kind.

    Returns:
        The checks (folded cells marked :data:`FOLDED`) and, by margin flag id, the folded flags.
    """
    raised: dict[tuple[str, str, str], list[Flag]] = {}
    for c in checks:
        if c.flag.status == "raised":
            raised.setdefault((c.flag.kind, c.flag.grouping, c.flag.group), []).append(c.flag)
    folded: dict[str, list[Flag]] = {}
    out = []
    for check in checks:
        flag = check.flag
        if flag.status == "raised":
            margin_flags = [
                f for m in _margins(flag.grouping, flag.group) for f in raised.get((flag.kind, *m), [])
            ]
            if margin_flags:
                # The same measure's margin flag if there is one, else the first of the kind.
                into = next((f for f in margin_flags if f.measure == flag.measure), margin_flags[0])
                folded.setdefault(into.flag_id, []).append(flag)
                check = replace(check, flag=replace(flag, status=FOLDED))
        out.append(check)
    return out, folded


def _source(flag: Flag, settings: FairnessSettings) -> str | None:
    """The independent source of evidence a check belongs to, for combined findings (None: not combined)."""
    if flag.kind == "calibration_oe":
        return EVENTS_SOURCE
    if flag.kind == "need_at_equal_risk":
        return GP_NEED_SOURCE if flag.measure in settings.gp_recorded_need_measures else EVENTS_SOURCE
    if flag.kind == "auroc_gap":
        return RANKING_SOURCE
    if flag.kind == "gp_recording":
        return RECORDING_SOURCE
    return None


def _disadvantage_p(flag: Flag, settings: FairnessSettings) -> tuple[float, bool]:
    """One-sided p-value of a part of a combined finding, and whether it points the disadvantaging way.

    Tested against ``combined_tolerance_share`` of the part's own tolerance, on the side that
    disadvantages the group: under-predicted (O/E above 1), sicker at equal risk (need ratio
    above 1), ranked worse (AUROC gap below 0), under-recorded (recording ratio below 1).
    """
    tol, share = settings.tolerances, settings.combined_tolerance_share
    args = (flag.estimate, flag.lower, flag.upper)
    if flag.kind == "calibration_oe":
        return one_sided_p(*args, tol.oe_high**share, True, True, settings.confidence), flag.estimate > 1
    if flag.kind == "need_at_equal_risk":
        return one_sided_p(*args, tol.need_ratio**share, True, True, settings.confidence), flag.estimate > 1
    if flag.kind == "auroc_gap":
        return one_sided_p(
            *args, -tol.auroc_gap * share, False, False, settings.confidence
        ), flag.estimate < 0
    return one_sided_p(
        *args, tol.gp_recording_ratio**share, False, True, settings.confidence
    ), flag.estimate < 1


def _combined(
    checks: list[_Check], settings: FairnessSettings
) -> tuple[pd.DataFrame, list[tuple[str, str, list[Flag], float, float]]]:
    """Combine, for each group, the evidence of independent sources that point the same way.

    Within a source the strongest measure counts (its p-value Sidak-adjusted for the
    source's measures, which come from one table and move together). Across the K sources
    the group has checks in, the test is a partial conjunction (Benjamini and Heller 2008):
    its hypothesis is "at most one source shows a gap", so one strong source cannot make a
    finding alone. Its p-value rests on the second-strongest source, Sidak-adjusted for the
    K - 1 others it could have been: 1 - (1 - p_(2)) ** (K - 1). A source pointing the
    other way costs only that adjustment (under-recording, for one, lowers GP-recorded need
    while the harm shows elsewhere). A group is a candidate when two or more sources point
    the disadvantaging way (else its p-value is 1); Benjamini-Hochberg runs across groups.

    Returns:
        The table of combined tests, and for each raised one (grouping, group, the parts
        pointing the way, p, q).
    """
    by_group: dict[tuple[str, str], dict[str, list[tuple[float, bool, Flag]]]] = {}
    for check in checks:
        source = _source(check.flag, settings)
        if source is None:
            continue
        p_value, disadvantaging = _disadvantage_p(check.flag, settings)
        if math.isnan(p_value):
            continue
        parts = by_group.setdefault((check.flag.grouping, check.flag.group), {})
        parts.setdefault(source, []).append((p_value, disadvantaging, check.flag))
    rows: list[dict[str, object]] = []
    chosen: list[list[Flag]] = []
    for (grouping, group), sources in by_group.items():
        if len(sources) < 2:
            continue
        source_p, pointing = [], []
        for measures in sources.values():
            p_value, disadvantaging, flag = min(measures, key=lambda m: m[0])
            # Sidak: the chance that the strongest of k measures is this small by chance alone
            # (exact when independent, conservative when they move together).
            source_p.append(1 - (1 - p_value) ** len(measures))
            if disadvantaging:
                pointing.append((source_p[-1], flag))
        second = sorted(source_p)[1]
        coherent = len(pointing) >= 2
        rows.append(
            {
                "grouping": grouping,
                "group": group,
                "label": group_label(grouping, group),
                "sources": len(sources),
                "sources_pointing": len(pointing),
                "parts": ", ".join(f.flag_id for _, f in sorted(pointing, key=lambda part: part[0])),
                "second_strongest_p": second,
                "p_value": 1 - (1 - second) ** (len(sources) - 1) if coherent else 1.0,
            }
        )
        chosen.append([f for _, f in sorted(pointing, key=lambda part: part[0])])
    table = pd.DataFrame(
        rows,
        columns=[
            "grouping",
            "group",
            "label",
            "sources",
            "sources_pointing",
            "parts",
            "second_strongest_p",
            "p_value",
        ],
    )
    if table.empty:
        return (
            table.assign(
                family=pd.Series(dtype=str), q_value=pd.Series(dtype=float), status=pd.Series(dtype=str)
            ),
            [],
        )
    level = settings.false_discovery_rate
    # Benjamini-Hochberg within each family, as for the single checks.
    table["family"] = [check_family(g, settings) for g in table["grouping"]]
    table["q_value"] = table.groupby("family")["p_value"].transform(
        lambda p: multipletests(p.to_numpy(), alpha=level, method="fdr_bh")[1]
    )
    raised_alone = {
        (c.flag.grouping, c.flag.group)
        for c in checks
        if c.flag.status in ("raised", FOLDED) and _source(c.flag, settings)
    }
    statuses, found = [], []
    for i, row in table.iterrows():
        if row["q_value"] >= level:
            statuses.append(NOT_RAISED)
        elif (row["grouping"], row["group"]) in raised_alone:
            statuses.append(COVERED)
        else:
            statuses.append("raised")
            found.append(
                (row["grouping"], row["group"], chosen[i], float(row["p_value"]), float(row["q_value"]))
            )
    table["status"] = statuses
    return table, found


def _explain_sensitivity(
    flags: list[Flag],
    model_flags: list[Flag],
    performance: pd.DataFrame,
    references: dict[str, str],
    settings: FairnessSettings,
) -> list[Flag]:
    """Mark sensitivity gaps that follow from a group's different risk as explained.

    When neither the group nor the reference group has a raised calibration (O/E), need
    (more of a flagged need measure at equal predicted risk) or GP-recording flag, both
    have enough data, and the gap goes the way of the groups' predicted risk (the group at
    lower risk has fewer of its events on the list), ranking by risk is ranking by need on
    a capacity-limited list: the difference is explained, not a fault. A group at higher
    predicted risk found less often is never explained this way.
    """
    # Only raised model flags withhold the explanation: an estimate beyond a tolerance without
    # evidence is what chance gives in a sound model.
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


def _explain(
    checks: list[_Check], performance: pd.DataFrame, references: dict[str, str], settings: FairnessSettings
) -> list[_Check]:
    """Mark raised list-sensitivity gaps that follow the groups' different risk as explained."""
    model_flags = [
        c.flag for c in checks if c.flag.kind in ("calibration_oe", "need_at_equal_risk", "gp_recording")
    ]
    raised = [c.flag for c in checks if c.flag.kind == "sensitivity_ratio" and c.flag.status == "raised"]
    explained = {
        f.flag_id: f for f in _explain_sensitivity(raised, model_flags, performance, references, settings)
    }
    return [replace(c, flag=explained.get(c.flag.flag_id, c.flag)) for c in checks]


def _figures(flag: Flag) -> str:
    """A flag's estimate and interval as the report may show them, in words."""
    estimate, lower, upper = flag.shown if flag.shown is not None else (flag.estimate, flag.lower, flag.upper)
    if disclosure.SUPPRESSED in (estimate, lower, upper):
        return "figures not shown: small numbers"
    digits = 3 if flag.kind == "auroc_gap" else 2
    sign = "+" if flag.kind == "auroc_gap" else ""
    return f"{estimate:{sign}.{digits}f}, 95% CI {lower:{sign}.{digits}f} to {upper:{sign}.{digits}f}"


def _part_words(flag: Flag, settings: FairnessSettings) -> str:
    """What one measure of a combined finding says, with its figures."""
    if flag.kind == "calibration_oe":
        return f"more people had the outcome than predicted (observed/expected {_figures(flag)})"
    if flag.kind == "need_at_equal_risk":
        measure = settings.need_measures.get(flag.measure, flag.measure)
        return f"more {measure} at the same predicted risk (need ratio {_figures(flag)})"
    if flag.kind == "auroc_gap":
        return f"ranked less well than the reference group (difference in AUROC {_figures(flag)})"
    return f"fewer hospital-recorded conditions also on the GP record (ratio {_figures(flag)})"


def _combined_gap_words(settings: FairnessSettings) -> str:
    """The gap a combined finding tests for, in words with an example."""
    share = settings.combined_tolerance_share
    if share == 0:
        return "a gap"
    return (
        f"gaps of at least {100 * share:g}% of each measure's tolerance (for example observed/expected "
        f"above {settings.tolerances.oe_high**share:.2f})"
    )


def _findings(
    checks: list[_Check],
    folded: dict[str, list[Flag]],
    combined_found: list[tuple[str, str, list[Flag], float, float]],
    combined: pd.DataFrame,
    settings: FairnessSettings,
) -> list[Finding]:
    """One finding per raised flag (folded intersection cells as its detail) and per raised combined test.

    A combined test of an intersection cell is folded, like a flag, into a raised finding of
    one of its margins.
    """
    gating = set(settings.gating_groupings)
    findings = []
    for check in checks:
        flag = check.flag
        if flag.status != "raised":
            continue
        detail = tuple(folded.get(flag.flag_id, ()))
        sentence = flag.sentence
        if detail:
            cells = ", ".join(group_label(f.grouping, f.group) for f in detail)
            sentence += (
                f" The same gap shows within it, for {cells}: part of this finding, not a separate one."
            )
        findings.append(
            Finding(
                flag_id=flag.flag_id,
                kind=flag.kind,
                grouping=flag.grouping,
                group=flag.group,
                label=group_label(flag.grouping, flag.group),
                status="raised",
                sentence=sentence,
                parts=(flag,),
                detail=detail,
                p_value=flag.p_value,
                q_value=flag.q_value,
                accepted=flag.accepted,
                gates=flag.grouping in gating,
            )
        )
    level = settings.false_discovery_rate
    pending = []
    for grouping, group, parts, p_value, q_value in combined_found:
        label = group_label(grouping, group)
        sources = int(
            combined.loc[(combined["grouping"] == grouping) & (combined["group"] == group), "sources"].iloc[0]
        )
        flag_id = f"{COMBINED}:{grouping}:{group}"
        pending.append(
            Finding(
                flag_id=flag_id,
                kind=COMBINED,
                grouping=grouping,
                group=group,
                label=label,
                status="raised",
                sentence=(
                    f"Several measures point the same way for {label}: "
                    + "; ".join(_part_words(f, settings) for f in parts)
                    + f". None is conclusive alone, but at least two independent sources of evidence (of the "
                    f"{sources} checked) show {_combined_gap_words(settings)} (false discovery rate "
                    f"{100 * level:g}%) - a real gap, not noise: the model may disadvantage this group."
                ),
                parts=tuple(parts),
                detail=(),
                p_value=p_value,
                q_value=q_value,
                accepted=settings.accepted(flag_id),
                gates=grouping in gating,
            )
        )
    # Margins first: an intersection's combined finding joins a raised finding of one of its margins.
    for finding in sorted(pending, key=lambda f: bool(_margins(f.grouping, f.group))):
        home = next(
            (
                i
                for i, other in enumerate(findings)
                if (other.grouping, other.group) in _margins(finding.grouping, finding.group)
                and (other.kind == COMBINED or _source(other.parts[0], settings) is not None)
            ),
            None,
        )
        if home is None:
            findings.append(finding)
        else:
            host = findings[home]
            findings[home] = replace(
                host,
                detail=(*host.detail, finding),
                sentence=host.sentence
                + f" {finding.label} shows the same on several measures: part of this finding.",
            )
    return findings


def _mark_folded_combined(combined: pd.DataFrame, findings: list[Finding]) -> pd.DataFrame:
    """Mark combined tests that became detail of a margin's finding as folded, not separately raised."""
    folded = {(d.grouping, d.group) for f in findings for d in f.detail if isinstance(d, Finding)}
    if combined.empty or not folded:
        return combined
    is_folded = [
        (g, group) in folded for g, group in zip(combined["grouping"], combined["group"], strict=True)
    ]
    return combined.assign(
        status=combined["status"].where(~pd.Series(is_folded, index=combined.index), FOLDED)
    )


def _error_control(
    checks: list[_Check],
    withheld: pd.DataFrame,
    combined: pd.DataFrame,
    settings: FairnessSettings,
    same_people: Mapping[tuple[str, str], tuple[str, str]],
) -> dict[str, object]:
    """How many checks ran and what they raised, by kind and by family (kind x gating or not).

    Each family that ran has its own Benjamini-Hochberg control: when no group in it truly
    differs beyond the tolerance, the chance it raises any false flag is at most the level.
    Place groups judged under another place with the same people are listed.
    """
    level = settings.false_discovery_rate
    families: list[dict[str, object]] = []
    for kind in (*FLAG_KINDS, COMBINED):
        for family in FAMILY_WORDS:
            if kind == COMBINED:
                mine = combined[combined["family"] == family] if not combined.empty else combined
                ran, raised = len(mine), int((mine["status"] == "raised").sum()) if len(mine) else 0
            else:
                judged = [
                    c
                    for c in checks
                    if c.flag.kind == kind and check_family(c.flag.grouping, settings) == family
                ]
                ran, raised = len(judged), sum(c.flag.status == "raised" for c in judged)
            if ran:
                families.append(
                    {
                        "kind": kind,
                        "family": family,
                        "checks": ran,
                        "raised": raised,
                        "false_flag_chance_bound": level,
                    }
                )
    kinds: dict[str, dict[str, float]] = {}
    for kind in FLAG_KINDS:
        mine = [c for c in checks if c.flag.kind == kind]
        kinds[kind] = {
            "checks": len(mine),
            "raised": sum(c.flag.status == "raised" for c in mine),
            "explained": sum(c.flag.status == "explained" for c in mine),
            "folded": sum(c.flag.status == FOLDED for c in mine),
            "beyond_tolerance_not_significant": sum(c.beyond and c.flag.status == NOT_RAISED for c in mine),
            "withheld": int((withheld["kind"] == kind).sum()) if not withheld.empty else 0,
            "families": sum(f["kind"] == kind for f in families),
        }
    kinds[COMBINED] = {
        "checks": len(combined),
        "raised": int((combined["status"] == "raised").sum()) if not combined.empty else 0,
        "explained": 0,
        "folded": int((combined["status"] == FOLDED).sum()) if not combined.empty else 0,
        "covered": int((combined["status"] == COVERED).sum()) if not combined.empty else 0,
        "beyond_tolerance_not_significant": 0,
        # Groups where two or more sources point the same way without evidence.
        "pointing_same_way_not_significant": int(
            ((combined["sources_pointing"] >= 2) & (combined["status"] == NOT_RAISED)).sum()
        )
        if not combined.empty
        else 0,
        "withheld": 0,
        "families": sum(f["kind"] == COMBINED for f in families),
    }
    return {
        "method": (
            "Benjamini-Hochberg false discovery rate control in one audit within each family of checks: "
            "one kind of check in the groupings that decide promotion, or the same kind in the groupings "
            "reported but not deciding promotion (so groupings with real gaps by design, such as age band, "
            "do not loosen the control of the flags that block promotion); "
            "a flag is raised when its adjusted p-value is below the level and its 95% interval lies beyond "
            "the tolerance. An intersection cell raised with one of its margins is part of the margin's "
            "finding. Combined findings: the strongest measure of each independent source "
            "(Sidak-adjusted within the source); a combined finding needs evidence from at least two "
            "sources (partial conjunction test on the second-strongest source), "
            "Benjamini-Hochberg across groups within each family."
        ),
        "level": level,
        "false_flag_chance_method": (
            "Benjamini-Hochberg bound: when no group in a family truly differs beyond the tolerance, the "
            "chance that the audit raises one or more false flags in that family is at most the false "
            "discovery rate. It bounds a probability per family, not a count of flags."
        ),
        "checks": sum(k["checks"] for k in kinds.values()),
        "families": families,
        "same_people": [
            {"grouping": g, "group": group, "judged_as_grouping": og, "judged_as_group": other}
            for (g, group), (og, other) in same_people.items()
        ],
        "kinds": kinds,
    }


def _same_people_labels(table: pd.DataFrame, same: Mapping[tuple[str, str], tuple[str, str]]) -> pd.DataFrame:
    """The table with each same-people place group's label saying whose people it is."""
    if not same or table.empty or not {"grouping", "group", "label"} <= set(table.columns):
        return table
    keys = list(zip(table["grouping"], table["group"].astype(str), strict=True))
    labels = [
        same_people_label(g, group, same[(g, group)]) if (g, group) in same else label
        for (g, group), label in zip(keys, table["label"], strict=True)
    ]
    return table.assign(label=labels)


def _checks_table(checks: list[_Check]) -> pd.DataFrame:
    columns = [
        "flag_id", "kind", "grouping", "group", "label", "measure", "estimate", "lower", "upper",
        "tolerance_low", "tolerance_high", "beyond_tolerance", "p_value", "q_value", "status",
    ]  # fmt: skip
    return pd.DataFrame(
        [
            {
                "flag_id": c.flag.flag_id,
                "kind": c.flag.kind,
                "grouping": c.flag.grouping,
                "group": c.flag.group,
                "label": group_label(c.flag.grouping, c.flag.group),
                "measure": c.flag.measure,
                "estimate": c.flag.estimate,
                "lower": c.flag.lower,
                "upper": c.flag.upper,
                "tolerance_low": c.low,
                "tolerance_high": c.high,
                "beyond_tolerance": c.beyond,
                "p_value": c.flag.p_value,
                "q_value": c.flag.q_value,
                "status": c.flag.status,
            }
            for c in checks
        ],
        columns=columns,
    )


def _recording_table(
    frame: pd.DataFrame, groupings: list[Grouping], settings: FairnessSettings
) -> pd.DataFrame | None:
    """Helper B's GP-recording table, when the predictions carry its columns."""
    if not all(column in frame.columns for column in recording.RECORDING_COLUMNS):
        return None
    return recording.gp_recording(frame, groupings, settings)


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
    # A place's column is optional: group on those both frames carry.
    columns = [c for c in grouping_columns() if c in predictions.columns and c in selections.columns]
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

    gp_recording = _recording_table(frame, groupings, settings)

    sensitivity, withheld = _sensitivity_checks(lists, references, settings)
    candidates = (
        _oe_checks(performance, settings)
        + _need_checks(need_ratios, settings)
        + _auroc_checks(performance, references, settings)
        + sensitivity
        + _recording_checks(gp_recording, settings)
    )
    # A place that is the same people as an earlier place (an MDT = one local authority) is
    # judged once, under the earlier one, so one gap cannot raise two findings.
    same = same_people_places(frame, groupings)
    candidates = [c for c in candidates if (c.flag.grouping, c.flag.group) not in same]
    performance, lists, need_ratios, need_ranking = (
        _same_people_labels(t, same) for t in (performance, lists, need_ratios, need_ranking)
    )
    gp_recording = None if gp_recording is None else _same_people_labels(gp_recording, same)
    # False discovery rate within each family (kind x gating or not); then explanations, then margins before intersections.
    judged = _judge_families(candidates, settings)
    judged = _explain(judged, performance, references, settings)
    judged, folded = _fold_intersections(judged)
    combined, combined_found = _combined(judged, settings)
    findings = _findings(judged, folded, combined_found, combined, settings)
    combined = _mark_folded_combined(combined, findings)
    withheld_table = pd.DataFrame(withheld, columns=["kind", "grouping", "group", "label", "power", "reason"])
    order = {"raised": 0, "explained": 1}
    flags = sorted(
        (c.flag for c in judged if c.flag.status in order),
        key=lambda f: (order[f.status], f.kind, f.grouping, f.group, f.measure),
    )
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
        checks=_checks_table(judged),
        withheld=withheld_table,
        combined=combined,
        findings=findings,
        error_control=_error_control(judged, withheld_table, combined, settings, same),
        recording=gp_recording,
    )


def open_flags(audit: FairnessAudit, settings: FairnessSettings) -> list[Finding]:
    """Findings that block promotion: raised, in a gating grouping, and not accepted in configs.

    Args:
        audit: The challenger's audit.
        settings: The fairness settings holding the gating groupings and accepted flags (read
            afresh, so an acceptance added after the audit ran counts).

    Returns:
        The open findings (each with its ``flag_id``); an empty list means the fairness gate passes.
    """
    return [
        f
        for f in audit.findings
        if f.status == "raised"
        and f.grouping in settings.gating_groupings
        and settings.accepted(f.flag_id) is None
    ]
