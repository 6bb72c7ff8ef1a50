from datetime import date, timedelta

import pandas as pd

from riskstrat.worklists.history import (
    LEFT_BELOW_CAPACITY,
    LEFT_CASELOAD,
    LEFT_DEREGISTERED,
    LEFT_DIED,
    LEFT_MOVED_PRACTICE,
    LEFT_RISK_FELL,
    change_since_last_week,
    history_by_mdt,
    history_records,
    leavers,
    load_history,
    person_lookup,
    previous_week,
    record_week,
)
from riskstrat.worklists.selection import MdtSelection
from riskstrat.worklists.settings import ExclusionSettings, Mdt

MDT = Mdt(
    name="North",
    practices=("P1", "P2"),
    outcome="emergency_admission",
    min_age=18,
    capacity_people=3,
    capacity_share=None,
    exclusions=ExclusionSettings(active_caseload="exclude"),
)
WEEK1 = date(2025, 12, 1)


def listed(people: dict[str, float]) -> pd.DataFrame:
    frame = pd.DataFrame({"person_id": list(people), "probability": list(people.values())})
    frame.insert(0, "rank", range(1, len(frame) + 1))
    frame["practice_code"] = "P1"
    frame["risk_band"] = "High"
    return frame


def publish(folder, week, people):
    frame = listed(people)
    record_week(
        folder / week.isoformat(), history_records(week, {"North": MdtSelection(MDT, frame, 0, 0, 3)})
    )
    return frame


def scored_with(people: dict[str, float], **flags) -> pd.DataFrame:
    frame = pd.DataFrame({"person_id": list(people), "p_emergency_admission": list(people.values())})
    frame["practice_code"] = "P1"
    frame["age"] = 80
    for column in ("deceased", "deregistered", "on_caseload", "type1_opt_out"):
        frame[column] = frame["person_id"].isin(flags.get(column, []))
    return frame


def test_change_and_weeks_on_list_over_three_weeks(tmp_path):
    week2, week3 = WEEK1 + timedelta(7), WEEK1 + timedelta(14)
    first = publish(tmp_path, WEEK1, {"A": 0.30, "B": 0.20, "C": 0.10})
    change1 = change_since_last_week(first, "North", load_history(tmp_path, WEEK1))
    assert change1["change"].tolist() == ["new"] * 3
    assert change1["weeks_on_list"].tolist() == [1, 1, 1]

    second = publish(tmp_path, week2, {"A": 0.35, "B": 0.2001, "D": 0.15})
    change2 = change_since_last_week(second, "North", load_history(tmp_path, week2))
    assert change2["change"].to_dict() == {"A": "up", "B": "same", "D": "new"}  # 20.0% as shown both weeks
    assert change2["weeks_on_list"].to_dict() == {"A": 2, "B": 2, "D": 1}
    assert change2.at["A", "previous_rank"] == 1

    third = listed({"A": 0.25, "D": 0.15, "C": 0.12})
    change3 = change_since_last_week(third, "North", load_history(tmp_path, week3))
    assert change3["change"].to_dict() == {"A": "down", "D": "same", "C": "new"}
    # C was on the list two weeks ago but not last week: a new run of weeks
    assert change3["weeks_on_list"].to_dict() == {"A": 3, "D": 2, "C": 1}

    # Re-running week 2 after week 3 exists compares only with earlier weeks: same answer.
    again = change_since_last_week(second, "North", load_history(tmp_path, week2))
    pd.testing.assert_frame_equal(again, change2)


def test_leavers_with_the_reason(tmp_path):
    publish(tmp_path, WEEK1, {"A": 0.3, "B": 0.25, "C": 0.2, "D": 0.18, "E": 0.15, "F": 0.12})
    week2 = WEEK1 + timedelta(7)
    history = load_history(tmp_path, week2)
    now = listed({"G": 0.5, "H": 0.4, "I": 0.35})
    scored = scored_with(
        {"C": 0.3, "D": 0.10, "E": 0.15, "F": 0.2, "G": 0.5, "H": 0.4, "I": 0.35}, on_caseload=["C"]
    )
    scored.loc[scored["person_id"] == "F", "practice_code"] = "P9"
    status = scored_with({"A": 0, "B": 0, "C": 0, "D": 0, "E": 0, "F": 0}, deceased=["A"], deregistered=["B"])
    status.loc[status["person_id"] == "F", "practice_code"] = "P9"
    status["on_caseload"] = status["person_id"].eq("C")
    people = person_lookup(scored, status)
    left = leavers(MDT, history, now, people).set_index("person_id")["reason"].to_dict()
    assert left == {
        "A": LEFT_DIED,
        "B": LEFT_DEREGISTERED,
        "C": LEFT_CASELOAD,
        "D": LEFT_RISK_FELL,
        "E": LEFT_BELOW_CAPACITY,
        "F": LEFT_MOVED_PRACTICE,
    }
    assert list(leavers(MDT, history, now, people)["person_id"]) == list("ABCDEF")


def test_leavers_show_this_weeks_practice_and_risk(tmp_path):
    publish(tmp_path, WEEK1, {"A": 0.3, "D": 0.18, "F": 0.12})
    week2 = WEEK1 + timedelta(7)
    history = load_history(tmp_path, week2)
    scored = scored_with({"D": 0.10, "F": 0.2, "G": 0.5})
    scored.loc[scored["person_id"] == "F", "practice_code"] = "P9"
    status = scored_with({"A": 0, "D": 0, "F": 0}, deceased=["A"])
    status.loc[status["person_id"] == "F", "practice_code"] = "P9"
    left = leavers(MDT, history, listed({"G": 0.5}), person_lookup(scored, status)).set_index("person_id")
    assert left["practice_code"].to_dict() == {"A": "P1", "D": "P1", "F": "P9"}
    assert left.at["D", "probability"] == 0.10 and left.at["F", "probability"] == 0.2
    assert pd.isna(left.at["A", "probability"])  # died: not scored this week
    assert left["previous_probability"].to_dict() == {"A": 0.3, "D": 0.18, "F": 0.12}


def test_previous_week_is_the_mdts_last_published_list(tmp_path):
    assert previous_week(load_history(tmp_path, WEEK1), "North") is None
    publish(tmp_path, WEEK1, {"A": 0.3})
    publish(tmp_path, WEEK1 + timedelta(7), {"A": 0.3})
    history = load_history(tmp_path, WEEK1 + timedelta(14))
    assert previous_week(history, "North") == WEEK1 + timedelta(7)
    assert previous_week(history, "South") is None


def test_history_never_holds_more_than_pseudonymised_columns(tmp_path):
    publish(tmp_path, WEEK1, {"A": 0.3})
    stored = pd.read_parquet(tmp_path / WEEK1.isoformat() / "history.parquet")
    assert list(stored.columns) == [
        "week",
        "mdt",
        "person_id",
        "practice_code",
        "rank",
        "probability",
        "risk_band",
    ]


def test_each_mdts_own_history_gives_the_same_change_and_leavers(tmp_path):
    south = Mdt("South", ("P3",), "emergency_admission", 18, 3, None, ExclusionSettings())
    publish(tmp_path, WEEK1, {"A": 0.3, "B": 0.25, "C": 0.2})
    other = listed({"X": 0.4, "A": 0.1})
    record_week(
        tmp_path / (WEEK1 - timedelta(7)).isoformat(),
        history_records(WEEK1 - timedelta(7), {"South": MdtSelection(south, other, 0, 0, 3)}),
    )
    history = load_history(tmp_path, WEEK1 + timedelta(7))
    now = listed({"A": 0.35, "D": 0.3, "B": 0.1})
    people = person_lookup(scored_with({"A": 0.35, "B": 0.1, "C": 0.05, "D": 0.3}))
    own = history_by_mdt(history)
    assert set(own) == {"North", "South"}
    pd.testing.assert_frame_equal(
        change_since_last_week(now, "North", own["North"]), change_since_last_week(now, "North", history)
    )
    pd.testing.assert_frame_equal(leavers(MDT, own["North"], now, people), leavers(MDT, history, now, people))
    assert leavers(MDT, own["North"], now, people)["reason"].tolist() == [LEFT_RISK_FELL]
    never = Mdt("New", ("P1",), "emergency_admission", 18, 3, None, ExclusionSettings())
    assert leavers(never, history, now, people).empty


# ----------------------------------------------------------------------------- issue 16: one transaction per week


def legacy_week(output, week, people):
    """A week as an earlier version left it: the folder with its lists, the history apart."""
    import json

    folder = output / "worklists" / week.isoformat()
    folder.mkdir(parents=True)
    (folder / "north.csv").write_text("Rank,Person ID\n")
    (folder / "manifest.json").write_text(json.dumps({"week": week.isoformat(), "files": {"north.csv": "x"}}))
    frame = listed(people)
    records = history_records(week, {"North": MdtSelection(MDT, frame, 0, 0, 3)})
    legacy = output / "worklists" / "history" / f"{week.isoformat()}.parquet"
    legacy.parent.mkdir(parents=True, exist_ok=True)
    records.to_parquet(legacy, index=False)
    return folder, legacy


def test_an_earlier_versions_history_is_moved_into_its_week_folder(tmp_path):
    import json

    from riskstrat.io import file_sha256
    from riskstrat.worklists.history import history_dir, reconcile_history

    week2 = WEEK1 + timedelta(7)
    folder, legacy = legacy_week(tmp_path, WEEK1, {"A": 0.3, "B": 0.2})
    expected = pd.read_parquet(legacy)
    assert reconcile_history(tmp_path, week2) == [WEEK1]
    assert not legacy.exists() and not legacy.parent.exists()
    pd.testing.assert_frame_equal(pd.read_parquet(folder / "history.parquet"), expected)
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["files"] == {"history.parquet": file_sha256(folder / "history.parquet"), "north.csv": "x"}
    assert (folder / "north.csv").read_text() == "Rank,Person ID\n"
    change = change_since_last_week(listed({"A": 0.3}), "North", load_history(history_dir(tmp_path), week2))
    assert change["weeks_on_list"].tolist() == [2]
    assert reconcile_history(tmp_path, week2) == []  # nothing left to do


def test_a_move_cut_short_after_publishing_is_finished(tmp_path):
    """Killed after the folder got its history but before the old file went: the next run removes it."""
    from riskstrat.worklists.history import reconcile_history

    folder, legacy = legacy_week(tmp_path, WEEK1, {"A": 0.3})
    (folder / "history.parquet").write_bytes(legacy.read_bytes())
    assert reconcile_history(tmp_path, WEEK1 + timedelta(7)) == []
    assert not legacy.exists()


def test_a_history_whose_week_folder_is_gone_is_refused(tmp_path):
    import shutil

    import pytest

    from riskstrat.errors import RiskstratError
    from riskstrat.worklists.history import reconcile_history

    folder, legacy = legacy_week(tmp_path, WEEK1, {"A": 0.3})
    shutil.rmtree(folder)
    with pytest.raises(RiskstratError, match=f"records week {WEEK1}") as error:
        reconcile_history(tmp_path, WEEK1 + timedelta(7))
    assert str(legacy) in error.value.hint and "Restore the folder" in error.value.hint
    assert legacy.exists()  # nothing changed
    assert reconcile_history(tmp_path, WEEK1) == []  # an earlier week's run is not affected


def test_a_published_week_without_history_is_refused(tmp_path):
    import pytest

    from riskstrat.errors import RiskstratError
    from riskstrat.worklists.history import history_dir, reconcile_history

    _, legacy = legacy_week(tmp_path, WEEK1, {"A": 0.3})
    legacy.unlink()  # killed between the export and the history step of an earlier version
    week2 = WEEK1 + timedelta(7)
    for check in (
        lambda: reconcile_history(tmp_path, week2),
        lambda: load_history(history_dir(tmp_path), week2),
    ):
        with pytest.raises(RiskstratError, match=f"week {WEEK1} was published") as error:
            check()
        assert f"riskstrat worklists --week {WEEK1}" in error.value.hint
    assert reconcile_history(tmp_path, WEEK1) == []  # re-running that week itself is allowed


def test_a_leaver_kept_off_by_the_mdts_decision_is_given_the_decision(tmp_path):
    """The decision is the reason, unless the person died, deregistered or moved practice."""
    from riskstrat.worklists.history import LEAVER_REASONS, left_by_decision

    publish(tmp_path, WEEK1, {"A": 0.3, "B": 0.25, "C": 0.2, "D": 0.18})
    week2 = WEEK1 + timedelta(7)
    history = load_history(tmp_path, week2)
    now = listed({"G": 0.5, "H": 0.4, "I": 0.35})
    scored = scored_with({"A": 0.3, "B": 0.25, "C": 0.2, "D": 0.1, "G": 0.5, "H": 0.4, "I": 0.35})
    status = scored_with({"A": 0, "B": 0, "C": 0, "D": 0}, deceased=["C"])
    decided = {"A": "not_appropriate", "B": "added_to_caseload", "C": "declined"}
    left = leavers(MDT, history, now, person_lookup(scored, status), decided)
    assert left.set_index("person_id")["reason"].to_dict() == {
        "A": "MDT decision: Not appropriate now",
        "B": "MDT decision: Added to caseload / virtual ward",
        "C": LEFT_DIED,
        "D": LEFT_RISK_FELL,
    }
    assert left_by_decision("declined") in LEAVER_REASONS  # explained on the About sheet
