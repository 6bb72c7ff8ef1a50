"""`riskstrat evaluate-impact`: reads the cut-off records, writes impact/impact_<outcome>.json, says what it found."""

from __future__ import annotations

import json
import sys
from datetime import date
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from riskstrat.catalog import output_catalog
from riskstrat.evaluation.disclosure import check_disclosed
from riskstrat.pipelines.cli import app
from riskstrat.pipelines.config import load_config, write_relocated_config
from riskstrat.pipelines.impact import evaluate_impact, simulated_week_count, summary_lines
from riskstrat.worklists.assignment import ASSIGNMENT_COLUMNS, ASSIGNMENT_SCHEMA, WEEK_ASSIGNMENT

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "evaluation"))
from impact_data import simulate

runner = CliRunner()


def _config(tmp_path: Path, changes: dict | None = None) -> Path:
    return write_relocated_config(tmp_path / "configs", tmp_path / "outputs", changes)


def _record(out: Path, assignments: pd.DataFrame) -> None:
    """Write each week's cut-off record where the weekly run publishes it."""
    for week, rows in assignments.groupby("week"):
        folder = output_catalog(out).week(week)
        folder.mkdir(parents=True, exist_ok=True)
        table = pa.Table.from_pandas(
            rows[list(ASSIGNMENT_COLUMNS)], schema=ASSIGNMENT_SCHEMA, preserve_index=False
        )
        pq.write_table(table, folder / WEEK_ASSIGNMENT)


def test_with_no_recorded_cutoff_it_says_so_and_writes_the_short_payload(tmp_path, prefect_harness):
    configs = _config(tmp_path)
    result = runner.invoke(app, ["--config-dir", str(configs), "evaluate-impact"])
    assert result.exit_code == 0, result.output
    assert "No list history with a recorded cut-off yet" in result.output
    written = json.loads(output_catalog(tmp_path / "outputs").impact_file("emergency_admission").read_text())
    assert written["status"] == "no_history"


def test_too_short_a_history_says_how_many_weeks_exist_and_are_needed(tmp_path):
    configs = _config(tmp_path, {"data.yaml": {"extract_date": "2025-03-01"}})
    assignments, _, _ = simulate(0.0, weeks=3, mdts=1)
    _record(tmp_path / "outputs", assignments)
    payload = evaluate_impact(load_config(configs), tmp_path / "outputs" / "extract")
    assert payload["status"] == "too_short" and payload["weeks_recorded"] == 3
    assert payload["weeks_matured"] == 0 and payload["weeks_needed"] == 8
    assert (
        "3 weeks of lists recorded, 0 with their 90-day follow-up ended; 8 are needed" in payload["summary"]
    )


def test_an_unknown_outcome_is_one_line_with_a_hint(tmp_path, prefect_harness):
    configs = _config(tmp_path)
    result = runner.invoke(
        app, ["--config-dir", str(configs), "evaluate-impact", "--outcome", "hip_fracture"]
    )
    assert result.exit_code == 1 and "unknown outcome 'hip_fracture'" in result.output
    assert "emergency_admission" in result.output


@pytest.mark.slow
def test_on_a_simulated_deployment_it_estimates_and_writes_only_disclosed_figures(tmp_path, prefect_harness):
    from riskstrat.pipelines.generate import write_synthetic

    # The bandwidth is capped at the shallowest list's record depth: at 20,000 people about 150 people
    # are within it (too few events to show); 40,000 people give enough, at a lower threshold than the
    # 200 the report needs by default.
    configs = _config(tmp_path, {"impact.yaml": {"min_people_near_cutoff": 100}})
    config = load_config(configs)
    write_synthetic(config.data.output_dir, 40_000, 7, config.synthetic)
    result = runner.invoke(app, ["--config-dir", str(configs), "evaluate-impact"])
    assert result.exit_code == 0, result.output
    assert "being listed changed the chance of an emergency hospital admission" in result.output
    assert "of these weeks are a simulated past deployment on synthetic data" in result.output
    assert "could detect a reduction of" in result.output
    path = output_catalog(config.data.output_dir).impact_file("emergency_admission")
    payload = json.loads(path.read_text())
    check_disclosed(payload)
    assert payload["status"] == "estimated" and payload["weeks_matured"] >= 8
    # Every week is the generator's simulated deployment, and the summary says so.
    assert payload["simulated_weeks"] == payload["weeks_matured"]
    # The bandwidth never runs past the people the record keeps below the cut-off.
    assert payload["rd"]["bandwidth"] <= payload["rd"]["bandwidth_cap"] + 1e-9
    assert payload["rd"]["lower"] < payload["rd"]["estimate"] < payload["rd"]["upper"]
    # With decisions simulated (a quarter of listed people enrolled), the first stage is found.
    assert 0 < payload["fuzzy"]["first_stage"] < 1
    # No person-level row leaves the evaluation: no pseudonymised ID is in the file.
    truth = pd.read_parquet(Path(config.data.output_dir) / "truth" / "deployment.parquet")
    text = path.read_text()
    assert not any(pid in text for pid in truth["person_id"].astype(str).unique()[:500])
    assert date.fromisoformat(payload["data_date"])


def test_the_flow_holds_the_output_lock():
    from riskstrat.pipelines.impact import impact_flow

    assert getattr(impact_flow.fn, "output_lock_command", None) == "evaluate-impact"


def test_an_outcome_no_mdt_ranks_by_says_there_is_no_cutoff_to_evaluate(tmp_path, prefect_harness):
    configs = _config(tmp_path)
    assignments, _, _ = simulate(0.0, weeks=3, mdts=1)  # lists ranked by emergency_admission only
    _record(tmp_path / "outputs", assignments)
    result = runner.invoke(
        app, ["--config-dir", str(configs), "evaluate-impact", "--outcome", "frequent_attendance"]
    )
    assert result.exit_code == 0, result.output
    said = " ".join(result.output.split())
    assert "No MDT ranks its list by frequent_attendance (configs/mdts.yaml outcome)" in said
    assert "so there is no cut-off to evaluate" in said and "No list history" not in said


def test_simulated_weeks_are_counted_from_each_weeks_manifest(tmp_path):
    assignments, _, _ = simulate(0.0, weeks=3, mdts=1)
    out = tmp_path / "outputs"
    _record(out, assignments)
    weeks = sorted(assignments["week"].unique())
    (output_catalog(out).week(weeks[0]) / "manifest.json").write_text(json.dumps({"simulated": True}))
    (output_catalog(out).week(weeks[1]) / "manifest.json").write_text(json.dumps({"simulated": False}))
    assert simulated_week_count(output_catalog(out).worklists, weeks) == 1


def test_the_share_taken_on_prints_as_a_percentage():
    payload = {
        "summary": "No clear effect: ...",
        "fuzzy": {"sentence": "Being taken onto a caseload changed ...", "first_stage": 0.3188},
    }
    assert any(line.endswith("listed near the cut-off: 31.9%.") for line in summary_lines(payload))
