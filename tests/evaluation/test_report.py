import json
import re

import pytest

from riskstrat.evaluation.disclosure import is_disclosed_count, undisclosed_counts
from riskstrat.evaluation.report import payload_json

SECTIONS = (
    "summary",
    "performance",
    "by-group",
    "calibration",
    "lists",
    "need",
    "flags",
    "model-card",
    "methods",
)


def test_html_opens_offline(scenario_report):
    html, _ = scenario_report
    assert "http://" not in html and "https://" not in html
    assert "<script" not in html and "<link" not in html
    # Every src is an inline image, never a file.
    sources = re.findall(r'src="([^"]*)"', html)
    assert sources and all(s.startswith("data:image/png;base64,") for s in sources)


def test_html_holds_the_summary_every_section_and_every_plot(scenario_report):
    html, payload = scenario_report
    for section in SECTIONS:
        assert f'id="{section}"' in html
    for heading in (
        "What the model is for",
        "How well it works",
        "Who it may fail",
        "What the flags mean",
        "Decisions asked of the board",
        "Intended use",
        "Out-of-scope uses",
        "Caution on retraining",
        "DCB0160",
        "TRIPOD+AI",
        "Limitations",
        "Data and its representativeness",
    ):
        assert heading in html
    groupings = [g["name"] for g in payload["groupings"]]
    images = re.findall(r'<img alt="([^"]+)"', html)
    assert len([a for a in images if a.startswith("Calibration curves")]) == len(groupings)
    assert any(a.startswith("Observed over expected") for a in images)
    assert any(a.startswith("Need at equal risk") for a in images)
    assert any(a.startswith("List shares") for a in images)
    assert "Liley" in html and "Obermeyer" in html
    assert "For the board" in html


def test_summary_names_the_flagged_group(scenario_report):
    html, payload = scenario_report
    summary = html.split('id="summary"')[1].split("</section>")[0]
    assert "Black" in summary and "a real gap, not noise" in summary
    assert payload["promotion_gate"]["passes"] is False
    assert "calibration_oe:ethnic_group:Black" in payload["promotion_gate"]["open_flags"]


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
    flags = [f for f in payload["flags"] if f["kind"] == "sensitivity_ratio"]
    assert flags
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


def test_a_sensitivity_flag_on_a_handful_found_hides_its_figures():
    import pandas as pd
    from fairness_data import fast_settings

    from riskstrat.evaluation.fairness import _sensitivity_flags
    from riskstrat.evaluation.report import _flag_figures

    lists = pd.DataFrame(
        {
            "mdt": "All MDTs",
            "grouping": "imd_quintile",
            "group": ["1", "5"],
            "label": ["IMD 1", "IMD 5"],
            "status": "ok",
            "true_positives": [3.0, 60.0],
            "events": [85.0, 190.0],
            "sensitivity": [3 / 85, 60 / 190],
        }
    )
    (flag,) = _sensitivity_flags(lists, {"imd_quintile": "5"}, fast_settings())
    assert flag.status == "raised"  # decided on the exact figures
    assert "3.5%" not in flag.sentence and "figures not shown" in flag.sentence
    assert _flag_figures(flag) == ("*", "*", "*")


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
    assert "cannot go live whatever is decided about the flags" in decisions
    assert "observed/expected ratio 1.124 is above the allowed range [0.9, 1.1]" in decisions
    assert "Calibration gate:" in html_page


def test_a_small_mdt_list_is_not_broken_down_by_group(scenario_audit, model_info):
    from dataclasses import replace

    from riskstrat.evaluation.report import report_payload

    # Each MDT lists about 200 people in the fixture: below min_cell_n 10,000, every MDT's list is small.
    audit = replace(
        scenario_audit, settings=scenario_audit.settings.model_copy(update={"min_cell_n": 10_000})
    )
    payload = report_payload(audit, model_info)
    per_mdt = [r for r in payload["lists"] if r["mdt"] != "All MDTs"]
    assert per_mdt and all(r["selected"] == "*" and r["share_of_list"] == "*" for r in per_mdt)
    assert all(r["ppv"]["value"] == "*" and r["ppv"]["n"] == "*" for r in per_mdt)
    assert all(r["status"] == "insufficient data" for r in per_mdt)
    # The lists taken together are still broken down.
    overall = [r for r in payload["lists"] if r["mdt"] == "All MDTs"]
    assert any(isinstance(r["selected"], int) and r["selected"] > 0 for r in overall)


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
