"""Scoring on Spark: the champion applied to each partition of a Spark feature matrix.

The models are loaded once on the driver (from the MLflow registry, as
:func:`riskstrat.models.scoring.load_champion` does) and shipped to the
executors as one Spark broadcast variable, so the executors never need to
reach MLflow. Each partition arrives as pandas batches (``mapInPandas``) and is
scored by the same :meth:`RiskModel.predict_proba` as the pandas path, so a
person gets the same probability on either engine. Only ``person_id``, the
columns the selection needs and one ``p_<outcome>`` per model come back.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import pandas as pd

from riskstrat.errors import RiskstratError
from riskstrat.models.training import RiskModel

SCORED_COLUMNS: tuple[str, ...] = ("person_id", "practice_code", "age")
"""Feature-matrix columns the scored population keeps (the selection needs them)."""


def probability_column(outcome: str) -> str:
    """The scored population's column of ``outcome``'s calibrated probability."""
    return f"p_{outcome}"


def ship(session: Any, value: Any) -> Callable[[], Any]:
    """Make ``value`` readable on the executors: a broadcast variable, or the closure on Spark Connect.

    A broadcast variable reaches each executor once, however many tasks it
    runs; Spark Connect (e.g. Databricks serverless) has no broadcast, so the
    value then travels with the function (once per task).

    Returns:
        A function that returns ``value``; call it inside the partition function.
    """
    try:
        broadcast = session.sparkContext.broadcast(value)
    except Exception:  # Spark Connect: no SparkContext on the client
        return lambda: value
    return lambda: broadcast.value


def score_partitions(
    matrix: Any,
    models: Mapping[str, RiskModel],
    keep: Sequence[str] = SCORED_COLUMNS,
) -> Any:
    """Calibrated probabilities of every outcome for every row, computed per partition.

    Args:
        matrix: Spark DataFrame of the feature matrix (``person_id``, the models'
            feature columns as doubles, the ``keep`` columns).
        models: Outcome -> model; each adds a ``p_<outcome>`` column.
        keep: Matrix columns to return beside the probabilities.

    Returns:
        A Spark DataFrame (lazy): ``keep`` columns, then ``p_<outcome>`` (double) per model.

    Raises:
        RiskstratError: If the matrix lacks a column a model or ``keep`` needs.
    """
    from pyspark.sql.types import DoubleType, StructField, StructType

    needed = {*keep, *(name for model in models.values() for name in model.feature_names)}
    missing = sorted(needed - set(matrix.columns))
    if missing:
        raise RiskstratError(
            f"the Spark feature matrix lacks {len(missing)} column(s) scoring needs, e.g. {', '.join(missing[:5])}",
            hint="Score with features built by the same feature settings as the models were trained on.",
        )
    fields = {f.name: f for f in matrix.schema.fields}
    schema = StructType(
        [fields[name] for name in keep]
        + [StructField(probability_column(outcome), DoubleType(), True) for outcome in models]
    )
    shipped = ship(matrix.sparkSession, dict(models))
    keep = list(keep)

    def score_batches(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        loaded = shipped()
        for batch in batches:
            scored = batch[keep].copy()
            for outcome, model in loaded.items():
                scored[probability_column(outcome)] = model.predict_proba(batch)
            yield scored

    return matrix.mapInPandas(score_batches, schema)


def collect_scores(scored: Any) -> pd.DataFrame:
    """Bring per-partition scores to the driver as pandas, one row per person sorted by ``person_id``.

    The scores are small (a few columns per person), unlike the feature matrix,
    which stays on the executors.
    """
    frame = scored.toPandas()
    frame["person_id"] = frame["person_id"].astype("str")
    return frame.sort_values("person_id", kind="stable").reset_index(drop=True)
