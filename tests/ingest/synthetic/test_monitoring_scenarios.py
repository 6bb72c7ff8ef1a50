"""The monitoring scenarios: a practice's feed stops, a coding change, new residents (ingest/synthetic/scenarios.py)."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest

from riskstrat.errors import RiskstratError, SettingsError
from riskstrat.ingest.reference import imd_lookup
from riskstrat.ingest.synthetic.generate import generate_population
from riskstrat.ingest.synthetic.settings import CodingChange, FeedStop, NewResidents, SyntheticSettings
from riskstrat.settings import load_settings

PEOPLE = 4000
SEED = 5
START = date(2025, 6, 1)
CODING_START = date(2024, 1, 1)  # two years of new records, enough to count at 4,000 people
CONDITION = CodingChange().condition


def _settings(**scenarios) -> SyntheticSettings:
    """The default settings with ``scenarios``, the simulated deployment off.

    (With it on, new residents are scored and compete for list places too, so other people's
    enrolments, and with them their caseload rows and admissions, change.)
    """
    return SyntheticSettings.model_validate({"deployment": {"enabled": False}, **scenarios})


@pytest.fixture(scope="module")
def base():
    return generate_population(_settings(), PEOPLE, seed=SEED)


def _assert_same(after, before, skip=()):
    for name in before.tables:
        if name not in skip:
            pd.testing.assert_frame_equal(after.tables[name], before.tables[name], obj=name)
    for name in before.truth:
        pd.testing.assert_frame_equal(after.truth[name], before.truth[name], obj=name)


@pytest.fixture(scope="module")
def stopped():
    settings = _settings(feed_stop=FeedStop(enabled=True, start_date=START))
    return generate_population(settings, PEOPLE, seed=SEED)


def test_feed_stop_silences_the_largest_practice_from_the_date(base, stopped):
    patients = base.tables["patients"]
    largest = patients["practice_code"].value_counts().idxmax()
    registered = set(patients.loc[patients["practice_code"] == largest, "person_id"])
    for name, column in (("gp_appointments", "appointment_date"), ("gp_medications", "issue_date")):
        before, after = base.tables[name], stopped.tables[name]
        theirs = before["person_id"].isin(registered)
        late = before[column] >= pd.Timestamp(START)
        assert (theirs & late).sum() > 100, name
        # From the date the practice sends nothing; everyone else (and its own earlier rows) is as before.
        assert not (after["person_id"].isin(registered) & (after[column] >= pd.Timestamp(START))).any()
        pd.testing.assert_frame_equal(after, before[~(theirs & late)].reset_index(drop=True), obj=name)
    _assert_same(stopped, base, skip=("gp_appointments", "gp_medications"))


def test_feed_stop_can_name_the_practice_and_tables(base):
    patients = base.tables["patients"]
    smallest = patients["practice_code"].value_counts().idxmin()
    settings = _settings(
        feed_stop=FeedStop(enabled=True, practice_code=smallest, tables=("apc_spells",), start_date=START)
    )
    after = generate_population(settings, PEOPLE, seed=SEED)
    registered = patients.loc[patients["practice_code"] == smallest, "person_id"]
    spells = after.tables["apc_spells"]
    assert not (
        spells["person_id"].isin(registered) & (spells["admission_date"] >= pd.Timestamp(START))
    ).any()
    _assert_same(after, base, skip=("apc_spells",))


def test_an_unknown_practice_is_refused_with_a_hint():
    settings = _settings(feed_stop=FeedStop(enabled=True, practice_code="Z99999"))
    with pytest.raises(RiskstratError) as error:
        generate_population(settings, 500, seed=1)
    assert "feed_stop.practice_code Z99999" in str(error.value) and "largest" in error.value.hint


def test_the_default_coding_change_hits_the_most_frequent_code(base):
    counts = base.tables["gp_diagnoses"]["condition"].value_counts()
    assert CONDITION == counts.idxmax() == "recorded_efi"


def test_coding_change_halves_the_conditions_new_records(base):
    settings = _settings(coding_change=CodingChange(enabled=True, start_date=CODING_START))
    after = generate_population(settings, PEOPLE, seed=SEED)
    before, kept = base.tables["gp_diagnoses"], after.tables["gp_diagnoses"]
    hit = _hit(before)
    assert hit.sum() > 30
    kept_hit = _hit(kept).sum()
    share_lost = 1 - kept_hit / hit.sum()
    # Binomial(n >= 30, 0.5): four standard errors are under 0.37.
    assert abs(share_lost - 0.5) < 4 * np.sqrt(0.25 / hit.sum()), share_lost
    # Every other record is exactly as it was, in order.
    pd.testing.assert_frame_equal(
        kept[~_hit(kept)].reset_index(drop=True), before[~hit].reset_index(drop=True)
    )
    _assert_same(after, base, skip=("gp_diagnoses",))


def _hit(frame: pd.DataFrame) -> pd.Series:
    return (frame["condition"] == CONDITION) & (frame["event_date"] >= pd.Timestamp(CODING_START))


@pytest.fixture(scope="module")
def arrived():
    settings = _settings(new_residents=NewResidents(enabled=True, start_date=START, share=0.1))
    return generate_population(settings, PEOPLE, seed=SEED)


def test_new_residents_register_in_the_window_aged_as_set_in_one_district(base, arrived):
    patients = arrived.tables["patients"]
    new = patients[~patients["person_id"].isin(base.tables["patients"]["person_id"])]
    assert len(new) == 400 and len(patients) == PEOPLE + 400
    assert patients["person_id"].is_unique
    window_end = pd.Timestamp(START) + pd.Timedelta(weeks=8)
    assert new["registration_start"].between(pd.Timestamp(START), window_end, inclusive="left").all()
    # Birth dates are the first of the month, so ages on arrival are within a month of the band.
    age = (new["registration_start"] - new["birth_date"]).dt.days / 365.25
    assert age.min() >= 70 and age.max() < 96 + 1 / 12
    assert age.mean() == pytest.approx(83, abs=1.5)
    lookup = imd_lookup()
    assert set(lookup.set_index("lsoa_code").loc[new["lsoa_code"], "lad_code"]) == {"E08000027"}
    # Their events start on arrival (GP records from before it follow them, as GP2GP transfers do).
    for name, column in (("gp_appointments", "appointment_date"), ("apc_spells", "admission_date")):
        events = arrived.tables[name].merge(new[["person_id", "registration_start"]], on="person_id")
        assert len(events) > 0 and (events[column] >= events["registration_start"]).all(), name


def test_new_residents_leave_everyone_else_unchanged(base, arrived):
    ids = set(base.tables["patients"]["person_id"])
    for name, frame in base.tables.items():
        mine = arrived.tables[name]
        if "person_id" not in frame.columns:
            # The social care returns received count events, new residents' too: the same returns arrive.
            keys = ["la_code", "reporting_period_start"]
            assert set(map(tuple, mine[keys].to_numpy())) == set(map(tuple, frame[keys].to_numpy())), name
            continue
        mine = mine[mine["person_id"].isin(ids)].reset_index(drop=True)
        pd.testing.assert_frame_equal(mine, frame, obj=name)
    for name, frame in base.truth.items():
        mine = arrived.truth[name]
        pd.testing.assert_frame_equal(
            mine[mine["person_id"].isin(ids)].reset_index(drop=True), frame, obj=name
        )
    spells = arrived.tables["apc_spells"]
    assert spells["spell_id"].is_unique


def test_new_residents_shift_the_age_mix_registered_after_the_window(base, arrived):
    def older_share(patients: pd.DataFrame) -> float:
        at = pd.Timestamp(date(2025, 9, 1))
        on_list = (patients["registration_start"] <= at) & ~(patients["registration_end"] <= at)
        age = (at - patients.loc[on_list, "birth_date"]).dt.days / 365.25
        return float((age >= 70).mean())

    assert older_share(arrived.tables["patients"]) > older_share(base.tables["patients"]) + 0.05


def test_a_young_band_models_a_housing_estate():
    settings = _settings(
        new_residents=NewResidents(enabled=True, share=0.05, age_min=0, age_max=40, lad_code="E08000028")
    )
    population = generate_population(settings, 1500, seed=2)
    patients = population.tables["patients"]
    new = patients.tail(75)  # the new residents' chunk comes after everyone else's
    assert len(patients) == 1575
    assert (new["registration_start"] >= pd.Timestamp(date(2025, 9, 1))).all()
    age = (new["registration_start"] - new["birth_date"]).dt.days / 365.25
    assert age.max() < 41 + 1 / 12 and age.mean() < 25


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("feed_stop: {tables: [gp_letters]}\n", "feed_stop.tables"),
        ("coding_change: {condition: hypertensoin}\n", "coding_change.condition"),
        ("coding_change: {share_lost: 1.5}\n", "coding_change.share_lost"),
        ("new_residents: {age_min: 90, age_max: 70}\n", "new_residents"),
        ("new_residents: {enabled: true, lad_code: E09000001}\n", "E09000001"),
        ("feed_stop: {enabled: true, start_date: 2030-01-01}\n", "feed_stop.start_date"),
    ],
)
def test_invalid_scenario_settings_fail_naming_the_key(tmp_path, text, key):
    path = tmp_path / "synthetic.yaml"
    path.write_text(text)
    with pytest.raises(SettingsError) as error:
        load_settings(path, SyntheticSettings)
    assert key in str(error.value)


def test_scenarios_are_off_by_default():
    settings = SyntheticSettings()
    assert not (
        settings.feed_stop.enabled or settings.coding_change.enabled or settings.new_residents.enabled
    )
