"""Feed health: hand-counted weekly volumes on DuckDB, and each alarm on a fixture whose answer is known."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from riskstrat.evaluation.alarms import worst
from riskstrat.evaluation.disclosure import undisclosed_counts
from riskstrat.evaluation.feed_health import (
    feed_health,
    registered_by_practice,
    source_coverage,
    week_ends,
    weekly_event_counts,
)
from riskstrat.evaluation.monitoring_settings import FeedHealthSettings
from riskstrat.evaluation.simulation import upper_bound
from riskstrat.features.backends import connect_duckdb, connect_pyspark, register_frames, spark_session

DATA_DATE = date(2025, 12, 28)
SETTINGS = FeedHealthSettings(tables=["gp_appointments"])
WEEKS = SETTINGS.baseline_weeks + SETTINGS.recent_weeks
ENDS = week_ends(DATA_DATE, WEEKS)


def test_week_ends_are_newest_first_seven_days_apart():
    assert week_ends(DATA_DATE, 3) == [date(2025, 12, 28), date(2025, 12, 21), date(2025, 12, 14)]


# --- counting on DuckDB -------------------------------------------------------------------------


@pytest.fixture(
    scope="module", params=["duckdb", pytest.param("pyspark", marks=[pytest.mark.slow, pytest.mark.spark])]
)
def engine(request):
    """DuckDB, then PySpark (the session already running, else a local one: left running for other tests)."""
    if request.param == "pyspark":
        pytest.importorskip("pyspark")
        session = spark_session("local[2]", "riskstrat-tests")
        session.conf.set("spark.sql.shuffle.partitions", "1")
        return connect_pyspark(session)
    return connect_duckdb()


@pytest.fixture(scope="module")
def tiny_extract(engine):
    """Three people at two practices; every event placed by hand around the week boundaries."""
    d = DATA_DATE
    patients = pd.DataFrame(
        {
            "person_id": ["a", "b", "c"],
            "birth_date": [date(1950, 1, 1)] * 3,
            "sex": ["1", "2", "1"],
            "lsoa_code": ["E01000001"] * 3,
            "practice_code": ["P1", "P1", "P2"],
            "registration_start": [date(2000, 1, 1), date(2025, 12, 20), None],
            "registration_end": [None, None, date(2025, 12, 16)],
        }
    )
    appointments = pd.DataFrame(
        {
            "person_id": ["a", "a", "a", "b", "c", "c", "a"],
            # d (week 0), d-6 (week 0), d-7 (week 1), d-13 (week 1, but b registered on d-8: an earlier
            # practice's record, never counted), d-14 (week 2), d-20 (week 2), d+1 (future: never)
            "appointment_date": [
                d,
                d - timedelta(6),
                d - timedelta(7),
                d - timedelta(13),
                d - timedelta(14),
                d - timedelta(20),
                d + timedelta(1),
            ],
        }
    )
    diagnoses = pd.DataFrame(
        {
            "person_id": ["a", "b", "c", "a"],
            "event_date": [d - timedelta(1), d - timedelta(2), d - timedelta(8), d - timedelta(400)],
            "condition": ["diabetes", "diabetes", "copd", "copd"],
        }
    )
    attendances = pd.DataFrame(
        {
            "person_id": ["a", "c"],
            # 23:30 on d-7 is in week 1 (the date is what counts), 00:10 on d-6 in week 0.
            "attendance_id": ["x1", "x2"],
            "arrival_datetime": [datetime(2025, 12, 21, 23, 30), datetime(2025, 12, 22, 0, 10)],
            "disposal": ["discharged", "admitted"],
        }
    )
    tables = register_frames(
        engine,
        {
            "patients": patients,
            "gp_appointments": appointments,
            "gp_diagnoses": diagnoses,
            "ae_attendances": attendances,
        },
    )
    return tables


def test_weekly_event_counts_match_hand_counts(tiny_extract):
    counts = weekly_event_counts(
        tiny_extract,
        DATA_DATE,
        3,
        {"gp_diagnoses": "condition"},
        names=["gp_appointments", "gp_diagnoses", "ae_attendances"],
    )
    got = {
        (r.table, r.practice_code, r.code_group, r.week_end): r.events for r in counts.itertuples(index=False)
    }
    d0, d1, d2 = ENDS[:3]
    assert got == {
        ("gp_appointments", "P1", None, d0): 2,
        ("gp_appointments", "P1", None, d1): 1,
        ("gp_appointments", "P2", None, d2): 2,
        ("gp_diagnoses", "P1", None, d0): 2,
        ("gp_diagnoses", "P2", None, d1): 1,
        ("gp_diagnoses", None, "diabetes", d0): 2,
        ("gp_diagnoses", None, "copd", d1): 1,
        ("ae_attendances", "P1", None, d1): 1,
        ("ae_attendances", "P2", None, d0): 1,
    }
    assert counts["events"].dtype == "int64"


def test_registered_by_practice_follows_registration_dates(tiny_extract):
    frame = registered_by_practice(tiny_extract, [DATA_DATE, DATA_DATE - timedelta(14)])
    got = {(r.practice_code, r.week_end): r.registered for r in frame.itertuples(index=False)}
    # b joined P1 on 2025-12-20; c left P2 on 2025-12-16.
    assert got == {("P1", DATA_DATE): 2, ("P1", date(2025, 12, 14)): 1, ("P2", date(2025, 12, 14)): 1}


def test_source_coverage_counts_registered_people_with_a_record(tiny_extract):
    coverage = source_coverage(
        tiny_extract, DATA_DATE, baseline_days=14, names=["gp_appointments", "gp_diagnoses"]
    )
    rows = coverage.set_index("table")
    # At the data date a and b are registered (c left); both have appointments in the year.
    assert rows.loc["gp_appointments", "registered"] == 2
    assert rows.loc["gp_appointments", "people_with_record"] == 2
    assert rows.loc["gp_appointments", "latest_event"] == DATA_DATE  # the future appointment is ignored
    assert rows.loc["gp_diagnoses", "latest_event"] == DATA_DATE - timedelta(1)
    assert rows.loc["gp_diagnoses", "days_since_latest"] == 1
    # Baseline 14 days earlier (2025-12-14): a and c registered (b joined later).
    assert rows.loc["gp_appointments", "baseline_registered"] == 2
    assert (
        rows.loc["gp_appointments", "baseline_with_record"] == 1
    )  # c, on 12-08 and 12-14; a's are all later
    assert rows.loc["gp_appointments", "baseline_share"] == 0.5
    # a's diagnosis is 400 days old (outside the year); c's copd on 12-20 is after the baseline date.
    assert rows.loc["gp_diagnoses", "baseline_with_record"] == 0


# --- judging volumes ----------------------------------------------------------------------------------


def _stable_run(
    seed: int,
    practices: int = 12,
    rate: float = 0.08,
    phi: float = 1.0,
    tables: tuple[str, ...] = ("gp_appointments",),
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Counts and registered people of practices with stable (Poisson or over-dispersed) weekly volumes."""
    rng = np.random.default_rng(seed)
    sizes = rng.integers(400, 6000, practices)
    codes = np.array([f"M{85000 + i}" for i in range(practices)], dtype=object)
    weeks = len(ENDS)
    registered = pd.DataFrame(
        {
            "practice_code": np.repeat(codes, weeks),
            "week_end": np.tile(np.array(ENDS, dtype=object), practices),
            "registered": np.repeat(sizes, weeks).astype("int64"),
        }
    )
    frames = []
    for table in tables:
        mean = np.repeat(rate * sizes.astype(float), weeks)
        if phi > 1:
            mean = rng.gamma(mean / (phi - 1), phi - 1)
        frames.append(
            registered[["practice_code", "week_end"]].assign(
                table=table, code_group=None, events=rng.poisson(mean)
            )
        )
    counts = pd.concat(frames, ignore_index=True)[
        ["table", "practice_code", "code_group", "week_end", "events"]
    ]
    return counts, registered


def _coverage(latest: date = DATA_DATE, share: float = 0.9, baseline_share: float = 0.9) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "table": ["gp_appointments"],
            "registered": [1000],
            "people_with_record": [int(share * 1000)],
            "share": [share],
            "baseline_date": [DATA_DATE - timedelta(182)],
            "baseline_registered": [1000],
            "baseline_with_record": [int(baseline_share * 1000)],
            "baseline_share": [baseline_share],
            "latest_event": [latest],
            "days_since_latest": [(DATA_DATE - latest).days],
        }
    )


def _scale(counts: pd.DataFrame, practice: str, factor: float, weeks: int, seed: int = 0) -> pd.DataFrame:
    """``practice``'s volumes in its newest ``weeks`` weeks, thinned to ``factor`` of what they were."""
    rng = np.random.default_rng(seed)
    counts = counts.copy()
    hit = (counts["practice_code"] == practice) & counts["week_end"].isin(ENDS[:weeks])
    counts.loc[hit, "events"] = rng.binomial(counts.loc[hit, "events"], factor)
    return counts


def test_stable_feeds_raise_no_alarm():
    counts, registered = _stable_run(seed=1)
    result = feed_health(counts, registered, _coverage(), DATA_DATE, SETTINGS)
    assert result.alarms == []
    assert set(result.cells["status"]) == {"checked"}
    assert len(result.cells) == 12 * (SETTINGS.recent_weeks + 1)


def test_a_practice_whose_appointments_stop_is_critical_and_named():
    counts, registered = _stable_run(seed=2)
    stopped = _scale(counts, "M85003", 0.0, weeks=2)
    result = feed_health(stopped, registered, _coverage(), DATA_DATE, SETTINGS)
    assert worst(result.alarms) == "critical"
    (alarm,) = result.alarms
    assert alarm.check == "feed" and alarm.subject == "gp_appointments"
    assert alarm.figures["direction"] == "drop"
    assert [item["name"] for item in alarm.figures["items"]] == ["M85003"]
    assert alarm.message.startswith(
        "gp_appointments: 1 practice (M85003) recorded 0% of its usual weekly volume"
    )
    assert "the weeks ending 2025-12-21 and 2025-12-28" in alarm.message
    usual = round(alarm.figures["items"][0]["usual_per_week"])
    assert f"(usual {usual:,} a week)" in alarm.message


def test_a_sixty_percent_drop_is_a_warning():
    counts, registered = _stable_run(seed=3)
    dropped = _scale(counts, "M85005", 0.4, weeks=4)
    result = feed_health(dropped, registered, _coverage(), DATA_DATE, SETTINGS)
    (alarm,) = result.alarms
    assert alarm.level == "warning" and alarm.figures["items"][0]["name"] == "M85005"
    assert 0.3 < alarm.figures["items"][0]["ratio"] < 0.5


def test_two_practices_make_one_alarm_worst_first():
    counts, registered = _stable_run(seed=4)
    counts = _scale(_scale(counts, "M85001", 0.0, weeks=1), "M85002", 0.05, weeks=1, seed=1)
    result = feed_health(counts, registered, _coverage(), DATA_DATE, SETTINGS)
    (alarm,) = result.alarms
    assert [item["name"] for item in alarm.figures["items"]] == ["M85001", "M85002"]
    assert alarm.message.startswith("gp_appointments: 2 practices (M85001 and M85002) recorded 0% and ")
    assert "the week ending 2025-12-28" in alarm.message


def test_a_spike_is_reported_as_a_spike():
    counts, registered = _stable_run(seed=5)
    hit = (counts["practice_code"] == "M85000") & (counts["week_end"] == ENDS[0])
    counts.loc[hit, "events"] *= 6
    (alarm,) = feed_health(counts, registered, _coverage(), DATA_DATE, SETTINGS).alarms
    assert alarm.level == "critical" and alarm.figures["direction"] == "spike"


def test_a_new_practice_is_reported_not_alarmed():
    counts, registered = _stable_run(seed=6)
    new = registered["practice_code"] == "M85007"
    registered.loc[new & registered["week_end"].isin(ENDS[6:]), "registered"] = 0
    counts = counts[~((counts["practice_code"] == "M85007") & counts["week_end"].isin(ENDS[6:]))]
    counts = _scale(counts, "M85007", 0.1, weeks=1)  # would be critical with a baseline
    result = feed_health(counts, registered, _coverage(), DATA_DATE, SETTINGS)
    assert result.alarms == []
    assert set(result.cells.loc[result.cells["practice_code"] == "M85007", "status"]) == {"no baseline"}


def test_a_condition_halved_by_a_coding_change_alarms_ics_wide():
    counts, registered = _stable_run(seed=7)
    rng = np.random.default_rng(7)
    people = registered.groupby("week_end")["registered"].sum()
    rows = []
    for condition, rate in [("diabetes", 0.004), ("copd", 0.002), ("asthma", 0.003)]:
        for k, day in enumerate(ENDS):
            halved = condition == "diabetes" and k < 3
            rows.append(
                (
                    "gp_diagnoses",
                    None,
                    condition,
                    day,
                    rng.poisson(rate * people[day] * (0.5 if halved else 1)),
                )
            )
    groups = pd.DataFrame(rows, columns=counts.columns)
    settings = FeedHealthSettings(tables=["gp_appointments", "gp_diagnoses"])
    result = feed_health(pd.concat([counts, groups]), registered, _coverage(), DATA_DATE, settings)
    (alarm,) = result.alarms
    assert alarm.subject == "gp_diagnoses.condition" and alarm.level == "warning"
    assert alarm.message.startswith("gp_diagnoses: condition 'diabetes' recorded ")
    assert "usual weekly volume ICS-wide" in alarm.message
    # gp_diagnoses per practice have no rows at all here: expected is 0, so nothing is judged.
    assert set(result.cells.loc[result.cells["table"] == "gp_diagnoses", "status"]) <= {
        "checked",
        "too few expected",
    }


def test_a_whole_table_missing_this_run_alarms_every_practice():
    counts, registered = _stable_run(seed=8, practices=5)
    counts = counts[~counts["week_end"].isin(ENDS[:2])]
    (alarm,) = feed_health(counts, registered, _coverage(), DATA_DATE, SETTINGS).alarms
    assert alarm.level == "critical" and len(alarm.figures["items"]) == 5


def test_a_stale_source_is_critical():
    counts, registered = _stable_run(seed=9)
    coverage = _coverage(latest=DATA_DATE - timedelta(20))
    alarms = feed_health(counts, registered, coverage, DATA_DATE, SETTINGS).alarms
    stale = [a for a in alarms if a.check == "stale"]
    assert len(stale) == 1 and stale[0].level == "critical"
    assert "2025-12-08, 20 days before the data date 2025-12-28" in stale[0].message


def test_falling_coverage_is_a_warning():
    counts, registered = _stable_run(seed=10)
    alarms = feed_health(
        counts, registered, _coverage(share=0.6, baseline_share=0.9), DATA_DATE, SETTINGS
    ).alarms
    (alarm,) = alarms
    assert alarm.check == "coverage" and alarm.level == "warning"
    assert "60% of registered people" in alarm.message and "down from 90%" in alarm.message


@pytest.mark.slow
@pytest.mark.parametrize("phi", [1.0, 3.0])
def test_stable_runs_keep_false_alarms_within_the_stated_rate(phi):
    """Over 200 stable runs the share with any alarm stays within ``false_alarm_rate``.

    Ratio thresholds near 1 leave the statistical test alone to decide, with a rate
    of 0.1 so the check has power. Fails only when the data show the rate is above it:
    the one-sided 99.9% lower bound of the observed share must not exceed it.
    """
    settings = FeedHealthSettings(
        tables=["gp_appointments"], warning_ratio=0.99, critical_ratio=0.5, false_alarm_rate=0.1
    )
    runs, alarmed = 200, 0
    for seed in range(runs):
        counts, registered = _stable_run(seed=1000 + seed, practices=10, phi=phi)
        alarmed += bool(feed_health(counts, registered, _coverage(), DATA_DATE, settings).alarms)
    lower = 1 - upper_bound(runs - alarmed, runs, 0.999)
    assert lower <= settings.false_alarm_rate, f"{alarmed} of {runs} stable runs alarmed"


def test_alarm_counts_pass_disclosure_control():
    counts, registered = _stable_run(seed=11)
    newest = (counts["practice_code"] == "M85004") & (counts["week_end"] == ENDS[0])
    counts.loc[newest, "events"] = 3  # 1-7 events: never shown exactly
    (alarm,) = feed_health(counts, registered, _coverage(), DATA_DATE, SETTINGS).alarms
    (item,) = alarm.figures["items"]
    assert item["events"] == "*" and item["ratio"] == "*"
    assert "recorded under " in alarm.message and "3 " not in alarm.message.split("(usual")[0]
    assert undisclosed_counts(alarm.as_dict()) == []


def test_a_source_with_no_rows_is_not_supplied_and_never_alarms():
    """An ICS with no community feed supplies an empty table (or none): shown as not supplied, no alarm.

    A table with rows but none recent is a stopped feed and stays critical.
    """
    patients = pd.DataFrame(
        {
            "person_id": ["a", "b"],
            "birth_date": [date(1950, 1, 1)] * 2,
            "sex": ["1", "2"],
            "lsoa_code": ["E01000001"] * 2,
            "practice_code": ["P1", "P1"],
            "registration_start": [date(2000, 1, 1)] * 2,
            "registration_end": [None, date(2030, 1, 1)],
        }
    )
    contacts = pd.DataFrame(
        {
            "person_id": pd.Series([], dtype="string"),
            "contact_date": pd.Series([], dtype="datetime64[ns]"),
            "service": pd.Series([], dtype="string"),
        }
    )
    appointments = pd.DataFrame({"person_id": ["a"], "appointment_date": [DATA_DATE - timedelta(60)]})
    tables = register_frames(
        connect_duckdb(),
        {"patients": patients, "community_contacts": contacts, "gp_appointments": appointments},
    )
    names = ["community_contacts", "apc_spells", "gp_appointments"]  # apc_spells: no file at all
    coverage = source_coverage(tables, DATA_DATE, baseline_days=14, names=names)
    supplied = dict(zip(coverage["table"], coverage["supplied"], strict=True))
    assert supplied == {"community_contacts": False, "apc_spells": False, "gp_appointments": True}
    settings = FeedHealthSettings(tables=["community_contacts", "gp_appointments"])
    counts = weekly_event_counts(tables, DATA_DATE, WEEKS, {}, ["community_contacts", "gp_appointments"])
    registered = registered_by_practice(tables, ENDS)
    alarms = feed_health(counts, registered, coverage, DATA_DATE, settings).alarms
    assert [(a.check, a.level, a.subject) for a in alarms] == [("stale", "critical", "gp_appointments")]
    assert "holds no events" not in " ".join(a.message for a in alarms)


def test_an_extract_older_than_the_weeks_lists_is_a_warning_not_a_stop():
    counts, registered = _stable_run(seed=12)
    week = date(2026, 11, 30)  # lists for this week on data as at 2025-12-28
    alarms = feed_health(counts, registered, _coverage(), DATA_DATE, SETTINGS, week=week).alarms
    (alarm,) = alarms
    assert (alarm.check, alarm.level, alarm.subject) == ("stale", "warning", "extract")
    assert "the data are 337 days older than this week's lists" in alarm.message
    assert alarm.figures["days_old"] == 337
    assert worst(alarms) == "warning"  # only critical alarms stop a run
    # The usual gap (data date a day or a few before the Monday) and the setting's own edge: no alarm.
    assert (
        feed_health(counts, registered, _coverage(), DATA_DATE, SETTINGS, week=date(2025, 12, 29)).alarms
        == []
    )
    edge = DATA_DATE + timedelta(SETTINGS.max_data_age_days)
    assert feed_health(counts, registered, _coverage(), DATA_DATE, SETTINGS, week=edge).alarms == []
