"""The generator's simulated past deployment: lists, enrolment, a known effect, its truth and files."""

from __future__ import annotations

import json
from datetime import date, timedelta

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from riskstrat.errors import RiskstratError, SettingsError
from riskstrat.ingest.contract import EMERGENCY_ADMISSION_METHODS
from riskstrat.ingest.synthetic import deployment as dep
from riskstrat.ingest.synthetic.generate import generate_population
from riskstrat.ingest.synthetic.settings import SyntheticSettings
from riskstrat.ingest.synthetic.timeline import to_day
from riskstrat.settings import load_settings

PEOPLE = 6000
SEED = 21
CHUNK = 2500  # several chunks, so lists need every chunk's scores


def _settings(**deployment) -> SyntheticSettings:
    return SyntheticSettings(chunk_size=CHUNK, deployment=deployment)


@pytest.fixture(scope="module")
def no_effect():
    return generate_population(_settings(), PEOPLE, SEED)


@pytest.fixture(scope="module")
def half_effect():
    return generate_population(_settings(admission_effect=0.5), PEOPLE, SEED)


@pytest.fixture(scope="module")
def switched_off():
    return generate_population(_settings(enabled=False), PEOPLE, SEED)


def _periods(population) -> pd.DataFrame:
    enrolments = population.deployment.enrolments
    return pd.DataFrame(
        {
            "person_id": enrolments["person_id"].astype(str),
            "start": enrolments["start_day"],
            "end": enrolments["end_day"],
        }
    )


def _inside(person_id: pd.Series, day: np.ndarray, periods: pd.DataFrame, after: int = 0) -> np.ndarray:
    """Whether each (person, day) lies in [start, end + after) of one of the person's enrolments."""
    frame = pd.DataFrame(
        {"i": np.arange(len(person_id)), "person_id": person_id.astype(str).to_numpy(), "day": day}
    )
    pairs = frame.merge(periods, on="person_id")
    hit = pairs.loc[(pairs["day"] >= pairs["start"]) & (pairs["day"] < pairs["end"] + after), "i"]
    out = np.zeros(len(person_id), dtype=bool)
    out[hit.to_numpy()] = True
    return out


def _days(values: pd.Series) -> np.ndarray:
    return values.to_numpy(dtype="datetime64[D]").astype(np.int64)


# ----------------------------------------------------------------------------- settings


def test_deployment_is_on_by_default_with_no_effect_and_ends_before_the_demo_weeks():
    settings = SyntheticSettings()
    assert settings.deployment.enabled and settings.deployment.admission_effect == 0.0
    weeks = dep.deployment_weeks(settings.deployment, settings.extract_date)
    assert weeks[0] == date(2025, 1, 6) and weeks[-1] == date(2025, 12, 22)
    assert all(w.weekday() == 0 for w in weeks) and len(weeks) == 51
    first_demo_week = date(2025, 12, 29)  # pipelines/demo.py demo_weeks(2025-12-31)
    assert weeks[-1] < first_demo_week and dep.data_date_of(weeks[-1]) < date(2025, 12, 24)


@pytest.mark.parametrize(
    ("deployment", "message"),
    [
        ({"start_week": "2025-01-07"}, "is a Tuesday; give a Monday"),
        ({"start_week": "2026-01-05"}, "is after its last week 2025-12-22"),
        ({"end_week": "2025-12-29"}, "must be before the week of extract_date"),
        ({"lottery_places": 60}, "lottery_places (60) is more than capacity_people (50)"),
        ({"lottery_places": 5, "lottery_pool": 5}, "lottery_pool (5) must be larger than lottery_places (5)"),
        ({"admission_effect": 1.5}, "admission_effect"),
    ],
)
def test_an_invalid_deployment_fails_with_a_clear_message(tmp_path, deployment, message):
    path = tmp_path / "synthetic.yaml"
    lines = "\n".join(f"  {key}: {value}" for key, value in deployment.items())
    path.write_text(f"deployment:\n{lines}\n")
    with pytest.raises(SettingsError) as caught:
        load_settings(path, SyntheticSettings)
    assert "deployment" in caught.value.message and message in caught.value.message


# ----------------------------------------------------------------------------- events


def test_no_effect_leaves_every_event_as_without_the_deployment(no_effect, switched_off):
    for name, frame in switched_off.tables.items():
        mine = no_effect.tables[name]
        if name == "caseload":
            added = mine["team"].str.endswith(dep.TEAM_SUFFIX).to_numpy()
            assert added.sum() > 0
            mine = mine.loc[~added]
        pd.testing.assert_frame_equal(mine.reset_index(drop=True), frame.reset_index(drop=True))
    for name in ("risk", "people"):
        pd.testing.assert_frame_equal(no_effect.truth[name], switched_off.truth[name])
    assert "deployment" not in switched_off.truth and switched_off.deployment is None


def test_an_effect_drops_about_that_share_of_enrolled_admissions_and_nothing_else(no_effect, half_effect):
    periods = _periods(no_effect)
    pd.testing.assert_frame_equal(no_effect.deployment.assignments, half_effect.deployment.assignments)
    for name in ("patients", "gp_diagnoses", "gp_appointments", "community_contacts", "opt_outs", "caseload"):
        pd.testing.assert_frame_equal(no_effect.tables[name], half_effect.tables[name])
    before, after = no_effect.tables["apc_spells"], half_effect.tables["apc_spells"]
    assert set(after["spell_id"]) <= set(before["spell_id"])  # common random numbers: a subset, same IDs
    dropped = before.loc[~before["spell_id"].isin(after["spell_id"])]
    kept = before.loc[before["spell_id"].isin(after["spell_id"])]
    pd.testing.assert_frame_equal(kept.reset_index(drop=True), after.reset_index(drop=True))
    assert dropped["admission_method"].isin(EMERGENCY_ADMISSION_METHODS).all()
    # Each dropped spell began inside an enrolment, or is a readmission within 30 days of a discharge after one.
    assert _inside(dropped["person_id"], _days(dropped["admission_date"]), periods, after=60).all()
    emergency = before.loc[before["admission_method"].isin(EMERGENCY_ADMISSION_METHODS)]
    inside = _inside(emergency["person_id"], _days(emergency["admission_date"]), periods)
    share = 1 - emergency.loc[inside, "spell_id"].isin(after["spell_id"]).mean()
    assert inside.sum() > 150 and 0.4 < share < 0.6
    outside = emergency.loc[~_inside(emergency["person_id"], _days(emergency["admission_date"]), periods, 60)]
    assert outside["spell_id"].isin(after["spell_id"]).all()
    ae_before, ae_after = no_effect.tables["ae_attendances"], half_effect.tables["ae_attendances"]
    gone = ae_before.loc[~ae_before["attendance_id"].isin(ae_after["attendance_id"])]
    assert len(gone) > 0 and (gone["disposal"] == "admitted").all()
    assert _inside(gone["person_id"], _days(gone["arrival_datetime"]), periods).all()


# ----------------------------------------------------------------------------- lists and enrolment


def test_lists_take_each_mdts_capacity_by_score_from_eligible_people(no_effect):
    deployment = no_effect.deployment
    settings = deployment.settings
    record = deployment.assignments
    mdts = set(no_effect.practices["neighbourhood"])
    assert set(record["mdt"]) == mdts  # one MDT per neighbourhood, named as resolve_mdts names them
    listed = record.loc[record["listed"]]
    assert (listed.groupby(["week", "mdt"]).size() == settings.capacity_people).all()
    assert listed.groupby(["week", "mdt"]).ngroups == len(deployment.weeks) * len(mdts)
    for _, rows in record.groupby(["week", "mdt"]):
        ranks = rows["eligible_rank"].to_numpy()
        assert (ranks == np.arange(1, len(rows) + 1)).all()
        assert (np.diff(rows["probability"].to_numpy()) <= 0).all()
        assert (rows["listed"] == (rows["eligible_rank"] <= settings.capacity_people)).all()
        assert len(rows) == settings.capacity_people + settings.people_below
        assert (rows["cutoff_probability"] == rows["probability"].iloc[settings.capacity_people - 1]).all()
    # Practice belongs to the MDT's neighbourhood; adults only.
    neighbourhood = no_effect.practices.set_index("practice_code")["neighbourhood"]
    assert (record["practice_code"].map(neighbourhood) == record["mdt"]).all()
    births = no_effect.tables["patients"].set_index("person_id")["birth_date"]
    age = (pd.to_datetime(record["data_date"]) - record["person_id"].map(births)).dt.days / 365.25
    assert (age >= settings.min_age - 1 / 12).all()  # birth dates are month-truncated in the extract


def test_enrolled_people_are_off_the_lists_while_enrolled_and_on_the_caseload(no_effect):
    deployment = no_effect.deployment
    weeks = list(deployment.weeks)
    enrolments = deployment.enrolments
    record = deployment.assignments
    index = {w: k for k, w in enumerate(weeks)}
    for person, rows in enrolments.groupby("person_id"):
        listed_at = [index[w] for w in record.loc[record["person_id"] == person, "week"]]
        for enrolled_at in rows["week"].map(index):
            blocked = range(enrolled_at + 1, enrolled_at + 1 + deployment.settings.enrolment_weeks)
            assert not set(listed_at) & set(blocked)
    share = record.loc[record["listed"], "enrolled"].mean()
    assert 0.18 < share < 0.32  # enrolment_share 0.25
    assert not record.loc[~record["listed"], "enrolled"].any()
    starts = enrolments["start_day"] - enrolments["week"].map(to_day)
    assert starts.between(1, 4).all()
    assert (enrolments["end_day"] - enrolments["start_day"] == 7 * deployment.settings.enrolment_weeks).all()
    caseload = no_effect.tables["caseload"]
    ours = caseload.loc[caseload["team"].str.endswith(dep.TEAM_SUFFIX)]
    expected = enrolments.assign(team=enrolments["mdt"] + dep.TEAM_SUFFIX)
    shown = ours.merge(expected, on=["person_id", "team"])
    shown = shown.loc[_days(shown["start_date"]) == shown["start_day"]]
    assert len(shown) == len(ours) and len(ours) >= 0.95 * len(enrolments)  # some died before starting
    extract = pd.Timestamp(SyntheticSettings().extract_date)
    assert (ours["end_date"].isna() | (ours["end_date"] < extract)).all()


def test_decisions_record_enrolment_as_added_to_caseload(no_effect):
    deployment = no_effect.deployment
    decisions = deployment.decisions()
    assert list(decisions.columns) == list(dep.DECISION_COLUMNS)
    listed = deployment.assignments.loc[deployment.assignments["listed"]]
    assert len(decisions) == len(listed)
    assert (decisions["source_digest"] == dep.DECISION_SOURCE).all()
    assert set(decisions["decision"]) == {dep.ENROLLED, dep.NOT_ENROLLED}
    assert (decisions["decision"] == dep.ENROLLED).sum() == len(deployment.enrolments)
    first = decisions.iloc[0]
    assert first["imported_at"] == pd.Timestamp(f"{first['week']} 18:00")


def test_the_lottery_fills_the_last_places_by_the_real_lists_draw():
    from riskstrat.worklists.selection import draw_lottery, lottery_seed

    population = generate_population(
        SyntheticSettings(chunk_size=CHUNK, deployment={"lottery_places": 5, "lottery_pool": 10}), 3000, 5
    )
    record = population.deployment.assignments
    assert (record.loc[record["listed"]].groupby(["week", "mdt"]).size() == 50).all()
    for (week, mdt), rows in record.groupby(["week", "mdt"]):
        pool = rows.loc[rows["lottery_pool"]]
        assert (pool["eligible_rank"] == np.arange(46, 56)).all()
        assert pool["lottery_won"].sum() == 5
        assert (rows.loc[rows["eligible_rank"] <= 45, "listed"]).all()
        assert (
            rows.loc[rows["eligible_rank"] > 45, "listed"]
            == rows.loc[rows["eligible_rank"] > 45, "lottery_won"]
        ).all()
        seed = lottery_seed(5, week, mdt)
        assert (pool["lottery_seed"] == seed).all() and (
            rows.loc[~rows["lottery_pool"], "lottery_seed"] == ""
        ).all()
        expected = draw_lottery(pool["person_id"].reset_index(drop=True), 5, seed)
        assert (pool["lottery_won"].to_numpy() == expected).all()


# ----------------------------------------------------------------------------- truth


def test_truth_without_an_effect_has_equal_probabilities(no_effect):
    truth = no_effect.truth["deployment"]
    assert list(truth.columns) == list(dep.TRUTH_COLUMNS)
    assert len(truth) == len(no_effect.deployment.assignments)
    assert (truth["p_none"] == truth["p_actual"]).all()
    assert truth["p_none"].between(0, 1).all() and truth["p_none"].gt(0).all()


def test_truth_with_an_effect_lowers_risk_only_while_enrolled(no_effect, half_effect):
    truth = half_effect.truth["deployment"]
    record = half_effect.deployment.assignments
    np.testing.assert_array_equal(truth["p_none"], no_effect.truth["deployment"]["p_none"])
    lower = truth["p_actual"] < truth["p_none"]
    assert (truth["p_actual"] <= truth["p_none"]).all()
    assert lower[truth["enrolled"]].all()  # enrolment starts a day or few after the data date
    # Anyone else is lower only when enrolled later within the window (listed again, or from below the cut-off).
    periods = _periods(half_effect)
    data_day = np.array([to_day(d) for d in record["data_date"]])
    horizon = half_effect.deployment.settings.truth_horizon_days
    frame = pd.DataFrame({"i": np.arange(len(record)), "person_id": record["person_id"], "day": data_day})
    pairs = frame.merge(periods, on="person_id")
    overlap = pairs.loc[(pairs["start"] <= pairs["day"] + horizon) & (pairs["end"] > pairs["day"] + 1), "i"]
    expected = np.zeros(len(record), dtype=bool)
    expected[overlap.to_numpy()] = True
    np.testing.assert_array_equal(lower.to_numpy(), expected)
    # Halving the hazard over the whole window at most halves the expected count.
    enrolled = truth.loc[truth["enrolled"]]
    ratio = np.log1p(-enrolled["p_actual"]) / np.log1p(-enrolled["p_none"])
    assert ratio.between(0.5 - 1e-9, 1).all() and ratio.mean() < 0.6


def test_the_score_is_of_emergency_admission_or_death_in_the_data_dates_month():
    from riskstrat.ingest.synthetic.timeline import build_timeline

    timeline = build_timeline(date(2025, 1, 1), date(2025, 3, 31))
    months = timeline.months
    emergency = np.tile(np.array([[0.2], [0.0], [0.5]]), (1, months))
    death = np.tile(np.array([[0.1], [0.3], [0.0]]), (1, months))
    emergency[:, 1] *= 2  # February's rates differ: the data date's month is used
    death[:, 1] *= 2
    data_days = np.array([to_day(date(2025, 1, 12)), to_day(date(2025, 2, 9))])
    noise = np.array([1.0, 1.0, 2.0])
    inf = np.full(3, np.inf)
    scores = dep.chunk_scores(emergency, death, timeline, np.zeros(3), inf, inf, noise, data_days)
    rate = np.array([0.3, 0.3, 0.5])[:, None] * noise[:, None] * np.array([1.0, 2.0])
    np.testing.assert_allclose(scores, -np.expm1(-rate), rtol=1e-6)
    assert scores[1, 0] > 0  # no emergency admissions, but a death hazard: scored above zero
    dead = dep.chunk_scores(
        emergency,
        death,
        timeline,
        np.zeros(3),
        inf,
        np.array([np.inf, data_days[0], np.inf]),
        noise,
        data_days,
    )
    assert np.isnan(dead[1]).all() and not np.isnan(dead[[0, 2]]).any()


def test_in_periods_finds_the_period_of_each_person_and_day():
    person = np.array([0, 0, 0, 1, 1, 2])
    day = np.array([9, 10, 20, 10, 30, 10])
    found = dep.in_periods(person, day, np.array([0, 1, 1]), np.array([10, 5, 25]), np.array([20, 11, 31]))
    assert found.tolist() == [False, True, False, True, True, False]


# ----------------------------------------------------------------------------- files (pipelines/generate.py)


def _write(out, seed: int = SEED, people: int = 3000, **kwargs):
    from riskstrat.pipelines.generate import write_synthetic

    return write_synthetic(out, people, seed, SyntheticSettings(chunk_size=CHUNK), **kwargs)


def test_write_synthetic_publishes_the_simulated_weeks_as_the_weekly_run_reads_them(tmp_path):
    from riskstrat.catalog import output_catalog
    from riskstrat.io import file_sha256
    from riskstrat.pipelines.decisions import published_list, read_decision_history
    from riskstrat.worklists.assignment import read_assignments
    from riskstrat.worklists.history import HISTORY_COLUMNS, load_history, reconcile_history

    paths = _write(tmp_path)
    outputs = output_catalog(tmp_path)
    weeks = paths.simulated_weeks
    assert len(weeks) == 51
    for week in (weeks[0], weeks[-1]):
        folder = outputs.week(week)
        manifest = json.loads((folder / "manifest.json").read_text())
        assert manifest["simulated"] is True and manifest["data_date"] == str(week - timedelta(days=1))
        assert manifest["files"] == {
            name: file_sha256(folder / name) for name in ("assignment.parquet", "history.parquet")
        }
    first_demo_week = date(2025, 12, 29)
    assert reconcile_history(tmp_path, first_demo_week) == []
    history = load_history(outputs.worklists, before=first_demo_week)
    assert list(history.columns) == list(HISTORY_COLUMNS)
    mdts = history["mdt"].nunique()
    assert len(history) == 51 * mdts * 50 and set(history["risk_band"]) <= {
        "Very high",
        "High",
        "Moderate",
        "Lower",
    }
    assert history.groupby(["week", "mdt"])["rank"].apply(lambda r: sorted(r) == list(range(1, 51))).all()
    mdt = history["mdt"].iloc[0]
    assert len(published_list(tmp_path, weeks[0], mdt)) == 50  # the manifest's checksum holds
    record = read_assignments(outputs.worklists)
    assert len(record) == 51 * mdts * 100 and record["listed"].sum() == len(history)
    decisions = read_decision_history(tmp_path)
    assert len(decisions) == len(history) and (decisions["decision"] == "added_to_caseload").sum() > 0
    stored = sorted(outputs.monitoring_scores_dir.glob("*.parquet"))
    assert [p.stem for p in stored] == [str(w) for w in weeks[::4]]
    scores = pq.read_table(stored[0])
    assert json.loads(scores.schema.metadata[b"riskstrat"]) == {
        "models": {"emergency_admission": dep.SCORE_MODEL}
    }
    assert scores.column_names == list(dep.SCORE_COLUMNS) and scores.num_rows > 2500
    truth = pq.read_table(tmp_path / "truth" / "deployment.parquet")
    assert truth.num_rows == len(record)
    assert json.loads(truth.schema.metadata[b"riskstrat"])["settings"]["admission_effect"] == 0.0
    caseload = pd.read_parquet(tmp_path / "extract" / "caseload.parquet")
    assert caseload["team"].str.endswith(dep.TEAM_SUFFIX).sum() > 0


def test_a_new_generation_replaces_simulated_weeks_and_keeps_real_ones(tmp_path):
    from riskstrat.catalog import output_catalog
    from riskstrat.pipelines.decisions import read_decision_history

    outputs = output_catalog(tmp_path)
    _write(tmp_path)
    real_week = date(2025, 12, 29)
    outputs.week(real_week).mkdir(parents=True)
    (outputs.week(real_week) / "manifest.json").write_text(json.dumps({"week": str(real_week), "files": {}}))
    decisions = read_decision_history(tmp_path)
    real = decisions.iloc[:1].assign(week=str(real_week), source_digest="abc123")
    pd.concat([decisions, real]).to_parquet(outputs.decision_history, index=False)
    _write(tmp_path, seed=SEED + 1, people=2500)
    weeks = sorted(p.name for p in outputs.worklists.iterdir())
    assert len(weeks) == 52 and weeks[-1] == str(real_week)
    after = read_decision_history(tmp_path)
    assert (after["source_digest"] == "abc123").sum() == 1
    assert not after["person_id"].isin(decisions["person_id"]).all()  # the new population's decisions
    from riskstrat.pipelines.generate import write_synthetic

    write_synthetic(tmp_path, 2500, SEED, SyntheticSettings(chunk_size=CHUNK, deployment={"enabled": False}))
    assert [p.name for p in outputs.worklists.iterdir()] == [str(real_week)]
    assert list(read_decision_history(tmp_path)["source_digest"]) == ["abc123"]
    assert not list(outputs.monitoring_scores_dir.glob("*.parquet"))


def test_generation_refuses_to_simulate_over_a_really_published_week(tmp_path):
    from riskstrat.catalog import output_catalog

    outputs = output_catalog(tmp_path)
    outputs.week(date(2025, 6, 2)).mkdir(parents=True)
    with pytest.raises(RiskstratError, match=r"1 published week.*inside the simulated deployment's weeks"):
        _write(tmp_path)
    assert not (tmp_path / "extract").exists()


def test_national_generation_puts_the_enrolments_in_the_raw_caseload(tmp_path):
    from riskstrat.ingest.sources.settings import SourceSettings

    _write(tmp_path, people=2000, national=SourceSettings())
    caseload = pd.read_parquet(tmp_path / "raw" / "caseload.parquet")
    assert caseload["team"].str.endswith(dep.TEAM_SUFFIX).sum() > 0
    assert (tmp_path / "worklists" / "2025-01-06" / "assignment.parquet").is_file()


def test_the_formats_and_tie_break_are_the_worklists_own():
    from riskstrat.worklists.assignment import ASSIGNMENT_COLUMNS
    from riskstrat.worklists.decisions import DECISION_HISTORY_COLUMNS
    from riskstrat.worklists.history import HISTORY_COLUMNS
    from riskstrat.worklists.selection import tie_break_key

    assert dep.ASSIGNMENT_COLUMNS == ASSIGNMENT_COLUMNS
    assert dep.DECISION_COLUMNS == DECISION_HISTORY_COLUMNS
    assert (*dep.HISTORY_COLUMNS, "risk_band") == HISTORY_COLUMNS
    ids = np.array(["P123456789", "P987654321", "P555000111"], dtype=object)
    assert list(dep._tie_keys(ids)) == list(tie_break_key(pd.Series(ids)))
