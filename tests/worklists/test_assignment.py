"""The cut-off record of each published week (worklists/<week>/assignment.parquet, issue 22)."""

import json
import shutil
from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest
from worklist_fixtures import AS_OF, PRACTICES, contributions_for

from riskstrat.errors import RiskstratError
from riskstrat.io import file_sha256
from riskstrat.pipelines.weekly import WeeklyInputs, run_worklists
from riskstrat.worklists.assignment import (
    ASSIGNMENT,
    ASSIGNMENT_COLUMNS,
    WEEK_ASSIGNMENT,
    assignment_records,
    read_assignments,
    record_assignment,
)
from riskstrat.worklists.selection import select_worklists
from riskstrat.worklists.settings import CutoffRecordSettings, resolve_mdts

WEEK = date(2026, 1, 5)
NORTH, SOUTH = "North virtual ward", "South HIU service"


def selections(scored, settings, **kwargs):
    return select_worklists(
        scored, resolve_mdts(settings, PRACTICES), settings.risk_bands, week=WEEK, **kwargs
    )


def test_the_record_holds_the_listed_and_the_next_people_below_in_eligible_rank_order(scored, mdt_settings):
    chosen = selections(scored, mdt_settings)
    record = assignment_records(WEEK, AS_OF, chosen)
    ASSIGNMENT.check(record)
    assert list(record.columns) == list(ASSIGNMENT_COLUMNS)
    for name, selection in chosen.items():
        own = record.loc[record["mdt"] == name]
        assert len(own) == selection.capacity + 50  # listed + people_below (plenty eligible)
        assert own["eligible_rank"].tolist() == list(range(1, len(own) + 1))
        assert own["probability"].is_monotonic_decreasing
        assert own["listed"].tolist() == (own["eligible_rank"] <= selection.capacity).tolist()
        assert set(own.loc[own["listed"], "person_id"]) == set(selection.listed["person_id"].astype(str))
        at_cutoff = own.loc[own["eligible_rank"] == selection.capacity, "probability"].item()
        assert (own["cutoff_probability"] == at_cutoff).all()
        assert (own["capacity"] == selection.capacity).all()
        assert (own["outcome"] == selection.mdt.outcome).all()
        assert not own["lottery_pool"].any() and not own["lottery_won"].any()
        assert (own["lottery_seed"] == "").all()
        assert (own["week"] == WEEK).all() and (own["data_date"] == AS_OF).all()
    # Each MDT's record ranks its own eligible people by its own outcome.
    south = record.loc[record["mdt"] == SOUTH]
    p = scored.set_index("person_id").loc[south["person_id"], "p_frequent_attendance"].to_numpy()
    np.testing.assert_allclose(south["probability"].to_numpy(), p)


def test_people_below_is_a_setting_and_fewer_eligible_leave_the_cutoff_empty(scored, mdt_settings):
    none_below = assignment_records(
        WEEK, AS_OF, selections(scored, mdt_settings, cutoff_record=CutoffRecordSettings(people_below=0))
    )
    assert none_below["listed"].all()
    assert none_below.groupby("mdt").size().to_dict() == {NORTH: 20, SOUTH: 15}
    few = scored.loc[scored["practice_code"] == "P00003"].head(10)  # South: 10 eligible, capacity 15
    record = assignment_records(WEEK, AS_OF, selections(few, mdt_settings))
    south = record.loc[record["mdt"] == SOUTH]
    assert len(south) == 10 and south["listed"].all()
    assert south["cutoff_probability"].isna().all()


@pytest.fixture()
def week_inputs(tmp_path, features, scored, boosters, mdt_settings):
    return WeeklyInputs(
        week=WEEK,
        data_date=AS_OF,
        scored=scored,
        features=features,
        contributions=contributions_for(boosters),
        settings=mdt_settings,
        output_dir=tmp_path / "outputs",
    )


def test_every_published_week_records_its_cutoff_in_the_manifest(week_inputs):
    folder = run_worklists(week_inputs)
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["files"][WEEK_ASSIGNMENT] == file_sha256(folder / WEEK_ASSIGNMENT)
    week_inputs.week = WEEK + timedelta(7)
    run_worklists(week_inputs)
    record = read_assignments(folder.parent)
    assert sorted(set(record["week"])) == [WEEK, WEEK + timedelta(7)]
    assert len(record) == 2 * (20 + 50 + 15 + 50)
    history = pd.read_parquet(folder / "history.parquet")
    listed = record.loc[record["listed"] & (record["week"] == WEEK)]
    assert set(zip(listed["mdt"], listed["person_id"], strict=True)) == set(
        zip(history["mdt"], history["person_id"], strict=True)
    )
    # The types the impact evaluation reads.
    assert isinstance(record["week"].iloc[0], date) and record["eligible_rank"].dtype == "int64"
    assert record["listed"].dtype == bool and record["probability"].dtype == "float64"


def test_weeks_published_before_the_record_existed_are_skipped(week_inputs):
    folder = run_worklists(week_inputs)
    old = folder.parent / (WEEK - timedelta(7)).isoformat()
    shutil.copytree(folder, old)
    (old / WEEK_ASSIGNMENT).unlink()
    assert set(read_assignments(folder.parent)["week"]) == {WEEK}
    assert read_assignments(folder.parent / "nowhere").empty
    assert list(read_assignments(folder.parent / "nowhere").columns) == list(ASSIGNMENT_COLUMNS)


def test_a_damaged_record_is_a_clear_error_naming_the_week(week_inputs):
    folder = run_worklists(week_inputs)
    path = folder / WEEK_ASSIGNMENT
    good = pd.read_parquet(path)
    path.write_bytes(b"not parquet")
    with pytest.raises(RiskstratError, match=f"cut-off record of week {WEEK} cannot be read") as error:
        read_assignments(folder.parent)
    assert "Restore the folder 2026-01-05" in error.value.hint
    good.drop(columns="eligible_rank").to_parquet(path)
    with pytest.raises(RiskstratError, match="lacks column\\(s\\) eligible_rank"):
        read_assignments(folder.parent)
    good.assign(probability=1.5).to_parquet(path)
    with pytest.raises(RiskstratError, match=f"week {WEEK} is damaged: .*probability") as error:
        read_assignments(folder.parent)
    assert "person_id" in error.value.details  # one pseudonymised ID as example, in the details only
    good.assign(week=WEEK - timedelta(7)).to_parquet(path)
    with pytest.raises(RiskstratError, match="row\\(s\\) of another week"):
        read_assignments(folder.parent)


def test_record_assignment_refuses_a_frame_that_breaks_the_schema(tmp_path, scored, mdt_settings):
    record = assignment_records(WEEK, AS_OF, selections(scored, mdt_settings))
    written = record_assignment(tmp_path, record)
    assert written.name == WEEK_ASSIGNMENT
    with pytest.raises(RiskstratError, match="repeat the key"):
        record_assignment(tmp_path, pd.concat([record, record.head(1)]))
