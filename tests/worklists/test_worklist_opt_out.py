"""A type 1 opt-out is processed no further than being excluded (issue 16)."""

import dataclasses
import json
import shutil
from datetime import date, timedelta
from pathlib import Path
from types import SimpleNamespace

import openpyxl
import pandas as pd
import pytest
from worklist_fixtures import AS_OF, PRACTICES, contributions_for, on_engine, status_of

from riskstrat.frames import Column, FrameSchema, Kind
from riskstrat.pipelines.weekly import WeeklyInputs, run_worklists
from riskstrat.worklists.export import read_list_csv
from riskstrat.worklists.selection import (
    STATUS_COLUMNS,
    people_not_to_score,
    type1_opt_outs,
    without_people,
)
from riskstrat.worklists.settings import MdtSettings

WEEK = date(2026, 1, 5)
NORTH = "north-virtual-ward"


def north_top(scored, n):
    north = scored.loc[scored["practice_code"].isin(["P00001", "P00002"])]
    return north.nlargest(n, "p_emergency_admission")["person_id"].tolist()


def patients_of(scored, died=()):
    return pd.DataFrame(
        {
            "person_id": scored["person_id"],
            "practice_code": scored["practice_code"],
            "date_of_death": ["2025-12-20" if p in died else None for p in scored["person_id"]],
        }
    )


def unflagged(scored):
    """The scored population without status flags: the run attaches them from ``status``."""
    return scored.drop(columns=[*STATUS_COLUMNS, "caseload_team"])


def with_rules(settings: MdtSettings, type1_opt_out: str) -> MdtSettings:
    data = settings.model_dump()
    data["default_mdt"]["exclusions"]["type1_opt_out"] = type1_opt_out
    return MdtSettings.model_validate(data)


@pytest.fixture()
def inputs(tmp_path, features, scored, boosters, mdt_settings):
    return WeeklyInputs(
        week=WEEK,
        data_date=AS_OF,
        scored=unflagged(scored),
        features=features,
        contributions=contributions_for(boosters),
        settings=mdt_settings,
        output_dir=tmp_path / "outputs",
        status=status_of(patients_of(scored)),
    )


def every_text(folder: Path) -> str:
    """Every cell of every sheet of every workbook, every CSV and the manifest, as one text."""
    parts = []
    for path in sorted(folder.iterdir()):
        if path.suffix == ".xlsx":
            for sheet in openpyxl.load_workbook(path).worksheets:
                parts += [str(c.value) for row in sheet.iter_rows() for c in row if c.value is not None]
        elif path.suffix in (".csv", ".json"):
            parts.append(path.read_text(encoding="utf-8"))
    return "\n".join(parts)


def test_an_opt_out_listed_last_week_leaves_no_trace_this_week(inputs, scored):
    first = run_worklists(inputs)
    listed, died, vanished = north_top(scored, 3)  # all three on last week's North list
    assert {listed, died, vanished} <= set(read_list_csv(first / f"{NORTH}.csv", dtype=str)["Person ID"])
    dropped_risk = north_top(scored, 4)[3]  # a fourth leaves for an ordinary reason

    # This week: all three have a type 1 opt-out; one also died, one is gone from the extract.
    opt_outs = pd.DataFrame({"person_id": [listed, died, vanished], "type": ["type1"] * 3})
    now = scored.loc[scored["person_id"] != vanished].copy()
    now.loc[now["person_id"] == dropped_risk, "p_emergency_admission"] = 0.0001
    inputs.week = WEEK + timedelta(7)
    inputs.scored = unflagged(now)  # scored as if another MDT included opt-outs
    inputs.status = status_of(patients_of(now, died=[died]), None, opt_outs)
    folder = run_worklists(inputs)

    text = every_text(folder)
    for person in (listed, died, vanished):
        assert person not in text
    left = openpyxl.load_workbook(folder / f"{NORTH}.xlsx")["Left the list"]
    leavers = [left.cell(row=r, column=1).value for r in range(5, left.max_row + 1)]
    assert leavers == [dropped_risk]  # the others are shown as before
    assert "Type 1 opt-out recorded" not in text
    about = " ".join(
        str(c.value)
        for row in openpyxl.load_workbook(folder / f"{NORTH}.xlsx")["About this list"].iter_rows()
        for c in row
        if c.value
    )
    assert "removed before anything else, without a trace" in about
    assert "not shown on 'Left the list'" in about
    assert "Never shown here: a person who opts out is removed without a trace" in about
    north = json.loads((folder / "manifest.json").read_text())["mdts"]["North virtual ward"]
    assert "excluded_type1_opt_out" not in north  # no count of opt-outs, not even in the manifest
    # The history keeps last week's fact, and this week records no opt-out.
    history = pd.read_parquet(folder / "history.parquet") if (folder / "history.parquet").exists() else None
    if history is not None:
        assert not {listed, died, vanished} & set(history["person_id"])


def test_an_mdt_that_includes_opt_outs_lists_them_as_before(inputs, scored):
    inputs.settings = with_rules(inputs.settings, "include")
    person = north_top(scored, 1)[0]
    opt_outs = pd.DataFrame({"person_id": [person], "type": ["type1"]})
    inputs.status = status_of(patients_of(scored), None, opt_outs)
    folder = run_worklists(inputs)
    rows = read_list_csv(folder / f"{NORTH}.csv", dtype=str)
    assert rows["Person ID"].iloc[0] == person
    about = " ".join(
        str(c.value)
        for row in openpyxl.load_workbook(folder / f"{NORTH}.xlsx")["About this list"].iter_rows()
        for c in row
        if c.value
    )
    assert "Included: people with a type 1 opt-out are listed" in about
    assert "Never shown here" not in about


def test_opt_outs_are_not_scored_when_no_mdt_lists_them(mdt_settings):
    patients = pd.DataFrame({"person_id": ["A", "B", "C"], "practice_code": ["P1"] * 3})
    opt_outs = status_of(
        patients, None, pd.DataFrame({"person_id": ["A", "B", "C"], "type": ["type1", "ndo", "type1"]})
    )
    assert type1_opt_outs(opt_outs) == {"A", "C"}  # the National Data Opt-out is not a type 1
    assert people_not_to_score(mdt_settings, opt_outs) == {"A", "C"}
    assert people_not_to_score(mdt_settings, status_of(patients)) == frozenset()
    assert people_not_to_score(with_rules(mdt_settings, "include"), opt_outs) == frozenset()
    # One MDT that includes them is enough for everyone to be scored.
    data = mdt_settings.model_dump()
    data["mdts"][1]["exclusions"] = {"type1_opt_out": "include"}
    assert people_not_to_score(MdtSettings.model_validate(data), opt_outs) == frozenset()
    # With no MDT listed, every neighbourhood MDT takes the default.
    assert people_not_to_score(MdtSettings(), opt_outs) == {"A", "C"}
    frame = pd.DataFrame({"person_id": ["A", "B", "C", "D"], "x": [1, 2, 3, 4]})
    assert without_people(frame, {"A", "C"}).to_dict("list") == {"person_id": ["B", "D"], "x": [2, 4]}
    assert without_people(frame, frozenset()) is frame


def test_status_flags_an_opt_out_missing_from_patients():
    patients = pd.DataFrame({"person_id": ["A"], "practice_code": ["P1"]})
    opt_outs = pd.DataFrame({"person_id": ["A", "Z"], "type": ["type1", "type1"]})
    status = status_of(patients, None, opt_outs).set_index("person_id")
    assert status["type1_opt_out"].to_dict() == {"A": True, "Z": True}
    assert not status.loc["Z", ["deceased", "deregistered", "on_caseload"]].any()


@pytest.mark.parametrize("rule", ["exclude", "include"])
def test_weekly_flow_scores_opt_outs_only_when_an_mdt_lists_them(monkeypatch, tmp_path, features, rule):
    """The flow's wiring: the feature rows given to scoring lack type 1 opt-outs when every MDT excludes them."""
    from riskstrat.pipelines import weekly
    from riskstrat.pipelines.config import load_config

    shipped = Path(__file__).resolve().parents[2] / "configs"
    configs = tmp_path / "configs"
    shutil.copytree(shipped, configs)
    PRACTICES.to_csv(tmp_path / "practices.csv", index=False)
    mdts = (configs / "mdts.yaml").read_text()
    mdts = mdts.replace(
        "practices_file: outputs/reference/practices.csv", f"practices_file: {tmp_path}/practices.csv"
    )
    (configs / "mdts.yaml").write_text(mdts)
    config = load_config(configs)
    config = dataclasses.replace(
        config,
        data=config.data.model_copy(update={"output_dir": tmp_path / "outputs"}),
        mdts=with_rules(config.mdts, rule),
    )
    opted = features["person_id"].iloc[:5].tolist()
    tables = {
        "patients": features[["person_id", "practice_code"]],
        "opt_outs": pd.DataFrame({"person_id": opted, "type": "type1"}),
    }
    seen = {}

    def score_population(frame, mlflow, uri, required):
        seen["scored_ids"] = set(frame["person_id"])
        return frame[["person_id", "practice_code", "age"]].assign(p_emergency_admission=0.1), {}, {}

    def capture(inputs, as_tasks=False):
        seen["inputs"] = inputs
        return tmp_path

    monkeypatch.setattr(weekly, "load_run_config", lambda config_dir=None: config)
    present = {name: len(frame) for name, frame in tables.items()}
    monkeypatch.setattr(
        weekly, "run_gate", lambda *a, **k: SimpleNamespace(row_counts=present, snapshot_hash="h")
    )
    monkeypatch.setattr(weekly, "point_in_time_tables", lambda con, extract, names: on_engine(tables))
    monkeypatch.setattr(weekly, "features_at", lambda *a, **k: tmp_path / "features.parquet")
    monkeypatch.setattr(weekly, "read_feature_matrix", lambda path: features)
    # The fixture is a slim matrix (a few features, no audit columns): check it as such.
    monkeypatch.setattr(
        weekly,
        "feature_matrix_schema",
        lambda names: FrameSchema("feature matrix", (Column("person_id", Kind.TEXT),)),
    )
    monkeypatch.setattr(weekly, "score_population_task", score_population)
    monkeypatch.setattr(weekly, "run_worklists", capture)
    weekly.weekly_worklists_flow.fn(week=WEEK, as_of=AS_OF)

    inputs = seen["inputs"]
    if rule == "exclude":
        assert not set(opted) & seen["scored_ids"]
        assert not set(opted) & set(inputs.scored["person_id"]) and not set(opted) & set(
            inputs.features["person_id"]
        )
    else:
        assert set(opted) <= seen["scored_ids"]
    assert inputs.status.set_index("person_id").loc[opted, "type1_opt_out"].all()
