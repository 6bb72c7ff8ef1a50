"""Backend parity: the same extract gives identical feature matrices on DuckDB and PySpark."""

from __future__ import annotations

import pandas as pd
import pytest
from feature_fixtures import AS_OF, extract, hand_worked_rows, random_rows

from riskstrat.features.backends import connect_duckdb, connect_pyspark, register_frames
from riskstrat.features.matrix import build_feature_matrix
from riskstrat.features.settings import FeatureSettings, OutcomeSettings


def _rows():
    rows = hand_worked_rows()
    for name, table_rows in random_rows(seed=11, n_people=30, events_per_table=120).items():
        rows[name] = rows.get(name, []) + table_rows
    return rows


@pytest.mark.slow
@pytest.mark.spark
def test_duckdb_and_pyspark_give_identical_matrices(spark):
    frames = extract(_rows())
    settings = FeatureSettings.model_validate({"include_ethnicity": True})
    outcomes = OutcomeSettings.model_validate({"emergency_admission": {"additional_horizons_days": [90]}})
    on_duckdb = build_feature_matrix(register_frames(connect_duckdb(), frames), AS_OF, settings, outcomes)
    on_spark = build_feature_matrix(
        register_frames(connect_pyspark(spark), frames), AS_OF, settings, outcomes
    )
    assert len(on_duckdb) > 20
    pd.testing.assert_frame_equal(on_spark, on_duckdb, check_exact=False, rtol=1e-12)
