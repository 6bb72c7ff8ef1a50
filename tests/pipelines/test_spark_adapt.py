"""`riskstrat adapt` with ``backend: pyspark``: the adapters run per partition on Spark, same extract as locally."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

from riskstrat.ingest.sources import SOURCES
from riskstrat.ingest.sources.settings import SourceSettings
from riskstrat.ingest.synthetic.settings import SyntheticSettings
from riskstrat.pipelines.config import load_config, write_relocated_config
from riskstrat.pipelines.generate import write_synthetic

PEOPLE = 500
BATCH_ROWS = 400
"""Small, so every large raw file is spread over several partitions."""

pytestmark = [pytest.mark.slow, pytest.mark.spark]


@pytest.fixture(scope="module")
def raw_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("spark_adapt")
    return write_synthetic(out, PEOPLE, 5, SyntheticSettings(), national=SourceSettings()).raw_dir


def _adapt(root: Path, raw: Path, backend: str):
    from riskstrat.pipelines.sources import adapt_task

    configs = write_relocated_config(
        root / "configs",
        root / "outputs",
        {
            "features.yaml": {"backend": backend, "spark_master": "local[2]"},
            "sources.yaml": {"raw_dir": str(raw), "batch_rows": BATCH_ROWS},
        },
    )
    config = load_config(configs)
    extract = root / "extract"
    return adapt_task.fn(config, raw, extract), extract


def _sorted(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.sort_values(list(frame.columns), na_position="last").reset_index(drop=True)


def test_spark_adapt_writes_the_local_extract_and_coverage(tmp_path, raw_dir):
    pytest.importorskip("pyspark")
    local, local_dir = _adapt(tmp_path / "local", raw_dir, "duckdb")
    spark, spark_dir = _adapt(tmp_path / "spark", raw_dir, "pyspark")
    assert spark.row_counts == local.row_counts
    tables = sorted(p.name for p in local_dir.glob("*.parquet"))
    # One file per table, as the gate and the readers expect; no parts left behind.
    assert sorted(p.name for p in spark_dir.iterdir()) == sorted(p.name for p in local_dir.iterdir())
    for name in tables:
        ours, theirs = pq.read_table(spark_dir / name), pq.read_table(local_dir / name)
        assert ours.schema.equals(theirs.schema), name
        pd.testing.assert_frame_equal(_sorted(ours.to_pandas()), _sorted(theirs.to_pandas()), obj=name)
    assert json.loads((spark_dir / "mapping_coverage.json").read_text()) == json.loads(
        (local_dir / "mapping_coverage.json").read_text()
    )
    assert spark.notes == local.notes
    # The large sources really were split: more raw rows than one partition holds.
    medications = pq.ParquetFile(raw_dir / f"{SOURCES['gp_medications'].file}.parquet").metadata.num_rows
    assert medications > 3 * BATCH_ROWS
