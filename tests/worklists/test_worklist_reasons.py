import numpy as np
import pandas as pd
import pytest
import shap
from worklist_fixtures import FEATURES, contributions_for

from riskstrat.features.dictionary import feature_concept, feature_names, reason_text
from riskstrat.worklists.reasons import (
    CONTACT_CONCEPTS,
    RECENCY_FEATURES,
    concept_contributions,
    feature_vocabulary,
    reason_frequency,
    recency_text,
    rows_with_contact_reason,
    top_reasons,
)


@pytest.fixture()
def listed(features):
    return features.sort_values("person_id").head(40)


def test_reasons_agree_with_shap_tree_explainer(boosters, listed):
    booster = boosters["emergency_admission"]
    contributions = contributions_for(boosters)("emergency_admission", listed)
    explainer = shap.TreeExplainer(booster)
    expected = pd.DataFrame(
        explainer.shap_values(listed[FEATURES]), columns=FEATURES, index=contributions.index
    )
    np.testing.assert_allclose(contributions[FEATURES].to_numpy(), expected.to_numpy(), atol=1e-6)

    # Without contact counts giving way, the reasons are TreeSHAP's order exactly.
    reasons = top_reasons(contributions, listed, count=3, give_way=(), absences_give_way=False)
    by_concept = concept_contributions(expected.reset_index())
    for person, row in reasons.iterrows():
        for i in (1, 2, 3):
            concept = row[f"reason_{i}_concept"]
            if concept:
                assert row[f"reason_{i}_contribution"] == pytest.approx(
                    by_concept.at[person, concept], abs=1e-6
                )
        # the reasons are the largest positive concepts, in order
        positive = by_concept.loc[person][by_concept.loc[person] > 0].sort_values(ascending=False)
        shown = [row[f"reason_{i}_concept"] for i in (1, 2, 3) if row[f"reason_{i}_concept"]]
        assert shown == list(positive.index[: len(shown)])
        assert len(shown) == min(3, len(positive))


def test_windows_of_one_concept_make_one_reason_with_the_persons_value():
    features = pd.DataFrame(
        {
            "person_id": ["A", "B"],
            "ae_attendances_30d": [2, 0],
            "ae_attendances_90d": [3, 0],
            "ae_attendances_365d": [6, 0],
            "emergency_admissions_365d": [2, 1],
            "efi_score": [0.42, 0.05],
            "efi_category": [3, 0],
            "age": [88, 40],
        }
    )
    contributions = pd.DataFrame(
        {
            "ae_attendances_30d": [0.9, -0.1],
            "ae_attendances_90d": [0.5, -0.1],
            "ae_attendances_365d": [0.4, -0.2],
            "emergency_admissions_365d": [0.3, 0.2],
            "efi_score": [0.1, -0.3],
            "efi_category": [0.05, -0.2],
            "age": [0.2, -0.5],
            "bias": [-3.0, -3.0],
        },
        index=pd.Index(["A", "B"], name="person_id"),
    )
    vocabulary = feature_vocabulary()
    reasons = top_reasons(contributions, features, count=3, vocabulary=vocabulary)
    a = reasons.loc["A"]
    assert a["reason_1_concept"] == vocabulary.concept("ae_attendances_30d")
    assert a["reason_1_contribution"] == pytest.approx(1.8)
    assert a["reason_1"] == vocabulary.reason_text("ae_attendances_365d", 6)  # the 12-month text
    assert a["reason_2"] == vocabulary.reason_text("emergency_admissions_365d", 2)
    assert "2 emergency admissions in the last 12 months" in a["reason_2"]
    assert a["reason_3_concept"] == "age"
    # only one reason per concept
    assert len({a[f"reason_{i}_concept"] for i in (1, 2, 3)}) == 3
    # B: only emergency admissions raise risk; the other slots stay empty
    b = reasons.loc["B"]
    assert b["reason_1"] == vocabulary.reason_text("emergency_admissions_365d", 1)
    assert b["reason_2"] == "" and b["reason_3"] == ""


def test_frailty_reason_shows_the_efi_score():
    features = pd.DataFrame({"person_id": ["A"], "efi_score": [0.42], "efi_category": [3]})
    contributions = pd.DataFrame({"person_id": ["A"], "efi_score": [0.1], "efi_category": [0.6]})
    reasons = top_reasons(contributions, features, count=3)
    assert reasons.loc["A", "reason_1"] == "Severe frailty (eFI 0.420)"
    assert reasons.loc["A", "reason_1_contribution"] == pytest.approx(0.7)


def test_vocabulary_is_the_feature_dictionarys():
    vocabulary = feature_vocabulary()
    for feature in feature_names():
        assert vocabulary.concept(feature) == feature_concept(feature)
        if feature not in RECENCY_FEATURES:  # written in weeks instead of days
            assert vocabulary.reason_text(feature, 2) == reason_text(feature, 2)
        assert vocabulary.reason_text(feature, np.nan) == reason_text(feature, None)


def test_a_feature_the_dictionary_does_not_know_gets_a_plain_reason():
    # Built only under other feature settings (readmission_days: 28), so not in the default dictionary.
    vocabulary = feature_vocabulary()
    assert vocabulary.concept("readmissions_28d_365d") == "readmissions_28d"
    assert vocabulary.reason_text("readmissions_28d_365d", 2.0) == "2 readmissions 28d in the last 12 months"
    assert vocabulary.reason_text("ethnicity_other", 1) == "ethnicity other: 1"
    assert vocabulary.reason_text("ethnicity_other", None) == "ethnicity other: not recorded"


def contact_case():
    """A: GP appointments raise risk most, then frailty, age and A&E; B: only contacts raise risk."""
    features = pd.DataFrame(
        {
            "person_id": ["A", "B"],
            "gp_appointments_365d": [26, 30],
            "community_contacts_365d": [16, 4],
            "efi_score": [0.42, 0.05],
            "age": [88, 40],
            "ae_attendances_365d": [3, 0],
        }
    )
    contributions = pd.DataFrame(
        {
            "gp_appointments_365d": [1.5, 0.8],
            "community_contacts_365d": [1.2, 0.3],
            "efi_score": [0.6, -0.2],
            "age": [0.4, -0.1],
            "ae_attendances_365d": [0.2, -0.1],
        },
        index=pd.Index(["A", "B"], name="person_id"),
    )
    return features, contributions


def test_contact_counts_give_way_to_the_next_distinct_reasons_in_shap_order():
    features, contributions = contact_case()
    assert {feature_concept("gp_appointments_365d"), feature_concept("community_contacts_365d")} == set(
        CONTACT_CONCEPTS
    )
    plain = top_reasons(contributions, features, count=3, give_way=())
    assert plain.loc["A", "reason_1"] == "26 GP appointments in the last 12 months"
    reasons = top_reasons(contributions, features, count=3)
    a = reasons.loc["A"]
    assert [a[f"reason_{i}_concept"] for i in (1, 2, 3)] == ["frailty", "age", "ae_attendances"]
    assert a["reason_1_contribution"] == pytest.approx(0.6)  # the attribution itself is unchanged
    # Nothing else raises B's risk: the contact counts keep their slots, in TreeSHAP order.
    b = reasons.loc["B"]
    assert b["reason_1"] == "30 GP appointments in the last 12 months"
    assert b["reason_2"] == "4 community care contacts in the last 12 months"
    assert b["reason_3"] == ""


def test_recency_reads_in_weeks_and_months_not_days():
    assert recency_text("days_since_last_ae", 0) == "A&E attendance in the last week"
    assert recency_text("days_since_last_ae", 6) == "A&E attendance in the last week"
    assert recency_text("days_since_last_ae", 7) == "Last A&E attendance 1 week ago"
    assert recency_text("days_since_last_ae", 50) == "Last A&E attendance 7 weeks ago"
    assert recency_text("days_since_last_discharge", 100) == "Discharged from hospital 3 months ago"
    vocabulary = feature_vocabulary()
    assert vocabulary.reason_text("days_since_last_ae", 0.0) == "A&E attendance in the last week"
    assert vocabulary.reason_text("days_since_last_ae", np.nan) == reason_text("days_since_last_ae", None)


def test_reason_frequency_and_contact_share_count_rows_not_mentions():
    rows = pd.DataFrame(
        {
            "Reason 1": ["26 GP appointments in the last 12 months", "Severe frailty (eFI 0.361)", "Aged 91"],
            "Reason 2": [
                "Severe frailty (eFI 0.420)",
                "1 district nursing contact in the last 3 months",
                None,
            ],
            "Reason 3": ["12 GP appointments in the last 12 months", "", ""],
        }
    )
    columns = ["Reason 1", "Reason 2", "Reason 3"]
    frequency = reason_frequency(rows, columns).set_index("reason")
    assert frequency.at["Severe frailty (eFI N)", "rows"] == 2
    assert frequency.at["N GP appointments in the last N months", "rows"] == 1  # twice on one row
    assert frequency.at["Aged N", "share"] == pytest.approx(1 / 3)
    assert rows_with_contact_reason(rows, columns) == 2


def test_a_count_of_zero_gives_way_to_reasons_a_clinician_can_act_on():
    # "0 A&E attendances" can raise the modelled risk (interactions) but is nothing to act on.
    features = pd.DataFrame(
        {"person_id": ["A"], "ae_attendances_365d": [0], "age": [84], "efi_score": [0.3], "ltc_count": [3]}
    )
    contributions = pd.DataFrame(
        {"ae_attendances_365d": [0.9], "age": [0.5], "efi_score": [0.4], "ltc_count": [0.2]},
        index=pd.Index(["A"], name="person_id"),
    )
    reasons = top_reasons(contributions, features, count=3).iloc[0]
    assert [reasons[f"reason_{i}_concept"] for i in (1, 2, 3)] == [
        feature_concept("age"),
        feature_concept("efi_score"),
        feature_concept("ltc_count"),
    ]
    # With only two other raising factors, the absence fills the last slot (still TreeSHAP-honest).
    fewer = top_reasons(contributions.drop(columns="ltc_count"), features, count=3).iloc[0]
    assert fewer["reason_3_concept"] == feature_concept("ae_attendances_365d")
    plain = top_reasons(contributions, features, count=3, give_way=(), absences_give_way=False).iloc[0]
    assert plain["reason_1_concept"] == feature_concept("ae_attendances_365d")


def test_social_care_known_and_unknown_social_care_are_never_reasons():
    # "Is the local authority's return in" says nothing about the person; nor do unknown values.
    features = pd.DataFrame(
        {
            "person_id": ["known", "unknown"],
            "social_care_known": [1, 0],
            "social_care_carer": [1, np.nan],
            "social_care_requests_90d": [0, np.nan],
            "age": [84, 84],
        }
    )
    contributions = pd.DataFrame(
        {
            "social_care_known": [0.9, 0.9],
            "social_care_carer": [0.3, 0.2],
            "social_care_requests_90d": [0.05, 0.4],
            "age": [0.1, 0.1],
        },
        index=pd.Index(["known", "unknown"], name="person_id"),
    )
    reasons = top_reasons(contributions, features, count=3)
    assert not reasons.filter(like="_feature").isin(["social_care_known"]).any().any()
    known = reasons.loc["known"]
    # The concept's sum leaves social_care_known out (0.3 + 0.05), still above age.
    assert known["reason_1_feature"] == "social_care_carer" and known["reason_1"] == "Is an unpaid carer"
    assert known["reason_1_contribution"] == pytest.approx(0.35)
    unknown = reasons.loc["unknown"]
    assert unknown["reason_1_concept"] == feature_concept("age") and unknown["reason_2"] == ""
