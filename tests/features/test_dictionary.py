"""The feature dictionary: every matrix feature is described, reasons read well, docs are current."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from riskstrat.features.dictionary import (
    describe_feature,
    feature_concept,
    feature_dictionary,
    reason_text,
    render_feature_docs,
    window_words,
)
from riskstrat.features.settings import FeatureSettings

DOCS = Path(__file__).resolve().parents[2] / "docs" / "features.md"


def test_committed_docs_match_the_dictionary():
    assert DOCS.read_text(encoding="utf-8") == render_feature_docs(), (
        "docs/features.md is stale: run riskstrat docs --out docs"
    )


@pytest.mark.parametrize(
    ("feature", "value", "text"),
    [
        ("emergency_admissions_365d", 1, "1 emergency admission in the last 12 months"),
        ("emergency_admissions_365d", 3, "3 emergency admissions in the last 12 months"),
        ("ae_attendances_30d", 2, "2 A&E attendances in the last 30 days"),
        ("gp_appointments_90d", 4, "4 GP appointments in the last 3 months"),
        ("bed_days_730d", 1, "1 day in hospital in the last 2 years"),
        ("efi_score", 0.42, "Severe frailty (eFI 0.420)"),
        ("efi_score", 0.25, "Moderate frailty (eFI 0.250)"),
        ("efi_score", 4 / 36, "Fit (eFI 0.111)"),
        # 13 of 36 deficits is severe; at two decimals it would read 0.36, moderate's upper bound.
        ("efi_score", 13 / 36, "Severe frailty (eFI 0.361)"),
        ("efi_score", 12 / 36, "Moderate frailty (eFI 0.333)"),
        ("efi_category", 1, "Mild frailty"),
        ("ltc_heart_failure", 1, "Has heart failure"),
        ("ltc_copd", 1, "Has COPD"),
        ("care_home", 1, "Lives in a care home"),
        ("days_since_last_discharge", 1, "Discharged from hospital 1 day ago"),
        ("days_since_last_ae", math.nan, "No A&E attendance on record"),
        ("ae_attendances_180d", 5, "5 A&E attendances in the last 6 months"),
    ],
)
def test_reason_text_pluralises_and_names_windows(feature, value, text):
    assert reason_text(feature, value) == text


def test_windows_of_the_same_thing_share_a_concept():
    names = [f"ae_attendances_{w}d" for w in (30, 90, 365, 730)]
    assert {feature_concept(name) for name in names} == {"ae_attendances"}
    assert feature_concept("efi_score") == feature_concept("efi_category")


def test_every_spec_is_complete_and_windowed_names_carry_their_window():
    for name, spec in feature_dictionary(FeatureSettings(include_ethnicity=True)).items():
        assert spec.label and spec.unit and spec.source and spec.concept and spec.reason, name
        if spec.window is not None and spec.concept != "new_conditions" and name != "bnf_sections_365d":
            assert name == f"{spec.concept}_{spec.window}d"


def test_windows_follow_settings():
    dictionary = feature_dictionary(FeatureSettings(windows=[14, 180]))
    assert "ae_attendances_14d" in dictionary and "ae_attendances_30d" not in dictionary
    assert window_words(14) == "2 weeks" and window_words(180) == "6 months"


def test_unknown_feature_is_refused():
    with pytest.raises(KeyError, match="unknown feature"):
        describe_feature("shoe_size")
