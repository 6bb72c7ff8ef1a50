"""The fairness-grouping registry: one spec per grouping, from which the audit, flags, report and settings derive."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from fairness_data import fast_settings, synthetic_predictions, synthetic_selections

from riskstrat.errors import RiskstratError
from riskstrat.evaluation import groups
from riskstrat.evaluation.fairness import open_flags, run_audit
from riskstrat.evaluation.groups import GROUPINGS, GroupingSpec, assign_groups, grouping_columns
from riskstrat.evaluation.report import render_report
from riskstrat.evaluation.settings import FairnessSettings
from riskstrat.features.dictionary import feature_dictionary
from riskstrat.features.matrix import PERSON_ATTRIBUTES
from riskstrat.features.settings import FeatureSettings


def _practice_group(values: pd.Series) -> pd.Series:
    return values.astype("string").fillna("Not known").astype(str)


PRACTICE = GroupingSpec(
    name="practice",
    label="GP practice",
    column="practice_code",
    recode=_practice_group,
    groups=("A81001", "A81002"),
    reference="A81001",
    plotted=True,
)


@pytest.fixture
def with_practice_grouping(monkeypatch):
    """The registry with a practice grouping added, for this test only (restored afterwards)."""
    monkeypatch.setitem(GROUPINGS, PRACTICE.name, PRACTICE)
    yield PRACTICE


def test_a_grouping_registered_in_one_place_is_audited_flagged_gated_and_reported(
    with_practice_grouping, model_info
):
    predictions = synthetic_predictions(n=6_000, seed=11)
    practice = np.where(np.arange(len(predictions)) % 2 == 0, "A81001", "A81002")
    predictions["practice_code"] = practice
    predictions["mdt"] = np.where(practice == "A81001", "North", "South")
    # The model under-predicts the second practice's patients by half.
    predictions.loc[practice == "A81002", "p"] /= 2
    settings = fast_settings()
    assert settings.reference_for("practice") == "A81001"
    assert "practice" in settings.gating_groupings

    audit = run_audit(predictions, synthetic_selections(predictions), settings)

    assert next(g for g in audit.groupings if g.name == "practice").groups == ("A81001", "A81002")
    assert audit.references["practice"] == "A81001"
    cells = audit.performance[audit.performance["grouping"] == "practice"].set_index("group")
    assert cells.loc["A81002", "oe_ratio"] > 1.5
    assert set(audit.lists.loc[audit.lists["grouping"] == "practice", "group"]) == {"A81001", "A81002"}
    flag_ids = {f.flag_id for f in open_flags(audit, settings)}
    assert "calibration_oe:practice:A81002" in flag_ids
    html, payload = render_report(audit, model_info)
    assert "GP practice" in html and any(g["name"] == "practice" for g in payload["groupings"])


def test_the_registry_is_restored_after_a_test_adds_to_it():
    assert "practice" not in GROUPINGS
    assert "practice" not in FairnessSettings().gating_groupings


def test_settings_defaults_follow_the_registry():
    settings = FairnessSettings()
    assert settings.reference_groups == {name: spec.reference for name, spec in GROUPINGS.items()}
    assert settings.reference_for("imd_quintile") == "5"
    assert set(settings.gating_groupings) == {
        "imd_quintile",
        "ethnic_group",
        "sex",
        "local_authority",
        "mdt",
        "imd_quintile_x_ethnic_group",
    }
    # Practices differ for reasons the model does not see, in small cells: reported, not gating.
    assert "gp_practice" in GROUPINGS and "gp_practice" not in settings.gating_groupings
    with pytest.raises(ValueError, match="unknown grouping"):
        FairnessSettings(gating_groupings=("postcode",))


def test_every_grouping_column_is_carried_by_the_feature_matrix_or_the_back_test():
    carried = set(PERSON_ATTRIBUTES) | set(feature_dictionary(FeatureSettings()))
    # The MDT is the back-test's: the MDT whose list serves the person's practice.
    assert set(grouping_columns()) <= carried | {"mdt"}
    assert set(groups.required_grouping_columns()) <= carried


def test_groups_are_reported_in_order_absent_ones_included_rare_ones_only_when_present():
    frame = pd.DataFrame(
        {
            "imd_quintile": [1, 3, None],
            "ethnic_group": ["White", None, "Asian"],
            "sex": ["2", "1", "9"],
            "age_band": ["85+", "18-29", "45-64"],
        }
    )
    out, resolved = assign_groups(frame)
    by_name = {g.name: g.groups for g in resolved}
    assert by_name["imd_quintile"] == ("1", "2", "3", "4", "5", groups.IMD_NOT_KNOWN)
    assert by_name["sex"] == ("Female", "Male", "Indeterminate")
    assert by_name["age_band"] == ("18-29", "45-64", "85+")
    assert len(by_name["imd_quintile_x_ethnic_group"]) == 6 * 6
    assert out["imd_quintile_x_ethnic_group"].tolist() == [
        "1 x White",
        "3 x Not known / Not stated",
        "Not known x Asian",
    ]
    assert (
        groups.group_label("imd_quintile_x_ethnic_group", "1 x Asian")
        == "IMD 1 - most deprived 20% (Core20) x Asian"
    )


# --- place ---------------------------------------------------------------------------------

DUDLEY, SANDWELL = "E08000027", "E08000028"
DUDLEY_LSOAS = ("E01009719", "E01009720", "E01009721")
SANDWELL_LSOAS = ("E01009921", "E01009922", "E01009923")


def _people(**columns: list) -> pd.DataFrame:
    n = len(next(iter(columns.values())))
    base = {"imd_quintile": [1] * n, "ethnic_group": ["White"] * n, "sex": ["2"] * n, "age_band": ["85+"] * n}
    return pd.DataFrame({**base, **columns})


def test_local_authority_is_the_district_of_residence_with_its_name():
    frame = _people(lsoa_code=[DUDLEY_LSOAS[0], SANDWELL_LSOAS[1], "W01000001", None])
    out, resolved = assign_groups(frame)
    assert out["local_authority"].tolist() == [DUDLEY, SANDWELL, "Not known", "Not known"]
    assert next(g for g in resolved if g.name == "local_authority").groups == (DUDLEY, SANDWELL, "Not known")
    assert groups.group_label("local_authority", DUDLEY) == "Dudley"
    assert groups.is_place("local_authority") and not groups.is_place("ethnic_group")


def test_mdt_and_practice_groups_are_named_places_with_the_unserved_and_unknown_last():
    frame = _people(mdt=["No MDT", "Walsall Neighbourhood 2", "Dudley Neighbourhood 1", None],
                    practice_code=["M80001", "M80002", "", "M80001"])  # fmt: skip
    _, resolved = assign_groups(frame)
    by_name = {g.name: g.groups for g in resolved}
    assert by_name["mdt"] == ("Dudley Neighbourhood 1", "Walsall Neighbourhood 2", "No MDT", "Not known")
    assert by_name["gp_practice"] == ("M80001", "M80002", "Not known")
    assert not groups.reported_by_mdt("mdt") and groups.reported_by_mdt("ethnic_group")


def test_a_place_without_its_column_or_with_one_place_is_left_out_not_guessed():
    # The unit fixtures carry no LSOA or practice; without MDTs the back-test lists everyone as "All".
    frame = _people(mdt=["All", "All"])
    _, resolved = assign_groups(frame)
    names = {g.name for g in resolved}
    assert not names & {"local_authority", "mdt", "gp_practice"}
    assert {"imd_quintile", "ethnic_group", "imd_quintile_x_ethnic_group"} <= names
    assert set(groups.left_out_groupings(resolved)) == {
        "local_authority",
        "mdt",
        "gp_practice",
        "long_term_support",
    }
    # A required column is still required.
    with pytest.raises(RiskstratError, match="ethnic_group"):
        assign_groups(frame.drop(columns="ethnic_group"))


@pytest.fixture(scope="module")
def lost_in_dudley():
    """Test rows in two districts; 40% of Dudley's recorded events lost (a quarter of the rows live there)."""
    predictions = synthetic_predictions(n=8_000, seed=31)
    rng = np.random.default_rng(32)
    in_dudley = rng.random(len(predictions)) < 0.25
    predictions["lsoa_code"] = np.where(
        in_dudley, rng.choice(DUDLEY_LSOAS, len(predictions)), rng.choice(SANDWELL_LSOAS, len(predictions))
    )
    lost = in_dudley & (predictions["y"].to_numpy() == 1) & (rng.random(len(predictions)) < 0.4)
    predictions.loc[lost, "y"] = 0
    settings = fast_settings()
    return run_audit(predictions, synthetic_selections(predictions), settings), settings


def test_a_place_whose_recorded_events_fall_below_prediction_is_flagged_as_possible_data_loss(lost_in_dudley):
    audit, settings = lost_in_dudley
    cells = audit.performance[audit.performance["grouping"] == "local_authority"].set_index("group")
    assert cells.loc[DUDLEY, "oe_ratio"] < settings.tolerances.oe_low
    assert 0.85 < cells.loc[SANDWELL, "oe_ratio"] < 1.15
    assert cells.loc[DUDLEY, "event_rate"] < cells.loc[SANDWELL, "event_rate"]
    flag = next(f for f in audit.flags if f.flag_id == f"calibration_oe:local_authority:{DUDLEY}")
    assert flag.status == "raised"
    assert "Dudley" in flag.sentence and "may have lost data rather than gained health" in flag.sentence
    # Local authority gates promotion: the loss stops the model until someone looks.
    assert flag.flag_id in {f.flag_id for f in open_flags(audit, settings)}
    assert not any(f.grouping == "local_authority" and f.group == SANDWELL for f in audit.flags)


WALSALL_LSOAS = ("E01010241", "E01010242")
WOLVERHAMPTON_LSOAS = ("E01010410", "E01010411")


def test_a_place_the_model_learned_to_predict_low_is_still_flagged_by_its_recorded_need():
    # As in the capture-loss scenario from the training dates: 40% of Dudley residents' admissions
    # never reach the extract, the model (which saw fewer prior admissions there) predicts the
    # place a little low, and it under-predicts everyone a little in a later year. Dudley's O/E
    # stays near the tolerance; at equal predicted risk its people have far fewer recorded
    # admissions than people elsewhere, while their GP-recorded conditions are as expected.
    predictions = synthetic_predictions(n=20_000, seed=43)
    rng = np.random.default_rng(44)
    places = (DUDLEY_LSOAS, SANDWELL_LSOAS, WALSALL_LSOAS, WOLVERHAMPTON_LSOAS)
    place = rng.integers(0, len(places), len(predictions))
    predictions["lsoa_code"] = [places[k][rng.integers(0, 2)] for k in place]
    in_dudley = place == 0
    admissions = predictions["emergency_admissions_next_year"].to_numpy()
    recorded = np.where(in_dudley, rng.binomial(admissions, 0.6), admissions)
    predictions["bed_days_next_year"] = (
        predictions["bed_days_next_year"] * recorded / np.maximum(admissions, 1)
    ).round()
    predictions["emergency_admissions_next_year"] = recorded
    predictions["y"] = np.where(in_dudley, (recorded > 0).astype(int), predictions["y"])
    predictions["p"] *= np.where(in_dudley, 0.85, 0.9)
    settings = fast_settings()
    audit = run_audit(predictions, synthetic_selections(predictions), settings)

    oe_id = f"calibration_oe:local_authority:{DUDLEY}"
    assert not any(f.flag_id == oe_id for f in audit.flags)  # O/E alone does not say
    flag_id = f"need_at_equal_risk:local_authority:{DUDLEY}:emergency_admissions_next_year"
    flag = next(f for f in audit.flags if f.flag_id == flag_id)
    assert flag.status == "raised" and flag.upper < 1 / settings.tolerances.need_ratio
    assert "may have lost data rather than gained health" in flag.sentence
    assert flag_id in {f.flag_id for f in open_flags(audit, settings)}
    # The places whose records are whole are not flagged; a group that is not a place is never
    # flagged for having less need at equal risk (that would be over-ranking, not a harm).
    assert not any(f.grouping == "local_authority" and f.group != DUDLEY for f in audit.flags)
    assert not any(
        f.kind == "need_at_equal_risk" and f.estimate < 1 for f in audit.flags if f.grouping == "ethnic_group"
    )


def test_a_place_group_with_exactly_another_places_people_is_the_same_people():
    frame = pd.DataFrame(
        {
            "local_authority": ["Walsall", "Walsall", "Dudley", "Dudley", "Dudley"],
            "mdt": ["Walsall 1", "Walsall 1", "Dudley 1", "Dudley 1", "Dudley 2"],
        }
    )
    resolved = [
        groups.Grouping("local_authority", "Local authority of residence", ("Dudley", "Walsall")),
        groups.Grouping("mdt", "MDT", ("Dudley 1", "Dudley 2", "Walsall 1")),
    ]
    # Walsall's only MDT is Walsall's people; Dudley's two MDTs are each a part of Dudley.
    assert groups.same_people_places(frame, resolved) == {
        ("mdt", "Walsall 1"): ("local_authority", "Walsall")
    }


@pytest.fixture(scope="module")
def one_mdt_is_one_local_authority():
    """As ``lost_in_dudley``, with every Dudley resident (and no one else) in one MDT, Sandwell in two."""
    predictions = synthetic_predictions(n=8_000, seed=31)
    rng = np.random.default_rng(32)
    in_dudley = rng.random(len(predictions)) < 0.25
    predictions["lsoa_code"] = np.where(
        in_dudley, rng.choice(DUDLEY_LSOAS, len(predictions)), rng.choice(SANDWELL_LSOAS, len(predictions))
    )
    predictions["mdt"] = np.where(
        in_dudley,
        "Dudley Neighbourhood 1",
        rng.choice(["Sandwell Neighbourhood 1", "Sandwell Neighbourhood 2"], len(predictions)),
    )
    lost = in_dudley & (predictions["y"].to_numpy() == 1) & (rng.random(len(predictions)) < 0.4)
    predictions.loc[lost, "y"] = 0
    settings = fast_settings()
    return run_audit(predictions, synthetic_selections(predictions), settings), settings


def test_an_mdt_that_is_one_local_authoritys_people_is_judged_once(one_mdt_is_one_local_authority):
    audit, settings = one_mdt_is_one_local_authority
    # The lost data raise one blocking finding for the place, not a second for its MDT.
    places = [(f.grouping, f.group) for f in open_flags(audit, settings) if groups.is_place(f.grouping)]
    assert places == [("local_authority", DUDLEY)]
    assert not (audit.checks["grouping"].eq("mdt") & audit.checks["group"].eq("Dudley Neighbourhood 1")).any()
    assert audit.checks["group"].eq("Sandwell Neighbourhood 1").any()  # other MDTs are still judged
    # The MDT is still shown, saying whose people it is.
    row = audit.performance[audit.performance["group"] == "Dudley Neighbourhood 1"].iloc[0]
    assert row["label"] == "Dudley Neighbourhood 1 (same people as Dudley, local authority of residence)"
    assert audit.error_control["same_people"] == [
        {
            "grouping": "mdt",
            "group": "Dudley Neighbourhood 1",
            "judged_as_grouping": "local_authority",
            "judged_as_group": DUDLEY,
        }
    ]


# --- social care -----------------------------------------------------------------------------

SUPPORT = "social_care_long_term_support"


def test_long_term_support_is_yes_no_or_not_known_never_guessed():
    frame = _people(**{SUPPORT: [1.0, 0.0, np.nan, None]})
    out, resolved = assign_groups(frame)
    # Empty: the local authority's returns do not cover the year (social_care_known 0), not "No".
    assert out["long_term_support"].tolist() == ["Yes", "No", "Not known", "Not known"]
    grouping = next(g for g in resolved if g.name == "long_term_support")
    assert grouping.groups == ("Yes", "No", "Not known")
    assert grouping.label == "Receiving long-term social care support"
    assert groups.reported_by_mdt("long_term_support") and not groups.is_place("long_term_support")
    with pytest.raises(RiskstratError, match=SUPPORT):
        assign_groups(_people(**{SUPPORT: [1.0, 2.0]}))


def test_long_term_support_is_left_out_without_social_care_and_does_not_gate():
    _, resolved = assign_groups(_people(imd_quintile=[1, 2]))
    assert "long_term_support" in groups.left_out_groupings(resolved)
    settings = FairnessSettings()
    assert "long_term_support" not in settings.gating_groupings
    assert settings.reference_for("long_term_support") == "No"


def test_long_term_support_is_audited_under_the_same_error_control(model_info):
    predictions = synthetic_predictions(n=8_000, seed=41)
    rng = np.random.default_rng(42)
    kind = rng.choice(["Yes", "No", "Not known"], size=len(predictions), p=[0.25, 0.6, 0.15])
    predictions[SUPPORT] = np.select([kind == "Yes", kind == "No"], [1.0, 0.0], np.nan)
    # The model under-predicts the risk of people receiving long-term support by half.
    predictions.loc[kind == "Yes", "p"] /= 2
    settings = fast_settings()
    audit = run_audit(predictions, synthetic_selections(predictions), settings)

    assert next(g for g in audit.groupings if g.name == "long_term_support").groups == (
        "Yes",
        "No",
        "Not known",
    )
    cells = audit.performance[audit.performance["grouping"] == "long_term_support"].set_index("group")
    assert cells.loc["Yes", "oe_ratio"] > 1.5
    assert 0.8 < cells.loc["Not known", "oe_ratio"] < 1.25
    raised = {f.flag_id for f in audit.findings if f.status == "raised"}
    assert "calibration_oe:long_term_support:Yes" in raised
    # Reported for the board, not a stop: no open flag from it.
    assert not [f for f in open_flags(audit, settings) if f.grouping == "long_term_support"]
    html, _ = render_report(audit, model_info)
    assert "Receiving long-term social care support" in html
