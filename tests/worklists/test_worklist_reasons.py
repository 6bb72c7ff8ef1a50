import numpy as np
import pandas as pd
import pytest
import shap
from worklist_fixtures import FEATURES, contributions_for

from riskstrat.features.dictionary import feature_concept, feature_names, reason_text
from riskstrat.worklists.reasons import concept_contributions, feature_vocabulary, top_reasons


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

    reasons = top_reasons(contributions, listed, count=3)
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
        assert vocabulary.reason_text(feature, 2) == reason_text(feature, 2)
        assert vocabulary.reason_text(feature, np.nan) == reason_text(feature, None)


def test_a_feature_the_dictionary_does_not_know_gets_a_plain_reason():
    # Built only under other feature settings (readmission_days: 28), so not in the default dictionary.
    vocabulary = feature_vocabulary()
    assert vocabulary.concept("readmissions_28d_365d") == "readmissions_28d"
    assert vocabulary.reason_text("readmissions_28d_365d", 2.0) == "2 readmissions 28d in the last 12 months"
    assert vocabulary.reason_text("ethnicity_other", 1) == "ethnicity other: 1"
    assert vocabulary.reason_text("ethnicity_other", None) == "ethnicity other: not recorded"
