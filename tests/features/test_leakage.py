"""Leakage: features never read events after T; outcomes never read events on or before T."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pandas as pd
from feature_fixtures import AS_OF, extract, hand_worked_rows, memtables, random_rows
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from riskstrat.features.matrix import build_feature_matrix
from riskstrat.features.outcomes import outcomes_at
from riskstrat.features.point_in_time import cohort_at
from riskstrat.features.settings import FeatureSettings, OutcomeSettings
from riskstrat.ingest.contract import ADMISSION_METHOD_CODES, COMMUNITY_SERVICE_CODES, DISPOSAL_CODES
from riskstrat.ingest.reference import conditions

PEOPLE = ["p1", "p2", "p5", "p9", "r000", "r001", "r002"]
FEATURES = FeatureSettings()
OUTCOMES = OutcomeSettings()
DATE_COLUMNS = {
    "gp_diagnoses": "event_date",
    "gp_medications": "issue_date",
    "gp_appointments": "appointment_date",
    "community_contacts": "contact_date",
    "ae_attendances": "arrival_datetime",
    "apc_spells": "admission_date",
}


def base_rows() -> dict[str, list[dict]]:
    rows = hand_worked_rows()
    extra = random_rows(seed=7, n_people=3, events_per_table=40)
    for name, table_rows in extra.items():
        rows[name] = rows.get(name, []) + table_rows
    return rows


def event_day(row: dict, column: str) -> date:
    value = row[column]
    return value.date() if isinstance(value, datetime) else value


def split_at(rows: dict[str, list[dict]], keep_past: bool) -> dict[str, list[dict]]:
    """Keep only the events on or before T (keep_past) or only those after T."""
    result = {"patients": rows["patients"]}
    for name, column in DATE_COLUMNS.items():
        result[name] = [r for r in rows[name] if (event_day(r, column) <= AS_OF) == keep_past]
    return result


def days(low: int, high: int):
    return st.integers(low, high).map(lambda n: AS_OF + timedelta(days=n))


def event_rows(offsets):
    """Strategies for one row of each event table, dated by ``offsets`` (days from T)."""
    person = st.sampled_from(PEOPLE)
    return {
        "gp_diagnoses": st.fixed_dictionaries(
            {
                "person_id": person,
                "event_date": offsets,
                "condition": st.sampled_from(list(conditions()["condition"])),
            }
        ),
        "gp_medications": st.fixed_dictionaries(
            {
                "person_id": person,
                "issue_date": offsets,
                "bnf_code": st.sampled_from(["0205", "0301", "0407", "0906"]),
            }
        ),
        "gp_appointments": st.fixed_dictionaries(
            {
                "person_id": person,
                "appointment_date": offsets,
                "mode": st.sampled_from(["home_visit", "telephone", None]),
                "status": st.sampled_from(["attended", "dna", None]),
            }
        ),
        "community_contacts": st.fixed_dictionaries(
            {
                "person_id": person,
                "contact_date": offsets,
                "service": st.sampled_from(COMMUNITY_SERVICE_CODES),
            }
        ),
        "ae_attendances": st.fixed_dictionaries(
            {
                "attendance_id": st.uuids().map(str),
                "person_id": person,
                "arrival_datetime": st.tuples(offsets, st.integers(0, 1439)).map(
                    lambda t: datetime.combine(t[0], datetime.min.time()) + timedelta(minutes=t[1])
                ),
                "arrival_mode": st.sampled_from(["ambulance", "other"]),
                "acuity": st.sampled_from([1, 2, 3, 4, 5, None]),
                "disposal": st.sampled_from(DISPOSAL_CODES),
            }
        ),
        "apc_spells": st.fixed_dictionaries(
            {
                "spell_id": st.uuids().map(str),
                "person_id": person,
                "admission_date": offsets,
                "discharge_date": st.none(),
                "admission_method": st.sampled_from(ADMISSION_METHOD_CODES),
            }
        ),
    }


def table_events(offsets):
    strategies = event_rows(offsets)
    return st.fixed_dictionaries(
        {name: st.lists(strategy, max_size=6) for name, strategy in strategies.items()}
    )


def features_of(rows) -> pd.DataFrame:
    return build_feature_matrix(memtables(extract(rows)), AS_OF, FEATURES)


BASE = base_rows()
BASE_FEATURES = features_of(BASE)
LEAKAGE = settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@LEAKAGE
@given(future=table_events(days(1, 900)), drop_future=st.booleans(), discharge_shift=st.integers(1, 400))
def test_events_after_t_never_change_features(future, drop_future, discharge_shift):
    past = split_at(BASE, keep_past=True)
    rows = past if drop_future else {name: list(r) for name, r in BASE.items()}
    for name, new_rows in future.items():
        for row in new_rows:
            if name == "apc_spells":
                row = {**row, "discharge_date": row["admission_date"] + timedelta(days=discharge_shift % 30)}
            rows[name] = [*rows[name], row]
    # Move every discharge that was after T to another date after T (or leave it empty).
    rows["apc_spells"] = [
        {**r, "discharge_date": AS_OF + timedelta(days=discharge_shift) if discharge_shift % 3 else None}
        if r["discharge_date"] is None or r["discharge_date"] > AS_OF
        else r
        for r in rows["apc_spells"]
    ]
    pd.testing.assert_frame_equal(features_of(rows), BASE_FEATURES)


@LEAKAGE
@given(past=table_events(days(-900, 0)), drop_past=st.booleans())
def test_events_on_or_before_t_never_change_outcomes(past, drop_past):
    def outcomes(rows):
        tables = memtables(extract(rows))
        people = cohort_at(tables, AS_OF, FEATURES.cohort)
        return (
            outcomes_at(people, tables, AS_OF, OUTCOMES)
            .to_pandas()
            .sort_values("person_id")
            .reset_index(drop=True)
        )

    expected = outcomes(BASE)
    rows = split_at(BASE, keep_past=False) if drop_past else {name: list(r) for name, r in BASE.items()}
    for name, new_rows in past.items():
        rows[name] = [*rows[name], *new_rows]
    pd.testing.assert_frame_equal(outcomes(rows), expected)
