"""The governance report's "Is the programme working?" section (section 4) and its summary line."""

from __future__ import annotations

import re
from html import unescape

import pandas as pd
from impact_data import WORDING, simulate

from riskstrat.evaluation.impact import analysis_rows, impact_payload, too_short_payload
from riskstrat.evaluation.impact_settings import ImpactSettings
from riskstrat.evaluation.report import SCHEMA_VERSION, render_report


def _impact(jump: float = -0.12, simulated_weeks: int = 0, seed: int = 1) -> dict:
    assignments, outcomes, decisions = simulate(jump, seed=seed, mdts=6, weeks=20, taken_share=0.5)
    settings = ImpactSettings()
    weeks = sorted({pd.Timestamp(w).date() for w in assignments["week"]})
    return impact_payload(
        analysis_rows(assignments, outcomes, decisions, settings.running_variable),
        outcome_name="emergency_admission",
        wording=WORDING,
        settings=settings,
        weeks=weeks,
        weeks_recorded=len(weeks),
        mdts=sorted(assignments["mdt"].unique()),
        lottery_settings={"places": 5, "pool": 10},
        draws=120,
        pool_first_time_share=1.0,
        simulated_weeks=simulated_weeks,
    )


def _text(html: str, anchor: str, end: str = "<h2") -> str:
    section = re.sub(r"<[^>]+>", " ", html.split(f'id="{anchor}">')[1].split(end)[0])
    return " ".join(unescape(section).split())


def test_the_impact_section_follows_the_decisions_and_the_later_sections_are_renumbered(
    scenario_audit, model_info
):
    impact = _impact()
    html, payload = render_report(scenario_audit, model_info, impact=impact)
    assert payload["schema_version"] == SCHEMA_VERSION == 4
    assert payload["impact"] == impact
    headings = re.findall(r'<h2 id="[^"]+">([^<]+)</h2>', html)
    assert headings[2:5] == [
        "3. What the MDTs did with the lists",
        "4. Is the programme working?",
        "5. Performance",
    ]
    assert headings[-1] == "11. Glossary"
    assert "each group's observed / expected is in section 5" in html
    section = _text(html, "impact")
    assert impact["rd"]["sentence"] in section
    assert "could detect a reduction of" in section and "What would break them" in section
    assert "Manipulation of the cut-off" in section and "intention-to-treat" in section
    assert 'alt="Outcome rate by distance to the cut-off' in html
    # The summary page carries the one line.
    summary = _text(html, "summary", end="</section>")
    assert "Is the programme working? Fewer events: being listed changed the chance of" in summary
    assert "excludes no effect" in summary and "simulated past deployment" not in html


def test_a_simulated_history_is_said_in_section_4_and_the_summary(scenario_audit, model_info):
    impact = _impact(simulated_weeks=20)
    html, _ = render_report(scenario_audit, model_info, impact=impact)
    said = "20 of these weeks are a simulated past deployment on synthetic data (its true effect is set in"
    assert said in _text(html, "impact") and said in _text(html, "summary", end="</section>")


def test_the_summary_leads_with_no_clear_effect_when_the_interval_includes_zero(scenario_audit, model_info):
    impact = _impact(jump=0.0, seed=2)
    assert impact["rd"]["lower"] < 0 < impact["rd"]["upper"]
    html, _ = render_report(scenario_audit, model_info, impact=impact)
    summary = _text(html, "summary", end="</section>")
    assert "Is the programme working? No clear effect: being listed" in summary
    assert "includes no effect" in summary


def test_too_short_history_is_one_line(scenario_audit, model_info):
    impact = too_short_payload("emergency_admission", WORDING, 3, 0, ImpactSettings())
    html, _ = render_report(scenario_audit, model_info, impact=impact)
    section = _text(html, "impact")
    assert section.startswith("4. Is the programme working? Too little list history to say yet: 3 weeks")
    assert "8 are needed" in section and "Outcome rate by distance" not in html


def test_without_an_impact_evaluation_the_section_says_it_did_not_run(scenario_audit, model_info):
    html, payload = render_report(scenario_audit, model_info)
    assert payload["impact"] is None and payload["summary"]["impact"] is None
    assert "The impact evaluation did not run for this report" in _text(html, "impact")


def test_with_the_lottery_on_its_comparison_is_shown_and_read_first(scenario_audit, model_info):
    assignments, outcomes, _ = simulate(-0.1, seed=10, mdts=6, weeks=20, lottery=True)
    settings = ImpactSettings()
    weeks = sorted({pd.Timestamp(w).date() for w in assignments["week"]})
    impact = impact_payload(
        analysis_rows(assignments, outcomes, None, settings.running_variable),
        outcome_name="emergency_admission",
        wording=WORDING,
        settings=settings,
        weeks=weeks,
        weeks_recorded=len(weeks),
        mdts=["MDT 0"],
    )
    html, _ = render_report(scenario_audit, model_info, impact=impact)
    section = _text(html, "impact")
    assert section.startswith("4. Is the programme working?")
    assert "winning a place in the lottery at the margin changed the chance" in section.split(".", 2)[1]
    assert "Lottery at the margin: winners against losers" in section
    if impact["rd"]:
        assert "the lottery's own comparison of winners and losers is the one to read" in section
