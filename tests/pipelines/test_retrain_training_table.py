"""The training table as the retrain flow builds it: float32 features, assembled in Arrow, converted once."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from riskstrat.features.dictionary import feature_names
from riskstrat.features.matrix import TRAINING_FEATURE_TYPE, stack_matrices
from riskstrat.features.outcomes import outcome_columns
from riskstrat.io import write_parquet
from riskstrat.pipelines.config import Config, load_config, write_relocated_config
from riskstrat.pipelines.features import build_feature_file, need_at, read_feature_matrix
from riskstrat.pipelines.generate import write_synthetic
from riskstrat.pipelines.retrain import read_training_table, training_table

PEOPLE = 2_000


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Config, Path, pd.DataFrame]:
    root = tmp_path_factory.mktemp("training-table")
    config = load_config(write_relocated_config(root / "configs", root / "outputs"))
    paths = write_synthetic(root / "outputs", PEOPLE, 3, config.synthetic)
    return config, paths.extract_dir, training_table.fn(config, paths.extract_dir)


def _dates(config: Config) -> list:
    as_of = config.model.as_of
    return sorted({*as_of.train, as_of.validation, as_of.test})


def test_features_are_float32_in_the_cached_files_and_the_table(built) -> None:
    config, extract, table = built
    features = feature_names(config.features)
    for when in _dates(config):
        path = build_feature_file(
            extract, config.data.output_dir, when, config.features, config.outcomes, config.data.extract_date
        )
        schema = pq.read_schema(path)
        assert {schema.field(name).type for name in features} == {pa.from_numpy_dtype(TRAINING_FEATURE_TYPE)}
        assert {schema.field(name).type for name in outcome_columns(config.outcomes)} == {pa.int64()}
    assert {str(table[name].dtype) for name in features} == {"float32"}
    assert {str(table[name].dtype) for name in outcome_columns(config.outcomes)} == {"int64"}


def test_weekly_matrix_keeps_float64(built) -> None:
    config, extract, _ = built
    path = build_feature_file(extract, config.data.output_dir, config.model.as_of.test, config.features)
    schema = pq.read_schema(path)
    assert {schema.field(name).type for name in feature_names(config.features)} == {pa.float64()}


def test_same_rows_and_values_as_stacking_in_pandas(built) -> None:
    """The Arrow assembly gives the table the pandas merge-and-stack gave, row for row."""
    config, extract, table = built
    frames = []
    for when in _dates(config):
        path = build_feature_file(
            extract, config.data.output_dir, when, config.features, config.outcomes, config.data.extract_date
        )
        matrix = read_feature_matrix(path)
        need = need_at.fn(extract, when, matrix["person_id"], config.features, config.outcomes)
        frames.append(matrix.merge(need, on=["person_id", "as_of"], how="left", validate="one_to_one"))
    expected = stack_matrices(frames)
    assert list(table.columns) == list(expected.columns)
    assert len(table) == len(expected) > PEOPLE
    assert table["as_of"].map(type).eq(type(expected["as_of"].iloc[0])).all()
    pd.testing.assert_frame_equal(table, expected, check_dtype=False)


def test_rows_sorted_by_person_then_date_and_dates_shared(built) -> None:
    _, _, table = built
    keys = list(zip(table["person_id"], table["as_of"], strict=True))
    assert keys == sorted(keys)
    assert len({id(value) for value in table["as_of"]}) == table["as_of"].nunique()


def test_written_and_read_back_unchanged(built, tmp_path: Path) -> None:
    _, _, table = built
    path = tmp_path / "training_table.parquet"
    write_parquet(table, path)
    assert pa.types.is_float32(pq.read_schema(path).field("age").type)
    back = read_training_table(path)
    pd.testing.assert_frame_equal(back, table, check_dtype=False)
    assert str(back["age"].dtype) == "float32"
    assert np.array_equal(back["as_of"].to_numpy(), table["as_of"].to_numpy())
