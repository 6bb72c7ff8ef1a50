"""Hand-worked social care features (CLD events) on a tiny extract, on every engine."""

from __future__ import annotations

import math
from datetime import date
from typing import Any

import ibis
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from feature_fixtures import AS_OF, arrow_table, extract, memtables, patient

from riskstrat.features.dictionary import feature_names, reason_text
from riskstrat.features.matrix import build_feature_matrix, feature_matrix_schema, trained_features
from riskstrat.features.settings import FeatureSettings
from riskstrat.features.social_care import SOCIAL_CARE_FEATURES, covered_authorities, known_quarter
from riskstrat.ingest.reference import imd_lookup
from riskstrat.ingest.social_care import data_cutoff, known_local_authorities, social_care_returns

DUDLEY = "E08000027"  # its Apr-Jun 2024 return is missing, but the Jul-Sep 2024 one (12 months) covers it
WALSALL = "E08000030"  # its Jul-Sep 2024 return, the latest due at T, is missing
d = date
CUTOFF = d(2024, 9, 30)
"""data_cutoff(AS_OF): Oct-Dec 2024 is not due until 1 Mar 2025, so the features read as of 30 Sep 2024."""


def lsoa_in(lad_code: str) -> str:
    lookup = imd_lookup()
    return str(lookup.loc[lookup["lad_code"] == lad_code, "lsoa_code"].iloc[0])


def event(person_id: str, event_type: str, start: date, end: date | None = None, **extra: Any) -> dict:
    row = {
        "person_id": person_id,
        "la_code": DUDLEY,
        "reporting_period_start": d(2024, 7, 1),
        "event_type": event_type,
        "event_start_date": start,
        "event_end_date": end,
        "client_type": "service_user",
    }
    row.update(extra)
    return row


def service(person_id: str, service_type: str, start: date, end: date | None = None, **extra: Any) -> dict:
    return event(person_id, "service", start, end, service_type=service_type, **extra)


def social_care_rows() -> list[dict]:
    returns = [  # one row per LA-quarter return, of someone outside the cohort
        event("zz", "review", d(2024, 1, 5), d(2024, 1, 5), la_code=la, reporting_period_start=quarter)
        for la, quarters in (
            (DUDLEY, (d(2024, 1, 1), d(2024, 7, 1))),
            (WALSALL, (d(2024, 1, 1), d(2024, 4, 1))),
        )
        for quarter in quarters
    ]
    return [
        *returns,
        # a: home care since May 2023, residential care that ended before C, recent requests.
        service("a", "long_term_community", d(2023, 5, 1), primary_support_reason="memory_cognition"),
        service("a", "long_term_residential", d(2022, 1, 1), d(2024, 6, 30)),
        event("a", "request", d(2024, 9, 15)),
        event("a", "assessment", d(2024, 7, 3)),  # C - 89 days: in the 90-day window
        event("a", "assessment", d(2024, 7, 2)),  # C - 90 days: out of it
        event("a", "request", d(2024, 11, 1)),  # after C (before T): not yet in a return due by T
        # b: reablement ended 29 days before C, nursing care from after C, a carer until Feb 2024.
        service("b", "short_term_reablement", d(2024, 8, 1), d(2024, 9, 1)),
        service("b", "long_term_nursing", d(2024, 10, 5)),
        event("b", "assessment", d(2021, 1, 1), d(2024, 2, 1), client_type="carer"),
        # e: long-term support that ended on C, reablement that ended C - 90 days.
        service("e", "long_term_community", d(2023, 1, 1), CUTOFF),
        service("e", "short_term_reablement", d(2024, 6, 1), d(2024, 7, 2)),
        # f: residential care from C.
        service("f", "long_term_residential", CUTOFF),
        # w: Walsall, whose latest return due is missing: not known, whatever the events say.
        service(
            "w", "long_term_community", d(2023, 1, 1), la_code=WALSALL, reporting_period_start=d(2024, 4, 1)
        ),
    ]


def patients() -> list[dict]:
    dudley, walsall = lsoa_in(DUDLEY), lsoa_in(WALSALL)
    return [
        *(patient(p, d(1940, 1, 1), lsoa_code=dudley) for p in ("a", "b", "c", "e", "f")),
        patient("w", d(1940, 1, 1), lsoa_code=walsall),
        patient("x", d(1940, 1, 1), lsoa_code="W01000001"),  # Welsh LSOA: no English LA
    ]


def build(on_engine, with_social_care: bool = True) -> pd.DataFrame:
    frames = extract({"patients": patients()})
    if with_social_care:
        frames["social_care_events"] = arrow_table("social_care_events", social_care_rows())
    return build_feature_matrix(on_engine(frames), AS_OF, FeatureSettings()).set_index("person_id")


@pytest.fixture(scope="module")
def matrix(on_engine) -> pd.DataFrame:
    return build(on_engine)


def test_features_read_as_of_the_latest_quarterly_return_due():
    assert data_cutoff(AS_OF) == CUTOFF
    assert known_quarter(AS_OF) == d(2024, 7, 1)
    # Jul-Sep 2024 is due 60 days after 30 Sep: on 29 Nov 2024, not the day before.
    assert data_cutoff(d(2024, 11, 29)) == CUTOFF
    assert data_cutoff(d(2024, 11, 28)) == d(2024, 6, 30)
    assert data_cutoff(d(2025, 3, 1)) == d(2024, 12, 31)


def test_known_by_the_latest_return_due_of_the_local_authority_of_the_lsoa(matrix):
    # Dudley's missing Apr-Jun 2024 is covered by its Jul-Sep 2024 return; Walsall's Jul-Sep is missing.
    assert matrix["social_care_known"].to_dict() == {"a": 1, "b": 1, "c": 1, "e": 1, "f": 1, "w": 0, "x": 0}


def test_not_known_is_null_never_zero(matrix):
    for person in ("w", "x"):
        values = matrix.loc[person, [f for f in SOCIAL_CARE_FEATURES if f != "social_care_known"]]
        assert values.isna().all(), values[values.notna()]


def test_long_term_support_open_at_the_cutoff(matrix):
    a = matrix.loc["a"]
    assert a["social_care_long_term_support"] == 1 and a["social_care_long_term_community"] == 1
    assert a["social_care_long_term_residential"] == 0  # ended before C
    assert a["social_care_long_term_support_days"] == (CUTOFF - d(2023, 5, 1)).days  # counted to C
    assert a["social_care_psr_memory_cognition"] == 1 and a["social_care_psr_mental_health"] == 0
    b = matrix.loc["b"]
    assert b["social_care_long_term_support"] == 0 and b["social_care_long_term_nursing"] == 0  # after C
    assert math.isnan(b["social_care_long_term_support_days"])
    assert matrix.loc["e", "social_care_long_term_support"] == 0  # ended on C: not open at C
    f = matrix.loc["f"]
    assert f["social_care_long_term_residential"] == 1 and f["social_care_long_term_support_days"] == 0


def test_ninety_day_windows_end_at_the_cutoff(matrix):
    assert matrix.loc["a", "social_care_requests_90d"] == 2  # 15 Sep and 3 Jul; not 2 Jul, not after C
    assert matrix.loc["b", "social_care_reablement_ended_90d"] == 1
    assert matrix.loc["e", "social_care_reablement_ended_90d"] == 0  # ended C - 90 days


def test_carer_open_in_the_year_to_the_cutoff(matrix):
    assert matrix.loc["b", "social_care_carer"] == 1
    assert matrix.loc["a", "social_care_carer"] == 0


def test_known_without_events_is_zero(matrix):
    c = matrix.loc["c"]
    flags = [f for f in SOCIAL_CARE_FEATURES if f != "social_care_long_term_support_days"]
    assert (c[flags].drop("social_care_known") == 0).all()
    assert math.isnan(c["social_care_long_term_support_days"])


def test_social_care_columns_are_the_last_features(matrix):
    features = [c for c in matrix.columns if c in feature_names()]
    assert features[-len(SOCIAL_CARE_FEATURES) :] == list(SOCIAL_CARE_FEATURES)


def test_absent_table_gives_no_social_care_columns(on_engine):
    without = build(on_engine, with_social_care=False)
    assert not set(SOCIAL_CARE_FEATURES) & set(without.columns)
    # The matrix is still whole, and models train on every other feature.
    feature_matrix_schema(feature_names()).check(without.reset_index())
    trained = trained_features(feature_names(), without.columns)
    assert trained == [f for f in feature_names() if f not in SOCIAL_CARE_FEATURES]
    assert trained_features(feature_names(), [*without.columns, *SOCIAL_CARE_FEATURES]) == feature_names()


def test_reasons_in_plain_english():
    assert reason_text("social_care_long_term_residential", 1) == (
        "Receiving long-term social care support: residential care"
    )
    assert reason_text("social_care_reablement_ended_90d", 1) == (
        "Reablement ended in the 90 days to the latest social care return"
    )
    assert reason_text("social_care_carer", 1) == "Is an unpaid carer"
    assert (
        reason_text("social_care_requests_90d", 2)
        == "2 social care requests or assessments in the 90 days to the latest social care return"
    )
    assert (
        reason_text("social_care_requests_90d", 1)
        == "1 social care request or assessment in the 90 days to the latest social care return"
    )
    assert reason_text("social_care_long_term_support_days", 400) == (
        "Receiving long-term social care support (for 13 months)"
    )
    assert reason_text("social_care_long_term_support", float("nan")).startswith("Social care not known")


def test_known_rule_is_the_same_in_ibis_and_in_the_returns_coverage():
    rng = np.random.default_rng(3)
    las = ["E08000027", "E08000028", "E08000030", "E08000031", "E09000001"]
    quarters = pd.date_range("2023-04-01", "2026-07-01", freq="QS").date
    # Each LA misses a few quarters at random (some in a row), with 1-3 rows in each return received.
    rows = [
        {"la_code": la, "reporting_period_start": q}
        for la in las
        for q in quarters
        if rng.random() > 0.3
        for _ in range(rng.integers(1, 4))
    ]
    frame = pd.DataFrame(rows)
    events = ibis.memtable(pa.Table.from_pandas(frame, preserve_index=False))
    coverage = social_care_returns(frame, las, date(2026, 12, 31))
    checked = 0
    for as_of in pd.date_range("2023-01-01", "2026-12-31", freq="11D").date:
        in_ibis = set(covered_authorities(events, as_of).execute()["_covered_la"])
        assert in_ibis == known_local_authorities(coverage, as_of), as_of
        checked += bool(in_ibis) and in_ibis != set(las)
    assert checked > 10  # the dates include some where part of the LAs are not known


def stationary_extract(people: int, extract_date: date, seed: int = 11) -> dict[str, ibis.Table]:
    """Requests at a constant rate and reablement spells, as the returns due by ``extract_date`` hold them."""
    rng = np.random.default_rng(seed)
    dudley = lsoa_in(DUDLEY)
    cutoff = pd.Timestamp(data_cutoff(extract_date))
    first, days = pd.Timestamp("2022-01-01"), (cutoff - pd.Timestamp("2022-01-01")).days
    rows = []
    for i in range(people):
        person = f"p{i:05d}"
        for offset in rng.integers(0, days + 1, rng.poisson(2.0 * days / 365)):  # two a year
            start = first + pd.Timedelta(days=int(offset))
            rows.append(event(person, "request", start.date(), reporting_period_start=_quarter(start)))
        for offset in rng.integers(0, days + 1, rng.poisson(0.5 * days / 365)):
            start = first + pd.Timedelta(days=int(offset))
            end = start + pd.Timedelta(days=int(rng.integers(14, 43)))
            ended = end.date() if end <= cutoff else None
            rows.append(
                service(
                    person,
                    "short_term_reablement",
                    start.date(),
                    ended,
                    reporting_period_start=_quarter(start),
                )
            )
    frames = extract(
        {"patients": [patient(f"p{i:05d}", d(1940, 1, 1), lsoa_code=dudley) for i in range(people)]}
    )
    frames["social_care_events"] = arrow_table("social_care_events", rows)
    return memtables(frames)


def _quarter(day: pd.Timestamp) -> date:
    return date(day.year, 3 * ((day.month - 1) // 3) + 1, 1)


def test_features_at_a_past_date_and_at_the_data_date_have_the_same_distribution():
    # An extract taken at 31 Dec 2025 holds returns up to Jul-Sep 2025. Features at a training date a
    # year before and at the scoring date read the same span of returns, so a stationary population
    # has the same distribution at both (before, the last 90 days at the scoring date were empty).
    tables = stationary_extract(3000, date(2025, 12, 31))
    past = build_feature_matrix(tables, date(2024, 12, 31), FeatureSettings())
    now = build_feature_matrix(tables, date(2025, 12, 31), FeatureSettings())
    assert past["social_care_known"].mean() == now["social_care_known"].mean() == 1.0
    expected = 2.0 * 90 / 365
    for matrix in (past, now):
        assert matrix["social_care_requests_90d"].mean() == pytest.approx(expected, abs=0.06)
    assert now["social_care_requests_90d"].mean() == pytest.approx(
        past["social_care_requests_90d"].mean(), abs=0.06
    )
    past_ended, now_ended = (
        past["social_care_reablement_ended_90d"].mean(),
        now["social_care_reablement_ended_90d"].mean(),
    )
    assert now_ended > 0.05 and now_ended == pytest.approx(past_ended, abs=0.04)


def test_returns_received_come_from_social_care_returns_when_the_extract_has_it(on_engine):
    # Walsall's Jul-Sep 2024 return arrived, but every event in it came again in a later return
    # (so social_care_events holds none of its rows): the returns table says it was received.
    frames = extract({"patients": patients()})
    frames["social_care_events"] = arrow_table("social_care_events", social_care_rows())
    received = [
        {"la_code": la, "reporting_period_start": quarter, "rows": 5}
        for la in (DUDLEY, WALSALL)
        for quarter in (d(2024, 1, 1), d(2024, 4, 1), d(2024, 7, 1))
    ]
    frames["social_care_returns"] = arrow_table("social_care_returns", received)
    matrix = build_feature_matrix(on_engine(frames), AS_OF, FeatureSettings()).set_index("person_id")
    assert matrix.loc["w", "social_care_known"] == 1
    assert matrix.loc["w", "social_care_long_term_support"] == 1
    # Without Walsall's Jul-Sep 2024 row in it, Walsall is not known, whatever the events hold.
    frames["social_care_returns"] = arrow_table(
        "social_care_returns", [r for r in received if r["la_code"] == DUDLEY]
    )
    matrix = build_feature_matrix(on_engine(frames), AS_OF, FeatureSettings()).set_index("person_id")
    assert matrix.loc["w", "social_care_known"] == 0 and matrix.loc["a", "social_care_known"] == 1
