from datetime import date

import pandas as pd
import pytest
from worklist_fixtures import PRACTICES, status_of

from riskstrat.errors import RiskstratError
from riskstrat.worklists.selection import (
    attach_status,
    select_mdt,
    select_worklists,
    with_risk_percentiles,
)
from riskstrat.worklists.settings import ExclusionSettings, Mdt, MdtSettings, resolve_mdts


def select(scored, settings):
    return select_worklists(scored, resolve_mdts(settings, PRACTICES), settings.risk_bands)


def test_each_list_holds_only_its_practices_ranked_to_capacity(scored, mdt_settings):
    selections = select(scored, mdt_settings)
    north, south = selections["North virtual ward"], selections["South HIU service"]
    assert set(north.listed["practice_code"]) <= {"P00001", "P00002"}
    assert set(south.listed["practice_code"]) == {"P00003"}
    assert len(north.listed) == 20 and len(south.listed) == 15
    assert list(north.listed["rank"]) == list(range(1, 21))
    assert north.listed["probability"].is_monotonic_decreasing
    # South ranks by frequent attendance: its list is the top 15 of its practice on that outcome
    expected = scored.loc[scored["practice_code"] == "P00003"].nlargest(15, "p_frequent_attendance")
    assert set(south.listed["person_id"]) == set(expected["person_id"])


def test_excluded_people_never_appear(scored, mdt_settings):
    top = scored.sort_values("p_emergency_admission", ascending=False)
    top = top.loc[top["practice_code"].isin(["P00001", "P00002"])]["person_id"].head(8).tolist()
    scored = scored.copy()
    scored.loc[scored["person_id"] == top[0], "deceased"] = True
    scored.loc[scored["person_id"] == top[1], "deregistered"] = True
    scored.loc[scored["person_id"] == top[2], "type1_opt_out"] = True
    scored.loc[scored["person_id"] == top[3], "age"] = 17
    selections = select(scored, mdt_settings)
    listed = set(pd.concat([s.listed["person_id"] for s in selections.values()]))
    assert not listed & set(top[:4])
    assert set(top[4:8]) <= listed
    north = selections["North virtual ward"]
    assert north.excluded["deceased"] == 1
    # An opt-out is removed before anything is counted: no count of opt-outs is kept.
    assert "type1_opt_out" not in north.excluded
    registered = scored["practice_code"].isin(["P00001", "P00002"])
    assert north.registered == int(registered.sum()) - 1
    assert north.excluded["below_age_floor"] >= 1


def test_type1_opt_out_include_and_caseload_rules(scored, mdt_settings):
    top = (
        scored.loc[scored["practice_code"] != "P00003"]
        .nlargest(2, "p_emergency_admission")["person_id"]
        .tolist()
    )
    scored = scored.copy()
    scored.loc[scored["person_id"] == top[0], "type1_opt_out"] = True
    scored.loc[scored["person_id"] == top[1], ["on_caseload", "caseload_team"]] = [True, "VW North"]
    data = mdt_settings.model_dump()
    data["default_mdt"]["exclusions"] = {"type1_opt_out": "include", "active_caseload": "flag"}
    flagged = select(scored, MdtSettings.model_validate(data))["North virtual ward"].listed
    assert top[0] in set(flagged["person_id"])
    assert flagged.set_index("person_id").at[top[1], "caseload_team"] == "VW North"
    data["default_mdt"]["exclusions"] = {"active_caseload": "exclude"}
    excluded = select(scored, MdtSettings.model_validate(data))["North virtual ward"].listed
    assert not {top[0], top[1]} & set(excluded["person_id"])


def test_ties_break_the_same_way_whatever_the_row_order(scored, mdt_settings):
    scored = scored.copy()
    scored["p_emergency_admission"] = 0.5  # everyone ties
    first = select(scored, mdt_settings)["North virtual ward"].listed["person_id"].tolist()
    shuffled = scored.sample(frac=1, random_state=3)
    second = select(shuffled, mdt_settings)["North virtual ward"].listed["person_id"].tolist()
    assert first == second
    assert first != sorted(first)  # by hash, not by ID


def test_risk_bands_by_percentile(scored, mdt_settings):
    listed = select(scored, mdt_settings)["North virtual ward"].listed
    assert listed.loc[0, "risk_band"] == "Very high"  # the top person in the ICS-wide ranking band
    for _, row in listed.iterrows():
        expected = (
            "Very high"
            if row["risk_percentile"] >= 99.5
            else "High"
            if row["risk_percentile"] >= 98
            else ("Moderate" if row["risk_percentile"] >= 95 else "Lower")
        )
        assert row["risk_band"] == expected


def test_missing_column_is_a_clear_error(scored, mdt_settings):
    with pytest.raises(RiskstratError, match="type1_opt_out"):
        select(scored.drop(columns="type1_opt_out"), mdt_settings)


def test_population_status_from_contract_tables():
    patients = pd.DataFrame(
        {
            "person_id": ["A", "B", "C", "D"],
            "practice_code": ["P1"] * 4,
            "registration_end": [None, "2025-06-01", "2026-03-01", None],
            "date_of_death": ["2025-12-01", None, None, None],
        }
    )
    caseload = pd.DataFrame(
        {
            "person_id": ["C", "D"],
            "team": ["VW", "PC"],
            "start_date": ["2025-11-01", "2025-01-01"],
            "end_date": [None, "2025-05-01"],
        }
    )
    opt_outs = pd.DataFrame({"person_id": ["D", "C"], "type": ["type1", "ndo"]})
    status = status_of(patients, caseload, opt_outs, date(2025, 12, 31)).set_index("person_id")
    assert status["deceased"].tolist() == [True, False, False, False]
    assert status["deregistered"].tolist() == [False, True, False, False]
    assert status["on_caseload"].tolist() == [False, False, True, False]
    assert status.at["C", "caseload_team"] == "VW"
    assert status["type1_opt_out"].tolist() == [False, False, False, True]  # ndo does not exclude
    scored = pd.DataFrame({"person_id": ["C", "E"], "practice_code": ["P1", "P1"], "age": [70, 80]})
    merged = attach_status(scored, status.reset_index())
    assert merged["on_caseload"].tolist() == [True, False]
    assert merged["deceased"].tolist() == [False, False]
    twice = pd.concat([status.reset_index(), status.reset_index().iloc[[2]]])
    with pytest.raises(RiskstratError, match=r"1 repeated person_id") as caught:
        attach_status(scored, twice)
    # The example ID reaches the terminal (message) but never logs or Prefect (str).
    assert caught.value.message.endswith("e.g. C") and "e.g." not in str(caught.value)


def test_selecting_many_mdts_at_once_equals_each_from_its_own_practices(scored):
    """The per-practice index must not change any list, count or tie-break."""
    scored = scored.copy()
    scored["p_emergency_admission"] = scored["p_emergency_admission"].round(2)  # plenty of ties
    scored.loc[scored.index[::17], "deceased"] = True
    scored.loc[scored.index[5::23], "type1_opt_out"] = True
    scored.loc[scored.index[3::29], ["on_caseload", "caseload_team"]] = [True, "VW"]
    scored = scored.sample(frac=1, random_state=11)  # rows out of practice and label order
    rules = {"type1_opt_out": "include", "active_caseload": "flag"}

    def mdt(name, practices, capacity=12, share=None, outcome="emergency_admission", exclusions=None):
        return Mdt(name, practices, outcome, 18, capacity, share, ExclusionSettings(**(exclusions or {})))

    mdts = [
        mdt("One", ("P00001",), exclusions={"active_caseload": "exclude"}),
        mdt("Two and three", ("P00003", "P00002"), outcome="frequent_attendance"),
        mdt("Shares one", ("P00001", "P00001", "P00009"), capacity=None, share=0.05, exclusions=rules),
        mdt("Nobody", ("P00009",)),
    ]
    bands = MdtSettings().risk_bands
    selections = select_worklists(scored, mdts, bands)

    prepared = with_risk_percentiles(scored, {m.outcome for m in mdts})
    for each in mdts:
        own = prepared.loc[prepared["practice_code"].isin(each.practices)]
        expected = select_mdt(own, each, bands)
        got = selections[each.name]
        pd.testing.assert_frame_equal(got.listed, expected.listed)
        assert (got.registered, got.eligible, got.capacity, got.excluded) == (
            expected.registered,
            expected.eligible,
            expected.capacity,
            expected.excluded,
        )
        assert got.listed.equals(select_mdt(prepared, each, bands).listed)  # whole population too
    assert len(selections["Shares one"].listed) > 0 and selections["Nobody"].registered == 0


def test_decisions_in_force_keep_the_latest_per_person_for_rest_weeks():
    """Only the MDT's own latest decision counts, from the week after its list for rest_weeks weeks."""
    from datetime import date, timedelta

    from riskstrat.worklists.selection import decisions_in_force
    from riskstrat.worklists.settings import DecisionSettings

    week = date(2026, 1, 5)
    history = pd.DataFrame(
        {
            "person_id": ["A", "A", "B", "C", "D"],
            "mdt": ["North", "North", "North", "North", "South"],
            "week": [(week - timedelta(weeks=w)).isoformat() for w in (3, 1, 4, 0, 1)],
            "decision": ["declined", "could_not_contact", "not_appropriate", "declined", "declined"],
            "issued_probability": 0.3,
            "imported_at": pd.Timestamp("2026-01-01"),
            "source_digest": "x",
        }
    )
    state = decisions_in_force(history, "North", week, DecisionSettings(rest_weeks=4))
    assert state["decision"].to_dict() == {
        "A": "could_not_contact",
        "B": "not_appropriate",
    }  # C: this week's list
    assert state["action"].to_dict() == {"A": "", "B": "rest"}
    assert decisions_in_force(history, "North", week, DecisionSettings(rest_weeks=3)).loc["B", "action"] == ""
