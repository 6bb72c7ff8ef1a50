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
