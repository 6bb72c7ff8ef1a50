"""Build and cache the feature matrix of an extract at an as-of date (Prefect task and flow).

The matrix is stored as Parquet at
``<output_dir>/features/<snapshot>/features_<as_of>_<settings>.parquet``, where
``<snapshot>`` is the extract's :func:`riskstrat.io.folder_snapshot_hash` and
``<settings>`` a hash of the feature (and outcome) settings and the feature code
version. An unchanged input returns the stored file without rebuilding.
"""

from __future__ import annotations

import hashlib
import logging
from datetime import date
from pathlib import Path

from prefect import flow, task

from riskstrat.features.backends import connect, read_extract
from riskstrat.features.matrix import build_feature_table
from riskstrat.features.settings import FeatureSettings, OutcomeSettings
from riskstrat.io import folder_snapshot_hash, write_arrow_parquet

logger = logging.getLogger(__name__)

FEATURE_CODE_VERSION = "1"
"""Bump when the feature code changes what it computes, so cached matrices are rebuilt."""


def _feature_code_hash() -> str:
    # The source of the feature package is part of the key, so editing a feature never reuses a stale matrix.
    import riskstrat.features as package

    digest = hashlib.sha256()
    for path in sorted(Path(package.__file__).parent.glob("*.py")):
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def feature_cache_key(feature_settings: FeatureSettings, outcome_settings: OutcomeSettings | None) -> str:
    """A short hash of everything besides the extract and the date that changes the matrix."""
    parts = [FEATURE_CODE_VERSION, _feature_code_hash(), feature_settings.fingerprint()]
    parts.append(outcome_settings.fingerprint() if outcome_settings is not None else "no-outcomes")
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:12]


def feature_file_path(
    output_dir: Path,
    snapshot_hash: str,
    as_of: date,
    feature_settings: FeatureSettings,
    outcome_settings: OutcomeSettings | None = None,
) -> Path:
    """Where the matrix of one extract snapshot, as-of date and settings is stored."""
    key = feature_cache_key(feature_settings, outcome_settings)
    return Path(output_dir) / "features" / snapshot_hash / f"features_{as_of.isoformat()}_{key}.parquet"


def build_feature_file(
    extract_dir: Path,
    output_dir: Path,
    as_of: date,
    feature_settings: FeatureSettings,
    outcome_settings: OutcomeSettings | None = None,
    extract_date: date | None = None,
    snapshot_hash: str | None = None,
) -> Path:
    """Build the feature matrix of ``extract_dir`` at ``as_of`` and store it, unless already stored.

    Args:
        extract_dir: Folder of contract tables (``<table>.parquet`` or ``.csv``).
        output_dir: Output root; the file goes under ``<output_dir>/features/``.
        as_of: The as-of date T.
        feature_settings: Feature settings (``configs/features.yaml``).
        outcome_settings: When given, outcome columns are added (a training table).
        extract_date: When given with outcomes, an outcome window past it is refused.
        snapshot_hash: The extract's :func:`riskstrat.io.folder_snapshot_hash` when the
            caller has it (the validation gate computes it); default: computed here.

    Returns:
        The Parquet file of the matrix (the cached one when inputs are unchanged).
    """
    snapshot = snapshot_hash or folder_snapshot_hash(Path(extract_dir))
    target = feature_file_path(output_dir, snapshot, as_of, feature_settings, outcome_settings)
    if target.is_file():
        logger.info("feature matrix for %s at %s is up to date: %s", snapshot, as_of, target)
        return target
    con = connect(feature_settings)
    tables = read_extract(con, Path(extract_dir))
    # Written from Arrow: a pandas round trip would only copy the wide matrix twice.
    matrix = build_feature_table(tables, as_of, feature_settings, outcome_settings, extract_date)
    write_arrow_parquet(matrix, target)
    logger.info(
        "built feature matrix for %s at %s: %d people -> %s", snapshot, as_of, matrix.num_rows, target
    )
    return target


@task(name="build-features")
def build_features(
    extract_dir: Path,
    output_dir: Path,
    as_of: date,
    feature_settings: FeatureSettings,
    outcome_settings: OutcomeSettings | None = None,
    extract_date: date | None = None,
) -> Path:
    """Prefect task around :func:`build_feature_file`."""
    return build_feature_file(
        extract_dir, output_dir, as_of, feature_settings, outcome_settings, extract_date
    )


@flow(name="features")
def features_flow(
    extract_dir: Path,
    output_dir: Path,
    as_of_dates: list[date],
    feature_settings: FeatureSettings | None = None,
    outcome_settings: OutcomeSettings | None = None,
    extract_date: date | None = None,
) -> list[Path]:
    """Build (or reuse) the feature matrix at each as-of date; returns the Parquet files in date order."""
    settings = feature_settings or FeatureSettings()
    return [
        build_features(extract_dir, output_dir, as_of, settings, outcome_settings, extract_date)
        for as_of in sorted(as_of_dates)
    ]
