"""Build and cache the feature matrix of an extract at an as-of date: the tasks and the ``build_features`` flow.

The matrix is stored as Parquet at
``<output_dir>/features/<snapshot>/features_<as_of>_<settings>.parquet``
(:meth:`riskstrat.catalog.OutputCatalog.feature_file`), where
``<snapshot>`` is the extract's :func:`riskstrat.io.folder_snapshot_hash` and
``<settings>`` a hash of the feature (and outcome) settings and the feature code
version. An unchanged input returns the stored file without rebuilding.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping
from datetime import date
from pathlib import Path

import ibis
import pandas as pd
from prefect import flow, task
from prefect.runtime import flow_run

import riskstrat.features
import riskstrat.ingest.social_care
from riskstrat.catalog import output_catalog
from riskstrat.errors import RiskstratError
from riskstrat.features.backends import connect, read_extract
from riskstrat.features.common import Tables, bit_count
from riskstrat.features.hospital import hospital_features
from riskstrat.features.matrix import build_feature_table
from riskstrat.features.need import realised_need
from riskstrat.features.settings import FeatureSettings, OutcomeSettings
from riskstrat.ingest.contract import CONTRACT, EVENT_TABLES, SOCIAL_CARE_RETURN_DUE_DAYS
from riskstrat.io import folder_snapshot_hash, write_arrow_parquet
from riskstrat.models.training import person_groups
from riskstrat.pipelines.config import Config
from riskstrat.pipelines.shared import IO_RETRIES, holds_output_lock, load_run_config
from riskstrat.pipelines.validate import run_gate

logger = logging.getLogger(__name__)

FEATURE_CODE_VERSION = "1"
"""Bump when the feature code changes what it computes, so cached matrices are rebuilt."""


def _feature_code_hash() -> str:
    # The source of the feature package is part of the key, so editing a feature never reuses a stale matrix;
    # so is the social care returns rule (ingest/social_care.py), which the social care features follow.
    digest = hashlib.sha256()
    paths = [
        *Path(riskstrat.features.__file__).parent.glob("*.py"),
        Path(riskstrat.ingest.social_care.__file__),
    ]
    for path in sorted(paths):
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def feature_cache_key(
    feature_settings: FeatureSettings,
    outcome_settings: OutcomeSettings | None,
    county_of_district: Mapping[str, str] | None = None,
) -> str:
    """A short hash of everything besides the extract and the date that changes the matrix.

    That includes the social care settings the features read (``county_of_district``) and
    the return due lag (:data:`~riskstrat.ingest.contract.SOCIAL_CARE_RETURN_DUE_DAYS`).
    """
    parts = [FEATURE_CODE_VERSION, _feature_code_hash(), feature_settings.fingerprint()]
    parts.append(outcome_settings.fingerprint() if outcome_settings is not None else "no-outcomes")
    social_care = {
        "due_days": SOCIAL_CARE_RETURN_DUE_DAYS,
        "county_of_district": dict(county_of_district or {}),
    }
    parts.append(json.dumps(social_care, sort_keys=True))
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:12]


def feature_file_path(
    output_dir: Path,
    snapshot_hash: str,
    as_of: date,
    feature_settings: FeatureSettings,
    outcome_settings: OutcomeSettings | None = None,
    county_of_district: Mapping[str, str] | None = None,
) -> Path:
    """Where the matrix of one extract snapshot, as-of date and settings is stored."""
    key = feature_cache_key(feature_settings, outcome_settings, county_of_district)
    return output_catalog(output_dir).feature_file(snapshot_hash, as_of, key)


def build_feature_file(
    extract_dir: Path,
    output_dir: Path,
    as_of: date,
    feature_settings: FeatureSettings,
    outcome_settings: OutcomeSettings | None = None,
    extract_date: date | None = None,
    snapshot_hash: str | None = None,
    county_of_district: Mapping[str, str] | None = None,
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
        county_of_district: Two-tier district -> county (``social_care`` in
            ``configs/sources.yaml``), for the social care features.

    Returns:
        The Parquet file of the matrix (the cached one when inputs are unchanged).
    """
    snapshot = snapshot_hash or folder_snapshot_hash(Path(extract_dir))
    target = feature_file_path(
        output_dir, snapshot, as_of, feature_settings, outcome_settings, county_of_district
    )
    if target.is_file():
        logger.info("feature matrix for %s at %s is up to date: %s", snapshot, as_of, target)
        return target
    con = connect(feature_settings)
    tables = read_extract(con, Path(extract_dir))
    # Written from Arrow: a pandas round trip would only copy the wide matrix twice.
    matrix = build_feature_table(
        tables, as_of, feature_settings, outcome_settings, extract_date, county_of_district
    )
    write_arrow_parquet(matrix, target)
    logger.info(
        "built feature matrix for %s at %s: %d people -> %s", snapshot, as_of, matrix.num_rows, target
    )
    return target


@task(name="build-features", **IO_RETRIES)
def build_features(
    extract_dir: Path,
    output_dir: Path,
    as_of: date,
    feature_settings: FeatureSettings,
    outcome_settings: OutcomeSettings | None = None,
    extract_date: date | None = None,
    snapshot_hash: str | None = None,
    county_of_district: Mapping[str, str] | None = None,
) -> Path:
    """Prefect task around :func:`build_feature_file`: build (or reuse the cached) matrix at ``as_of``."""
    return build_feature_file(
        extract_dir,
        output_dir,
        as_of,
        feature_settings,
        outcome_settings,
        extract_date,
        snapshot_hash,
        county_of_district,
    )


def features_at(
    config: Config, extract_dir: Path, as_of: date, with_outcomes: bool, snapshot_hash: str | None = None
) -> Path:
    """The run's feature matrix at ``as_of`` as a task (with outcome columns for training tables)."""
    return build_features(
        extract_dir,
        config.data.output_dir,
        as_of,
        config.features,
        config.outcomes if with_outcomes else None,
        config.data.extract_date,
        snapshot_hash,
        config.sources.social_care.county_of_district,
    )


def read_feature_matrix(path: Path) -> pd.DataFrame:
    """A stored feature matrix with ``as_of`` as dates (Parquet keeps them as timestamps)."""
    frame = pd.read_parquet(path)
    frame["as_of"] = pd.to_datetime(frame["as_of"]).dt.date
    return frame


@task(name="latest-event-date", **IO_RETRIES)
def data_date(extract_dir: Path, feature_settings: FeatureSettings, extract_date: date | None = None) -> date:
    """The as-of date of a run: ``extract_date`` (``data.extract_date``), else the latest event date in the extract."""
    if extract_date:
        return extract_date
    # Optional tables (the quarterly social care returns) lag the health feeds: they never set the date.
    dated = tuple(name for name in EVENT_TABLES if CONTRACT[name].event_date and not CONTRACT[name].optional)
    tables = read_extract(connect(feature_settings), Path(extract_dir), dated)
    found = [tables[name][CONTRACT[name].event_date].max().execute() for name in dated]
    latest = [pd.Timestamp(value) for value in found if value is not None and not pd.isna(value)]
    if not latest:
        raise RiskstratError(
            f"no dated events in {extract_dir}", hint="Set data.extract_date in configs/data.yaml."
        )
    return min(max(latest).date(), date.today())


@task(name="realised-need", **IO_RETRIES)
def need_at(
    extract_dir: Path,
    as_of: date,
    person_ids: pd.Series,
    feature_settings: FeatureSettings,
    outcome_settings: OutcomeSettings,
) -> pd.DataFrame:
    """The audit's evaluation columns for ``person_ids`` at ``as_of`` (never model inputs).

    Emergency admissions, bed days and caseload exposure in the outcome window
    (:func:`riskstrat.features.need.realised_need`), and ``hospital_ltc_count``: the
    long-term conditions coded in hospital in the look-back to ``as_of``, which the
    GP-recording measure (``riskstrat.evaluation.recording``) compares with the GP record.
    """
    tables = read_extract(connect(feature_settings), extract_dir, ("apc_spells", "caseload"))
    people = ibis.memtable(pd.DataFrame({"person_id": person_ids.astype(str).unique()}))
    need = realised_need(people, tables, as_of, outcome_settings)
    coded = hospital_ltc_counts(tables, as_of, feature_settings)
    joined = need.left_join(coded, "person_id")
    frame = joined.select(
        *need.columns, hospital_ltc_count=joined.hospital_ltc_count.fill_null(0).cast("int64")
    ).to_pandas()
    frame["as_of"] = pd.Timestamp(as_of).date()
    return frame


def hospital_ltc_counts(tables: Tables, as_of: date, feature_settings: FeatureSettings) -> ibis.Table:
    """``person_id`` and ``hospital_ltc_count`` (distinct long-term conditions coded in hospital) per coded person.

    The same conditions the ``hospital_ltc_not_on_gp_record`` feature compares with the GP
    record, counted here for the audit rather than added as a model feature.
    """
    _, comorbidity = hospital_features(tables, as_of, feature_settings)
    return comorbidity.select("person_id", hospital_ltc_count=bit_count(comorbidity._hospital_conditions))


def held_out_test_rows(config: Config, extract: Path, snapshot_hash: str | None = None) -> pd.DataFrame:
    """The test rows exactly as training chose them: the test as-of date, test persons only."""
    built = build_features.fn(
        extract,
        config.data.output_dir,
        config.model.as_of.test,
        config.features,
        config.outcomes,
        config.data.extract_date,
        snapshot_hash,
        config.sources.social_care.county_of_district,
    )
    table = read_feature_matrix(built)
    return table[person_groups(table["person_id"], config.model.split).to_numpy() == "test"]


def _features_name() -> str:
    as_of = flow_run.parameters.get("as_of") or "latest"
    return f"build-features-{as_of}"


@flow(name="build_features", flow_run_name=_features_name, validate_parameters=False)
@holds_output_lock("features")
def build_features_flow(
    config_dir: str | None = None, extract_dir: str | None = None, as_of: date | None = None
) -> Path:
    """Validate the extract, then build (or reuse) the feature matrix at ``as_of`` (default: the data date)."""
    config = load_run_config(config_dir)
    extract = Path(extract_dir or config.data.extract_dir)
    report = run_gate(config, extract)
    when = as_of or data_date(extract, config.features, config.data.extract_date)
    return features_at(config, extract, when, with_outcomes=False, snapshot_hash=report.snapshot_hash)
