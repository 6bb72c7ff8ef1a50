"""The weekly monitoring page: the checks' results as a disclosure-controlled payload, then one offline HTML file.

:func:`monitoring_payload` turns what the monitoring checks found (feed health,
drift, estimated and realised performance, the metric history) into a JSON-able
payload in which every count passes disclosure control
(:mod:`riskstrat.evaluation.disclosure`: 1-7 shown as ``"*"``, others rounded to 5,
and a figure built on a suppressed count suppressed too). :func:`render_page`
draws the plots from that payload alone (matplotlib, inline PNG) and renders
``templates/monitoring.html.j2``; it refuses a payload with an undisclosed count
(:func:`~riskstrat.evaluation.disclosure.check_disclosed`). No person ID reaches
the payload: the checks hand over aggregates only.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import jinja2
import matplotlib
import matplotlib.dates
import matplotlib.ticker

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from riskstrat.evaluation import disclosure
from riskstrat.evaluation.alarms import Alarm, worst
from riskstrat.evaluation.disclosure import SUPPRESSED, check_disclosed
from riskstrat.evaluation.report import TEMPLATE_DIR
from riskstrat.evaluation.report_plots import BLUE, GREY, MAX_WIDTH_IN, ORANGE, Image, encode, is_number

RED = "#d5281b"

ACTIONS: dict[str, str] = {
    "feed": (
        "Ask the data team whether the practice's GP feed (or the named source) reached this extract in full. "
        "If records are missing, the practice's patients look healthier than they are and drop off the lists: "
        "fix the feed and rerun the week before using its lists."
    ),
    "stale": (
        "The source's newest record is older than it should be: check that the latest load of that feed ran "
        "and that data.extract_date is right, then rerun."
    ),
    "coverage": (
        "Fewer people than usual have any record in this source: check the feed and the code mappings "
        "(extract/mapping_coverage.json) before trusting the lists."
    ),
    "drift": (
        "This week's population or its records differ from the people the model was trained on. Check the "
        "features that moved most: a coding or feed change is fixed at source; a real change in the "
        "population is a reason to retrain (riskstrat train)."
    ),
    "estimated": (
        "The model's estimated ranking this week is below what it achieved when tested. Look at drift and "
        "feed alarms first; if the data are sound, retrain."
    ),
    "realised": (
        "Now the outcomes are known, observed events differ from the model's predictions beyond tolerance. "
        "Review calibration with the analysts; retrain and recalibrate if it persists."
    ),
}
"""What to do about each kind of alarm, in plain words (shown with each alarm)."""

CHECK_NAMES: dict[str, str] = {
    "feed": "Feed volume",
    "stale": "Stale feed",
    "coverage": "Source coverage",
    "drift": "Drift",
    "estimated": "Estimated performance",
    "realised": "Realised performance",
}

MAX_FEED_SERIES = 6
"""Most alarmed practices / code groups drawn per source table (the rest are in the JSON)."""

MAX_DRIFT_FEATURES = 12
"""Features shown in each drift bar chart (the most important, or those that moved most)."""


# ----------------------------------------------------------------------------- payload


@dataclass
class MonitoringInputs:
    """What the checks found this week (aggregates only), for :func:`monitoring_payload`.

    Attributes:
        week: The week the lists are for.
        data_date: The as-of date of the scores and the extract.
        published: Whether the week's lists are published (False when a critical alarm stopped it,
            or the check ran on demand).
        on_demand: The check ran by ``riskstrat monitor`` (no lists published by it).
        models: Outcome -> "name vN" of the champion monitored.
        wordings: Outcome -> plain English (``outcome_wording``).
        alarms: Every alarm raised this week.
        counts: ``weekly_event_counts``: table, practice_code, code_group, week_end, events.
        registered: ``registered_by_practice``: practice_code, week_end, registered.
        coverage: ``source_coverage``: table, registered, people_with_record, share, latest_event,
            days_since_latest.
        drift: Outcome -> drift result (``Drift``), or None when there is no training reference.
        score_bins: Outcome -> {"edges", "reference" (shares), "current" (counts)} for the score plot.
        estimated: Outcome -> ``estimated_performance`` output.
        test_auroc: Outcome -> the champion's tested AUROC (from its training run).
        history: ``monitoring/history.parquet`` (week, outcome, metric, value) up to this week.
        realised: ``monitoring/realised.parquet`` (week, outcome, horizon_days, cut, group, n, events,
            expected, oe, oe_low, oe_high, auroc, auroc_low, auroc_high).
        horizons: Outcome -> {"full": days, "early": days}.
        notes: Free-text notes shown under the headline (e.g. "drift on a sample of 200,000 people").
    """

    week: date
    data_date: date
    published: bool
    models: Mapping[str, str]
    alarms: Sequence[Alarm]
    on_demand: bool = False
    wordings: Mapping[str, str] = field(default_factory=dict)
    counts: pd.DataFrame | None = None
    registered: pd.DataFrame | None = None
    coverage: pd.DataFrame | None = None
    drift: Mapping[str, Any] = field(default_factory=dict)
    score_bins: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    estimated: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    test_auroc: Mapping[str, float] = field(default_factory=dict)
    history: pd.DataFrame | None = None
    realised: pd.DataFrame | None = None
    horizons: Mapping[str, Mapping[str, int]] = field(default_factory=dict)
    notes: Sequence[str] = ()


def _number(value: Any, digits: int = 3) -> float | None:
    """A finite float rounded, else None."""
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return round(number, digits) if math.isfinite(number) else None


def _iso(value: Any) -> str | None:
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NaT:
        return None
    if isinstance(value, pd.Timestamp):
        return value.date().isoformat()
    return value.isoformat() if hasattr(value, "isoformat") else str(value)


def _alarm_item(alarm: Alarm) -> dict[str, Any]:
    return {
        "check": alarm.check,
        "check_name": CHECK_NAMES.get(alarm.check, alarm.check),
        "level": alarm.level,
        "subject": alarm.subject,
        "message": alarm.message,
        "action": ACTIONS.get(alarm.check, ""),
    }


MAX_ALARMS_SHOWN = 8
"""Alarms of one check listed in the alarms box (the rest are counted; all are in the JSON)."""


def _alarm_groups(alarms: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The alarms by check, critical first: each check's alarms and, once, what to do about them."""
    groups: dict[str, dict[str, Any]] = {}
    for alarm in alarms:  # already sorted critical first
        group = groups.setdefault(
            alarm["check"],
            {
                "check": alarm["check"],
                "check_name": alarm["check_name"],
                "level": alarm["level"],
                "action": alarm["action"],
                "alarms": [],
            },
        )
        group["alarms"].append(alarm)
    out = []
    for group in groups.values():
        shown = group["alarms"][:MAX_ALARMS_SHOWN]
        out.append({**group, "alarms": shown, "more": len(group["alarms"]) - len(shown)})
    return out


def _alarm_subjects(alarms: Sequence[Alarm]) -> dict[str, set[str]]:
    """Table -> the practices and code groups named by feed alarms (from each alarm's figures)."""
    named: dict[str, set[str]] = {}
    for alarm in alarms:
        if alarm.check != "feed":
            continue
        figures = alarm.figures or {}
        subjects = named.setdefault(str(figures.get("table", "")), set())
        subjects.update(str(item["name"]) for item in figures.get("items") or () if item.get("name"))
    return named


def _feed_series(inputs: MonitoringInputs) -> list[dict[str, Any]]:
    """Weekly volumes of each source (the ICS total) and of alarmed practices / code groups, disclosed."""
    counts = inputs.counts
    if counts is None or counts.empty:
        return []
    named = _alarm_subjects(inputs.alarms)
    registered = inputs.registered
    totals = None
    if registered is not None and not registered.empty:
        totals = registered.groupby("week_end")["registered"].sum()
    # Every week of the window: a week with no records has no row in the counts, and is a 0 here.
    weeks = sorted(
        set(counts["week_end"]) | (set(registered["week_end"]) if registered is not None else set())
    )
    series = []
    practice_rows = counts[counts["practice_code"].notna()]
    group_rows = counts[counts["code_group"].notna()]
    for table in sorted(counts["table"].unique()):
        ics = practice_rows[practice_rows["table"] == table].groupby("week_end")["events"].sum()
        ics = ics.reindex(weeks, fill_value=0)
        if not ics.empty:
            series.append(_series(table, "All practices (ICS total)", "ics", ics, totals, alarmed=False))
        wanted = sorted(named.get(table, set()))[:MAX_FEED_SERIES]
        for subject in wanted:
            mine = practice_rows[
                (practice_rows["table"] == table) & (practice_rows["practice_code"] == subject)
            ]
            kind = "practice"
            if mine.empty:
                mine = group_rows[(group_rows["table"] == table) & (group_rows["code_group"] == subject)]
                kind = "code_group"
            if mine.empty:
                continue
            per_week = mine.groupby("week_end")["events"].sum().reindex(weeks, fill_value=0)
            people = None
            if kind == "practice" and registered is not None and not registered.empty:
                people = registered[registered["practice_code"] == subject].set_index("week_end")[
                    "registered"
                ]
            series.append(_series(table, subject, kind, per_week, people, alarmed=True))
    return series


def _series(
    table: str, subject: str, kind: str, events: pd.Series, people: pd.Series | None, alarmed: bool
) -> dict[str, Any]:
    points = []
    for week_end, n in events.items():
        registered = None if people is None else people.get(week_end)
        shown = disclosure.count(float(n))
        rate = None
        if registered is not None and shown not in (None, SUPPRESSED) and registered > 0:
            rate = disclosure.statistic(1000 * float(shown) / float(registered), [n, registered], 1)
        points.append({"week_end": _iso(week_end), "events": shown, "per_1000": rate})
    return {"table": table, "subject": subject, "kind": kind, "alarmed": alarmed, "points": points}


def _coverage_rows(coverage: pd.DataFrame | None) -> list[dict[str, Any]]:
    if coverage is None or coverage.empty:
        return []
    rows = []
    for row in coverage.to_dict("records"):
        registered, with_record = row.get("registered"), row.get("people_with_record")
        rows.append(
            {
                "table": str(row["table"]),
                "supplied": bool(row.get("supplied", True)),
                "n_registered": disclosure.count(registered),
                "n_with_record": disclosure.count(with_record),
                "share": disclosure.proportion(with_record, registered)
                if registered is not None and with_record is not None
                else None,
                "latest_event": _iso(row.get("latest_event")),
                "days_since_latest": None
                if row.get("days_since_latest") is None or pd.isna(row.get("days_since_latest"))
                else int(row["days_since_latest"]),
            }
        )
    return rows


def _drift_item(outcome: str, inputs: MonitoringInputs) -> dict[str, Any]:
    result = inputs.drift.get(outcome)
    bins = inputs.score_bins.get(outcome)
    item: dict[str, Any] = {"outcome": outcome, "reference": result is not None, "note": None}
    if result is None:
        item["note"] = "No training reference for this model: retrain to add one (riskstrat train)."
        item.update(score_psi=None, score_level=None, features=[], moved_most=[], histogram=None)
        return item
    table = result.table
    mine = table[table["outcome"] == outcome] if "outcome" in table.columns else table
    score = mine[mine["kind"] == "score"]
    features = mine[mine["kind"] == "feature"].sort_values("psi", ascending=False)
    item["score_psi"] = _number(score["psi"].iloc[0], 4) if len(score) else None
    item["score_level"] = (
        str(score["level"].iloc[0]) if len(score) and pd.notna(score["level"].iloc[0]) else None
    )
    item["features"] = [
        {
            "name": str(r["name"]),
            "psi": _number(r["psi"], 4),
            "level": None if pd.isna(r["level"]) else str(r["level"]),
        }
        for r in features.head(MAX_DRIFT_FEATURES).to_dict("records")
    ]
    item["moved_most"] = [str(name) for name in (result.moved_most or [])]
    item["histogram"] = _histogram(bins) if bins else None
    return item


def _histogram(bins: Mapping[str, Any]) -> dict[str, Any]:
    """Reference shares and this week's shares per score band; a band of 1-7 people this week is suppressed."""
    current = [float(c) for c in bins["current"]]
    total = float(sum(current))
    return {
        "edges": [_number(e, 5) for e in bins["edges"]],
        "reference": [_number(s, 4) for s in bins["reference"]],
        "current": [disclosure.proportion(c, total) if total > 0 else None for c in current],
        "n_current": disclosure.count(total),
    }


def _estimated_item(outcome: str, inputs: MonitoringInputs) -> dict[str, Any] | None:
    estimate = inputs.estimated.get(outcome)
    if not estimate:
        return None
    n = estimate.get("n")
    return {
        "outcome": outcome,
        "n": disclosure.count(n),
        "expected_events": None
        if _number(estimate.get("expected_events")) is None
        else int(disclosure.ROUND_TO * round(float(estimate["expected_events"]) / disclosure.ROUND_TO)),
        "estimated_auroc": _number(estimate.get("estimated_auroc")),
        "auroc_low": _number(estimate.get("auroc_low")),
        "auroc_high": _number(estimate.get("auroc_high")),
        "test_auroc": _number(inputs.test_auroc.get(outcome)),
        "method": str(estimate.get("method", "confidence-based (CBPE)")),
    }


def _trend(outcome: str, history: pd.DataFrame | None) -> list[dict[str, Any]]:
    """Estimated and tested AUROC of each monitored week (from the history)."""
    if history is None or history.empty:
        return []
    mine = history[history["outcome"] == outcome]
    wide = mine.pivot_table(index="week", columns="metric", values="value", aggfunc="last")
    points = []
    for week, row in wide.sort_index().iterrows():
        points.append(
            {
                "week": _iso(week),
                "estimated_auroc": _number(row.get("estimated_auroc")),
                "low": _number(row.get("estimated_auroc_low")),
                "high": _number(row.get("estimated_auroc_high")),
                "test_auroc": _number(row.get("test_auroc")),
            }
        )
    return points


def _disclosed_group(row: Mapping[str, Any]) -> dict[str, Any]:
    """One realised group (a decile, practice, MDT or everyone): counts rounded, ratios suppressed on small counts."""
    n, events = row.get("n"), row.get("events")
    built = [n, events, None if n is None or events is None else float(n) - float(events)]
    factor = disclosure.rounding_factor(float(events)) if is_number(events) else 1.0

    def scaled(value: Any) -> Any:
        number = _number(value, 6)
        return disclosure.statistic(None if number is None else number * factor, built, 3)

    return {
        "group": None if row.get("group") is None else str(row.get("group")),
        "n": disclosure.count(n),
        "events": disclosure.count(events),
        "expected": disclosure.statistic(_number(row.get("expected"), 1), built, 1),
        "oe": scaled(row.get("oe")),
        "oe_low": scaled(row.get("oe_low")),
        "oe_high": scaled(row.get("oe_high")),
        "auroc": disclosure.statistic(_number(row.get("auroc")), built),
        "auroc_low": disclosure.statistic(_number(row.get("auroc_low")), built),
        "auroc_high": disclosure.statistic(_number(row.get("auroc_high")), built),
    }


PRACTICE_EXTREMES = 5
"""The page's practice table shows the practices with the highest and lowest O/E (all are in the JSON)."""


def _extremes(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The practices with the :data:`PRACTICE_EXTREMES` highest and lowest shown O/E, highest first."""
    shown = sorted((r for r in rows if is_number(r["oe"])), key=lambda r: -r["oe"])
    if len(shown) <= 2 * PRACTICE_EXTREMES:
        return shown
    return shown[:PRACTICE_EXTREMES] + shown[-PRACTICE_EXTREMES:]


def _realised_items(outcome: str, inputs: MonitoringInputs) -> list[dict[str, Any]]:
    realised = inputs.realised
    horizons = inputs.horizons.get(outcome, {})
    items = []
    for label, horizon in (("full", horizons.get("full")), ("early", horizons.get("early"))):
        if horizon is None:
            continue
        item: dict[str, Any] = {
            "outcome": outcome,
            "horizon_days": int(horizon),
            "kind": label,
            "latest_week": None,
            "latest_model": "",
            "overall": None,
            "by_decile": [],
            "by_mdt": [],
            "by_practice": [],
            "trend": [],
            "practices_shown": [],
        }
        if realised is not None and not realised.empty:
            mine = realised[(realised["outcome"] == outcome) & (realised["horizon_days"] == horizon)]
            overall = mine[mine["cut"] == "overall"].sort_values("week")
            item["trend"] = [
                {"week": _iso(r["week"]), **_disclosed_group(r)} for r in overall.to_dict("records")
            ]
            if len(overall):
                latest = overall["week"].iloc[-1]
                item["latest_week"] = _iso(latest)
                week_rows = mine[mine["week"] == latest]
                item["overall"] = _disclosed_group(overall.iloc[-1].to_dict())
                item["latest_model"] = str(overall["model"].iloc[-1] or "") if "model" in overall else ""
                for cut, key in (("decile", "by_decile"), ("mdt", "by_mdt"), ("practice", "by_practice")):
                    rows = week_rows[week_rows["cut"] == cut].to_dict("records")
                    if cut == "decile":
                        rows.sort(key=lambda r: float(r["group"]) if str(r["group"]).isdigit() else 0)
                    item[key] = [_disclosed_group(r) for r in rows]
                item["practices_shown"] = _extremes(item["by_practice"])
        items.append(item)
    return items


def monitoring_payload(inputs: MonitoringInputs) -> dict[str, Any]:
    """The page's disclosure-controlled payload (also written as ``monitoring.json``).

    Args:
        inputs: What the checks found this week.

    Returns:
        A JSON-able payload; :func:`~riskstrat.evaluation.disclosure.check_disclosed` passes on it.
    """
    level = worst(inputs.alarms)
    order = {"critical": 0, "warning": 1}
    alarms = sorted(inputs.alarms, key=lambda a: (order.get(a.level, 2), a.check, a.subject))
    outcomes = list(inputs.models)
    items = [_alarm_item(a) for a in alarms]
    payload: dict[str, Any] = {
        "week": inputs.week.isoformat(),
        "data_date": inputs.data_date.isoformat(),
        "status": level or "clear",
        "published": bool(inputs.published),
        "on_demand": bool(inputs.on_demand),
        "models": [
            {"outcome": o, "model": inputs.models[o], "wording": inputs.wordings.get(o, o.replace("_", " "))}
            for o in outcomes
        ],
        "alarms": items,
        "alarm_groups": _alarm_groups(items),
        "critical": sum(a.level == "critical" for a in alarms),
        "warnings": sum(a.level == "warning" for a in alarms),
        "notes": list(inputs.notes),
        "feed": {"coverage": _coverage_rows(inputs.coverage), "series": _feed_series(inputs)},
        "drift": [_drift_item(o, inputs) for o in outcomes],
        "estimated": [e for e in (_estimated_item(o, inputs) for o in outcomes) if e is not None],
        "trend": [{"outcome": o, "points": _trend(o, inputs.history)} for o in outcomes],
        "realised": [item for o in outcomes for item in _realised_items(o, inputs)],
    }
    check_disclosed(payload)
    return payload


# ----------------------------------------------------------------------------- plots


def _figure(height: float = 2.6) -> tuple[Figure, Any]:
    fig, ax = plt.subplots(figsize=(MAX_WIDTH_IN, height), layout="constrained")
    ax.spines[["top", "right"]].set_visible(False)
    return fig, ax


def feed_figure(series: Sequence[Mapping[str, Any]], table: str) -> Figure | None:
    """Weekly events of one source: the ICS total (per 1,000 registered when known) and each alarmed subject."""
    mine = [s for s in series if s["table"] == table]
    if not mine:
        return None
    fig, ax = plt.subplots(figsize=(MAX_WIDTH_IN, 2.6), layout="constrained")
    ax.spines[["top", "right"]].set_visible(False)
    use_rate = all(any(is_number(p["per_1000"]) for p in s["points"]) for s in mine)
    colours = [RED, ORANGE, "#7c2855", "#330072", "#006747", "#ae2573"]
    suppressed_drawn = False
    for i, s in enumerate(mine):
        # A week of 1-7 records is suppressed: drawn at 0 with a cross, so a stopped feed shows as a fall.
        points = [
            p
            for p in s["points"]
            if is_number(p["per_1000"] if use_rate else p["events"]) or p["events"] == SUPPRESSED
        ]
        if not points:
            continue
        x = [date.fromisoformat(p["week_end"]) for p in points]
        y = [
            0.0 if p["events"] == SUPPRESSED else (p["per_1000"] if use_rate else p["events"]) for p in points
        ]
        style = (
            {"color": BLUE, "linewidth": 2.2} if s["kind"] == "ics" else {"color": colours[i % len(colours)]}
        )
        label = s["subject"] if s["kind"] != "practice" else f"practice {s['subject']}"
        ax.plot(x, y, marker="o", markersize=3, label=label, **style)
        hidden = [k for k, p in enumerate(points) if p["events"] == SUPPRESSED]
        if hidden:
            ax.plot(
                [x[k] for k in hidden],
                [0.0] * len(hidden),
                linestyle="none",
                marker="x",
                markersize=7,
                color=style["color"],
                label=None if suppressed_drawn else "1-7 records (suppressed), drawn at 0",
            )
            suppressed_drawn = True
    ax.set_title(f"{table}: records a week" + (" per 1,000 registered" if use_rate else ""), fontsize=10)
    ax.set_ylim(bottom=0)
    ax.legend(fontsize=8, frameon=False, loc="best")
    ax.tick_params(labelsize=8)
    fig.autofmt_xdate()
    return fig


def _percent(share: float) -> str:
    """A share as a percentage with the digits a small risk needs: 0.31, 4.2, 22."""
    value = 100 * share
    if value >= 10:
        return f"{value:.0f}"
    return f"{value:.1f}" if value >= 1 else f"{value:.2f}" if value >= 0.01 else f"{value:.3f}"


def band_labels(edges: Sequence[float]) -> list[str]:
    """Labels of score bands ("0.091-0.094%"), with the decimals needed for neighbouring edges to differ."""

    def shown(share: float, extra: int) -> str:
        value = 100 * share
        if value == 0:
            return "0"
        digits = 0 if value >= 10 else 1 if value >= 1 else 2 if value >= 0.01 else 3
        return f"{value:.{digits + (extra if value < 10 else 0)}f}"

    for extra in range(5):
        labels = [shown(edge, extra) for edge in edges]
        if all(
            a != b
            for (a, b), (x, y) in zip(itertools.pairwise(labels), itertools.pairwise(edges), strict=True)
            if x != y
        ):
            break
    return [f"{lo}-{hi}%" for lo, hi in itertools.pairwise(labels)]


def feed_overview_figure(series: Sequence[Mapping[str, Any]]) -> Figure | None:
    """Small multiples: each source's ICS-wide records a week (per 1,000 registered when known)."""
    totals = [s for s in series if s["kind"] == "ics"]
    if not totals:
        return None
    columns = 2
    rows = math.ceil(len(totals) / columns)
    fig, axes = plt.subplots(
        rows, columns, figsize=(MAX_WIDTH_IN, 1.6 * rows + 0.3), layout="constrained", squeeze=False
    )
    for ax, s in zip(axes.flat, totals, strict=False):
        use_rate = any(is_number(p["per_1000"]) for p in s["points"])
        points = [p for p in s["points"] if is_number(p["per_1000"] if use_rate else p["events"])]
        ax.spines[["top", "right"]].set_visible(False)
        if points:
            ax.plot(
                [date.fromisoformat(p["week_end"]) for p in points],
                [p["per_1000"] if use_rate else p["events"] for p in points],
                color=BLUE,
                marker="o",
                markersize=2,
            )
        ax.set_title(s["table"] + (" (per 1,000)" if use_rate else ""), fontsize=9)
        ax.set_ylim(bottom=0)
        ax.tick_params(labelsize=7)
        ax.xaxis.set_major_locator(matplotlib.dates.MonthLocator(bymonthday=1, interval=2))
        ax.xaxis.set_major_formatter(matplotlib.dates.DateFormatter("%b %y"))
    for ax in list(axes.flat)[len(totals) :]:
        ax.set_visible(False)
    fig.suptitle("Records a week, whole ICS, by source", fontsize=10)
    return fig


def score_figure(item: Mapping[str, Any]) -> Figure | None:
    """This week's share of people per score band against the training reference's."""
    histogram = item.get("histogram")
    if not histogram:
        return None
    edges = histogram["edges"]
    labels = band_labels(edges)
    reference = [v if is_number(v) else 0.0 for v in histogram["reference"]]
    current = [v if is_number(v) else 0.0 for v in histogram["current"]]
    x = np.arange(len(labels))
    fig, ax = _figure(2.6)
    ax.bar(x - 0.2, reference, width=0.4, color=GREY, label="training reference")
    ax.bar(x + 0.2, current, width=0.4, color=BLUE, label="this week")
    ax.set_xticks(x, labels, rotation=45, ha="right", fontsize=7)
    ax.set_ylabel("share of people", fontsize=8)
    ax.set_xlabel("predicted risk band (the reference's tenths)", fontsize=8)
    psi = item.get("score_psi")
    ax.set_title(
        f"{item['outcome'].replace('_', ' ')}: risk scores this week against training"
        + (f" (PSI {psi:.3f})" if is_number(psi) else ""),
        fontsize=10,
    )
    ax.set_ylim(0, 1.25 * max([*reference, *current, 0.01]))
    ax.legend(fontsize=8, frameon=False, loc="upper center", ncols=2)
    ax.tick_params(labelsize=8)
    return fig


def psi_figure(item: Mapping[str, Any], warning: float | None, critical: float | None) -> Figure | None:
    """PSI of the model's most important features (highest first), with the alarm thresholds."""
    features = [f for f in item.get("features", []) if is_number(f["psi"])]
    if not features:
        return None
    features = features[::-1]
    colours = {"critical": RED, "warning": ORANGE}
    fig, ax = _figure(0.28 * len(features) + 0.9)
    ax.barh(
        [f["name"] for f in features],
        [f["psi"] for f in features],
        color=[colours.get(f["level"] or "", BLUE) for f in features],
    )
    for value, name in ((warning, "warning"), (critical, "critical")):
        if is_number(value):
            ax.axvline(value, color=colours[name], linestyle="--", linewidth=1, label=f"{name} {value:g}")
    ax.set_xlabel("population stability index (0 = same as training)", fontsize=8)
    ax.set_title(f"{item['outcome'].replace('_', ' ')}: features that moved most", fontsize=10)
    ax.tick_params(labelsize=8)
    if warning is not None or critical is not None:
        ax.legend(fontsize=8, frameon=False, loc="lower right")
    return fig


def auroc_trend_figure(trend: Mapping[str, Any]) -> Figure | None:
    """Estimated AUROC (with its interval) of each monitored week against the tested AUROC."""
    points = [p for p in trend["points"] if is_number(p["estimated_auroc"])]
    if not points:
        return None
    x = [date.fromisoformat(p["week"]) for p in points]
    fig, ax = _figure(2.4)
    low = [p["low"] if is_number(p["low"]) else p["estimated_auroc"] for p in points]
    high = [p["high"] if is_number(p["high"]) else p["estimated_auroc"] for p in points]
    if len(x) > 1:
        ax.fill_between(x, low, high, color=BLUE, alpha=0.15, linewidth=0)
    ax.plot(x, [p["estimated_auroc"] for p in points], marker="o", color=BLUE, label="estimated this week")
    tested = [p["test_auroc"] for p in points if is_number(p["test_auroc"])]
    if tested:
        ax.plot(
            [date.fromisoformat(p["week"]) for p in points if is_number(p["test_auroc"])],
            tested,
            color=GREY,
            linestyle="--",
            label="tested at training",
        )
    ax.set_title(f"{trend['outcome'].replace('_', ' ')}: ranking (AUROC) by week", fontsize=10)
    ax.set_ylabel("AUROC", fontsize=8)
    ax.legend(fontsize=8, frameon=False)
    ax.tick_params(labelsize=8)
    _date_axis(ax, x)
    return fig


MAX_DATE_TICKS = 6
"""At most this many dated ticks on a by-week axis."""


def _date_axis(ax: Any, x: Sequence[date]) -> None:
    """Weekly dates on the x axis: ticks on the plotted weeks only, at most :data:`MAX_DATE_TICKS` labelled.

    A single week gets a few weeks either side instead of years.
    """
    weeks = sorted(set(x))
    if len(weeks) == 1:
        ax.set_xlim(weeks[0] - timedelta(days=28), weeks[0] + timedelta(days=28))
    step = max(1, math.ceil(len(weeks) / MAX_DATE_TICKS))
    ax.set_xticks(weeks[::step])
    ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
    ax.xaxis.set_major_formatter(matplotlib.dates.DateFormatter("%d %b %Y"))
    if len(x) > 1:
        ax.figure.autofmt_xdate()


DECILES_LEFT_OUT = "deciles with too few events to show are left out (disclosure control)"
"""The decile plot's note when a decile's observed / expected is suppressed."""


def decile_figure(item: Mapping[str, Any]) -> Figure | None:
    """Observed / expected events by risk decile with 95% intervals (1 = as predicted)."""
    rows = [r for r in item["by_decile"] if is_number(r["oe"])]
    if not rows:
        return None
    left_out = len(item["by_decile"]) - len(rows)
    x = np.arange(len(rows))
    oe = np.array([r["oe"] for r in rows])
    low = np.array([r["oe_low"] if is_number(r["oe_low"]) else r["oe"] for r in rows])
    high = np.array([r["oe_high"] if is_number(r["oe_high"]) else r["oe"] for r in rows])
    fig, ax = _figure(2.4)
    ax.errorbar(x, oe, yerr=[oe - low, high - oe], fmt="o", color=BLUE, capsize=3)
    ax.axhline(1.0, color=GREY, linestyle="--", linewidth=1)
    ax.set_xticks(x, [str(r["group"]) for r in rows], fontsize=8)
    ax.set_xlabel(
        "risk decile that week (10 = highest risk)" + (f"\n{DECILES_LEFT_OUT}" if left_out else ""),
        fontsize=8,
    )
    ax.set_ylabel("observed / expected", fontsize=8)
    ax.set_title(
        f"{item['outcome'].replace('_', ' ')}, {_horizon_text(item)}: week of {item['latest_week']}",
        fontsize=10,
    )
    ax.tick_params(labelsize=8)
    return fig


def oe_trend_figure(item: Mapping[str, Any]) -> Figure | None:
    """Overall observed / expected of each matured week, with intervals: decay shows as a drift from 1."""
    points = [p for p in item["trend"] if is_number(p["oe"])]
    if not points:
        return None
    x = [date.fromisoformat(p["week"]) for p in points]
    oe = np.array([p["oe"] for p in points])
    low = np.array([p["oe_low"] if is_number(p["oe_low"]) else p["oe"] for p in points])
    high = np.array([p["oe_high"] if is_number(p["oe_high"]) else p["oe"] for p in points])
    fig, ax = _figure(2.4)
    ax.errorbar(x, oe, yerr=[oe - low, high - oe], fmt="o-", color=BLUE, capsize=3)
    ax.axhline(1.0, color=GREY, linestyle="--", linewidth=1)
    ax.set_ylabel("observed / expected", fontsize=8)
    ax.set_title(f"{item['outcome'].replace('_', ' ')}, {_horizon_text(item)}: by week scored", fontsize=10)
    ax.tick_params(labelsize=8)
    _date_axis(ax, x)
    return fig


def _horizon_text(item: Mapping[str, Any]) -> str:
    days = int(item["horizon_days"])
    span = f"{12 * days // 365} months" if days % 365 == 0 else f"{days} days"
    return f"early read at {span}" if item["kind"] == "early" else f"full window ({span})"


def page_plots(
    payload: Mapping[str, Any], psi_thresholds: tuple[float | None, float | None] = (None, None)
) -> dict[str, Image]:
    """Every plot of the page, drawn from the payload alone, keyed by what the template looks up."""
    series = payload["feed"]["series"]
    figures: dict[str, Figure | None] = {"feed_overview": feed_overview_figure(series)}
    for table in dict.fromkeys(s["table"] for s in series if s["alarmed"]):
        figures[f"feed:{table}"] = feed_figure(series, table)
    for item in payload["drift"]:
        figures[f"score:{item['outcome']}"] = score_figure(item)
        figures[f"psi:{item['outcome']}"] = psi_figure(item, *psi_thresholds)
    for trend in payload["trend"]:
        figures[f"auroc:{trend['outcome']}"] = auroc_trend_figure(trend)
    for item in payload["realised"]:
        key = f"{item['outcome']}:{item['horizon_days']}"
        figures[f"decile:{key}"] = decile_figure(item)
        figures[f"oe:{key}"] = oe_trend_figure(item)
    return {key: encode(fig) for key, fig in figures.items() if fig is not None}


# ----------------------------------------------------------------------------- HTML


def _format_count(value: Any) -> str:
    if value is None:
        return "-"
    if is_number(value):
        return f"{int(value):,}"
    return str(value)


def _format_value(value: Any, digits: int = 3) -> str:
    if value is None:
        return "-"
    if is_number(value):
        return f"{float(value):.{digits}f}"
    return str(value)


def _format_pct(value: Any) -> str:
    return f"{100 * value:.1f}%" if is_number(value) else ("-" if value is None else str(value))


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATE_DIR),
        autoescape=jinja2.select_autoescape(["html", "j2"]),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["count"] = _format_count
    env.filters["num"] = _format_value
    env.filters["pct"] = _format_pct
    env.filters["words"] = lambda name: str(name).replace("_", " ")
    env.filters["horizon"] = _horizon_text
    return env


def render_page(
    payload: Mapping[str, Any], psi_thresholds: tuple[float | None, float | None] = (None, None)
) -> str:
    """The offline monitoring page of a disclosed payload (plots drawn from it alone).

    Args:
        payload: :func:`monitoring_payload`.
        psi_thresholds: The drift warning and critical PSI, drawn on the feature bars.

    Raises:
        RiskstratError: If a count in the payload is not disclosure-controlled.
    """
    check_disclosed(payload)
    images = page_plots(payload, psi_thresholds)
    return _environment().get_template("monitoring.html.j2").render(p=payload, plots=images)
