"""The weekly run's heavy steps on a Spark session: features, scoring and reasons per partition.

Selected by ``backend: pyspark`` in ``configs/features.yaml``. The feature
matrix is built by the same Ibis code as on DuckDB, written by the executors as
partitioned Parquet (the feature cache) and read back as a Spark DataFrame; it
never comes to the driver whole. The champions score it per partition
(:mod:`riskstrat.models.spark_scoring`) and only the scores come back; after the
selection, the feature rows and the TreeSHAP reasons of the listed people are
computed per partition and collected. Every patient's status and the listed
people's context are computed by the same session through the Ibis point-in-time
engine (:mod:`riskstrat.pipelines.weekly`); only their narrow results come back.
Selection, export, history and MLflow stay on the driver (see docs/scale-out.md).
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping
from datetime import date
from pathlib import Path
from typing import Any

import pandas as pd

from riskstrat.features.backends import connect_pyspark, read_extract, spark_session
from riskstrat.features.matrix import PERSON_ATTRIBUTES, feature_matrix_expr, shape_matrix_expr
from riskstrat.features.settings import FeatureSettings
from riskstrat.io import atomic_directory, folder_snapshot_hash
from riskstrat.models.spark_scoring import ship
from riskstrat.models.training import RiskModel
from riskstrat.pipelines.features import feature_file_path

ARROW_SETTINGS: dict[str, str] = {
    # Arrow moves pandas batches between the JVM and Python (mapInPandas, toPandas) in columns, not rows.
    "spark.sql.execution.arrow.pyspark.enabled": "true",
    "spark.sql.execution.arrow.pyspark.fallback.enabled": "false",
}


def weekly_session(settings: FeatureSettings) -> Any:
    """The Spark session of the run (the active one, else one on ``settings.spark_master``), Arrow on."""
    session = spark_session(settings.spark_master)
    for key, value in ARROW_SETTINGS.items():
        session.conf.set(key, value)
    return session


def with_as_of(frame: Any, as_of: date) -> Any:
    """Insert the ``as_of`` date after ``person_id``, as the pandas path stores it."""
    from pyspark.sql import functions as F

    rest = [name for name in frame.columns if name != "person_id"]
    return frame.select("person_id", F.lit(as_of).cast("date").alias("as_of"), *rest)


def scoring_partitions(session: Any) -> int:
    """Parts of the stored matrix: the cluster's cores (``defaultParallelism``), at least 2.

    A fixed count is kept as asked (adaptive execution would merge a small
    matrix into one part); Spark Connect has no SparkContext, so there the
    shuffle-partition setting is used.
    """
    try:
        cores = int(session.sparkContext.defaultParallelism)
    except Exception:  # Spark Connect
        cores = int(session.conf.get("spark.sql.shuffle.partitions", "200"))
    return max(2, cores)


def spark_feature_path(
    output_dir: Path,
    snapshot_hash: str,
    as_of: date,
    settings: FeatureSettings,
    county_of_district: Mapping[str, str] | None = None,
) -> Path:
    """Where the Spark-built feature matrix of one extract snapshot, date and settings is cached (a folder)."""
    path = feature_file_path(
        output_dir, snapshot_hash, as_of, settings, county_of_district=county_of_district
    )
    return path.with_suffix(".spark.parquet")


def spark_feature_matrix(
    session: Any,
    extract_dir: Path,
    output_dir: Path,
    as_of: date,
    settings: FeatureSettings,
    snapshot_hash: str | None = None,
    county_of_district: Mapping[str, str] | None = None,
) -> Any:
    """The feature matrix at ``as_of`` as a Spark DataFrame, built by the executors and cached as Parquet.

    The cache sits beside the pandas path's file (same extract snapshot, date
    and settings) as ``features_<as_of>_<key>.spark.parquet``, a folder of
    Parquet parts written by the executors; pandas reads it too. The folder is
    written under a temporary name and renamed, so a failed build leaves no
    half-written cache.

    Args:
        session: The Spark session.
        extract_dir: Extract folder (must be readable by the executors).
        output_dir: Output root (the cache goes under ``features/``; must be shared with the executors).
        as_of: The as-of date T.
        settings: Feature settings.
        snapshot_hash: The extract's hash when the caller has it (the gate's); default: hashed here.
        county_of_district: Two-tier district -> county, for the social care features
            (``social_care`` in ``configs/sources.yaml``).

    Returns:
        A Spark DataFrame read from the cache: one row per person in the cohort.
    """
    snapshot = snapshot_hash or folder_snapshot_hash(Path(extract_dir))
    target = spark_feature_path(output_dir, snapshot, as_of, settings, county_of_district)
    if not target.exists():
        con = connect_pyspark(session)
        tables = read_extract(con, Path(extract_dir))
        expr = feature_matrix_expr(tables, as_of, settings, county_of_district=county_of_district)
        expr = shape_matrix_expr(expr, settings)
        con._run_pre_execute_hooks(expr)  # registers in-memory tables and UDFs, as Ibis's own execute does
        matrix = with_as_of(session.sql(con.compile(expr)), as_of)
        with atomic_directory(target) as staging:
            # One part per executor core, split by person: scoring later runs one task per part.
            # Overwrite: the staging folder exists already.
            # Adaptive execution off for this write, so no earlier setting can merge the parts.
            adaptive = session.conf.get("spark.sql.adaptive.enabled", "true")
            session.conf.set("spark.sql.adaptive.enabled", "false")
            try:
                matrix.repartition(scoring_partitions(session), "person_id").write.mode("overwrite").parquet(
                    str(staging)
                )
            finally:
                session.conf.set("spark.sql.adaptive.enabled", adaptive)
    return session.read.parquet(str(target))


def _only(matrix: Any, people: Collection[str]) -> Any:
    """The rows of ``people`` (a broadcast join: the list is small, the matrix is not)."""
    from pyspark.sql import functions as F

    wanted = matrix.sparkSession.createDataFrame(
        pd.DataFrame({"person_id": pd.Series(sorted({str(p) for p in people}), dtype=object)}),
        "person_id string",
    )
    return matrix.join(F.broadcast(wanted), "person_id", "inner")


def feature_rows(matrix: Any, people: Collection[str]) -> pd.DataFrame:
    """The feature rows of ``people`` on the driver, typed as :func:`read_feature_matrix` gives them.

    Returns:
        One row per person found, sorted by ``person_id``.
    """
    frame = _only(matrix, people).select(*matrix.columns).toPandas()
    return conform_rows(frame)


def conform_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """Spark-collected feature rows with the pandas path's types: str ids and person attributes, date as_of."""
    frame = frame.copy()
    frame["person_id"] = frame["person_id"].astype("str")
    frame["as_of"] = pd.to_datetime(frame["as_of"]).dt.date
    for name in PERSON_ATTRIBUTES:
        if name in frame.columns:
            frame[name] = frame[name].astype("str")
    return frame.sort_values("person_id", kind="stable").reset_index(drop=True)


def reasons_schema(count: int) -> str:
    """Spark schema (DDL) of :func:`riskstrat.worklists.reasons.top_reasons` output with ``person_id``."""
    fields = ["person_id string"]
    for i in range(1, count + 1):
        fields += [
            f"reason_{i} string",
            f"reason_{i}_concept string",
            f"reason_{i}_feature string",
            f"reason_{i}_contribution double",
        ]
    return ", ".join(fields)


def listed_reasons(matrix: Any, model: RiskModel, people: Collection[str], count: int) -> pd.DataFrame:
    """TreeSHAP reasons of the listed people, computed per partition; the pandas path's result.

    The matrix is cut to ``people`` first (a broadcast join), then each
    partition computes ``pred_contrib`` contributions and the top ``count``
    reasons of its rows exactly as the pandas path does (per row, so the
    partitioning does not change a person's reasons).

    Args:
        matrix: Spark feature matrix (from :func:`spark_feature_matrix`).
        model: The outcome's champion.
        people: Person IDs to explain (the listed people).
        count: Reasons per person.

    Returns:
        As :func:`~riskstrat.worklists.reasons.top_reasons`: indexed by ``person_id``
        (sorted), ``reason_<i>``, ``reason_<i>_concept``, ``reason_<i>_feature``,
        ``reason_<i>_contribution``.
    """
    shipped = ship(matrix.sparkSession, model)

    def explain_batches(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        # Imported on the executor, where only these stage modules are needed (not the pipelines).
        from riskstrat.models.explain import contributions
        from riskstrat.worklists.reasons import feature_vocabulary, top_reasons

        champion = shipped()
        vocabulary = feature_vocabulary()
        for batch in batches:
            rows = batch.assign(person_id=batch["person_id"].astype("str"))
            rows.index = pd.Index(rows["person_id"].to_numpy())
            explained = contributions(champion.booster, rows, champion.feature_names)
            yield top_reasons(explained, rows, count, vocabulary).reset_index()

    frame = _only(matrix, people).mapInPandas(explain_batches, reasons_schema(count)).toPandas()
    text = [c for c in frame.columns if c != "person_id" and not c.endswith("_contribution")]
    for name in text:
        frame[name] = frame[name].astype("str")
    for name in frame.columns:
        if name.endswith("_contribution"):
            frame[name] = frame[name].astype("float64")
    frame["person_id"] = frame["person_id"].astype("str")
    frame = frame.sort_values("person_id", kind="stable").set_index("person_id")
    return frame
