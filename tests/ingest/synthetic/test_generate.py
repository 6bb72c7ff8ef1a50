from __future__ import annotations

import pandas as pd
import pyarrow.parquet as pq

from riskstrat.ingest.contract import CONTRACT, EVENT_TABLES
from riskstrat.ingest.reference import conditions
from riskstrat.ingest.synthetic.generate import generate_population
from riskstrat.ingest.synthetic.geography import footprint_lsoas
from riskstrat.ingest.synthetic.settings import AccessBarrier, SyntheticSettings, UnderRecording
from riskstrat.pipelines.generate import write_synthetic

EXTRACT = pd.Timestamp("2025-12-31")


def test_same_seed_identical_different_seed_different():
    a = generate_population(SyntheticSettings(), 500, seed=3)
    b = generate_population(SyntheticSettings(), 500, seed=3)
    c = generate_population(SyntheticSettings(), 500, seed=4)
    for name in CONTRACT:
        pd.testing.assert_frame_equal(a.tables[name], b.tables[name])
    assert not set(a.tables["patients"]["person_id"]) & set(c.tables["patients"]["person_id"])
    assert not a.tables["patients"]["birth_date"].equals(c.tables["patients"]["birth_date"])


def test_tables_follow_the_contract(small_population):
    tables = small_population.tables
    patients = tables["patients"]
    for name, table in CONTRACT.items():
        frame = tables[name]
        assert list(frame.columns) == list(table.column_names), name
        for column in table.columns:
            values = frame[column.name]
            if column.required:
                assert values.notna().all(), f"{name}.{column.name}"
            if column.codes is not None:
                assert set(values.dropna().unique()) <= set(column.codes), f"{name}.{column.name}"
        if table.key:
            assert frame[table.key].is_unique, name
    for name in EVENT_TABLES:
        assert tables[name]["person_id"].isin(patients["person_id"]).all(), name
    assert set(tables["gp_diagnoses"]["condition"]) <= set(conditions()["condition"]) - {"polypharmacy"}


def test_no_event_after_death_or_extract_and_dates_ordered(small_population):
    tables = small_population.tables
    death = tables["patients"].set_index("person_id")["date_of_death"]
    for name, table in CONTRACT.items():
        if table.event_date is None:
            continue
        frame = tables[name]
        when = frame[table.event_date].dt.normalize()
        assert (when <= EXTRACT).all(), name
        died = frame["person_id"].map(death)
        assert not (died.notna() & (when > died)).any(), name
        for earlier, later in table.date_pairs:
            both = frame[earlier].notna() & frame[later].notna()
            assert (frame.loc[both, later] >= frame.loc[both, earlier]).all(), f"{name}: {later} < {earlier}"


def test_people_live_on_real_footprint_lsoas_and_practices_group_into_neighbourhoods(small_population):
    lsoas = set(footprint_lsoas(SyntheticSettings())["lsoa_code"])
    patients = small_population.tables["patients"]
    assert patients["lsoa_code"].isin(lsoas).all()
    practices = small_population.practices
    assert patients["practice_code"].isin(practices["practice_code"]).all()
    assert practices["practice_code"].str.fullmatch(r"M\d{5}").all()
    assert len(practices) >= 4 and practices["neighbourhood"].nunique() >= 1
    assert patients["person_id"].str.fullmatch(r"P\d{9}").all()
    ages = (EXTRACT - patients["birth_date"]).dt.days / 365.25
    assert ages.min() < 5 and ages.max() > 85


def test_truth_covers_alive_registered_people(small_population):
    risk = small_population.truth["risk"]
    assert set(risk.columns) == {
        "person_id",
        "as_of",
        "p_emergency_admission",
        "p_emergency_admission_90d",
        "p_frequent_attendance",
    }
    assert (
        risk[["p_emergency_admission", "p_frequent_attendance"]].apply(lambda c: c.between(0, 1).all()).all()
    )
    assert (risk["p_emergency_admission_90d"] <= risk["p_emergency_admission"] + 1e-12).all()
    assert risk["as_of"].nunique() == 5


def test_under_recording_removes_diagnoses_of_the_group_only():
    base = generate_population(SyntheticSettings(), 2000, seed=5)
    scenario = SyntheticSettings(
        under_recording=UnderRecording(enabled=True, group_column="imd_quintile", group_value="1")
    )
    under = generate_population(scenario, 2000, seed=5)
    group = set(base.truth["people"].query("imd_decile <= 2")["person_id"])

    def count(pop, inside):
        d = pop.tables["gp_diagnoses"]
        return d["person_id"].isin(group).sum() if inside else (~d["person_id"].isin(group)).sum()

    assert count(under, True) < 0.75 * count(base, True)
    assert count(under, False) == count(base, False)
    pd.testing.assert_frame_equal(base.truth["risk"], under.truth["risk"])


def test_unrecorded_gp_activity_thins_the_group_appointments_only():
    base = generate_population(SyntheticSettings(), 2000, seed=5)
    scenario = SyntheticSettings(
        under_recording=UnderRecording(
            enabled=True, group_value="Asian", share_not_recorded=0.0, gp_activity_not_recorded=0.8
        )
    )
    thinned = generate_population(scenario, 2000, seed=5)
    group = set(base.truth["people"].query("ethnic_group == 'Asian'")["person_id"])

    def split(pop):
        a = pop.tables["gp_appointments"]
        inside = a["person_id"].isin(group)
        return a[inside], a[~inside].reset_index(drop=True)

    base_in, base_out = split(base)
    thinned_in, thinned_out = split(thinned)
    assert len(base_in) > 1000
    assert 0.1 * len(base_in) < len(thinned_in) < 0.3 * len(base_in)
    # Kept appointments are the group's own, unaltered; everyone else's are untouched.
    assert set(map(tuple, thinned_in.to_numpy())) <= set(map(tuple, base_in.to_numpy()))
    pd.testing.assert_frame_equal(thinned_out, base_out)
    pd.testing.assert_frame_equal(thinned.tables["gp_diagnoses"], base.tables["gp_diagnoses"])
    # Health is unchanged: the care happened, the extract lost it.
    pd.testing.assert_frame_equal(thinned.truth["risk"], base.truth["risk"])


def test_access_barrier_moves_the_group_from_gp_to_ae():
    base = generate_population(SyntheticSettings(), 3000, seed=6)
    scenario = SyntheticSettings(
        access_barrier=AccessBarrier(enabled=True, group_column="imd_quintile", group_value="1")
    )
    barrier = generate_population(scenario, 3000, seed=6)
    group = set(base.truth["people"].query("imd_decile <= 2")["person_id"])

    def per_group(pop, table):
        return pop.tables[table]["person_id"].isin(group).sum()

    assert per_group(barrier, "gp_appointments") < 0.7 * per_group(base, "gp_appointments")
    assert per_group(barrier, "ae_attendances") > per_group(base, "ae_attendances")


def test_write_synthetic_writes_contract_files(tmp_path):
    paths = write_synthetic(tmp_path, 800, 9, SyntheticSettings())
    for name in CONTRACT:
        schema = pq.read_schema(paths.extract_dir / f"{name}.parquet")
        assert list(schema.names) == list(CONTRACT[name].column_names)
    schema = pq.read_schema(paths.extract_dir / "ae_attendances.parquet")
    assert str(schema.field("arrival_datetime").type).startswith("timestamp")
    assert (
        str(pq.read_schema(paths.extract_dir / "patients.parquet").field("birth_date").type) == "date32[day]"
    )
    practices = pd.read_csv(paths.practices_csv)
    assert list(practices.columns) == [
        "practice_code",
        "practice_name",
        "neighbourhood",
        "lad_code",
        "list_size",
    ]
    assert (paths.truth_dir / "risk.parquet").exists()


def test_whoever_the_virtual_ward_saw_is_on_its_caseload_for_that_stay(small_population):
    tables = small_population.tables
    ward = tables["community_contacts"].loc[lambda f: f["service"] == "virtual_ward"]
    assert len(ward) > 0
    caseload = tables["caseload"].loc[lambda f: f["team"].str.endswith(" virtual ward")]
    stays = ward.merge(caseload, on="person_id")
    end = stays["end_date"].fillna(EXTRACT)
    covered = (stays["start_date"] <= stays["contact_date"]) & (stays["contact_date"] <= end)
    on_ward = covered.groupby([stays["person_id"], stays["contact_date"]]).any()
    # Every virtual-ward contact falls within one of the person's virtual-ward caseload stays.
    assert len(on_ward) == len(ward.drop_duplicates(["person_id", "contact_date"]))
    assert on_ward.all()
    # Seen by the ward in the last week (and still registered): still on it at the extract date.
    alive = tables["patients"].loc[
        lambda f: f["date_of_death"].isna() & f["registration_end"].isna(), "person_id"
    ]
    recent = set(ward.loc[ward["contact_date"] > EXTRACT - pd.Timedelta(days=7), "person_id"]) & set(alive)
    active = set(caseload.loc[caseload["end_date"].isna(), "person_id"])
    assert recent <= active
