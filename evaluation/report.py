"""The governance report: one offline HTML file and a JSON of every number, with a model card.

Disclosure control cannot be skipped: :func:`report_payload` builds the JSON
only through ``riskstrat.evaluation.disclosure``, :func:`render_report` checks
the payload with :func:`~riskstrat.evaluation.disclosure.check_disclosed`, and
the HTML and its plots are drawn from that payload alone, never from the raw audit.

The page is read in five minutes and printed on A4: a one-page summary that leads
with the decision (the gates, the findings, how many checks ran and the rule's bound
on false findings), then the findings, the differences expected by design (age),
the MDTs' decisions when any came back, whether the programme is working (the impact
evaluation at the capacity cut-off), and the evidence. Large groupings (places,
intersections) show a few groups and count the rest; tables that would hold only
suppressed cells are left out with one line saying why. The plots are drawn in
:mod:`riskstrat.evaluation.report_plots`; the print styles are in the template.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
import textwrap
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2
import numpy as np
import pandas as pd

from riskstrat.evaluation import disclosure
from riskstrat.evaluation.disclosure import SUPPRESSED, check_disclosed
from riskstrat.evaluation.fairness import ALL_MDTS, OVERALL, FairnessAudit, Flag, open_flags, wilson
from riskstrat.evaluation.groups import (
    GROUPINGS,
    INSUFFICIENT,
    GroupingSpec,
    group_label,
    plotted_groupings,
    reported_by_mdt,
    same_people_label,
)
from riskstrat.evaluation.report_plots import (
    Image,
    calibration_groupings,
    drawn_groupings,
    encode,
    figures,
    short_label,
)
from riskstrat.evaluation.report_plots import is_number as _is_number
from riskstrat.evaluation.settings import FairnessSettings
from riskstrat.features.outcomes import outcome_names, outcome_wording
from riskstrat.features.settings import OutcomeSettings

TEMPLATE_DIR = Path(__file__).resolve().parent / "templates"
SCHEMA_VERSION = 4
"""Version of the report JSON: 2 added findings, error control, the MDTs' decisions and the summary's gates;
3 gave error control its families (kind x gating or not) with a chance bound each, in place of
expected false flags, and the place groups judged as the same people as another; 4 added ``impact``
("Is the programme working?", :func:`riskstrat.evaluation.impact.impact_payload`, or None) and the
summary's ``impact`` line, and renumbered the sections after 3 (4 is the impact evaluation)."""

METRIC_LABELS = {
    "event_rate": "Event rate",
    "auroc": "AUROC",
    "auprc": "AUPRC",
    "brier": "Brier score",
    "oe_ratio": "Observed / expected",
    "calibration_intercept": "Calibration intercept",
    "calibration_slope": "Calibration slope",
}
LIST_METRICS = ("selection_rate", "ppv", "sensitivity", "false_negative_rate", "false_omission_rate")
LIST_LABELS = {
    "selection_rate": "Selection rate",
    "ppv": "PPV",
    "sensitivity": "Sensitivity",
    "false_negative_rate": "False negative rate",
    "false_omission_rate": "False omission rate",
}


@dataclass(frozen=True)
class ModelInfo:
    """What the report says about the model (the lead fills this from the MLflow run).

    Attributes:
        outcome: Outcome column, e.g. ``emergency_admission``.
        model_name: Registered model name.
        model_version: Registered model version (or "challenger", a run id ...).
        training_data: Plain description of the training data (source, as-of dates, size).
        outcome_definition: Plain definition of the outcome.
        metrics: Overall metrics logged with the model (optional; rates and scores only).
        run_id: MLflow run id the report is logged to.
        test_as_of: As-of date of the test rows.
        predictors: Feature names the model uses.
        calibration_method: How probabilities were calibrated (e.g. "isotonic on the validation as-of date").
        missing_data: How missing values are handled.
        synthetic: True when the data are the synthetic default (the report says so).
        organisation: The deploying organisation's name.
        generated_at: Timestamp shown in the report (default: now, UTC).
        promotion_checks: The promotion gate's checks that need no champion (calibration
            slope and observed/expected within bounds), as "passed: ..." / "failed: ..."
            reasons; the report shows them beside the fairness gate.
        audit_rows_sha256: SHA-256 of the stored audited test rows (pseudonymised IDs, group
            columns, prediction, outcome), so a reviewer can check they recompute the same
            figures from the same rows; None when the rows were not stored.
    """

    outcome: str
    model_name: str
    model_version: str
    training_data: str
    outcome_definition: str = ""
    metrics: Mapping[str, float] = field(default_factory=dict)
    run_id: str | None = None
    test_as_of: str | None = None
    predictors: tuple[str, ...] = ()
    calibration_method: str | None = None
    missing_data: str | None = None
    synthetic: bool = False
    organisation: str = "the deploying organisation"
    generated_at: str | None = None
    promotion_checks: tuple[str, ...] = ()
    audit_rows_sha256: str | None = None


# --- the disclosed payload ----------------------------------------------------------------


def _num(value: Any, digits: int = 4) -> Any:
    if value is None or (isinstance(value, float) and (math.isnan(value) or math.isinf(value))):
        return None
    if isinstance(value, np.floating | float):
        return round(float(value), digits)
    if isinstance(value, np.integer):
        return int(value)
    return value


def _interval(
    value: float,
    lower: float,
    upper: float,
    denominator: float,
    built_from: tuple[float, ...],
    digits: int = 3,
) -> dict[str, Any]:
    """A figure with its interval and denominator, disclosure-controlled together."""
    shown = disclosure.statistic(value, built_from, digits)
    if shown == SUPPRESSED:
        return {
            "value": SUPPRESSED,
            "lower": SUPPRESSED,
            "upper": SUPPRESSED,
            "n": disclosure.count(denominator),
        }
    return {
        "value": shown,
        "lower": disclosure.statistic(lower, built_from, digits),
        "upper": disclosure.statistic(upper, built_from, digits),
        "n": disclosure.count(denominator),
    }


def _rate(
    numerator: float, denominator: float, built_from: tuple[float, ...], confidence: float, digits: int = 4
) -> dict[str, Any]:
    """A proportion of counts with its Wilson interval and denominator, from the rounded counts.

    Suppressed when any of ``built_from`` is 1-7; otherwise the value and interval are those of
    the rounded numerator over the rounded denominator (see :mod:`riskstrat.evaluation.disclosure`).
    """
    n = disclosure.count(denominator)
    if disclosure.any_suppressed(built_from):
        return {"value": SUPPRESSED, "lower": SUPPRESSED, "upper": SUPPRESSED, "n": n}
    shown_numerator, shown_denominator = disclosure.rounded(numerator), disclosure.rounded(denominator)
    if shown_numerator is None or not shown_denominator:
        return {"value": None, "lower": None, "upper": None, "n": n}
    lower, upper = wilson(shown_numerator, shown_denominator, confidence)
    return {
        "value": round(shown_numerator / shown_denominator, digits),
        "lower": round(lower, digits),
        "upper": round(upper, digits),
        "n": n,
    }


def _performance_payload(audit: FairnessAudit) -> list[dict[str, Any]]:
    rows = []
    confidence = audit.settings.confidence
    for _, r in audit.performance.iterrows():
        built = (r["n"], r["events"], r["n"] - r["events"])
        metrics = {"event_rate": _rate(r["events"], r["n"], built, confidence)}
        for metric in ("auroc", "auprc", "brier", "calibration_intercept", "calibration_slope"):
            metrics[metric] = _interval(r[metric], r[f"{metric}_lower"], r[f"{metric}_upper"], r["n"], built)
        # O/E times mean risk is the event rate: both are shown from the rounded counts, as
        # it is, or together they would give back the exact events.
        to_rounded_events = disclosure.rounding_factor(r["events"])
        metrics["oe_ratio"] = _interval(
            r["oe_ratio"] * to_rounded_events,
            r["oe_ratio_lower"] * to_rounded_events,
            r["oe_ratio_upper"] * to_rounded_events,
            r["n"],
            built,
        )
        metrics["mean_risk"] = {
            "value": disclosure.statistic(r["mean_risk"] / disclosure.rounding_factor(r["n"]), built, 4),
            "n": disclosure.count(r["n"]),
        }
        rows.append(
            {
                "grouping": r["grouping"],
                "group": r["group"],
                "label": r["label"],
                "status": r["status"],
                "is_reference": r["grouping"] in audit.references
                and audit.references[r["grouping"]] == r["group"],
                "n": disclosure.count(r["n"]),
                "events": disclosure.count(r["events"]),
                "metrics": metrics,
            }
        )
    return rows


CALIBRATION_MIN_EVENTS = 10
"""Fewest events (and non-events) in a calibration bin: the audit's equal-size bins are joined,
from the lowest risk up, until each holds this many, so a small group's curve is drawn on fewer
bins instead of being withheld for a bin of 1 to 7 events."""

CALIBRATION_MIN_BINS = 3
"""Fewest bins a curve is drawn on (below this a curve says little about its shape)."""


def merge_calibration_bins(bins: pd.DataFrame, min_events: int = CALIBRATION_MIN_EVENTS) -> pd.DataFrame:
    """Join a group's adjacent equal-size calibration bins so each has ``min_events`` events and non-events.

    Args:
        bins: One group's bins in risk order: ``n``, ``events``, ``mean_risk``.
        min_events: Fewest events, and non-events, per joined bin.

    Returns:
        The joined bins (``bin`` from 1, ``n``, ``events``, ``mean_risk`` weighted by people), at
        least :data:`CALIBRATION_MIN_BINS` of them when there are that many to join (equal
        numbers of the audit's bins each when the group has too few events for more).
    """
    bins = bins.reset_index(drop=True)
    groups: list[list[int]] = []
    current: list[int] = []
    events = non_events = 0.0
    for i, b in bins.iterrows():
        current.append(int(i))
        events += b["events"]
        non_events += b["n"] - b["events"]
        if events >= min_events and non_events >= min_events:
            groups.append(current)
            current, events, non_events = [], 0.0, 0.0
    if current:  # the highest-risk remainder is too small on its own: join it to the bin below
        if groups:
            groups[-1].extend(current)
        else:
            groups.append(current)
    if len(groups) < min(CALIBRATION_MIN_BINS, len(bins)):
        groups = [
            list(part) for part in np.array_split(np.arange(len(bins)), min(CALIBRATION_MIN_BINS, len(bins)))
        ]
    rows = []
    for number, members in enumerate(groups, start=1):
        part = bins.iloc[members]
        n = float(part["n"].sum())
        rows.append(
            {
                "bin": number,
                "n": n,
                "events": float(part["events"].sum()),
                "mean_risk": float((part["mean_risk"] * part["n"]).sum() / n) if n else float("nan"),
            }
        )
    return pd.DataFrame(rows)


def _calibration_payload(audit: FairnessAudit) -> list[dict[str, Any]]:
    curves = []
    for (grouping, group), base in audit.calibration.groupby(["grouping", "group"], sort=False):
        bins = merge_calibration_bins(base.sort_values("bin"))
        # A curve with one small bin is withheld whole: the group's events are shown, so its
        # other bins' events would give the small one back by difference.
        withheld = disclosure.any_suppressed(
            value for _, b in bins.iterrows() for value in (b["n"], b["events"], b["n"] - b["events"])
        )
        points = []
        for _, b in bins.iterrows():
            built = (b["n"], b["events"], b["n"] - b["events"])
            observed = _rate(b["events"], b["n"], built, audit.settings.confidence)
            if withheld:
                observed = {"value": SUPPRESSED, "lower": SUPPRESSED, "upper": SUPPRESSED}
            points.append(
                {
                    "bin": int(b["bin"]),
                    "n": disclosure.count(b["n"]),
                    "events": SUPPRESSED if withheld else disclosure.count(b["events"]),
                    "mean_risk": disclosure.statistic(b["mean_risk"], (b["n"],), 4),
                    "observed_rate": observed["value"],
                    "observed_lower": observed["lower"],
                    "observed_upper": observed["upper"],
                }
            )
        curves.append(
            {
                "grouping": grouping,
                "group": group,
                "label": group_label(grouping, group),
                "withheld": withheld,
                "bins": points,
            }
        )
    return curves


def _lists_payload(audit: FairnessAudit) -> list[dict[str, Any]]:
    rows = []
    totals = audit.lists.groupby(["mdt", "grouping"])[["n", "events"]].transform("sum")
    for i, r in audit.lists.iterrows():
        row = {
            "mdt": r["mdt"],
            "grouping": r["grouping"],
            "group": r["group"],
            "label": r["label"],
            "status": r["status"],
            "n_population": disclosure.count(r["n"]),
            "selected": disclosure.count(r["selected"]),
            "events": disclosure.count(r["events"]),
            "list_n": disclosure.count(r["n_list"]),
            "share_of_population": disclosure.proportion(r["n"], totals.loc[i, "n"]),
            "share_of_list": disclosure.proportion(r["selected"], r["n_list"]),
            "share_of_outcomes": disclosure.proportion(r["events"], totals.loc[i, "events"]),
        }
        numerators = {
            "selection_rate": r["selected"],
            "ppv": r["true_positives"],
            "sensitivity": r["true_positives"],
            "false_negative_rate": r["false_negatives"],
            "false_omission_rate": r["false_negatives"],
        }
        for metric in LIST_METRICS:
            numerator, denominator = numerators[metric], r[f"{metric}_denominator"]
            # Suppressed when a cell it is computed from is: its numerator, complement or denominator.
            built = (numerator, denominator - numerator, denominator)
            row[metric] = _rate(numerator, denominator, built, audit.settings.confidence)
        if r["mdt"] != ALL_MDTS and r["n_list"] < audit.settings.min_cell_n:
            _withhold_list_breakdown(row)
        rows.append(row)
    return rows


def _withhold_list_breakdown(row: dict[str, Any]) -> None:
    """Suppress everything that rests on who one MDT's small list selected.

    The size of an MDT's list follows from configs/mdts.yaml, so with a few groups shown
    as 0 or rounded, its suppressed cells come back by difference; a list this small
    cannot be judged by group anyway.
    """
    row["status"] = INSUFFICIENT
    row["selected"] = SUPPRESSED
    row["share_of_list"] = SUPPRESSED
    for metric in LIST_METRICS:
        row[metric] = {"value": SUPPRESSED, "lower": SUPPRESSED, "upper": SUPPRESSED, "n": SUPPRESSED}


def _need_payload(audit: FairnessAudit) -> dict[str, Any]:
    settings = audit.settings
    bands = []
    for _, b in audit.need_bands.iterrows():
        bands.append(
            {
                "grouping": b["grouping"],
                "group": b["group"],
                "measure": b["measure"],
                "band": b["band"],
                "band_index": int(b["band_index"]),
                "n": disclosure.count(b["n"]),
                "status": "ok" if b["n"] >= settings.min_cell_n else INSUFFICIENT,
                "mean": disclosure.mean(b["mean"] * b["n"], b["n"]),
                # The others' count is not shown: with the group's own, both rounded, it pins
                # the band's exact size, and a suppressed group's count by difference. A band's
                # size follows from its percentiles, so when the group's count is suppressed the
                # others' mean (over the band less the group) is too.
                "others_mean": SUPPRESSED
                if disclosure.is_suppressed_count(b["n"])
                else disclosure.mean(b["others_mean"] * b["n_others"], b["n_others"]),
            }
        )
    ratios = []
    for _, r in audit.need_ratios.iterrows():
        ratios.append(
            {
                "grouping": r["grouping"],
                "group": r["group"],
                "label": r["label"],
                "measure": r["measure"],
                "measure_label": r["measure_label"],
                "status": r["status"],
                "need_ratio": _interval(
                    r["need_ratio"], r["need_ratio_lower"], r["need_ratio_upper"], r["n"], (r["n"],)
                ),
            }
        )
    ranking = []
    measures = ["risk", *settings.need_measures]
    for _, r in audit.need_ranking.iterrows():
        item = {
            "grouping": r["grouping"],
            "group": r["group"],
            "label": r["label"],
            "n": disclosure.count(r["n"]),
            "list_n": disclosure.count(r["n_list"]),
            "share_of_population": disclosure.proportion(r["n"], r["n"] / r["share_of_population"])
            if r["share_of_population"] > 0
            else 0,
        }
        for m in measures:
            item[f"selected_by_{m}"] = disclosure.count(r[f"selected_by_{m}"])
            item[f"share_by_{m}"] = disclosure.proportion(r[f"selected_by_{m}"], r["n_list"])
        ranking.append(item)
    return {
        "bands": bands,
        "band_labels": audit.band_labels,
        "ratios": ratios,
        "ranking": ranking,
        "list_fraction": round(audit.list_fraction, 4),
    }


def _flag_figures(flag: Flag) -> tuple[Any, Any, Any]:
    """A flag's estimate and interval as the report may show them (see :attr:`Flag.shown`)."""
    shown = flag.shown if flag.shown is not None else (flag.estimate, flag.lower, flag.upper)
    return tuple(value if value == SUPPRESSED else _num(value, 3) for value in shown)  # type: ignore[return-value]


def _flag_payload(flag: Flag, blocking: set[str], settings: FairnessSettings) -> dict[str, Any]:
    return {
        "flag_id": flag.flag_id,
        "kind": flag.kind,
        "grouping": flag.grouping,
        "group": flag.group,
        "label": group_label(flag.grouping, flag.group),
        "measure": flag.measure,
        "status": flag.status,
        **dict(zip(("estimate", "lower", "upper"), _flag_figures(flag), strict=True)),
        "tolerance": flag.tolerance,
        "sentence": flag.sentence,
        "accepted": None
        if flag.accepted is None
        else {
            "reason": flag.accepted.reason,
            "accepted_by": flag.accepted.accepted_by,
            "date": flag.accepted.date.isoformat(),
        },
        "blocks_promotion": flag.flag_id in blocking,
        "why_not_blocking": _why_not_blocking(flag, blocking, settings),
    }


EXPECTED_BY_DESIGN = {
    "age_band": "Age is one of the model's inputs and risk rises with age: differences between age "
    "bands in who the lists find, and in need at equal risk, are expected by design. They are shown "
    "for the board to read and never block promotion on their own."
}
"""Groupings whose differences are expected by design, with why: reported in their own section."""


def _why_not_blocking(flag: Flag, blocking: set[str], settings: FairnessSettings) -> str | None:
    """Why a flag does not block promotion, in words (None when it blocks)."""
    if flag.flag_id in blocking:
        return None
    return _why_finding_not_blocking(flag.grouping, flag.status, flag.accepted is not None, settings)


def _why_finding_not_blocking(grouping: str, status: str, accepted: bool, settings: FairnessSettings) -> str:
    """Why a flag or finding in ``grouping`` does not block promotion, in plain words."""
    if accepted:
        return "accepted by the board"
    if status == "explained":
        return "follows the group's different risk"
    if status != "raised":
        return "not enough evidence of a gap"
    if grouping in EXPECTED_BY_DESIGN:
        return "expected by design"
    if grouping not in settings.gating_groupings:
        return f"{_grouping_name(grouping).lower()} is reported, not a stop"
    return "does not block"


def _grouping_name(grouping: str) -> str:
    """A grouping's short plain name ("Deprivation", "Ethnic group" ...)."""
    spec = GROUPINGS.get(grouping)
    return short_label(spec.label) if spec is not None else grouping.replace("_", " ").capitalize()


def _section(grouping: str, settings: FairnessSettings) -> str:
    """Where a finding belongs: it decides promotion ("gating"), by design ("by_design") or "reported"."""
    if grouping in EXPECTED_BY_DESIGN:
        return "by_design"
    return "gating" if grouping in settings.gating_groupings else "reported"


def _findings_payload(audit: FairnessAudit, blocking: set[str]) -> list[dict[str, Any]]:
    """What the audit found, one entry per finding (one per raised flag when the audit has no findings).

    Each entry says whether it blocks promotion and why not, and which part of the report it
    belongs to: the findings that decide promotion, those expected by design, or reported ones.
    """
    settings = audit.settings
    raw = getattr(audit, "findings", None)
    items: list[dict[str, Any]] = []
    if raw is None:  # an audit from before combined findings: each raised flag is a finding
        for flag in audit.flags:
            if flag.status != "raised":
                continue
            items.append(
                {
                    "finding_id": flag.flag_id,
                    "grouping": flag.grouping,
                    "group": flag.group,
                    "label": group_label(flag.grouping, flag.group),
                    "kinds": [flag.kind],
                    "sentence": flag.sentence,
                    "details": [],
                    "accepted": flag.accepted is not None,
                }
            )
    else:
        items = [_finding_item(finding) for finding in raw]
    for item in items:
        item["grouping_label"] = _grouping_name(item["grouping"])
        item["blocks_promotion"] = item["finding_id"] in blocking
        item["section"] = _section(item["grouping"], settings)
        item["why_not_blocking"] = (
            None
            if item["blocks_promotion"]
            else _why_finding_not_blocking(item["grouping"], "raised", item["accepted"], settings)
        )
    order = {"gating": 0, "reported": 1, "by_design": 2}
    items.sort(key=lambda i: (not i["blocks_promotion"], order[i["section"]]))
    return items


def _finding_item(finding: Any) -> dict[str, Any]:
    """A finding of the audit as the report shows it: one sentence, with folded cells as detail."""
    return {
        "finding_id": finding.flag_id,
        "grouping": finding.grouping,
        "group": finding.group,
        "label": finding.label,
        "kinds": [finding.kind],
        "sentence": finding.sentence,
        "details": [part.sentence for part in getattr(finding, "detail", ())],
        "accepted": finding.accepted is not None,
    }


FLAG_KIND_NAMES = {
    "calibration_oe": "observed / expected",
    "need_at_equal_risk": "need at equal risk",
    "auroc_gap": "ranking (AUROC) gap",
    "sensitivity_ratio": "share of outcomes found by the lists",
    "gp_recording": "GP recording of hospital-recorded conditions",
    "combined": "combined evidence",
}
"""Plain names of the audit's kinds of check."""


def _error_control_payload(audit: FairnessAudit) -> dict[str, Any] | None:
    """How many checks ran and how many raised, by kind and by family, and the chance bound of each family.

    None for an audit that does not record it. Keys are named so none reads as a count of
    people (``checks_made``, not ``n_checks``): they count checks, not people.
    """
    control = getattr(audit, "error_control", None)
    if not control:
        return None
    kinds = []
    for kind, tally in control.get("kinds", {}).items():
        kinds.append(
            {
                "kind": kind,
                "name": FLAG_KIND_NAMES.get(kind, kind.replace("_", " ")),
                "checks_made": int(tally.get("checks", 0)),
                "raised": int(tally.get("raised", 0)),
                "beyond_tolerance_without_evidence": int(tally.get("beyond_tolerance_not_significant", 0)),
                "families": int(tally.get("families", 0)),
                # From a null simulation, when the audit carries one (None otherwise).
                "expected_beyond_tolerance": _num(tally.get("expected_beyond_tolerance"), 1),
            }
        )
    families = [
        {
            "kind": f["kind"],
            "name": FLAG_KIND_NAMES.get(f["kind"], f["kind"].replace("_", " ")),
            "family": f["family"],
            "checks_made": int(f["checks"]),
            "raised": int(f["raised"]),
            "false_flag_chance_bound": f["false_flag_chance_bound"],
        }
        for f in control.get("families", [])
    ]
    same_people = [
        {
            "grouping": s["grouping"],
            "group": s["group"],
            "label": same_people_label(
                s["grouping"], s["group"], (s["judged_as_grouping"], s["judged_as_group"])
            ),
        }
        for s in control.get("same_people", [])
    ]
    return {
        "method": control.get("method"),
        "level": control.get("level"),
        "false_flag_chance_method": control.get("false_flag_chance_method"),
        "kinds": kinds,
        "families": families,
        "same_people": same_people,
    }


def _settings_payload(audit: FairnessAudit) -> dict[str, Any]:
    s = audit.settings
    return {
        "reference_groups": audit.references,
        "tolerances": s.tolerances.model_dump(),
        "minimum_cell_people": s.min_cell_n,
        "minimum_cell_outcomes": s.min_cell_events,
        "bootstrap_resamples": s.bootstrap_n,
        "bootstrap_seed": s.bootstrap_seed,
        "confidence": s.confidence,
        "risk_band_percentiles": list(s.risk_bands),
        "calibration_bins": s.calibration_bins,
        "need_measures": dict(s.need_measures),
        "need_flag_measures": list(s.need_flag_measures),
        "false_discovery_rate": s.false_discovery_rate,
        "gating_groupings": list(s.gating_groupings),
        "accepted_flags": [
            {
                "flag_id": a.flag_id,
                "reason": a.reason,
                "accepted_by": a.accepted_by,
                "date": a.date.isoformat(),
            }
            for a in s.accepted_flags
        ],
    }


def report_payload(
    audit: FairnessAudit,
    context: ModelInfo,
    decisions: dict[str, Any] | None = None,
    impact: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Every number of the report, disclosure-controlled, as a JSON-ready dict.

    Counts sit under keys named like counts (``n``, ``events``, ``selected``,
    ``n_population``, ``list_n`` ...) so that a scan can check each one.

    Args:
        audit: The fairness audit.
        context: What the report says about the model.
        decisions: What the MDTs decided about the people on their lists
            (``riskstrat.evaluation.decisions.decisions_payload``, already
            disclosure-controlled), or None when no decisions came back.
        impact: Is the programme working? (``riskstrat.evaluation.impact.impact_payload``, already
            disclosure-controlled, or its short form when the list history is too short), or None
            when the impact evaluation did not run.

    Returns:
        The payload (checked by :func:`~riskstrat.evaluation.disclosure.check_disclosed`).
    """
    blocking = {f.flag_id for f in open_flags(audit, audit.settings)}
    performance = _performance_payload(audit)
    overall = next(r for r in performance if r["grouping"] == OVERALL)
    payload: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "generated_at": context.generated_at or dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "model": {
            "outcome": context.outcome,
            "outcome_definition": context.outcome_definition,
            "model_name": context.model_name,
            "model_version": context.model_version,
            "run_id": context.run_id,
            "test_as_of": context.test_as_of,
            "training_data": context.training_data,
            "predictors": list(context.predictors),
            "calibration_method": context.calibration_method,
            "missing_data": context.missing_data,
            "synthetic": context.synthetic,
            "organisation": context.organisation,
            "audit_rows_sha256": context.audit_rows_sha256,
            "logged_metrics": {
                k: disclosure.statistic(v, ())
                for k, v in context.metrics.items()
                if not disclosure.COUNT_KEY.search(k)
            },
        },
        "settings": _settings_payload(audit),
        "groupings": [
            {
                "name": g.name,
                "label": g.label,
                "groups": list(g.groups),
                "reference": audit.references[g.name],
            }
            for g in audit.groupings
        ],
        "overall": overall,
        "performance": performance,
        "calibration_curves": _calibration_payload(audit),
        "lists": _lists_payload(audit),
        "mdts": [m for m in dict.fromkeys(audit.lists["mdt"]) if m != ALL_MDTS],
        "need_at_equal_risk": _need_payload(audit),
        "flags": [_flag_payload(f, blocking, audit.settings) for f in audit.flags],
        "findings": _findings_payload(audit, blocking),
        "error_control": _error_control_payload(audit),
        "decisions": decisions,
        "impact": impact,
        "promotion_gate": {
            "open_flags": sorted(blocking),
            "passes": not blocking,
            "calibration_checks": list(context.promotion_checks),
        },
    }
    payload["representativeness"] = _representativeness(performance)
    payload["model_card"] = model_card(payload, context)
    payload["summary"] = board_summary(payload)
    check_disclosed(payload)
    return payload


def _representativeness(performance: list[dict[str, Any]]) -> list[dict[str, Any]]:
    overall_n = next(r for r in performance if r["grouping"] == OVERALL)["n"]
    rows = []
    for r in performance:
        spec = GROUPINGS.get(r["grouping"])
        if not isinstance(spec, GroupingSpec) or not spec.england_shares:
            continue
        reference = spec.england_shares.get(r["group"])
        share = (
            (r["n"] / overall_n)
            if isinstance(r["n"], int) and isinstance(overall_n, int) and overall_n
            else None
        )
        rows.append(
            {
                "grouping": r["grouping"],
                "group": r["group"],
                "label": r["label"],
                "n": r["n"],
                "share_of_test_population": None if share is None else round(share, 3),
                "share_of_england": reference,
            }
        )
    return rows


# --- the summary for the board and the model card -----------------------------------------


def _metric_text(metric: dict[str, Any], digits: int = 2) -> str:
    if metric["value"] in (None, SUPPRESSED):
        return "not available"
    return (
        f"{metric['value']:.{digits}f} (95% CI {metric['lower']:.{digits}f} to {metric['upper']:.{digits}f})"
    )


def _with_article(noun: str) -> str:
    """``noun`` with "a" or "an" ("an emergency admission", "a frequent attendance")."""
    return f"{'an' if noun[:1].lower() in 'aeiou' else 'a'} {noun}"


def _outcome_text(name: str) -> str:
    """What the model predicts in plain English, from the outcome registry (default outcome settings)."""
    if name in outcome_names():
        return outcome_wording(name, OutcomeSettings())
    return f"{_with_article(name.replace('_', ' '))} in the next year"


SUMMARY_FINDINGS = 4
"""Most findings named on the summary page (the rest are counted and listed under Findings)."""

SUMMARY_LINE_CHARS = 320
"""Longest finding line on the summary page; the whole sentence is under Findings."""

_VERDICT = re.compile(r" - a real gap, not noise.*?\((?:false discovery rate|FDR)[^)]*\)")
_WITHIN = re.compile(r" ?The same gap shows within it.*$", re.DOTALL)


def summary_line(sentence: str) -> str:
    """A finding's sentence as the summary page gives it: the gap and its figures, not the method.

    The verdict's method clause ("a real gap, not noise: it stands after allowing for ...")
    and the intersection cells folded into it are left to section 1; what is left is cut to
    :data:`SUMMARY_LINE_CHARS` so the summary stays on one page.
    """
    short = _WITHIN.sub("", _VERDICT.sub("", sentence)).strip()
    return textwrap.shorten(short, SUMMARY_LINE_CHARS, placeholder=" ...")


def _gate_line(check: str) -> dict[str, Any]:
    """A promotion check ("passed: ..." / "failed: ...") as a line of the summary."""
    passed = not check.startswith("failed")
    text = check.split(": ", 1)[1] if check.split(":", 1)[0] in ("passed", "failed") else check
    return {"passed": passed, "text": text[:1].upper() + text[1:]}


MEASURED_NULL_AUDITS = (
    "0 of 50 simulated audits of a fair, well-calibrated model raised any (95% CI 0% to 7.1%)"
)
"""The audit's measured false-finding rate under the null, as docs/governance.md reports it
(``python -m benchmarks.audit_error_rates``, "Measured: the audit under the null")."""


def _checks_line(control: dict[str, Any] | None) -> str | None:
    """How many checks ran and raised, and the rule's bound on false findings with its measured rate.

    Benjamini-Hochberg bounds the chance of any false finding in a family of checks when
    none is real; it is a probability per family, not an expected count, so it is stated so.
    """
    if not control or not control["kinds"]:
        return None
    checks = sum(k["checks_made"] for k in control["kinds"])
    raised = sum(k["raised"] for k in control["kinds"])
    line = f"The audit made {checks} checks and raised {raised}."
    level = control.get("level")
    if _is_number(level):
        line += (
            " The rule is set so that a fair, well-calibrated model raises a false finding in at most "
            f"{100 * level:g}% of audits for each kind of check, counted apart for the groupings that decide "
            f"promotion and for the others (measured: {MEASURED_NULL_AUDITS})."
        )
    return line


def _beyond_tolerance_line(control: dict[str, Any] | None) -> str | None:
    """One sentence on estimates beyond tolerance without evidence of a real gap."""
    if not control or not control["kinds"]:
        return None
    beyond = sum(k["beyond_tolerance_without_evidence"] for k in control["kinds"])
    if not beyond:
        return "No other estimate lies beyond tolerance."
    expected = [k["expected_beyond_tolerance"] for k in control["kinds"]]
    chance = (
        f"a fair, well-calibrated model would give about {sum(expected):.0f} by chance"
        if expected and all(_is_number(e) for e in expected)
        else "on a fair model many such estimates are expected by chance when this many checks are made"
    )
    return (
        f"{beyond} further estimate{'s lie' if beyond != 1 else ' lies'} beyond tolerance without "
        f"evidence of a real gap ({chance}): they are not findings and ask nothing of the board."
    )


def _findings_block(count: int) -> str:
    """The count of findings with its verb in agreement: "1 finding blocks", "3 findings block"."""
    return f"{count} finding blocks" if count == 1 else f"{count} findings block"


def model_title(model: Mapping[str, Any]) -> str:
    """The model as the board names it: what it predicts, in words, and its version."""
    return f"Model of the risk of {_outcome_text(model['outcome'])}, version {model['model_version']}"


def board_summary(payload: dict[str, Any]) -> dict[str, Any]:
    """The one-page summary for the board, leading with the decision, from the disclosed payload."""
    model, overall = payload["model"], payload["overall"]
    outcome = model["outcome"].replace("_", " ")
    auroc = overall["metrics"]["auroc"]
    oe = overall["metrics"]["oe_ratio"]
    how_well = [
        f"Ranking (AUROC) {_metric_text(auroc)}: of two people, one who went on to have "
        f"{_with_article(outcome)} and one who did not, the model gives the first the higher risk about "
        f"{round(100 * auroc['value']) if isinstance(auroc['value'], float) else '?'} times in 100 "
        "(50 is chance)."
    ]
    if isinstance(oe["value"], float):
        word = (
            "about as many events as"
            if 0.9 <= oe["value"] <= 1.1
            else ("fewer events than" if oe["value"] > 1 else "more events than")
        )
        how_well.append(
            f"Observed / expected events {_metric_text(oe)}: the model predicted {word} happened."
        )
    gate = payload["promotion_gate"]
    gates = [_gate_line(c) for c in gate["calibration_checks"]]
    findings = [f for f in payload["findings"] if f["section"] != "by_design"]
    blocking = [f for f in findings if f["blocks_promotion"]]
    gates.append(
        {
            "passed": gate["passes"],
            "text": "Fairness: no finding blocks promotion."
            if gate["passes"]
            else f"Fairness: {_findings_block(len(gate['open_flags']))} promotion (below).",
        }
    )
    failed = [g["text"] for g in gates if not g["passed"]]
    verdict = (
        "This model cannot go live: "
        + ("a gate fails." if len(failed) == 1 else f"{len(failed)} gates fail.")
        if failed
        else "This model passes every gate this audit decides: it may go live if the board agrees."
    )
    insufficient = [
        r for r in payload["performance"] if r["status"] == INSUFFICIENT and r["grouping"] != OVERALL
    ]
    decisions = []
    failed_checks = [g["text"] for g in gates[:-1] if not g["passed"]]
    if failed_checks:
        decisions.append(
            "The calibration gate fails, so this model cannot go live whatever is decided about the "
            f"findings: {' '.join(failed_checks)} Ask for the model to be recalibrated or retrained."
        )
    if blocking:
        decisions.append(
            f"{_findings_block(len(blocking))} this model: for each, "
            "accept it with a recorded reason or ask for the model to be fixed."
        )
    elif not failed_checks:
        decisions.append("Decide whether the model may go live (or stay live).")
    if insufficient:
        decisions.append(
            f"The audit cannot judge {len(insufficient)} groups (too few people or events): decide how "
            "they will be monitored."
        )
    decisions.append(
        "Confirm the tolerances and reference groups (Methods); answer the TRIPOD+AI items marked "
        "'For the board'; review the DCB0160 hazards."
    )
    by_design = [f for f in payload["findings"] if f["section"] == "by_design"]
    return {
        "model_title": model_title(model),
        "purpose": (
            f"Estimates each adult's chance of {_outcome_text(model['outcome'])}, so that neighbourhood MDTs "
            "can offer proactive care to those at highest risk. It supports clinical judgement; it does "
            "not decide care."
        ),
        "verdict": verdict,
        "goes_live": not failed,
        "gates": gates,
        "findings": [
            {"text": summary_line(f["sentence"]), "blocks_promotion": f["blocks_promotion"]}
            for f in findings[:SUMMARY_FINDINGS]
        ],
        "more_findings": max(0, len(findings) - SUMMARY_FINDINGS),
        "checks": _checks_line(payload.get("error_control")),
        "beyond_tolerance": _beyond_tolerance_line(payload.get("error_control")),
        "by_design": (
            f"{len(by_design)} difference{'s' if len(by_design) != 1 else ''} by "
            f"{' and '.join(sorted({_grouping_name(f['grouping']).lower() for f in by_design}))} "
            "are expected by design and do not block (section 2)."
            if by_design
            else None
        ),
        "how_well": how_well,
        "impact": (payload.get("impact") or {}).get("summary"),
        "insufficient_count": len(insufficient),
        "decisions": decisions,
        "gate": "passes" if gate["passes"] else "blocked",
    }


TRIPOD_AI_ITEMS: tuple[tuple[str, str], ...] = (
    (
        "1",
        "Title: identifies the study as developing/evaluating a prediction model, the population and outcome",
    ),
    ("2", "Abstract"),
    ("3", "Background: healthcare context, rationale and existing models"),
    ("4", "Objectives: development and/or evaluation"),
    ("5", "Data sources and dates"),
    ("6", "Participants: setting, eligibility, treatments received"),
    ("7", "Data preparation and quality checks"),
    ("8", "Outcome: definition, time horizon, blinding"),
    ("9", "Predictors: choice, definition, timing"),
    ("10", "Sample size"),
    ("11", "Missing data"),
    ("12", "Analytical methods: model type, tuning, internal validation, calibration, updating"),
    ("13", "Class imbalance"),
    ("14", "Fairness: methods to address fairness across groups"),
    ("15", "Model output and thresholds"),
    ("16", "Training versus evaluation data differences"),
    ("17", "Ethical approval"),
    ("18", "Open science: funding, conflicts, protocol, registration, data and code sharing"),
    ("19", "Patient and public involvement"),
    ("20", "Participants: flow, characteristics, comparison of development and evaluation data"),
    ("21", "Model development: participants and outcome events in each analysis"),
    ("22", "Model specification"),
    ("23", "Model performance, with confidence intervals, including in key subgroups"),
    ("24", "Model updating results"),
    ("25", "Interpretation"),
    ("26", "Limitations"),
    ("27", "Usability in current care: who uses it, how, and what is needed to use it"),
)
"""TRIPOD+AI (Collins et al., BMJ 2024) checklist items, abridged titles."""


def tripod_checklist(payload: dict[str, Any], context: ModelInfo) -> list[dict[str, str]]:
    """TRIPOD+AI items answered where the pipeline knows, else marked "for the board"."""
    overall = payload["overall"]
    known: dict[str, str] = {
        "4": "Evaluation of a registered model on held-out test rows, overall and by group (this report).",
        "5": context.training_data,
        "7": "Every raw table passes the data contract and Great Expectations checks before use.",
        "8": context.outcome_definition or "",
        "9": (
            f"{len(context.predictors)} predictors, all from events dated on or before the as-of date."
            if context.predictors
            else ""
        ),
        "10": f"Test rows: {overall['n']} people, {overall['events']} events (disclosure-controlled counts).",
        "11": context.missing_data or "",
        "12": (
            f"LightGBM; probabilities calibrated by {context.calibration_method}; bootstrap 95% intervals."
            if context.calibration_method
            else ""
        ),
        "14": "Performance, calibration, list selection and need at equal risk by deprivation, "
        "ethnicity, sex, age band, place and deprivation x ethnicity, with findings against agreed "
        "tolerances under false discovery rate control (this report).",
        "15": "A probability of the outcome; each MDT lists its highest-risk people up to its weekly "
        "capacity.",
        "21": f"{overall['n']} test rows with {overall['events']} events.",
        "23": "Overall and by group with 95% intervals: see 'Performance by group'.",
        "25": "See the summary for the board and the fairness flags.",
        "26": "See 'Limitations' in the model card.",
    }
    items = []
    for number, topic in TRIPOD_AI_ITEMS:
        answer = known.get(number, "")
        items.append(
            {
                "item": number,
                "topic": topic,
                "answer": answer or "For the board",
                "source": "pipeline" if answer else "for the board",
            }
        )
    return items


HAZARDS: tuple[dict[str, str], ...] = (
    {
        "id": "H1",
        "hazard": "A person at high risk is not on the list (false negative).",
        "cause": "Under-recorded diagnoses, no recent contact with services, or a model gap for their group.",
        "effect": "Missed proactive care; avoidable emergency admission.",
        "software_control": "Fairness audit flags calibration and need-at-equal-risk gaps; "
        "the list is an aid, not a gate to care.",
        "deployer_action": "MDTs keep clinical referral routes open; monitor the flags monthly.",
    },
    {
        "id": "H2",
        "hazard": "A group is systematically under-prioritised.",
        "cause": "The model learns service use, not need; groups that use services less look lower risk.",
        "effect": "Widening health inequalities (Core20PLUS5).",
        "software_control": "Flags on O/E, sensitivity ratio, AUROC gap and need at equal risk; "
        "promotion gate.",
        "deployer_action": "Board reviews open flags; equality lead signs off accepted flags.",
    },
    {
        "id": "H3",
        "hazard": "The list is stale or belongs to another week.",
        "cause": "Pipeline failure or late extract.",
        "effect": "Decisions on outdated risk.",
        "software_control": "Atomic writes keep last week's list whole; the manifest records dates.",
        "deployer_action": "MDT checks the list date before each meeting.",
    },
    {
        "id": "H4",
        "hazard": "The wrong person is contacted.",
        "cause": "Re-identification key mismatch.",
        "effect": "Privacy breach; care offered to the wrong person.",
        "software_control": "Pseudonymised IDs everywhere; re-identification only at export.",
        "deployer_action": "Check identity in the clinical system before contact.",
    },
    {
        "id": "H5",
        "hazard": "Clinicians over-trust the score (automation bias) or read reasons as causes.",
        "cause": "A ranked list looks authoritative.",
        "effect": "Clinical judgement displaced.",
        "software_control": "Reasons are worded as associations; the report states limitations.",
        "deployer_action": "Training for MDT members; the score supports, not replaces, judgement.",
    },
    {
        "id": "H6",
        "hazard": "Performance drifts or retraining learns from intervened outcomes.",
        "cause": "Changes in coding, services or the interventions the lists trigger (Liley et al.).",
        "effect": "Risk under-estimated for exactly the people the service helps.",
        "software_control": "Monthly audit of the champion; challenger gate.",
        "deployer_action": "Record interventions; review the retraining caution before each retrain.",
    },
    {
        "id": "H7",
        "hazard": "A person who opted out appears on a list.",
        "cause": "Opt-out table out of date.",
        "effect": "Breach of the national data opt-out.",
        "software_control": "Exclusions applied before ranking.",
        "deployer_action": "Refresh opt-outs with each extract.",
    },
)
"""Clinical safety hazards for the deploying organisation's DCB0160 hazard log."""


def model_card(payload: dict[str, Any], context: ModelInfo) -> dict[str, Any]:
    """The model card's sections, from the disclosed payload and the model info."""
    outcome = context.outcome.replace("_", " ")
    data_note = (
        "These are synthetic data generated by the project: the figures show how the audit works, not how "
        "any real population is served."
        if context.synthetic
        else "Extracts from the organisation's primary, community and acute records (see training data)."
    )
    return {
        "intended_use": [
            f"Rank registered adults by their estimated chance of {_outcome_text(context.outcome)}, so that "
            "neighbourhood MDTs can offer proactive care (holistic "
            "assessment, care planning, virtual ward) to "
            "those at highest risk, weekly.",
            "Used by clinicians who know the patients, alongside the clinical record and their judgement.",
        ],
        "out_of_scope": [
            "Deciding eligibility for, or withholding, any treatment or service.",
            "Use on children, or outside the population and data sources it was trained on.",
            "Individual prognosis told to patients, insurance, employment or any non-care purpose.",
            "Judging a practice's or clinician's performance.",
            "Use without a current fairness audit and the deploying organisation's DCB0160 safety case.",
        ],
        "data": [context.training_data, data_note],
        "outcome_definition": context.outcome_definition or f"{outcome} (see configs/outcomes.yaml)",
        "limitations": [
            "The model learns from recorded service use, not need: people who use services less, or whose "
            "conditions are under-recorded, look lower risk than they are (see need at equal risk).",
            "Ethnicity is missing or not stated for some people; "
            "they are kept as a group of their own and may "
            "differ from every other group.",
            "Intervals describe sampling noise only, not bias in the data or changes over time.",
            "Small groups cannot be judged ('too few to judge'); absence of a finding there is not evidence "
            "of fairness.",
            "The lists' sensitivity depends on capacity: a different capacity changes who is found.",
        ],
        "retraining_caution": (
            "Once the lists are used, the outcomes of listed "
            "people are changed by the care they receive. A model "
            "retrained naively on those outcomes learns that "
            "such people are at lower risk than they were, and "
            "under-estimates the risk of exactly the people the "
            "service helps (Liley et al., 'Model updating after "
            "interventions paradoxically introduces bias', AISTATS 2021). Before retraining: record who was "
            "listed and what they received, compare with a hold-out or pre-deployment period, and treat "
            "intervened outcomes with care; never promote a retrained model without this audit."
        ),
        "hazards": list(HAZARDS),
        "tripod_ai": tripod_checklist(payload, context),
    }


# --- plots (drawn from the disclosed payload only) ----------------------------------------


def plots(payload: dict[str, Any]) -> dict[str, Image]:
    """Every plot of the report as an inline PNG with its printed width, keyed by name."""
    return {name: encode(fig) for name, fig in figures(payload, plotted_groupings())}


# --- rendering ----------------------------------------------------------------------------


def _format_count(value: Any) -> str:
    if value is None:
        return '<span class="count">-</span>'
    if isinstance(value, int | float) and not isinstance(value, bool):
        return f'<span class="count">{int(value):,}</span>'
    return f'<span class="count">{value}</span>'


def _format_value(value: Any, digits: int = 3) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _format_pct(value: Any) -> str:
    if _is_number(value):
        return f"{100 * value:.1f}%"
    return "-" if value is None else str(value)


def _format_interval(metric: dict[str, Any], digits: int = 3, pct: bool = False, inline: bool = False) -> str:
    value = metric.get("value")
    if not _is_number(value):
        return "-" if value is None else str(value)
    fmt = _format_pct if pct else (lambda v: _format_value(v, digits))
    if _is_number(metric.get("lower")) and _is_number(metric.get("upper")):
        if inline:
            return (
                f"{fmt(value)} <small>(95% interval {fmt(metric['lower'])} to {fmt(metric['upper'])})</small>"
            )
        return f'{fmt(value)} <small class="ci">{fmt(metric["lower"])} to {fmt(metric["upper"])}</small>'
    return fmt(value)


def _format_points(value: Any, signed: bool = True) -> str:
    """A difference in proportions as percentage points: -0.0123 -> "-1.2" ("*" and None as shown)."""
    if _is_number(value):
        return f"{100 * value:+.1f}" if signed else f"{100 * value:.1f}"
    return "-" if value is None else str(value)


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATE_DIR),
        autoescape=jinja2.select_autoescape(["html", "j2"]),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        extensions=["jinja2.ext.do"],
    )
    env.filters["count"] = lambda v: jinja2.utils.markupsafe.Markup(_format_count(v))
    env.filters["num"] = _format_value
    env.filters["pct"] = _format_pct
    env.filters["short_label"] = short_label
    env.filters["points"] = _format_points
    env.filters["ci"] = lambda m, digits=3, pct=False, inline=False: jinja2.utils.markupsafe.Markup(
        _format_interval(m, digits, pct, inline)
    )
    return env


COMPACT_ABOVE = 12
"""Groupings with more groups than this (places, intersections) show only some groups in tables."""

COMPACT_EXTREMES = 3
"""How many groups with the highest and lowest observed / expected a compact table shows."""


def shown_groups(payload: dict[str, Any], grouping: dict[str, Any]) -> list[str]:
    """The groups a table shows for ``grouping``: all of them, or for a large grouping a few.

    A large grouping (more than :data:`COMPACT_ABOVE` groups: practices, intersections) shows its
    reference group, every group with a finding, and the :data:`COMPACT_EXTREMES` judged groups with
    the highest and lowest observed / expected; the others are counted under the table and are all
    in the JSON.
    """
    groups = list(grouping["groups"])
    if len(groups) <= COMPACT_ABOVE:
        return groups
    name = grouping["name"]
    keep = {grouping["reference"]} | {f["group"] for f in payload["findings"] if f["grouping"] == name}
    judged = [
        (r["metrics"]["oe_ratio"]["value"], r["group"])
        for r in payload["performance"]
        if r["grouping"] == name
        and r["status"] != INSUFFICIENT
        and _is_number(r["metrics"]["oe_ratio"]["value"])
    ]
    judged.sort()
    keep |= {g for _, g in judged[:COMPACT_EXTREMES]} | {g for _, g in judged[-COMPACT_EXTREMES:]}
    return [g for g in groups if g in keep]


def _mdt_tables(payload: dict[str, Any]) -> list[str]:
    """MDTs whose by-group list tables show something: not every cell suppressed or too small."""
    shown = []
    for mdt in payload["mdts"]:
        rows = [r for r in payload["lists"] if r["mdt"] == mdt]
        if any(r["status"] != INSUFFICIENT and _is_number(r["selected"]) for r in rows):
            shown.append(mdt)
    return shown


def render_html(payload: dict[str, Any]) -> str:
    """The self-contained HTML page of a disclosed payload (plots drawn from it alone)."""
    check_disclosed(payload)
    images = plots(payload)
    groups = {g["name"]: shown_groups(payload, g) for g in payload["groupings"]}
    return (
        _environment()
        .get_template("report.html.j2")
        .render(
            p=payload,
            plots=images,
            metric_labels=METRIC_LABELS,
            list_metrics=LIST_METRICS,
            list_labels=LIST_LABELS,
            all_mdts=ALL_MDTS,
            overall=OVERALL,
            insufficient=INSUFFICIENT,
            plotted=drawn_groupings(payload, plotted_groupings()),
            shown_groups=groups,
            mdt_tables=_mdt_tables(payload),
            by_mdt=[g["name"] for g in payload["groupings"] if reported_by_mdt(g["name"])],
            by_design=EXPECTED_BY_DESIGN,
            short_label=short_label,
            compact_extremes=COMPACT_EXTREMES,
            curve_groupings=[g["name"] for g in calibration_groupings(payload)],
        )
    )


def render_report(
    audit: FairnessAudit,
    context: ModelInfo,
    decisions: dict[str, Any] | None = None,
    impact: dict[str, Any] | None = None,
) -> tuple[str, dict[str, Any]]:
    """Render the governance report.

    Args:
        audit: The fairness audit (raw figures).
        context: What the report says about the model.
        decisions: What the MDTs decided about the people on their lists, already
            disclosure-controlled (``riskstrat.evaluation.decisions.decisions_payload``);
            None leaves the section out.
        impact: Is the programme working? (``riskstrat.evaluation.impact.impact_payload``),
            already disclosure-controlled; None says the evaluation did not run.

    Returns:
        ``(html, payload)``: the self-contained HTML page and the JSON-ready payload
        holding every number, both disclosure-controlled.

    Raises:
        RiskstratError: If any count escaped disclosure control.
    """
    payload = report_payload(audit, context, decisions, impact)
    return render_html(payload), payload


def payload_json(payload: dict[str, Any]) -> str:
    """The payload as JSON text (NaN written as null)."""

    def clean(value: Any) -> Any:
        if isinstance(value, dict):
            return {str(k): clean(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [clean(v) for v in value]
        if isinstance(value, pd.Timestamp | dt.date):
            return value.isoformat()
        return _num(value, 6)

    return json.dumps(clean(payload), indent=1, ensure_ascii=False)
