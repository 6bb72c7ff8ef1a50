"""The capture-loss scenario: a share of one district's emergency admissions missing from a date on."""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest

from riskstrat.errors import SettingsError
from riskstrat.ingest.contract import EMERGENCY_ADMISSION_METHODS
from riskstrat.ingest.reference import imd_lookup
from riskstrat.ingest.synthetic.generate import generate_population
from riskstrat.ingest.synthetic.settings import CaptureLoss, SyntheticSettings
from riskstrat.settings import load_settings

START = date(2023, 7, 1)
DUDLEY = "E08000027"
SHARE = 0.4


@pytest.fixture(scope="module")
def populations():
    base = generate_population(SyntheticSettings(), 4000, seed=5)
    scenario = SyntheticSettings(
        capture_loss=CaptureLoss(
            enabled=True, lad_code=DUDLEY, emergency_admissions_lost=SHARE, start_date=START
        )
    )
    lost = generate_population(scenario, 4000, seed=5)
    lookup = imd_lookup()
    dudley_lsoas = set(lookup.loc[lookup["lad_code"] == DUDLEY, "lsoa_code"])
    patients = base.tables["patients"]
    residents = set(patients.loc[patients["lsoa_code"].isin(dudley_lsoas), "person_id"])
    return base, lost, residents


def _affected(spells: pd.DataFrame, residents: set[str]) -> pd.Series:
    return (
        spells["person_id"].isin(residents)
        & spells["admission_method"].isin(EMERGENCY_ADMISSION_METHODS)
        & (spells["admission_date"] >= pd.Timestamp(START))
    )


def test_about_the_share_of_the_districts_emergency_admissions_after_the_date_is_lost(populations):
    base, lost, residents = populations
    before, after = base.tables["apc_spells"], lost.tables["apc_spells"]
    affected = _affected(before, residents)
    assert affected.sum() > 200
    kept = set(after["spell_id"])
    lost_share = 1 - before.loc[affected, "spell_id"].isin(kept).mean()
    # Binomial: with over 200 spells, three standard errors are under 0.1.
    assert abs(lost_share - SHARE) < 0.1, lost_share
    # Every kept spell is exactly as it was.
    pd.testing.assert_frame_equal(
        after.reset_index(drop=True),
        before[before["spell_id"].isin(kept)].reset_index(drop=True),
    )


def test_nothing_else_changes(populations):
    base, lost, residents = populations
    before, after = base.tables["apc_spells"], lost.tables["apc_spells"]
    unaffected = before[~_affected(before, residents)].reset_index(drop=True)
    pd.testing.assert_frame_equal(after[~_affected(after, residents)].reset_index(drop=True), unaffected)
    for name in base.tables:
        if name != "apc_spells":
            pd.testing.assert_frame_equal(lost.tables[name], base.tables[name], obj=name)
    for name in base.truth:
        pd.testing.assert_frame_equal(lost.truth[name], base.truth[name], obj=name)


def test_ae_attendances_can_be_lost_too():
    settings = SyntheticSettings(
        capture_loss=CaptureLoss(enabled=True, emergency_admissions_lost=0.0, ae_attendances_lost=1.0)
    )
    base = generate_population(SyntheticSettings(), 1500, seed=3)
    lost = generate_population(settings, 1500, seed=3)
    lookup = imd_lookup()
    dudley = set(lookup.loc[lookup["lad_code"] == DUDLEY, "lsoa_code"])
    patients = base.tables["patients"]
    residents = patients.loc[patients["lsoa_code"].isin(dudley), "person_id"]
    ae_before, ae_after = base.tables["ae_attendances"], lost.tables["ae_attendances"]
    assert ae_before["person_id"].isin(residents).sum() > 50
    assert not ae_after["person_id"].isin(residents).any()
    pd.testing.assert_frame_equal(
        ae_after.reset_index(drop=True),
        ae_before[~ae_before["person_id"].isin(residents)].reset_index(drop=True),
    )
    pd.testing.assert_frame_equal(lost.tables["apc_spells"], base.tables["apc_spells"])


def test_a_district_outside_the_footprint_is_refused_naming_the_key(tmp_path):
    path = tmp_path / "synthetic.yaml"
    path.write_text("capture_loss: {enabled: true, lad_code: E09000001}\n")
    with pytest.raises(SettingsError) as error:
        load_settings(path, SyntheticSettings)
    assert "capture_loss" in str(error.value) and "E09000001" in str(error.value)


def test_a_share_above_one_is_refused(tmp_path):
    path = tmp_path / "synthetic.yaml"
    path.write_text("capture_loss: {enabled: true, emergency_admissions_lost: 1.5}\n")
    with pytest.raises(SettingsError) as error:
        load_settings(path, SyntheticSettings)
    assert "emergency_admissions_lost" in str(error.value)
