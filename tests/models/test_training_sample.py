"""The person-time sample of the training rows and the float32 matrices training is fitted on."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError
from synthetic_training import FEATURES, fast_settings, make_training_table

from riskstrat.models.settings import ModelSettings, TrainingSampleSettings
from riskstrat.models.training import (
    LOGISTIC_MAX_ROWS,
    TemporalSplit,
    feature_matrix,
    logistic_rows,
    sample_training_rows,
    temporal_split,
    train_outcome,
)


def _split(rows: int = 50_000) -> TemporalSplit:
    return TemporalSplit(
        train=np.arange(0, rows, 2), validation=np.arange(1, rows, 4), test=np.arange(3, rows, 4)
    )


def test_sample_respects_max_rows_and_keeps_validation_and_test_rows() -> None:
    split = _split()
    sampled, record = sample_training_rows(split, TrainingSampleSettings(max_rows=10_000, seed=7))
    assert len(sampled.train) == 10_000
    assert np.isin(sampled.train, split.train).all()
    assert len(np.unique(sampled.train)) == 10_000
    assert (np.diff(sampled.train) > 0).all()  # kept in table order
    np.testing.assert_array_equal(sampled.validation, split.validation)
    np.testing.assert_array_equal(sampled.test, split.test)
    assert record == {"training_sample_max_rows": 10_000, "training_sample_share": 10_000 / 25_000}


def test_sample_is_seeded() -> None:
    split = _split()
    first, _ = sample_training_rows(split, TrainingSampleSettings(max_rows=10_000, seed=7))
    again, _ = sample_training_rows(split, TrainingSampleSettings(max_rows=10_000, seed=7))
    other, _ = sample_training_rows(split, TrainingSampleSettings(max_rows=10_000, seed=8))
    np.testing.assert_array_equal(first.train, again.train)
    assert not np.array_equal(first.train, other.train)


def test_no_sample_when_off_or_when_the_rows_fit() -> None:
    split = _split()
    for settings in (TrainingSampleSettings(), TrainingSampleSettings(max_rows=25_000)):
        kept, record = sample_training_rows(split, settings)
        assert kept is split
        assert record["training_sample_share"] == 1.0


def test_invalid_sample_setting_fails_clearly() -> None:
    with pytest.raises(ValidationError, match="max_rows"):
        ModelSettings.model_validate({"training_sample": {"max_rows": 5}})
    with pytest.raises(ValidationError, match="max_row"):
        ModelSettings.model_validate({"training_sample": {"max_row": 50_000}})


def test_feature_matrix_is_float32_column_major_and_exact() -> None:
    table = pd.DataFrame(
        {
            "a": np.array([1.0, np.nan, 3.5, 4.0], dtype="float32"),
            "b": np.array([10, 20, 30, 40], dtype="int64"),
            "c": [0.1, 0.2, None, 0.4],
        }
    )
    rows = np.array([3, 1, 2])
    matrix = feature_matrix(table, ["b", "a", "c"], rows)
    assert matrix.dtype == np.float32 and matrix.flags.f_contiguous
    expected = table[["b", "a", "c"]].to_numpy(dtype=np.float32, na_value=np.nan)[rows]
    np.testing.assert_array_equal(matrix, expected)


def test_training_on_a_sample_uses_only_the_sampled_rows_and_every_test_row() -> None:
    table = make_training_table(6000)
    settings = fast_settings(outcomes=("emergency_admission",))
    full_split = temporal_split(table, settings)
    settings = settings.model_copy(
        update={"training_sample": TrainingSampleSettings(max_rows=10_000, seed=3)}
    )
    # Too few rows to sample at 6,000 people: the sample is off and every row trains.
    result = train_outcome(table, FEATURES, "emergency_admission", settings)
    assert result.summary["rows_train"] == len(full_split.train) < 10_000
    # A bound below the rows: exactly that many train, the test rows are all kept.
    small = settings.model_copy(
        update={"training_sample": TrainingSampleSettings.model_construct(max_rows=1_000, seed=3)}
    )
    sampled = train_outcome(table, FEATURES, "emergency_admission", small)
    assert sampled.summary["rows_train"] == 1_000
    assert sampled.summary["training_sample_share"] == pytest.approx(1_000 / len(full_split.train))
    np.testing.assert_array_equal(sampled.test_rows, full_split.test)
    assert len(sampled.test_scores) == len(full_split.test)


def test_logistic_baseline_rows_are_bounded_and_seeded() -> None:
    assert logistic_rows(LOGISTIC_MAX_ROWS, seed=1) is None
    rows = logistic_rows(LOGISTIC_MAX_ROWS + 100_000, seed=1)
    assert rows is not None and len(rows) == LOGISTIC_MAX_ROWS
    assert (np.diff(rows) > 0).all() and rows.max() < LOGISTIC_MAX_ROWS + 100_000
    np.testing.assert_array_equal(rows, logistic_rows(LOGISTIC_MAX_ROWS + 100_000, seed=1))


def test_logistic_baseline_bound_is_a_setting() -> None:
    assert ModelSettings().logistic_baseline_max_rows == LOGISTIC_MAX_ROWS == 500_000
    assert logistic_rows(2_000_000, seed=1, max_rows=None) is None
    rows = logistic_rows(50_000, seed=1, max_rows=20_000)
    assert rows is not None and len(rows) == 20_000
