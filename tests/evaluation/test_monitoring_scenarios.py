"""The weekly monitoring raises each generator scenario's alarm within a stated number of weekly runs, and none on the clean default.

Contract extracts are written by the synthetic generator with the monitoring scenarios
(``ingest/synthetic/scenarios.py``) from 2025-09-01, and the weekly checks run at weekly data
dates as ``benchmarks/monitoring_scenarios.py`` runs them (which reports the same figures at
250,000 people). Run 1 is the first weekly run whose data date is on or after the start.
"""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest

from benchmarks import monitoring_scenarios as scenarios
from riskstrat.evaluation.monitoring_settings import MonitoringSettings

pytestmark = pytest.mark.slow

PEOPLE = 30_000
SEED = 42
START = scenarios.START
EXTRACT_DATE = date(2025, 12, 31)
SETTINGS = MonitoringSettings()


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return tmp_path_factory.mktemp("monitoring-scenarios")


@pytest.fixture(scope="module")
def clean(root):
    extract = scenarios.generate(root / "clean", PEOPLE, SEED, scenarios.scenario_settings("clean"))
    return extract, scenarios.open_extract(extract)


@pytest.fixture(scope="module")
def broken(root):
    """The largest practice's GP feed stops, and half the eFI scores recorded from the start are lost (the defaults)."""
    settings = scenarios.scenario_settings(
        "feed_stop", {"coding_change": {"enabled": True, "start_date": START}}
    )
    extract = scenarios.generate(root / "broken", PEOPLE, SEED, settings)
    return extract, scenarios.open_extract(extract)


def _runs(tables, first: date, last: date):
    return scenarios.feed_health_runs(tables, scenarios.weekly_dates(first, last), SETTINGS.feed_health)


@pytest.fixture(scope="module")
def broken_runs(broken):
    """Weekly feed-health runs from two weeks before the start to five weeks after it."""
    return _runs(broken[1], date(2025, 8, 24), date(2025, 10, 5))


def test_the_clean_default_raises_no_feed_alarm_in_26_weekly_runs(clean):
    _, tables = clean
    runs = _runs(tables, date(2025, 7, 6), EXTRACT_DATE)
    assert len(runs) == 26
    raised = [(run.data_date, alarm.message) for run in runs for alarm in run.alarms]
    assert raised == []


def test_a_stopped_practice_feed_is_critical_in_the_first_weekly_run(broken, broken_runs):
    extract, runs = broken[0], broken_runs
    patients = pd.read_parquet(extract / "patients.parquet")
    largest = patients["practice_code"].value_counts().idxmax()
    assert not any(run.alarms for run in runs if run.data_date < START)
    assert scenarios.weeks_to_alarm(runs, START, "critical", "feed", "gp_appointments") == 1
    assert scenarios.weeks_to_alarm(runs, START, "critical", "feed", "gp_medications") == 1
    first = next(run for run in runs if run.data_date >= START)
    stopped = [a for a in first.alarms if a.subject in ("gp_appointments", "gp_medications")]
    assert all(largest in a.message and "0%" in a.message for a in stopped), [a.message for a in stopped]


def test_a_coding_change_alarms_on_its_code_group_within_five_weekly_runs(broken_runs):
    # A halved code group is clear once the pooled recent weeks are mostly after the change
    # (run 4 at this size and seed); a single week of about 23 records against 46 is not.
    runs = broken_runs
    weeks = scenarios.weeks_to_alarm(runs, START, "warning", "feed", "gp_diagnoses.condition")
    assert weeks is not None and weeks <= 5
    alarm = next(
        a
        for run in runs
        for a in run.alarms
        if a.subject == "gp_diagnoses.condition" and run.data_date >= START
    )
    assert "'recorded_efi'" in alarm.message and alarm.figures["direction"] == "drop"


def test_each_run_counts_only_events_up_to_its_data_date(broken):
    """The extract holds events up to 2025-12-31; a run at an earlier data date must see the extract as it was then."""
    _, tables = broken
    day = date(2025, 9, 14)
    full = scenarios.feed_health_run(tables, day, SETTINGS.feed_health)
    then = scenarios.feed_health_run(scenarios.as_of_extract(tables, day), day, SETTINGS.feed_health)
    pd.testing.assert_frame_equal(full.cells, then.cells)
    pd.testing.assert_frame_equal(full.coverage, then.coverage)
    assert [a.message for a in full.alarms] == [a.message for a in then.alarms]


@pytest.fixture(scope="module")
def arrivals(root):
    """20% more people, aged 70-95, register in Dudley over the 8 weeks from the start; drift at each week."""
    extract = scenarios.generate(root / "new", PEOPLE, SEED, scenarios.scenario_settings("new_residents"))
    cache = root / "new" / "features"
    proxy = scenarios.fit_proxy(
        scenarios.feature_matrix(extract, scenarios.PROXY_AS_OF, cache, outcomes=True)
    )
    dates = scenarios.weekly_dates(date(2025, 8, 17), date(2025, 11, 9))
    runs, psi = scenarios.drift_runs(extract, dates, cache, proxy, SETTINGS.drift)
    return runs, psi


def test_new_older_residents_raise_a_drift_warning_within_six_runs_and_critical_within_ten(arrivals):
    runs, psi = arrivals
    assert not any(run.alarms for run in runs if run.data_date < START)
    warning = scenarios.weeks_to_alarm(runs, START, "warning", "drift")
    critical = scenarios.weeks_to_alarm(runs, START, "critical", "drift")
    assert warning is not None and warning <= 6
    assert critical is not None and critical <= 10
    last = psi[psi["data_date"] == runs[-1].data_date].set_index("name")["psi"]
    assert last["age"] == last.max()
