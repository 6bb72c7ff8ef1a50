from pathlib import Path

import pytest

from riskstrat.errors import SettingsError
from riskstrat.evaluation.settings import FairnessSettings, ToleranceSettings
from riskstrat.settings import load_settings

SHIPPED = Path(__file__).resolve().parents[2] / "configs" / "fairness.yaml"


def test_shipped_fairness_settings_load():
    settings = load_settings(SHIPPED, FairnessSettings)
    assert settings.tolerances.oe_low == 0.8
    assert settings.reference_for("imd_quintile") == "5"
    assert settings.accepted_flags == ()


def _write(tmp_path, text):
    path = tmp_path / "fairness.yaml"
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("min_cel_n: 100\n", "min_cel_n"),
        ("tolerances:\n  oe_low: 1.5\n", "tolerances.oe_low"),
        ("bootstrap_n: many\n", "bootstrap_n"),
        ("risk_bands: [10, 50, 100]\n", "risk_bands"),
        ("reference_groups:\n  postcode: largest\n", "reference_groups"),
        (
            "accepted_flags:\n  - flag_id: oe_black\n    reason: the board accepted it\n"
            "    accepted_by: Board\n    date: 2025-01-01\n",
            "accepted_flags.0.flag_id",
        ),
        (
            "accepted_flags:\n  - flag_id: 'calibration_oe:ethnic_group:Black'\n    accepted_by: Board\n"
            "    date: 2025-01-01\n",
            "accepted_flags.0.reason",
        ),
        (
            "accepted_flags:\n  - flag_id: 'combined:ethnic_group:Black:ltc_count'\n    reason: the board accepted it\n"
            "    accepted_by: Board\n    date: 2025-01-01\n",
            "accepted_flags.0.flag_id",
        ),
        ("false_discovery_rate: 0\n", "false_discovery_rate"),
        ("false_discovery_rate: 0.6\n", "false_discovery_rate"),
        ("false_discovery_rate: five percent\n", "false_discovery_rate"),
        ("min_power: 1.2\n", "min_power"),
        ("combined_tolerance_share: 2\n", "combined_tolerance_share"),
        ("gp_recorded_need_measures: [ltc_count, steps]\n", "gp_recorded_need_measures"),
        ("tolerances:\n  gp_recording_ratio: 1.1\n", "tolerances.gp_recording_ratio"),
    ],
)
def test_invalid_fairness_settings_fail_naming_the_key(tmp_path, text, key):
    with pytest.raises(SettingsError) as error:
        load_settings(_write(tmp_path, text), FairnessSettings)
    assert key in str(error.value)


def test_oe_tolerances_are_described_the_right_way_round():
    # O/E = observed / expected: below 1 the model predicted more events than happened.
    fields = ToleranceSettings.model_fields
    assert "over-prediction" in fields["oe_low"].description
    assert "under-prediction" in fields["oe_high"].description


def test_a_file_that_still_sets_gate_on_uncertain_is_told_what_replaced_it(tmp_path):
    with pytest.raises(SettingsError) as error:
        load_settings(_write(tmp_path, "gate_on_uncertain: false\n"), FairnessSettings)
    message = str(error.value)
    assert "gate_on_uncertain was removed" in message and "false_discovery_rate" in message


def test_a_combined_finding_is_accepted_by_its_id(tmp_path):
    text = (
        "accepted_flags:\n  - flag_id: 'combined:ethnic_group:Black'\n"
        "    reason: Known recording gap; project under way.\n    accepted_by: Board\n    date: 2025-01-01\n"
        "  - flag_id: 'gp_recording:imd_quintile:1'\n"
        "    reason: Known recording gap; project under way.\n    accepted_by: Board\n    date: 2025-01-01\n"
    )
    settings = load_settings(_write(tmp_path, text), FairnessSettings)
    assert settings.accepted("combined:ethnic_group:Black") is not None
    assert settings.accepted("gp_recording:imd_quintile:1") is not None


def test_shipped_error_control_settings():
    settings = load_settings(SHIPPED, FairnessSettings)
    assert settings.false_discovery_rate == 0.05 and settings.min_power == 0.8
    assert settings.tolerances.gp_recording_ratio == 0.8
    assert set(settings.gp_recorded_need_measures) <= set(settings.need_measures)
