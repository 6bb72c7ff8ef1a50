"""The governance report: one offline HTML file and a JSON of every number, with a model card.

Disclosure control cannot be skipped: :func:`report_payload` builds the JSON
only through ``riskstrat.evaluation.disclosure``, :func:`render_report` checks
the payload with :func:`~riskstrat.evaluation.disclosure.check_disclosed`, and
the HTML and its plots are drawn from that payload alone, never from the raw audit.
"""

from __future__ import annotations

import base64
import datetime as dt
import io
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
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
    is_intersection,
    plotted_groupings,
)
from riskstrat.evaluation.settings import FairnessSettings
from riskstrat.features.outcomes import outcome_names, outcome_wording
from riskstrat.features.settings import OutcomeSettings

TEMPLATE_DIR = Path(__file__).resolve().parent / "templates"
SCHEMA_VERSION = 1

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


def _calibration_payload(audit: FairnessAudit) -> list[dict[str, Any]]:
    curves = []
    for (grouping, group), bins in audit.calibration.groupby(["grouping", "group"], sort=False):
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
    figures = flag.shown if flag.shown is not None else (flag.estimate, flag.lower, flag.upper)
    return tuple(value if value == SUPPRESSED else _num(value, 3) for value in figures)  # type: ignore[return-value]


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


def _why_not_blocking(flag: Flag, blocking: set[str], settings: FairnessSettings) -> str | None:
    """Why a flag does not block promotion, in words (None when it blocks)."""
    if flag.flag_id in blocking:
        return None
    if flag.accepted is not None:
        return "accepted by the board"
    if flag.status == "explained":
        return "explained by different risk"
    if flag.status == "uncertain" and not settings.gate_on_uncertain:
        return "uncertain flags do not gate (gate_on_uncertain: false)"
    if flag.grouping not in settings.gating_groupings:
        return f"{flag.grouping.replace('_', ' ')} is audited but does not gate (gating_groupings)"
    return "does not gate"


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
        "gate_on_uncertain": s.gate_on_uncertain,
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


def report_payload(audit: FairnessAudit, context: ModelInfo) -> dict[str, Any]:
    """Every number of the report, disclosure-controlled, as a JSON-ready dict.

    Counts sit under keys named like counts (``n``, ``events``, ``selected``,
    ``n_population``, ``list_n`` ...) so that a scan can check each one.

    Args:
        audit: The fairness audit.
        context: What the report says about the model.

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


def board_summary(payload: dict[str, Any]) -> dict[str, Any]:
    """The one-page plain-language summary for the board, from the disclosed payload."""
    model, overall, flags = payload["model"], payload["overall"], payload["flags"]
    outcome = model["outcome"].replace("_", " ")
    auroc = overall["metrics"]["auroc"]
    oe = overall["metrics"]["oe_ratio"]
    how_well = [
        f"Discrimination (AUROC) {_metric_text(auroc)}: given one person who went on to have {_with_article(outcome)} "
        f"and one who did not, the model gives the first a higher risk about "
        f"{round(100 * auroc['value']) if isinstance(auroc['value'], float) else '?'} times in 100 "
        "(50 would be chance)."
    ]
    if isinstance(oe["value"], float):
        word = (
            "about as many events as"
            if 0.9 <= oe["value"] <= 1.1
            else ("fewer events than" if oe["value"] > 1 else "more events than")
        )
        how_well.append(
            f"Calibration: observed / expected events {_metric_text(oe)}; the model predicted {word} happened."
        )
    raised = [f for f in flags if f["status"] == "raised"]
    uncertain = [f for f in flags if f["status"] == "uncertain"]
    explained = [f for f in flags if f["status"] == "explained"]
    grouping_labels = {g["name"]: g["label"] for g in payload["groupings"]}
    insufficient = [
        f"{grouping_labels.get(r['grouping'], r['grouping'])}: {r['label']}"
        for r in payload["performance"]
        if r["status"] == INSUFFICIENT and r["grouping"] != OVERALL
    ]
    decisions = []
    failed_checks = [
        c.removeprefix("failed: ")
        for c in payload["promotion_gate"]["calibration_checks"]
        if c.startswith("failed")
    ]
    if failed_checks:
        decisions.append(
            "The promotion gate's calibration check fails, so this model cannot go live whatever is "
            f"decided about the flags: {' '.join(failed_checks)} Ask for the model to be recalibrated or retrained."
        )
    if payload["promotion_gate"]["open_flags"]:
        decisions.append(
            f"{len(payload['promotion_gate']['open_flags'])} flags are open and block this model from "
            "going live: for each, accept it with a reason in configs/fairness.yaml, or ask for the "
            "model to be fixed."
        )
    elif not failed_checks:
        decisions.append("No flag blocks this model: decide whether it may go live (or stay live).")
    if uncertain:
        decisions.append(
            f"{len(uncertain)} possible gaps are too uncertain to call: decide whether to wait for more "
            "data or act now."
        )
    if insufficient:
        decisions.append(
            "The audit cannot judge the model for some groups (too few people or events): decide how "
            "they will be monitored."
        )
    decisions.append("Confirm the tolerances the flags use and the reference groups (section 'Settings').")
    decisions.append(
        "Answer the TRIPOD+AI items marked 'for the board' and review the clinical safety hazards for "
        "the DCB0160 hazard log."
    )
    purpose = (
        f"The model estimates each adult's chance of {_outcome_text(model['outcome'])} from their GP, community "
        "and hospital records, so that neighbourhood MDTs can offer proactive care to those at highest risk. "
        "It supports clinical judgement; it does not decide care."
    )
    return {
        "purpose": purpose,
        "how_well": how_well,
        "who_it_may_fail": [f["sentence"] for f in raised]
        or ["No gap beyond tolerance is certain enough to call."],
        "uncertain_count": len(uncertain),
        "explained_count": len(explained),
        "insufficient_groups": insufficient,
        "flag_meaning": [
            "Raised: a real gap, not noise - the whole 95% interval lies beyond the agreed tolerance.",
            "Possible, uncertain: the estimate is beyond the "
            "tolerance but the interval reaches back inside it; "
            "more data are needed to tell.",
            "Explained: a difference in who the lists find that "
            "follows a group's lower predicted risk, while neither group has a raised calibration or "
            "need flag.",
            "Accepted: the board has accepted the flag with a "
            "recorded reason; it no longer blocks promotion.",
            "Insufficient data: a group too small to judge (fewer than "
            f"{payload['settings']['minimum_cell_people']} people "
            f"or {payload['settings']['minimum_cell_outcomes']} "
            "events or non-events); shown, never dropped, and never flagged.",
        ],
        "decisions": decisions,
        "gate": "passes" if payload["promotion_gate"]["passes"] else "blocked",
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
        "ethnicity, sex, age band and deprivation x ethnicity, with flags against agreed tolerances "
        "(this report).",
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
            "Small groups cannot be judged ('insufficient data'); absence of a flag there is not evidence of "
            "fairness.",
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


def _png(fig: plt.Figure) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=72, bbox_inches="tight")
    plt.close(fig)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _is_number(value: Any) -> bool:
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and not (isinstance(value, float) and math.isnan(value))
    )


def plot_calibration(payload: dict[str, Any], grouping: str) -> str:
    """Calibration curves of every judged group in ``grouping``, one panel each, overall in grey."""
    curves = {c["group"]: c for c in payload["calibration_curves"] if c["grouping"] == grouping}
    overall = next(c for c in payload["calibration_curves"] if c["grouping"] == OVERALL)
    labels = [c["label"] for c in curves.values()] or ["(no group large enough)"]
    cols = min(3, max(1, len(labels)))
    rows = math.ceil(len(labels) / cols)
    fig, axes = plt.subplots(
        rows, cols, figsize=(3.3 * cols, 3.0 * rows), squeeze=False, layout="constrained"
    )
    top = max(
        [
            b["mean_risk"]
            for c in payload["calibration_curves"]
            for b in c["bins"]
            if _is_number(b["mean_risk"])
        ]
        + [
            b["observed_rate"]
            for c in payload["calibration_curves"]
            for b in c["bins"]
            if _is_number(b["observed_rate"])
        ]
        + [0.05]
    )
    for ax, curve in zip(axes.flat, list(curves.values()) or [None], strict=False):
        ax.plot([0, top], [0, top], color="#999", lw=0.8, ls="--")
        for data, colour, width in ((overall, "#bbb", 1.0), (curve, "#1f5fa8", 1.6)):
            if data is None:
                continue
            pts = [b for b in data["bins"] if _is_number(b["mean_risk"]) and _is_number(b["observed_rate"])]
            ax.plot(
                [b["mean_risk"] for b in pts],
                [b["observed_rate"] for b in pts],
                marker="o",
                ms=3,
                color=colour,
                lw=width,
            )
        title = curve["label"] if curve else "no group large enough"
        if curve and curve.get("withheld"):
            title += " (withheld: a bin has 1-7 events)"
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("predicted risk", fontsize=8)
        ax.set_ylabel("observed rate", fontsize=8)
        ax.tick_params(labelsize=7)
    for ax in list(axes.flat)[len(labels) :]:
        ax.axis("off")
    fig.suptitle("Calibration by group (blue) against everyone (grey); suppressed bins not drawn", fontsize=9)
    return _png(fig)


def plot_forest(payload: dict[str, Any], metric: str, band: tuple[float, float] | None) -> str:
    """Estimate and 95% interval of ``metric`` for every judged group (intersections left out)."""
    rows = [r for r in payload["performance"] if not is_intersection(r["grouping"])]
    fig, ax = plt.subplots(figsize=(7, 0.28 * len(rows) + 1))
    labels = []
    for i, r in enumerate(rows):
        m = r["metrics"][metric]
        labels.append(f"{r['grouping'] if r['grouping'] != OVERALL else ''} {r['label']}".strip())
        if _is_number(m["value"]) and _is_number(m["lower"]) and _is_number(m["upper"]):
            ax.errorbar(
                m["value"],
                i,
                xerr=[[m["value"] - m["lower"]], [m["upper"] - m["value"]]],
                fmt="o",
                color="#1f5fa8",
                ms=4,
                capsize=2,
            )
        else:
            ax.text(
                0.01,
                i,
                "insufficient data",
                transform=ax.get_yaxis_transform(),
                fontsize=7,
                va="center",
                color="#777",
            )
    if band:
        ax.axvspan(band[0], band[1], color="#2a9d3a", alpha=0.08, label="tolerance")
        ax.legend(fontsize=7, loc="lower right")
    ax.set_yticks(range(len(rows)), labels, fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel(METRIC_LABELS.get(metric, metric), fontsize=8)
    ax.set_title(f"{METRIC_LABELS.get(metric, metric)} by group, 95% intervals", fontsize=9)
    return _png(fig)


def plot_list_shares(payload: dict[str, Any], grouping: str) -> str:
    """Each group's share of the lists next to its share of the population and of the outcomes."""
    rows = [r for r in payload["lists"] if r["mdt"] == ALL_MDTS and r["grouping"] == grouping]
    fig, ax = plt.subplots(figsize=(7, 3))
    x = np.arange(len(rows))
    for offset, key, colour, name in (
        (-0.27, "share_of_population", "#bbb", "population"),
        (0.0, "share_of_outcomes", "#e39b2d", "outcomes (need)"),
        (0.27, "share_of_list", "#1f5fa8", "lists"),
    ):
        values = [r[key] if _is_number(r[key]) else 0.0 for r in rows]
        ax.bar(x + offset, values, width=0.27, color=colour, label=name)
        for position, r in zip(x + offset, rows, strict=True):
            if r[key] == SUPPRESSED:  # no bar: marked, so it does not read as nobody
                ax.text(position, 0, "*", ha="center", va="bottom", fontsize=8, color=colour)
    ax.set_xticks(x, [r["label"] for r in rows], fontsize=7, rotation=20, ha="right")
    ax.set_ylabel("share", fontsize=8)
    ax.legend(fontsize=7)
    ax.set_title(
        "Share of the lists, the population and the outcomes (* suppressed: 1 to 7 people)", fontsize=9
    )
    return _png(fig)


def plot_need(payload: dict[str, Any], grouping: str) -> str:
    """Mean realised need by predicted-risk band for each group, one panel per need measure."""
    need = payload["need_at_equal_risk"]
    measures = payload["settings"]["need_measures"]
    fig, axes = plt.subplots(
        1, len(measures), figsize=(3.4 * len(measures), 3.2), squeeze=False, layout="constrained"
    )
    band_count = len(need["band_labels"])
    for ax, (measure, label) in zip(axes.flat, measures.items(), strict=False):
        for group in next(g for g in payload["groupings"] if g["name"] == grouping)["groups"]:
            pts = [
                b
                for b in need["bands"]
                if b["grouping"] == grouping
                and b["group"] == group
                and b["measure"] == measure
                and b["status"] == "ok"
                and _is_number(b["mean"])
            ]
            if pts:
                ax.plot(
                    [b["band_index"] for b in pts],
                    [b["mean"] for b in pts],
                    marker="o",
                    ms=3,
                    label=group_label(grouping, group),
                )
        ax.set_xticks(
            range(band_count), [lab.split("th")[0] for lab in need["band_labels"]], fontsize=6, rotation=30
        )
        ax.set_title(label, fontsize=8)
        ax.set_xlabel("predicted-risk percentile band", fontsize=7)
        ax.tick_params(labelsize=7)
    axes.flat[0].legend(fontsize=6)
    fig.suptitle("Realised need at equal predicted risk (cells with insufficient data not drawn)", fontsize=9)
    return _png(fig)


def plots(payload: dict[str, Any]) -> dict[str, str]:
    """Every plot of the report as base64 PNG, keyed by name."""
    tol = payload["settings"]["tolerances"]
    out = {f"calibration_{g['name']}": plot_calibration(payload, g["name"]) for g in payload["groupings"]}
    out["forest_oe_ratio"] = plot_forest(payload, "oe_ratio", (tol["oe_low"], tol["oe_high"]))
    out["forest_auroc"] = plot_forest(payload, "auroc", None)
    for grouping in plotted_groupings():
        out[f"list_shares_{grouping}"] = plot_list_shares(payload, grouping)
        out[f"need_{grouping}"] = plot_need(payload, grouping)
    return out


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


def _format_interval(metric: dict[str, Any], digits: int = 3, pct: bool = False) -> str:
    value = metric.get("value")
    if not _is_number(value):
        return "-" if value is None else str(value)
    fmt = _format_pct if pct else (lambda v: _format_value(v, digits))
    if _is_number(metric.get("lower")) and _is_number(metric.get("upper")):
        return f"{fmt(value)} <small>({fmt(metric['lower'])} to {fmt(metric['upper'])})</small>"
    return fmt(value)


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATE_DIR),
        autoescape=jinja2.select_autoescape(["html", "j2"]),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["count"] = lambda v: jinja2.utils.markupsafe.Markup(_format_count(v))
    env.filters["num"] = _format_value
    env.filters["pct"] = _format_pct
    env.filters["ci"] = lambda m, digits=3, pct=False: jinja2.utils.markupsafe.Markup(
        _format_interval(m, digits, pct)
    )
    return env


def render_report(audit: FairnessAudit, context: ModelInfo) -> tuple[str, dict[str, Any]]:
    """Render the governance report.

    Args:
        audit: The fairness audit (raw figures).
        context: What the report says about the model.

    Returns:
        ``(html, payload)``: the self-contained HTML page and the JSON-ready payload
        holding every number, both disclosure-controlled.

    Raises:
        RiskstratError: If any count escaped disclosure control.
    """
    payload = report_payload(audit, context)
    images = plots(payload)
    html = (
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
            plotted=plotted_groupings(),
            by_mdt=[g["name"] for g in payload["groupings"] if not is_intersection(g["name"])],
        )
    )
    return html, payload


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
