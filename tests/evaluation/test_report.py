import json
import re

import pytest

from riskstrat.evaluation.disclosure import is_disclosed_count, undisclosed_counts
from riskstrat.evaluation.report import payload_json

SECTIONS = (
    "summary",
    "findings",
    "by-design",
    "performance",
    "by-group",
    "calibration",
    "lists",
    "need",
    "model-card",
    "methods",
    "glossary",
)


def test_html_opens_offline(scenario_report):
    html, _ = scenario_report
    assert "http://" not in html and "https://" not in html
    assert "<script" not in html and "<link" not in html
    # Every src is an inline image, never a file.
    sources = re.findall(r'src="([^"]*)"', html)
    assert sources and all(s.startswith("data:image/png;base64,") for s in sources)


def test_html_holds_the_summary_every_section_and_every_plot(scenario_report):
    html, _ = scenario_report
    for section in SECTIONS:
        assert f'id="{section}"' in html
    for heading in (
        "Summary for the board",
        "The gates",
        "What the audit found",
        "How well it works",
        "Decisions asked of the board",
        "Expected by design",
        "Intended use",
        "Out-of-scope uses",
        "Caution on retraining",
        "DCB0160",
        "TRIPOD+AI",
        "Limitations",
        "Data and its representativeness",
        "Glossary",
    ):
        assert heading in html
    images = re.findall(r'<img alt="([^"]+)"', html)
    # Every grouping with a curve to show has its calibration panel (small groupings, not intersections).
    assert {"Deprivation", "Ethnic group", "Sex", "Age band"} <= {
        a.removeprefix("Calibration curves by ").split(" (")[0] for a in images if a.startswith("Calibration")
    }
    assert any(a.startswith("Observed over expected") for a in images)
    assert any(a.startswith("Need at equal risk") for a in images)
    assert any(a.startswith("List shares") for a in images)
    assert "Liley" in html and "Obermeyer" in html
    assert "For the board" in html


def test_summary_leads_with_the_decision_and_names_the_flagged_group(scenario_report):
    html, payload = scenario_report
    summary = html.split('id="summary"')[1].split("</section>")[0]
    assert payload["promotion_gate"]["passes"] is False
    assert "calibration_oe:ethnic_group:Black" in payload["promotion_gate"]["open_flags"]
    assert summary.index("This model cannot go live") < summary.index("The gates") < summary.index("Black")
    assert "Fails:</span> Fairness:" in summary
    # Each finding in one short line: the gap and its figures; the method is left to section 1.
    lines = payload["summary"]["findings"]
    assert lines[0]["blocks_promotion"] and "Black" in lines[0]["text"]
    assert all(len(f["text"]) <= 320 and "false discovery rate" not in f["text"] for f in lines)
    blocking = next(f for f in payload["findings"] if f["finding_id"] == "calibration_oe:ethnic_group:Black")
    assert blocking["blocks_promotion"] and blocking["section"] == "gating"
    # Every section is linked from the summary page.
    for section in SECTIONS[1:]:
        if section != "by-group":
            assert f'href="#{section}"' in summary, section


def test_the_summary_says_how_many_checks_ran_and_what_chance_alone_would_give(
    scenario_audit, scenario_report
):
    from riskstrat.evaluation.report import _beyond_tolerance_line

    html, _ = scenario_report
    kinds = scenario_audit.error_control["kinds"]
    checks = sum(k["checks"] for k in kinds.values())
    raised = sum(k["raised"] for k in kinds.values())
    summary = html.split('id="summary"')[1].split("</section>")[0]
    assert f"The audit made {checks} checks and raised {raised}." in summary
    # The Benjamini-Hochberg bound is a chance per audit and kind, not an expected count of flags,
    # and the measured rate under the null stands beside it.
    assert "chance alone would raise about" not in summary
    assert "raises a false finding in at most 5% of audits for each kind of check" in summary
    assert "measured: 0 of 50 simulated audits" in summary
    beyond = sum(k["beyond_tolerance_not_significant"] for k in kinds.values())
    assert f"{beyond} further estimates lie beyond tolerance without evidence" in summary
    # With a simulated chance expectation, the sentence gives it.
    control = {
        "kinds": [
            {"beyond_tolerance_without_evidence": 4, "expected_beyond_tolerance": 3.2},
            {"beyond_tolerance_without_evidence": 1, "expected_beyond_tolerance": 1.1},
        ]
    }
    assert "would give about 4 by chance" in _beyond_tolerance_line(control)


def test_one_blocking_finding_is_counted_in_the_singular(scenario_report):
    from copy import deepcopy

    from riskstrat.evaluation.report import board_summary

    _, payload = scenario_report
    one = deepcopy(payload)
    blocking = next(f for f in one["findings"] if f["blocks_promotion"])
    one["findings"] = [blocking]
    one["promotion_gate"] = one["promotion_gate"] | {"passes": False, "open_flags": [blocking["finding_id"]]}
    summary = board_summary(one)
    assert summary["gates"][-1]["text"] == "Fairness: 1 finding blocks promotion (below)."
    assert any(d.startswith("1 finding blocks this model:") for d in summary["decisions"])
    one["findings"] = [blocking, blocking]
    one["promotion_gate"]["open_flags"] = [blocking["finding_id"]] * 2
    assert board_summary(one)["gates"][-1]["text"] == "Fairness: 2 findings block promotion (below)."


def test_the_model_is_named_by_what_it_predicts_not_by_its_registry_name(scenario_report):
    html, payload = scenario_report
    title = "Model of the risk of an emergency hospital admission (or death) in the next 12 months, version 3"
    assert payload["summary"]["model_title"] == title
    assert f"<title>Fairness and governance report: {title}</title>" in html
    summary = html.split('id="summary"')[1].split("</section>")[0]
    assert title in summary and "riskstrat-emergency_admission" not in summary


def test_without_gating_groupings_the_findings_note_says_none_decides_promotion(scenario_audit, model_info):
    from dataclasses import replace

    from riskstrat.evaluation.report import render_report

    audit = replace(
        scenario_audit, settings=scenario_audit.settings.model_copy(update={"gating_groupings": ()})
    )
    html, _ = render_report(audit, model_info)
    assert "decide promotion ()" not in html
    assert "No grouping decides promotion in these settings" in html


def test_age_differences_are_expected_by_design_not_findings_for_the_board(scenario_audit, model_info):
    from dataclasses import replace

    from riskstrat.evaluation.report import render_report

    age = replace(
        scenario_audit.findings[0],
        flag_id="calibration_oe:age_band:85+",
        grouping="age_band",
        group="85+",
        label="85+",
        sentence="AGE GAP.",
        gates=False,
    )
    audit = replace(scenario_audit, findings=[*scenario_audit.findings, age])
    html, payload = render_report(audit, model_info)
    finding = next(f for f in payload["findings"] if f["grouping"] == "age_band")
    assert finding["section"] == "by_design" and not finding["blocks_promotion"]
    assert "AGE GAP." not in [f["text"] for f in payload["summary"]["findings"]]
    assert "by age band are expected by design" in payload["summary"]["by_design"]
    by_design = html.split('id="by-design"')[1].split("<h2")[0]
    assert "AGE GAP." in by_design and "Age is one of the model" in by_design


def test_the_audited_rows_hash_is_printed_so_a_reviewer_can_match_the_rows(scenario_audit, model_info):
    from dataclasses import replace

    from riskstrat.evaluation.report import render_report

    digest = "ab12" * 16
    html, payload = render_report(scenario_audit, replace(model_info, audit_rows_sha256=digest))
    assert payload["model"]["audit_rows_sha256"] == digest
    assert f"SHA-256 <code>{digest}</code>" in html.split('id="model-card"')[1]


def test_prose_holds_no_configuration_keys(scenario_report):
    html, _ = scenario_report
    prose = re.sub(r"<code>.*?</code>|src=\"[^\"]*\"", "", html)
    for key in ("gate_on_uncertain", "gating_groupings", "need_flag_measures", "TreeSHAP", "imd_quintile ="):
        assert key not in prose, key
    for term in ("AUROC", "Observed / expected", "Calibration slope", "FDR"):
        assert f"<dt>{term}" in html, term


def test_calibration_bins_are_joined_until_each_has_ten_events():
    import pandas as pd

    from riskstrat.evaluation.report import merge_calibration_bins

    bins = pd.DataFrame(
        {
            "n": [50.0] * 10,
            "events": [1, 1, 2, 2, 3, 4, 5, 8, 12, 20],
            "mean_risk": [0.01 * i for i in range(1, 11)],
        }
    )
    merged = merge_calibration_bins(bins)
    assert merged["events"].sum() == 58 and merged["n"].sum() == 500
    assert (merged["events"] >= 10).all() and len(merged) == 4
    # People-weighted mean risk of the joined bins.
    assert merged.loc[0, "mean_risk"] == pytest.approx(sum(0.01 * i for i in range(1, 7)) / 6)
    # Too few events for three bins of ten: still three bins (the report withholds a small one).
    few = merge_calibration_bins(bins.assign(events=[0, 0, 1, 1, 1, 1, 2, 2, 3, 4]))
    assert len(few) == 3 and few["events"].sum() == 15


def test_a_large_grouping_shows_a_few_groups_and_counts_the_rest(scenario_report):
    from riskstrat.evaluation.report import COMPACT_EXTREMES, shown_groups

    html, payload = scenario_report
    grouping = next(g for g in payload["groupings"] if g["name"] == "imd_quintile_x_ethnic_group")
    shown = shown_groups(payload, grouping)
    with_findings = {f["group"] for f in payload["findings"] if f["grouping"] == grouping["name"]}
    assert grouping["reference"] in shown and with_findings <= set(shown)
    assert len(shown) <= 1 + len(with_findings) + 2 * COMPACT_EXTREMES < len(grouping["groups"])
    assert f"{len(grouping['groups']) - len(shown)} further groups are not shown here" in html


def test_no_small_or_unrounded_count_in_html_or_json(scenario_report):
    html, payload = scenario_report
    counts = re.findall(r'<span class="count">([^<]*)</span>', html)
    assert len(counts) > 100
    for shown in counts:
        if shown in ("*", "-"):
            continue
        value = int(shown.replace(",", ""))
        assert value == 0 or (value > 7 and value % 5 == 0), shown
    data = json.loads(payload_json(payload))
    assert undisclosed_counts(data) == []
    # The scan is exact: every count key holds a disclosed value, and there are many of them.
    seen = []

    def walk(node):
        if isinstance(node, dict):
            for key, value in node.items():
                if key in ("n", "events", "selected", "n_population", "list_n") and not isinstance(
                    value, dict
                ):
                    seen.append(value)
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(data)
    assert len(seen) > 500 and all(is_disclosed_count(v) for v in seen)
    assert "*" in seen  # small cells exist in the synthetic data and are suppressed, not dropped


def test_json_holds_every_section_with_intervals_and_denominators(scenario_report):
    _, payload = scenario_report
    data = json.loads(payload_json(payload))
    for key in (
        "model",
        "settings",
        "overall",
        "performance",
        "calibration_curves",
        "lists",
        "need_at_equal_risk",
        "flags",
        "model_card",
        "summary",
        "promotion_gate",
    ):
        assert key in data
    auroc = data["overall"]["metrics"]["auroc"]
    assert set(auroc) == {"value", "lower", "upper", "n"}
    assert auroc["lower"] < auroc["value"] < auroc["upper"]
    flag = next(f for f in data["flags"] if f["flag_id"] == "calibration_oe:ethnic_group:Black")
    assert flag["status"] == "raised" and flag["blocks_promotion"] is True
    tripod = data["model_card"]["tripod_ai"]
    assert len(tripod) == 27 and {t["source"] for t in tripod} == {"pipeline", "for the board"}


def test_accepted_flag_is_recorded_in_the_report(scenario_audit, model_info):
    from dataclasses import replace

    from fairness_data import fast_settings

    from riskstrat.evaluation.fairness import Flag
    from riskstrat.evaluation.report import report_payload
    from riskstrat.evaluation.settings import AcceptedFlag

    acceptance = AcceptedFlag(
        flag_id="calibration_oe:ethnic_group:Black",
        reason="Recording project under way.",
        accepted_by="ICB governance board",
        date="2025-02-01",
    )
    settings = fast_settings(accepted_flags=[acceptance])
    flags = [replace(f, accepted=settings.accepted(f.flag_id)) for f in scenario_audit.flags]
    assert all(isinstance(f, Flag) for f in flags)
    audit = replace(scenario_audit, settings=settings, flags=flags)
    payload = report_payload(audit, model_info)
    assert payload["settings"]["accepted_flags"][0]["reason"] == "Recording project under way."
    flag = next(f for f in payload["flags"] if f["flag_id"] == acceptance.flag_id)
    assert flag["accepted"]["accepted_by"] == "ICB governance board"
    assert flag["blocks_promotion"] is False


def test_no_flag_sentence_quotes_a_sensitivity_the_list_tables_suppress(scenario_report):
    _, payload = scenario_report
    lists = {
        (r["grouping"], r["group"]): r["sensitivity"]["value"]
        for r in payload["lists"]
        if r["mdt"] == "All MDTs"
    }
    # The fixture's list checks may all be withheld for lack of power; any that are made must agree.
    flags = [f for f in payload["flags"] if f["kind"] == "sensitivity_ratio"]
    references = {g["name"]: g["reference"] for g in payload["groupings"]}
    for flag in flags:
        shown = (
            lists[(flag["grouping"], flag["group"])],
            lists[(flag["grouping"], references[flag["grouping"]])],
        )
        if "*" in shown:
            assert "figures not shown" in flag["sentence"], flag["sentence"]
            assert (flag["estimate"], flag["lower"], flag["upper"]) == ("*", "*", "*")
        else:
            quoted = re.search(r"sensitivity ([\d.]+)% vs ([\d.]+)%", flag["sentence"])
            assert quoted, flag["sentence"]
            for text, value in zip(quoted.groups(), shown, strict=True):
                assert abs(float(text) - 100 * value) <= 0.05 + 1e-9, flag["sentence"]


def test_a_flag_whose_figures_would_disclose_shows_none_of_them():
    from riskstrat.evaluation.fairness import Flag
    from riskstrat.evaluation.report import _flag_figures

    common = {
        "flag_id": "sensitivity_ratio:imd_quintile:1",
        "kind": "sensitivity_ratio",
        "grouping": "imd_quintile",
        "group": "1",
        "measure": "",
        "estimate": 0.11,
        "lower": 0.04,
        "upper": 0.3,
        "tolerance": "0.8 to 1.25",
        "status": "raised",
        "sentence": "figures not shown",
    }
    assert _flag_figures(Flag(**common, shown=("*", "*", "*"))) == ("*", "*", "*")
    assert _flag_figures(Flag(**common, shown=(0.1, 0.05, 0.2))) == (0.1, 0.05, 0.2)


def test_calibration_gate_failure_is_a_decision_for_the_board(scenario_audit, model_info):
    from dataclasses import replace

    from riskstrat.evaluation.report import render_report

    failing = replace(
        model_info,
        promotion_checks=(
            "passed: calibration slope 1.050 is within [0.9, 1.1].",
            "failed: observed/expected ratio 1.124 is above the allowed range [0.9, 1.1].",
        ),
    )
    html_page, payload = render_report(scenario_audit, failing)
    decisions = " ".join(payload["summary"]["decisions"])
    assert "cannot go live whatever is decided about the findings" in decisions
    assert "Observed/expected ratio 1.124 is above the allowed range [0.9, 1.1]" in decisions
    assert "Fails:</span> Observed/expected ratio 1.124" in html_page
    assert "Passes:</span> Calibration slope 1.050" in html_page


def test_a_small_mdt_list_is_not_broken_down_by_group(scenario_audit, model_info):
    from dataclasses import replace

    from riskstrat.evaluation.report import render_report

    # Each MDT lists about 200 people in the fixture: below min_cell_n 10,000, every MDT's list is small.
    audit = replace(
        scenario_audit, settings=scenario_audit.settings.model_copy(update={"min_cell_n": 10_000})
    )
    html, payload = render_report(audit, model_info)
    per_mdt = [r for r in payload["lists"] if r["mdt"] != "All MDTs"]
    assert per_mdt and all(r["selected"] == "*" and r["share_of_list"] == "*" for r in per_mdt)
    assert all(r["ppv"]["value"] == "*" and r["ppv"]["n"] == "*" for r in per_mdt)
    assert all(r["status"] == "insufficient data" for r in per_mdt)
    # The lists taken together are still broken down.
    overall = [r for r in payload["lists"] if r["mdt"] == "All MDTs"]
    assert any(isinstance(r["selected"], int) and r["selected"] > 0 for r in overall)
    # Tables of nothing but "*" are left out, with one line saying why.
    lists = html.split('id="lists"')[1].split('id="need"')[0]
    assert "<h3>North</h3>" not in lists and "<h3>South</h3>" not in lists
    assert "Not broken down by group for North, South: each list is too small" in lists


def test_the_mdts_decisions_are_shown_when_they_came_back(scenario_audit, model_info):
    from html import unescape

    import pandas as pd

    from riskstrat.evaluation.decisions import decisions_payload
    from riskstrat.evaluation.report import render_report
    from riskstrat.worklists.decisions import DECISIONS, NOT_DISCUSSED, TURNED_DOWN

    # 100 listed people on two MDTs' lists, as the import and the published lists give them.
    people = [f"P{i:03d}" for i in range(100)]
    listed = pd.DataFrame(
        {
            "week": "2026-01-05",
            "mdt": ["North"] * 50 + ["South"] * 50,
            "person_id": people,
            "imd_quintile": [1] * 40 + [5] * 60,
            "ethnic_group": ["Black"] * 3 + ["White"] * 97,
        }
    )
    codes = (
        ["not_appropriate"] * 20 + ["declined"] * 10 + ["added_to_caseload"] * 10  # IMD 1
        + ["added_to_caseload"] * 30 + ["not_appropriate"] * 10 + ["not_discussed"] * 10 + [None] * 10  # IMD 5
    )  # fmt: skip
    history = listed[["week", "mdt", "person_id"]].assign(decision=codes).dropna()
    decisions = decisions_payload(
        history, listed, wordings=DECISIONS, not_discussed=NOT_DISCUSSED, turned_down=TURNED_DOWN
    )
    html, payload = render_report(scenario_audit, model_info, decisions=decisions)
    assert payload["decisions"] == decisions
    assert "What the MDTs did with the lists" in html
    section = re.sub(r"<[^>]+>", " ", html.split('id="decisions"')[1].split("<h2")[0])
    section = " ".join(unescape(section).split())
    assert "2 MDTs (North, South)" in section and "80 of 100 listed people were discussed (80.0%)" in section
    assert (
        "Turned down (Not appropriate now, Declined)" in section
        and "Added to caseload / virtual ward" in section
    )
    # By deprivation: IMD 1, 30 of 40 discussed turned down; IMD 5, 10 of 40.
    assert "Core20) 40 40 30 75.0%" in section and "5 - least deprived 20% 60 40 10 25.0%" in section
    assert decisions["note"] in section
    html_without, payload_without = render_report(scenario_audit, model_info)
    # Without decisions the section keeps its number and says in one line that none came back.
    assert payload_without["decisions"] is None and "No MDT decisions have come back yet" in html_without
    assert "Turned down (Not appropriate now, Declined)" not in html_without


def test_need_band_means_give_back_only_rounded_totals(scenario_report):
    _, payload = scenario_report
    bands = payload["need_at_equal_risk"]["bands"]
    shown = [(b["mean"], b["n"]) for b in bands if isinstance(b["mean"], float) and b["n"] not in ("*", 0)]
    assert len(shown) > 50
    for mean, n in shown:
        total = mean * n  # what a reader can work out: a multiple of 5, never the exact total
        assert abs(total - 5 * round(total / 5)) <= n * 0.0005 + 1e-9, (mean, n)


def test_oe_and_mean_risk_together_give_back_only_rounded_events(scenario_report):
    _, payload = scenario_report
    checked = 0
    for row in payload["performance"]:
        oe, risk = row["metrics"]["oe_ratio"]["value"], row["metrics"]["mean_risk"]["value"]
        if not (isinstance(oe, float) and isinstance(risk, float) and isinstance(row["events"], int)):
            continue
        # O/E x mean risk x people is the events: the rounded ones, never the exact ones.
        assert oe * risk * row["n"] == pytest.approx(row["events"], rel=2e-3, abs=0.05), row["label"]
        checked += 1
    assert checked > 10
    calibration = {f["group"]: f for f in payload["flags"] if f["kind"] == "calibration_oe"}
    shown = {(r["grouping"], r["group"]): r["metrics"]["oe_ratio"]["value"] for r in payload["performance"]}
    assert calibration
    for flag in calibration.values():
        assert flag["estimate"] == pytest.approx(shown[(flag["grouping"], flag["group"])], abs=1e-3)


def test_need_bands_do_not_show_everyone_elses_count(scenario_report):
    _, payload = scenario_report
    assert all("others_n" not in b for b in payload["need_at_equal_risk"]["bands"])


def test_a_calibration_curve_with_a_small_bin_is_withheld_whole(scenario_report):
    _, payload = scenario_report
    curves = payload["calibration_curves"]
    assert any(c["withheld"] for c in curves) and any(not c["withheld"] for c in curves)
    for curve in curves:
        events = [b["events"] for b in curve["bins"]]
        if curve["withheld"]:
            assert set(events) == {"*"} and {b["observed_rate"] for b in curve["bins"]} == {"*"}
        else:
            assert "*" not in events


def test_others_mean_is_suppressed_with_the_groups_count(scenario_report):
    _, payload = scenario_report
    bands = payload["need_at_equal_risk"]["bands"]
    small = [b for b in bands if b["n"] == "*"]
    assert small and all(b["others_mean"] == "*" and b["mean"] == "*" for b in small)
