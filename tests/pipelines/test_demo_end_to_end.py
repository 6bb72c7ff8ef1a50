"""End to end: the demo flow through Prefect on a small synthetic population.

One run (module fixture) generates about 5,000 people as raw national files,
reads them through the source adapters, validates, retrains, audits, promotes
and publishes two weeks of worklists; the tests then check that the outputs
exist and agree with each other.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from riskstrat.ingest.synthetic.deployment import DECISION_SOURCE as DEPLOYMENT_DECISIONS
from riskstrat.pipelines.config import write_relocated_config
from riskstrat.worklists.export import read_list_csv

pytestmark = pytest.mark.slow

PEOPLE = 5_000


def _write_config(folder: Path, out: Path) -> Path:
    """The shipped settings, with outputs in a temporary folder and gates loosened for a tiny population.

    With ~600 test rows per outcome the calibration and fairness estimates are
    too noisy for the production tolerances; this test checks the wiring, and
    the gates themselves are tested in tests/models and tests/evaluation.
    """
    return write_relocated_config(
        folder,
        out,
        {
            "model.yaml": {
                "promotion": {"calibration_slope_bounds": [0.01, 100.0], "oe_bounds": [0.01, 100.0]},
                "evaluation": {"n_boot": 20},
            },
            "fairness.yaml": {"bootstrap_n": 20, "gating_groupings": []},
        },
    )


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory, prefect_harness):
    from riskstrat.pipelines.demo import demo_flow

    root = tmp_path_factory.mktemp("demo")
    out = root / "outputs"
    config_dir = _write_config(root / "configs", out)
    result = demo_flow(config_dir=str(config_dir), people=PEOPLE, seed=3)
    return result, out, config_dir


def test_every_output_exists(demo_run):
    result, out, _ = demo_run
    assert (out / "extract" / "patients.parquet").is_file()
    assert Path(result.data_docs).is_file() and Path(result.data_docs).name == "index.html"
    assert (out / "mlflow.db").is_file()
    for report in result.retrain.reports.values():
        assert Path(report).is_file() and Path(report).suffix == ".html"
        assert Path(report).with_suffix(".json").is_file()
    assert len(result.worklists) == 2
    for folder in result.worklists:
        assert (Path(folder) / "manifest.json").is_file()


def test_models_are_registered_with_champion_and_challenger(demo_run):
    from mlflow.tracking import MlflowClient

    _, out, _ = demo_run
    client = MlflowClient(tracking_uri=f"sqlite:///{(out / 'mlflow.db').resolve()}")
    version = client.get_model_version_by_alias("emergency_admission", "challenger")
    champion = client.get_model_version_by_alias("emergency_admission", "champion")
    assert champion.version == version.version
    run = client.get_run(version.run_id)
    assert "test_auroc" in run.data.metrics and "test_auroc_ci_low" in run.data.metrics
    assert run.data.tags["extract_snapshot_hash"]


def test_manifest_counts_match_the_files(demo_run):
    result, _, _ = demo_run
    folder = Path(result.worklists[-1])
    manifest = json.loads((folder / "manifest.json").read_text())
    csvs = sorted(folder.glob("*.csv"))
    assert csvs, "no worklist CSV written"
    listed = {path.stem: len(read_list_csv(path)) for path in csvs}
    counted = {entry["slug"]: entry["listed"] for entry in manifest["mdts"].values()}
    assert listed == counted
    for name, digest in manifest["files"].items():
        from riskstrat.io import file_sha256

        assert file_sha256(folder / name) == digest


def test_listed_people_are_scored_by_the_champion(demo_run):
    from riskstrat.models.scoring import load_champion, score
    from riskstrat.pipelines.config import load_config

    result, out, config_dir = demo_run
    config = load_config(config_dir)
    folder = Path(result.worklists[-1])
    listed = pd.concat([read_list_csv(path, dtype={"Person ID": str}) for path in folder.glob("*.csv")])
    features_files = sorted((out / "features").rglob("features_2025-12-31_*.parquet"))
    features = pd.read_parquet(features_files[0]).set_index("person_id").loc[listed["Person ID"]]
    model = load_champion("emergency_admission", config.model.mlflow.resolved_tracking_uri(out))
    expected = (100 * score(model, features.reset_index())).round(1)
    assert listed["Risk (%)"].to_numpy() == pytest.approx(expected, abs=0.051)


def test_weekly_change_is_tracked(demo_run):
    result, _, _ = demo_run
    second = pd.concat(read_list_csv(p) for p in Path(result.worklists[-1]).glob("*.csv"))
    change = second["Change since last week"]
    assert set(change) <= {"new", "up", "down", "same"}
    assert (change != "new").any(), "nobody stayed on the list from one week to the next"
    # The demo's weeks follow a year of simulated lists (synthetic.deployment), so a person may have been
    # on the list for longer than the demo's two weeks.
    assert (second.loc[change != "new", "Weeks on list"] >= 2).all()


def test_community_services_include_virtual_ward_and_therapy_from_the_extract(demo_run):
    from riskstrat.pipelines.config import load_config

    result, out, config_dir = demo_run
    as_of = pd.Timestamp(load_config(config_dir).synthetic.extract_date)  # the second week's data date
    contacts = pd.read_parquet(out / "extract" / "community_contacts.parquet")
    day = pd.to_datetime(contacts["contact_date"])
    recent = contacts.loc[(day > as_of - pd.Timedelta(days=90)) & (day <= as_of)]
    # The feature matrix has no virtual-ward or therapy counts: only the extract can show them.
    seen = recent.loc[recent["service"].isin(["virtual_ward", "therapy"]), "person_id"].astype(str)
    listed = pd.concat(
        read_list_csv(path, dtype=str, keep_default_na=False)
        for path in Path(result.worklists[-1]).glob("*.csv")
    )
    shown = dict(zip(listed["Person ID"], listed["Community services (90 days)"], strict=True))
    with_them = sorted(set(seen) & set(shown))
    assert with_them, "no listed person saw a virtual ward or therapy in the 90 days"
    assert all("Virtual ward" in shown[p] or "Therapy" in shown[p] for p in with_them)


def test_the_demo_runs_from_raw_national_files_through_the_adapters(demo_run):
    from riskstrat.ingest.sources import SOURCES
    from riskstrat.pipelines.config import load_config
    from riskstrat.pipelines.demo import demo_summary

    result, out, config_dir = demo_run
    assert result.adapted is not None and result.adapted.raw_dir == out / "raw"
    for source in SOURCES.values():
        assert (out / "raw" / f"{source.file}.parquet").is_file(), source.name
    assert (out / "truth" / "contract" / "patients.parquet").is_file()
    coverage = json.loads((out / "extract" / "mapping_coverage.json").read_text(encoding="utf-8"))
    assert {f["source"] for f in coverage["fields"]} == {
        n for n, s in SOURCES.items() if any(f.coded for f in s.fields)
    }
    report = json.loads((out / "validation" / "latest.json").read_text(encoding="utf-8"))
    assert len(report["mapping_coverage"]) == len(coverage["fields"])
    assert all(c["status"] != "critical" for c in report["mapping_coverage"])
    assert any(r["kind"] == "mapping_coverage" for r in report["results"])
    assert (Path(result.data_docs).parent / "mapping_coverage.html").is_file()
    summary = demo_summary(load_config(config_dir), result)
    assert f"Raw national files:       {out / 'raw'}" in summary
    assert "lowest mapping coverage: " in summary


def test_the_second_week_shows_the_decisions_loop(demo_run):
    """Week 1's lists come back with decisions; week 2 rests people, fills their places and shows the last decision."""
    from riskstrat.catalog import output_catalog
    from riskstrat.pipelines.decisions import read_decision_history

    result, out, _ = demo_run
    assert sum(result.decisions.values()) > 0
    everything = read_decision_history(out)
    # The simulated deployment's decisions (synthetic.deployment) come first; the demo's are the returned lists.
    history = everything.loc[everything["source_digest"] != DEPLOYMENT_DECISIONS]
    assert len(history) == sum(result.decisions.values())
    returns = output_catalog(out).decision_returns
    assert not list(returns.glob("*.xlsx")) and len(list((returns / "imported").glob("*.xlsx"))) == len(
        list(Path(result.worklists[0]).glob("*.xlsx"))
    )
    second = json.loads((Path(result.worklists[1]) / "manifest.json").read_text())["mdts"]
    assert sum(m["excluded_rested"] for m in second.values()) > 0
    for counts in second.values():
        assert counts["listed"] == min(counts["capacity"], counts["eligible"])  # freed places are filled
    week2 = pd.read_parquet(Path(result.worklists[1]) / "history.parquet")
    rested = history.loc[history["decision"].isin(["not_appropriate", "declined", "already_known"])]
    back = week2.merge(rested, on=["mdt", "person_id"], suffixes=("", "_decided"))
    # Only people whose risk rose by the set amount are back.
    assert (back["probability"] >= back["issued_probability"] + 0.1 - 1e-9).all()
    # People added to a caseload leave the list whatever active_caseload says; their places are filled.
    added = history.loc[history["decision"] == "added_to_caseload"]
    # (at least the demo's: simulated caseload decisions of the last weeks keep people off too)
    assert len(added) and sum(m["excluded_added_to_caseload"] for m in second.values()) >= len(added)
    assert week2.merge(added, on=["mdt", "person_id"]).empty
    # The board sees what the MDTs did: the champion's report is written again after week 2.
    assert list(result.board_reports) == ["emergency_admission"]
    report = Path(result.board_reports["emergency_admission"])
    payload = json.loads(report.with_suffix(".json").read_text())
    assert history["week"].iloc[0] in payload["decisions"]["weeks"]
    assert 'id="decisions"' in report.read_text() and "What the MDTs did with the lists" in report.read_text()
