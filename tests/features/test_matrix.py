"""Training tables over several as-of dates and the person-level split."""

from __future__ import annotations

from datetime import date, timedelta

import ibis
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from feature_fixtures import AS_OF, extract, hand_worked_rows, memtables, patient, random_rows

import riskstrat.features.matrix as matrix_module
from riskstrat.errors import RiskstratError
from riskstrat.features.dictionary import feature_dictionary
from riskstrat.features.matrix import (
    PERSON_ATTRIBUTES,
    TRAINING_FEATURE_TYPE,
    build_feature_matrix,
    build_training_table,
    feature_matrix_expr,
    sort_by_person,
    split_people,
    trained_features,
)
from riskstrat.features.outcomes import outcome_columns
from riskstrat.features.settings import FeatureSettings, OutcomeSettings


def test_training_table_stacks_person_time_rows():
    dates = [date(2024, 12, 31), date(2023, 12, 31)]
    table = build_training_table(
        memtables(extract(hand_worked_rows())), dates, FeatureSettings(), OutcomeSettings()
    )
    assert list(table[["person_id", "as_of"]].itertuples(index=False, name=None)) == sorted(
        table[["person_id", "as_of"]].itertuples(index=False, name=None)
    )
    by_date = table.groupby("as_of")["person_id"].apply(set)
    # p5 turns 18 only in 2024; everyone else in the 2024 cohort was also in the 2023 one.
    assert by_date[date(2024, 12, 31)] - by_date[date(2023, 12, 31)] == {"p5"}
    row = table.set_index(["person_id", "as_of"]).loc[("p1", date(2023, 12, 31))]
    assert row["emergency_admission"] == 1  # s1 and s2 fall in (2023-12-31, 2024-12-31]
    assert row["ltc_diabetes"] == 0  # recorded 2024-12-31


def test_split_people_is_deterministic_disjoint_and_near_the_fractions():
    people = [f"P{i}" for i in range(20_000)]
    first = split_people(people + people[:50], {"train": 0.7, "validation": 0.1, "test": 0.2}, seed=3)
    again = split_people(list(reversed(people)), {"train": 0.7, "validation": 0.1, "test": 0.2}, seed=3)
    assert first.index.is_unique and len(first) == len(people)
    assert first.sort_index().equals(again.sort_index())
    shares = first.value_counts(normalize=True)
    assert shares["train"] == pytest.approx(0.7, abs=0.02) and shares["test"] == pytest.approx(0.2, abs=0.02)
    other_seed = split_people(people, {"train": 0.7, "validation": 0.1, "test": 0.2}, seed=4)
    assert not other_seed.sort_index().equals(first.sort_index())


def test_split_fractions_must_sum_to_one():
    with pytest.raises(RiskstratError, match="sum to 1"):
        split_people(["a"], {"train": 0.7, "test": 0.2})


def _diagnoses_of(person_id: str, conditions: list[str]) -> dict[str, list[dict]]:
    return {
        "patients": [patient(person_id, date(1950, 1, 1))],
        "gp_diagnoses": [
            {"person_id": person_id, "event_date": date(2020, 1, 1), "condition": c} for c in conditions
        ],
    }


def test_efi_counts_only_frailty_deficits_once_each(on_engine):
    # Depression, cancer and an unknown code are not eFI deficits; copd and asthma are one
    # deficit (respiratory disease); the polypharmacy code counts once; hypertension twice coded.
    coded = ["depression", "cancer", "not_a_vocabulary_code", "copd", "asthma", "polypharmacy"]
    coded += ["hypertension", "hypertension"]
    row = build_feature_matrix(on_engine(extract(_diagnoses_of("q1", coded))), AS_OF, FeatureSettings()).iloc[
        0
    ]
    assert row["efi_score"] == pytest.approx(3 / 36)  # respiratory, hypertension, polypharmacy
    assert row["ltc_count"] == 5 and row["ltc_hypertension"] == 1 and row["ltc_copd"] == 1


def test_arrow_and_pandas_shaping_give_the_same_frame():
    tables = memtables(extract(hand_worked_rows()))
    settings, outcomes = FeatureSettings(), OutcomeSettings()
    built = build_feature_matrix(tables, AS_OF, settings, outcomes)
    executed = feature_matrix_expr(tables, AS_OF, settings, outcomes).to_pyarrow().to_pandas()
    pd.testing.assert_frame_equal(built, _shaped_in_pandas(executed, AS_OF, settings, outcomes))


def _shaped_in_pandas(
    frame: pd.DataFrame,
    as_of: date,
    settings: FeatureSettings,
    outcome_settings: OutcomeSettings | None = None,
) -> pd.DataFrame:
    """Reference shaping in pandas of an executed matrix: column order, dtypes and row order.

    Features are float64 (float32 in a training table; NaN where missing), outcomes int64,
    ``person_id`` and audit columns strings, ``as_of`` a ``datetime.date``; rows sorted by ``person_id``.
    """
    # Social care columns only when the extract had the table.
    features = trained_features(feature_dictionary(settings), frame.columns)
    outcomes = outcome_columns(outcome_settings) if outcome_settings is not None else []
    columns: dict[str, object] = {
        "person_id": frame["person_id"].astype("str").to_numpy(),
        "as_of": np.array([as_of] * len(frame), dtype=object),
    }
    for name in features:
        kind = TRAINING_FEATURE_TYPE if outcome_settings is not None else "float64"
        columns[name] = pd.to_numeric(frame[name], errors="raise").astype(kind).to_numpy()
    for name in outcomes:
        columns[name] = frame[name].fillna(0).astype("int64").to_numpy()
    for name in PERSON_ATTRIBUTES:
        columns[name] = frame[name].astype("str").to_numpy()
    result = pd.DataFrame(columns)
    result["person_id"] = result["person_id"].astype("str")
    for name in PERSON_ATTRIBUTES:
        result[name] = result[name].astype("str")
    return result.sort_values("person_id", kind="stable").reset_index(drop=True)


def test_matrix_is_sorted_by_person_when_the_engine_returns_rows_shuffled(monkeypatch):
    tables = memtables(extract(random_rows(seed=11, n_people=60)))
    settings, outcomes = FeatureSettings(), OutcomeSettings()
    expected = build_feature_matrix(tables, AS_OF, settings, outcomes)
    unshuffled = matrix_module.shape_matrix_expr

    def shuffled(*args, **kwargs):
        return unshuffled(*args, **kwargs).order_by(ibis.random())

    monkeypatch.setattr(matrix_module, "shape_matrix_expr", shuffled)
    built = build_feature_matrix(tables, AS_OF, settings, outcomes)
    assert built["person_id"].is_monotonic_increasing and built["person_id"].is_unique
    pd.testing.assert_frame_equal(built, expected)


def test_sort_by_person_orders_rows_across_chunks_and_keeps_sorted_tables():
    table = pa.table(
        {
            "person_id": ["p10", "p2", "p1", "P9", "p20"],
            "score": [10.0, 2.0, 1.0, 9.0, None],
            "band": list("abcde"),
        }
    )
    chunked = pa.concat_tables([table.slice(0, 2), table.slice(2)])
    result = sort_by_person(chunked)
    # Byte order, as DuckDB and Spark sort strings: upper case first, "p10" before "p2".
    assert result.column("person_id").to_pylist() == ["P9", "p1", "p10", "p2", "p20"]
    assert result.column("score").to_pylist() == [9.0, 1.0, 10.0, 2.0, None]
    assert result.column("band").to_pylist() == ["d", "c", "a", "b", "e"]
    assert result.schema == table.schema
    assert sort_by_person(result) is result
    assert sort_by_person(table.slice(0, 0)).num_rows == 0


def test_new_conditions_are_long_term_conditions_first_recorded_in_the_365_days_to_t(on_engine):
    year_ago = AS_OF - timedelta(days=365)
    recorded = [
        ("copd", year_ago),  # the day before the window: not new
        ("asthma", year_ago + timedelta(days=1)),  # the window's first day: new
        ("diabetes", year_ago - timedelta(days=30)),  # recorded before and again inside: not new
        ("diabetes", AS_OF - timedelta(days=10)),
        ("depression", AS_OF),  # on T: new
        ("falls", AS_OF - timedelta(days=10)),  # not a long-term condition
        ("heart_failure", AS_OF + timedelta(days=1)),  # after T: not recorded at all
    ]
    rows = {
        "patients": [patient("q1", date(1950, 1, 1))],
        "gp_diagnoses": [{"person_id": "q1", "event_date": day, "condition": c} for c, day in recorded],
    }
    row = build_feature_matrix(on_engine(extract(rows)), AS_OF, FeatureSettings()).iloc[0]
    assert row["ltc_count"] == 4  # copd, asthma, diabetes, depression
    assert row["new_conditions_365d"] == 2  # asthma, depression
    assert row["ltc_heart_failure"] == 0 and row["ltc_diabetes"] == 1
