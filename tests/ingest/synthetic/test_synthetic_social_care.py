"""Adult social care in the synthetic population (``ingest/synthetic/social_care.py``)."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from riskstrat.ingest.contract import CONTRACT, EMERGENCY_ADMISSION_METHODS, LONG_TERM_SERVICE_TYPES
from riskstrat.ingest.reference import imd_lookup
from riskstrat.ingest.social_care import social_care_returns
from riskstrat.ingest.sources import cld
from riskstrat.ingest.synthetic.generate import generate_population
from riskstrat.ingest.synthetic.settings import SocialCare, SyntheticSettings
from riskstrat.ingest.synthetic.social_care import EVENT_KEY
from riskstrat.pipelines.generate import as_raw_text, contract_schema, to_arrow

PEOPLE, SEED = 15_000, 7
WALSALL, WOLVERHAMPTON = "E08000030", "E08000031"
AS_OF = pd.Timestamp("2024-12-31")


@pytest.fixture(scope="module")
def population():
    return generate_population(SyntheticSettings(), PEOPLE, seed=SEED)


@pytest.fixture(scope="module")
def events(population):
    return population.tables["social_care_events"]


def _age(patients: pd.DataFrame, day: pd.Timestamp) -> pd.Series:
    return ((day - patients["birth_date"]).dt.days / 365.25).set_axis(patients["person_id"])


def _present(patients: pd.DataFrame, day: pd.Timestamp) -> pd.Series:
    """People registered and alive on ``day``."""
    start = patients["registration_start"].isna() | (patients["registration_start"] <= day)
    end = patients["registration_end"].isna() | (patients["registration_end"] > day)
    return patients.loc[start & end, "person_id"]


def _long_term_at(events: pd.DataFrame, day: pd.Timestamp) -> set[str]:
    rows = events[
        events["service_type"].isin(LONG_TERM_SERVICE_TYPES)
        & (events["client_type"] == "service_user")
        & (events["event_start_date"] <= day)
        & (events["event_end_date"].isna() | (events["event_end_date"] >= day))
    ]
    return set(rows["person_id"])


def test_the_table_keeps_to_the_contract(population, events):
    table = CONTRACT["social_care_events"]
    assert list(events.columns) == list(table.column_names)
    assert len(events) > 1000
    for column in table.columns:
        if column.required:
            assert events[column.name].notna().all(), column.name
        if column.codes is not None:
            values = set(events[column.name].dropna())
            assert values <= set(column.codes), (column.name, values - set(column.codes))
    ended = events["event_end_date"].notna()
    assert (events.loc[ended, "event_end_date"] >= events.loc[ended, "event_start_date"]).all()
    # Service detail only on service events; every service event has it.
    service = events["event_type"] == "service"
    assert events.loc[service, ["service_type", "service_component"]].notna().all().all()
    assert events.loc[~service, ["service_type", "service_component"]].isna().all().all()
    # Care-home placements are lived in a care home; reablement at home.
    placed = events["service_type"].isin(["long_term_residential", "long_term_nursing"])
    assert placed.sum() > 20
    assert (events.loc[placed, "accommodation_status"] == "care_home").all()
    assert set(events.loc[placed, "service_component"]) == {"residential", "nursing"}
    reablement = events["service_type"] == "short_term_reablement"
    assert (events.loc[reablement, "accommodation_status"] == "own_home").all()


def test_the_cld_source_gives_the_table_back_from_its_national_form(events, population):
    """The demo reads social care through the CLD adapter: its round trip must be exact."""
    raw = cld.to_national(population.tables, np.random.default_rng(1))
    back = cld.adapt(as_raw_text(raw).to_pandas()).tables["social_care_events"]
    schema = contract_schema(CONTRACT["social_care_events"])
    columns = list(events.columns)

    def comparable(frame: pd.DataFrame) -> pd.DataFrame:
        frame = to_arrow(frame, schema).to_pandas()
        return frame.sort_values(columns, na_position="first").reset_index(drop=True)

    assert not events.duplicated(list(EVENT_KEY)).any()
    pd.testing.assert_frame_equal(comparable(back), comparable(events))


def test_each_row_comes_in_the_return_of_its_persons_local_authority(population, events):
    patients = population.tables["patients"]
    lookup = imd_lookup().set_index("lsoa_code")["lad_code"]
    lad = patients.set_index("person_id")["lsoa_code"].map(lookup)
    assert (events["la_code"].to_numpy() == lad.loc[events["person_id"]].to_numpy()).all()
    assert events["person_id"].isin(patients["person_id"]).all()
    period = events["reporting_period_start"].dt
    assert ((period.day == 1) & period.month.isin([1, 4, 7, 10])).all()


def test_each_event_was_active_in_its_return_and_shows_as_it_stood_then(events):
    period_end = events["reporting_period_start"] + pd.offsets.QuarterEnd(0)
    assert (events["event_start_date"] <= period_end).all()
    ended = events["event_end_date"].notna()
    # Ended events: in the quarter they ended (or a later received return they overlapped)...
    assert (events.loc[ended, "event_end_date"] >= events.loc[ended, "reporting_period_start"]).all()
    # ...and never with an end date after their return's quarter.
    assert (events.loc[ended, "event_end_date"] <= period_end[ended]).all()


def test_no_row_comes_in_a_return_that_did_not_arrive(events):
    returns = events.groupby(["la_code", "reporting_period_start"]).size()
    assert (WALSALL, pd.Timestamp("2025-04-01")) not in returns.index
    # By default no return is late: every authority's latest due quarter arrived, with rows;
    # nothing is in a quarter not yet due.
    latest = returns.xs(pd.Timestamp("2025-07-01"), level="reporting_period_start")
    assert set(latest.index) == {"E08000027", "E08000028", WALSALL, WOLVERHAMPTON}
    assert events["reporting_period_start"].max() == pd.Timestamp("2025-07-01")


def test_the_returns_received_are_written_beside_the_events(population, events):
    returns = population.tables["social_care_returns"]
    assert list(returns.columns) == list(CONTRACT["social_care_returns"].column_names)
    received = returns.groupby(["la_code", "reporting_period_start"])["rows"].sum()
    # Every return received is listed, the missing one (Walsall Apr-Jun 2025) is not...
    assert (WALSALL, pd.Timestamp("2025-04-01")) not in received.index
    assert (WALSALL, pd.Timestamp("2025-07-01")) in received.index
    # ...including returns whose events all came again later (no rows of theirs in the events).
    in_events = set(events.groupby(["la_code", "reporting_period_start"]).size().index)
    assert set(in_events) <= set(received.index)
    coverage = social_care_returns(returns, sorted({*returns["la_code"]}), date(2025, 12, 31))
    assert coverage.missing == [(WALSALL, date(2025, 4, 1))]


def test_a_late_authority_shows_its_events_as_in_its_return_before():
    late = SyntheticSettings(social_care={"late_las": [WOLVERHAMPTON]})
    events = generate_population(late, 3_000, seed=SEED).tables["social_care_events"]
    returns = events.groupby(["la_code", "reporting_period_start"]).size()
    assert (WOLVERHAMPTON, pd.Timestamp("2025-07-01")) not in returns.index
    assert (WOLVERHAMPTON, pd.Timestamp("2025-04-01")) in returns.index
    latest = returns.xs(pd.Timestamp("2025-07-01"), level="reporting_period_start")
    assert set(latest.index) == {"E08000027", "E08000028", WALSALL}
    # Wolverhampton's support still open in its last return shows open, even where it ended since.
    wolverhampton = events[(events["la_code"] == WOLVERHAMPTON) & (events["event_type"] == "service")]
    assert wolverhampton["event_end_date"].dropna().max() <= pd.Timestamp("2025-06-30")


def test_long_term_support_rises_with_age_and_recorded_frailty(population, events):
    patients, diagnoses = population.tables["patients"], population.tables["gp_diagnoses"]
    present = set(_present(patients, AS_OF))
    supported = _long_term_at(events, AS_OF)
    age = _age(patients, AS_OF)
    shares = []
    for low, high in ((65, 75), (75, 85), (85, 120)):
        band = [p for p in age.index[(age >= low) & (age < high)] if p in present]
        shares.append(np.mean([p in supported for p in band]))
    assert shares[0] < shares[1] < shares[2], shares
    assert shares[0] > 0.01 and shares[2] < 0.5, shares
    # The latest recorded eFI (the GP's reading of latent frailty) before the date, among people 65+.
    efi = diagnoses[(diagnoses["condition"] == "recorded_efi") & (diagnoses["event_date"] <= AS_OF)]
    efi = efi.sort_values("event_date").groupby("person_id")["value"].last()
    old = efi[[p in present and age[p] >= 65 for p in efi.index]]
    fit = np.mean([p in supported for p in old.index[old < 0.12]])
    frail = np.mean([p in supported for p in old.index[old >= 0.24]])
    assert frail > 3 * fit, (fit, frail)


def test_reablement_starts_within_days_of_an_emergency_discharge(population, events):
    spells = population.tables["apc_spells"]
    emergency = spells[spells["admission_method"].isin(EMERGENCY_ADMISSION_METHODS)]
    reablement = events[events["service_type"] == "short_term_reablement"]
    assert len(reablement) > 50
    days = SocialCare().reablement_start_days
    pairs = reablement[["person_id", "event_start_date"]].merge(
        emergency[["person_id", "discharge_date"]], on="person_id"
    )
    lag = (pairs["event_start_date"] - pairs["discharge_date"]).dt.days
    follows = pairs[(lag >= 0) & (lag <= days)].drop_duplicates(["person_id", "event_start_date"])
    assert len(follows) == len(reablement.drop_duplicates(["person_id", "event_start_date"]))
    length = (reablement["event_end_date"] - reablement["event_start_date"]).dt.days.dropna()
    assert length.max() <= 42


def test_carers_are_other_registered_adults_near_someone_supported_at_home(population, events):
    patients = population.tables["patients"].set_index("person_id")
    carers = events[events["client_type"] == "carer"]
    assert carers["person_id"].nunique() > 20
    first = carers.groupby("person_id")["event_start_date"].min()
    age = (first - patients.loc[first.index, "birth_date"]).dt.days / 365.25
    assert (age >= 18).all()
    at_home = events[
        (events["service_type"] == "long_term_community") & (events["client_type"] == "service_user")
    ]
    supported_lsoas = set(patients.loc[at_home["person_id"], "lsoa_code"])
    # Most carers live in the LSOA of someone supported at home (the rest in the same district).
    near = np.mean([patients.at[p, "lsoa_code"] in supported_lsoas for p in first.index])
    assert near > 0.8, near
    # A carer's own events carry no support reason.
    assert carers["primary_support_reason"].isna().all()


def test_a_recent_request_marks_a_higher_true_risk(population, events):
    """Requests follow decline episodes and admissions: a marker of the latent state models can use."""
    risk = population.truth["risk"]
    risk = risk[risk["as_of"] == AS_OF].set_index("person_id")["p_emergency_admission_90d"]
    age = _age(population.tables["patients"], AS_OF)
    old = risk.index[(age.loc[risk.index] >= 65).to_numpy()]
    recent = events[
        (events["event_type"] == "request")
        & (events["event_start_date"] > AS_OF - pd.Timedelta(days=90))
        & (events["event_start_date"] <= AS_OF)
    ]
    asked = old.intersection(pd.Index(recent["person_id"].unique()))
    others = old.difference(pd.Index(events["person_id"].unique()))
    assert len(asked) > 25, len(asked)
    assert risk.loc[asked].mean() > 1.5 * risk.loc[others].mean(), (
        risk.loc[asked].mean(),
        risk.loc[others].mean(),
    )


def test_the_same_seed_gives_the_same_events(events):
    again = generate_population(SyntheticSettings(), PEOPLE, seed=SEED).tables["social_care_events"]
    pd.testing.assert_frame_equal(events, again)


def test_switched_off_there_is_no_table_and_every_other_table_is_unchanged(population):
    off = generate_population(SyntheticSettings(social_care=SocialCare(enabled=False)), PEOPLE, seed=SEED)
    assert "social_care_events" not in off.tables and "social_care_returns" not in off.tables
    assert set(off.tables) == set(population.tables) - {"social_care_events", "social_care_returns"}
    for name, frame in off.tables.items():
        pd.testing.assert_frame_equal(frame, population.tables[name], obj=name)
    for name, frame in off.truth.items():
        pd.testing.assert_frame_equal(frame, population.truth[name], obj=name)


def test_returns_must_name_districts_of_the_footprint():
    with pytest.raises(ValidationError, match="not one of lad_codes"):
        SyntheticSettings(social_care={"late_las": ["E08000025"]})
    with pytest.raises(ValidationError, match="quarter starts"):
        SocialCare(missing_returns=[{"la_code": WALSALL, "quarter": "2025-05-01"}])
