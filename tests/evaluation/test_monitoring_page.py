"""The monitoring page: a disclosure-controlled payload, rendered offline with its plots."""

from __future__ import annotations

import json
import re
from datetime import date, timedelta
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from riskstrat.errors import RiskstratError
from riskstrat.evaluation.alarms import Alarm
from riskstrat.evaluation.disclosure import SUPPRESSED, undisclosed_counts
from riskstrat.evaluation.monitoring_page import MonitoringInputs, monitoring_payload, render_page

DATA_DATE = date(2025, 12, 28)
WEEK = date(2026, 1, 5)
ENDS = [DATA_DATE - timedelta(days=7 * k) for k in range(8)]


def _counts() -> pd.DataFrame:
    rows = []
    for k, end in enumerate(ENDS):
        rows.append(("gp_appointments", "P1", None, end, 203 if k >= 2 else 3))  # P1 stopped 2 weeks ago
        rows.append(("gp_appointments", "P2", None, end, 311))
        rows.append(("gp_diagnoses", None, "diabetes", end, 52))
    return pd.DataFrame(rows, columns=["table", "practice_code", "code_group", "week_end", "events"])


def _registered() -> pd.DataFrame:
    rows = [(p, end, n) for end in ENDS for p, n in (("P1", 4_012), ("P2", 6_021))]
    return pd.DataFrame(rows, columns=["practice_code", "week_end", "registered"])


def _feed_alarm() -> Alarm:
    return Alarm(
        "feed",
        "critical",
        "gp_appointments",
        "gp_appointments: 1 practice (P1) recorded 1% of its usual weekly volume in the weeks ending "
        "2025-12-21 and 2025-12-28 (usual 203 a week)",
        {
            "table": "gp_appointments",
            "rows": "practice",
            "direction": "drop",
            "items": [{"name": "P1", "events": 6}],
        },
    )


def _drift() -> SimpleNamespace:
    table = pd.DataFrame(
        {
            "kind": ["score", "feature", "feature", "feature"],
            "outcome": ["emergency_admission"] * 4,
            "name": ["score", "age", "gp_appointments_365d", "prior_admissions"],
            "psi": [0.04, 0.31, 0.12, 0.01],
            "level": [None, "critical", "warning", None],
        }
    )
    return SimpleNamespace(table=table, alarms=[], moved_most=["age", "gp_appointments_365d"])


def _realised() -> pd.DataFrame:
    rows = []
    for w, week in enumerate([date(2025, 1, 6), date(2025, 2, 3), date(2025, 3, 3)]):
        rows.append(
            dict(
                week=week,
                outcome="emergency_admission",
                horizon_days=90,
                cut="overall",
                group="all",
                n=40_003,
                events=812,
                expected=780.4,
                oe=1.04 + 0.02 * w,
                oe_low=0.97,
                oe_high=1.12,
                auroc=0.78,
                auroc_low=0.76,
                auroc_high=0.80,
                model="emergency_admission v1",
            )
        )
        for d in range(1, 11):
            events = 3 if d == 1 else 20 * d  # the lowest decile has 3 events: suppressed
            rows.append(
                dict(
                    week=week,
                    outcome="emergency_admission",
                    horizon_days=90,
                    cut="decile",
                    group=str(d),
                    n=4_000,
                    events=events,
                    expected=events / 1.05,
                    oe=1.05,
                    oe_low=0.9,
                    oe_high=1.2,
                    auroc=np.nan,
                    auroc_low=np.nan,
                    auroc_high=np.nan,
                    model="emergency_admission v1",
                )
            )
        rows.append(
            dict(
                week=week,
                outcome="emergency_admission",
                horizon_days=90,
                cut="mdt",
                group="North",
                n=20_001,
                events=401,
                expected=390.0,
                oe=1.03,
                oe_low=0.93,
                oe_high=1.13,
                auroc=0.77,
                auroc_low=0.74,
                auroc_high=0.8,
                model="emergency_admission v1",
            )
        )
    return pd.DataFrame(rows)


def _history() -> pd.DataFrame:
    rows = []
    for k, week in enumerate([WEEK - timedelta(days=14), WEEK - timedelta(days=7), WEEK]):
        for metric, value in (
            ("estimated_auroc", 0.80 - 0.01 * k),
            ("estimated_auroc_low", 0.78 - 0.01 * k),
            ("estimated_auroc_high", 0.82 - 0.01 * k),
            ("test_auroc", 0.81),
        ):
            rows.append((week, DATA_DATE, "emergency_admission", metric, value, "emergency_admission v1"))
    return pd.DataFrame(rows, columns=["week", "data_date", "outcome", "metric", "value", "model"])


def make_inputs() -> MonitoringInputs:
    """A week with a stopped practice feed, drift on one feature and three matured early reads."""
    return MonitoringInputs(
        week=WEEK,
        data_date=DATA_DATE,
        published=False,
        models={"emergency_admission": "emergency_admission v1"},
        wordings={"emergency_admission": "an emergency hospital admission in the next 12 months"},
        alarms=[_feed_alarm()],
        counts=_counts(),
        registered=_registered(),
        coverage=pd.DataFrame(
            [
                {
                    "table": "gp_appointments",
                    "registered": 10_033,
                    "people_with_record": 7_502,
                    "share": 0.748,
                    "latest_event": DATA_DATE,
                    "days_since_latest": 0,
                }
            ]
        ),
        drift={"emergency_admission": _drift()},
        score_bins={
            "emergency_admission": {
                "edges": [0.0, 0.01, 0.02, 0.05, 0.1, 1.0],
                "reference": [0.2, 0.2, 0.2, 0.2, 0.2],
                "current": [2_003, 1_998, 2_101, 1_900, 5],
            }
        },
        estimated={
            "emergency_admission": {
                "n": 10_033,
                "expected_events": 612.3,
                "estimated_auroc": 0.79,
                "auroc_low": 0.77,
                "auroc_high": 0.81,
                "method": "confidence-based (CBPE)",
            }
        },
        test_auroc={"emergency_admission": 0.81},
        history=_history(),
        realised=_realised(),
        horizons={"emergency_admission": {"full": 365, "early": 90}},
    )


@pytest.fixture()
def inputs() -> MonitoringInputs:
    return make_inputs()


def test_every_count_in_the_payload_is_disclosure_controlled(inputs):
    payload = monitoring_payload(inputs)
    assert undisclosed_counts(payload) == []
    series = {(s["table"], s["subject"]): s for s in payload["feed"]["series"]}
    stopped = series[("gp_appointments", "P1")]
    assert stopped["alarmed"] and stopped["kind"] == "practice"
    assert [p["events"] for p in stopped["points"]][-2:] == [SUPPRESSED, SUPPRESSED]  # 3 a week: suppressed
    assert {p["events"] for p in stopped["points"][:-2]} == {205}  # 203 rounded to 5
    assert series[("gp_appointments", "All practices (ICS total)")]["points"][0]["events"] == 515  # 203 + 311
    # A histogram band of 5 people this week is suppressed; the shares come from rounded counts.
    assert payload["drift"][0]["histogram"]["current"][-1] == SUPPRESSED
    # The realised decile with 3 events: its count and ratio are suppressed.
    early = next(r for r in payload["realised"] if r["horizon_days"] == 90)
    lowest = next(d for d in early["by_decile"] if d["group"] == "1")
    assert lowest["events"] == SUPPRESSED and lowest["oe"] == SUPPRESSED
    assert early["latest_week"] == "2025-03-03" and len(early["trend"]) == 3
    json.dumps(payload)  # JSON-able


def test_the_page_leads_with_the_alarm_and_says_the_week_was_not_published(inputs):
    html = render_page(monitoring_payload(inputs), (0.1, 0.25))
    alarms = html.index('id="alarms"')
    assert alarms < html.index('id="feeds"')
    assert "recorded 1% of its usual weekly volume" in html and "What to do:" in html
    assert "were <b>not published</b>" in html
    assert "An estimate, not a measurement" in html
    # One offline file: plots inline, nothing fetched.
    assert len(re.findall(r'src="data:image/png;base64,', html)) >= 6
    assert not re.search(r'(src|href)="(https?:)?//', html)


def test_a_champion_without_a_training_reference_says_so(inputs):
    inputs.drift = {"emergency_admission": None}
    payload = monitoring_payload(inputs)
    assert payload["drift"][0]["reference"] is False
    assert "retrain to add one" in render_page(payload)


def test_no_alarms_says_so(inputs):
    inputs.alarms, inputs.published = [], True
    payload = monitoring_payload(inputs)
    assert payload["status"] == "clear"
    assert "No alarms this week" in render_page(payload)


def test_a_payload_with_an_exact_small_count_is_refused(inputs):
    payload = monitoring_payload(inputs)
    payload["feed"]["coverage"][0]["n_with_record"] = 7_502
    with pytest.raises(RiskstratError, match="not disclosure-controlled"):
        render_page(payload)


def test_a_week_without_any_record_is_drawn_as_zero(inputs):
    counts = inputs.counts
    inputs.counts = counts[~((counts["practice_code"] == "P1") & (counts["events"] == 3))]  # no rows at all
    payload = monitoring_payload(inputs)
    stopped = next(s for s in payload["feed"]["series"] if s["subject"] == "P1")
    assert [p["events"] for p in stopped["points"]] == [205] * 6 + [0, 0]


def test_a_source_not_supplied_is_shown_as_such(inputs):
    empty = {"table": "community_contacts", "supplied": False, "registered": 10_033, "people_with_record": 0}
    inputs.coverage = pd.concat([inputs.coverage, pd.DataFrame([empty])], ignore_index=True)
    payload = monitoring_payload(inputs)
    supplied = {r["table"]: r["supplied"] for r in payload["feed"]["coverage"]}
    assert supplied == {"gp_appointments": True, "community_contacts": False}
    html = render_page(payload)
    assert re.search(r"community_contacts</td><td[^>]*>not supplied", html)


def test_risk_band_labels_tell_close_edges_apart():
    from riskstrat.evaluation.monitoring_page import band_labels

    labels = band_labels([0.0, 0.0009, 0.00091, 0.00094, 0.0011, 0.05, 1.0])
    assert len(set(labels)) == len(labels)
    assert all(lo != hi for lo, hi in (label.rstrip("%").split("-") for label in labels))
    assert band_labels([0.0, 0.01, 0.05, 1.0]) == ["0-1.0%", "1.0-5.0%", "5.0-100%"]


def test_weekly_plots_have_weekly_ticks_and_the_decile_plot_says_what_it_left_out(inputs):
    from riskstrat.evaluation.monitoring_page import DECILES_LEFT_OUT, auroc_trend_figure, decile_figure

    payload = monitoring_payload(inputs)
    trend = payload["trend"][0]
    ax = auroc_trend_figure(trend).axes[0]
    weeks = {date.fromisoformat(p["week"]) for p in trend["points"]}
    import matplotlib.dates

    ticks = {matplotlib.dates.num2date(t).date() for t in ax.get_xticks()}
    assert ticks <= weeks and len(ticks) <= 6
    early = next(r for r in payload["realised"] if r["horizon_days"] == 90)
    assert DECILES_LEFT_OUT in decile_figure(early).axes[0].get_xlabel()  # decile 1 is suppressed
