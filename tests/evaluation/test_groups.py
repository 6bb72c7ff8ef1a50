"""The fairness-grouping registry: one spec per grouping, from which the audit, flags, report and settings derive."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from fairness_data import fast_settings, synthetic_predictions, synthetic_selections

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
        "imd_quintile_x_ethnic_group",
    }
    with pytest.raises(ValueError, match="unknown grouping"):
        FairnessSettings(gating_groupings=("postcode",))


def test_every_grouping_column_is_carried_by_the_feature_matrix():
    carried = set(PERSON_ATTRIBUTES) | set(feature_dictionary(FeatureSettings()))
    assert set(grouping_columns()) <= carried


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
