"""The under-recording scenario with a start date: records before it are complete, later ones lost."""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest

from riskstrat.errors import SettingsError
from riskstrat.ingest.synthetic.generate import generate_population
from riskstrat.ingest.synthetic.settings import SyntheticSettings, UnderRecording
from riskstrat.settings import load_settings

START = date(2024, 1, 1)


@pytest.fixture(scope="module")
def populations():
    base = generate_population(SyntheticSettings(), 2000, seed=5)
    scenario = SyntheticSettings(
        under_recording=UnderRecording(
            enabled=True,
            group_value="Asian",
            share_not_recorded=1.0,
            gp_activity_not_recorded=1.0,
            start_date=START,
        )
    )
    gap = generate_population(scenario, 2000, seed=5)
    group = set(base.truth["people"].query("ethnic_group == 'Asian'")["person_id"])
    return base, gap, group


def _part(frame: pd.DataFrame, date_column: str, group: set[str], inside: bool, before: bool) -> pd.DataFrame:
    in_group = frame["person_id"].isin(group) == inside
    earlier = frame[date_column] < pd.Timestamp(START)
    return frame[in_group & (earlier == before)].reset_index(drop=True)


@pytest.mark.parametrize(
    ("table", "date_column"), [("gp_diagnoses", "event_date"), ("gp_appointments", "appointment_date")]
)
def test_the_gap_loses_the_group_records_from_the_start_date_only(populations, table, date_column):
    base, gap, group = populations
    before = _part(gap.tables[table], date_column, group, inside=True, before=True)
    assert len(before) > 100
    pd.testing.assert_frame_equal(before, _part(base.tables[table], date_column, group, True, True))
    assert _part(base.tables[table], date_column, group, True, False).shape[0] > 0
    assert _part(gap.tables[table], date_column, group, True, False).empty
    # Everyone else's records are untouched.
    for earlier in (True, False):
        pd.testing.assert_frame_equal(
            _part(gap.tables[table], date_column, group, False, earlier),
            _part(base.tables[table], date_column, group, False, earlier),
        )


def test_the_gap_loses_the_group_prescriptions_and_leaves_health_unchanged(populations):
    base, gap, group = populations
    meds = gap.tables["gp_medications"]
    assert _part(base.tables["gp_medications"], "issue_date", group, True, False).shape[0] > 0
    assert _part(meds, "issue_date", group, True, False).empty
    assert _part(meds, "issue_date", group, True, True).shape[0] > 0
    pd.testing.assert_frame_equal(gap.truth["risk"], base.truth["risk"])
    pd.testing.assert_frame_equal(gap.tables["apc_spells"], base.tables["apc_spells"])


def test_a_start_date_that_is_not_a_date_is_refused_naming_the_key(tmp_path):
    path = tmp_path / "synthetic.yaml"
    path.write_text("under_recording: {enabled: true, start_date: next spring}\n")
    with pytest.raises(SettingsError) as error:
        load_settings(path, SyntheticSettings)
    assert "start_date" in str(error.value)
