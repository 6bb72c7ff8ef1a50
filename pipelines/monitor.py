"""Monitoring between retrains: the weekly run's ``monitor`` step and ``riskstrat monitor``.

:func:`run_monitoring` wires the checks of :mod:`riskstrat.evaluation` (feed
health, drift, estimated and realised performance) to the week's tables, scores
and champions, and writes what they found: the page and its JSON
(``monitoring/<week>/``), this week's scores (``monitoring/scores/<week>.parquet``),
a row per metric in ``monitoring/history.parquet`` and the realised-performance
aggregates of newly matured weeks (``monitoring/realised.parquet``, a cache: each
run computes only the weeks whose window has just passed). It logs the metrics to
MLflow against each champion's training run, so they plot over time beside its
test metrics. Then :func:`stop_if_critical` raises :class:`MonitoringAlarmError`
on a critical alarm of a check in ``monitoring.stop_checks``: the weekly flow run
fails before publishing, last week's lists stay, and the page says why.

``riskstrat monitor`` (:func:`monitoring_flow`, ``on_demand``) publishes nothing and
changes no week's record: it writes no scores and no history rows, logs nothing to
MLflow, and writes its page and JSON beside the weekly ones
(``monitoring/<week>/on-demand.html`` and ``on-demand.json``), replacing neither.

Event volumes are counted where the extract is (DuckDB or Spark, through Ibis);
only per-practice weekly counts come to the driver. Drift is computed on the
pandas feature matrix, or on the Spark path on a seeded sample of it.
"""

from __future__ import annotations

import functools
import json
import math
import tempfile
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import ibis
import ibis.expr.types as ir
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from prefect import flow, task
from prefect.cache_policies import NO_CACHE

from riskstrat.catalog import OutputCatalog, output_catalog
from riskstrat.errors import RiskstratError
from riskstrat.evaluation.alarms import Alarm, join_words, stopping, worst
from riskstrat.evaluation.drift import drift, drift_reference, estimated_alarms, estimated_performance
from riskstrat.evaluation.feed_health import (
    feed_health,
    registered_by_practice,
    source_coverage,
    week_ends,
    weekly_event_counts,
)
from riskstrat.evaluation.monitoring_page import MonitoringInputs, monitoring_payload, render_page
from riskstrat.evaluation.monitoring_settings import MonitoringSettings
from riskstrat.evaluation.realised import expected_within, realised_alarms, realised_performance
from riskstrat.features.backends import FEATURE_TABLES, read_extract
from riskstrat.features.outcomes import outcome, outcome_wording
from riskstrat.features.settings import OutcomeSettings
from riskstrat.io import atomic_directory, atomic_path, write_parquet
from riskstrat.models.registry import CHAMPION, tracking
from riskstrat.models.spark_scoring import probability_column
from riskstrat.models.training import RiskModel
from riskstrat.pipelines.config import Config
from riskstrat.pipelines.logs import run_logger
from riskstrat.pipelines.shared import holds_output_lock, load_run_config, this_monday, tracking_uri
from riskstrat.worklists.settings import MdtSettings, read_practices, resolve_mdts

REFERENCE_ARTIFACT = "monitoring/reference.json"
"""The drift reference logged on each model's training run (its test rows' scores and top features)."""

SCORES_METADATA_KEY = b"riskstrat"
"""Parquet key-value metadata of a stored week's scores: JSON {"models": {outcome: "name vN"}}."""

HISTORY_COLUMNS = ("week", "data_date", "outcome", "metric", "value", "model")
"""``monitoring/history.parquet``: one row per monitored week, outcome ("" for the whole run) and metric."""

REALISED_CUTS = {"overall": None, "decile": "by_decile", "practice": "by_practice", "mdt": "by_mdt"}
"""The cuts of ``monitoring/realised.parquet`` and the realised result's key each comes from."""

NO_EARLY_READ = frozenset({"frequent_attendance"})
"""Outcomes read at their full window only. The early read scales a probability to a shorter window
assuming a constant hazard, which holds for a first event (an emergency admission) but not for a count
over a threshold ("5 or more A&E attendances in 12 months" is a different event in 90 days): at
1,000,000 people its 90-day O/E was 0.47 on a well-calibrated model, a false warning every week."""

SPARK_DRIFT_SAMPLE = 200_000
"""On Spark, drift is computed on a seeded sample of this many people's features (the scores are all)."""

SPARK_DRIFT_SEED = 20240101


class MonitoringAlarmError(RiskstratError):
    """A critical monitoring alarm stopped the weekly run before publishing."""


@dataclass
class MonitoringRun:
    """What one monitoring run found and wrote (aggregates only).

    Attributes:
        week: The week monitored.
        data_date: The data date of its scores.
        alarms: Every alarm raised.
        page: The monitoring page.
        json_path: Its JSON payload.
        scores_path: This week's stored scores (None when nothing was scored).
        payload: The disclosure-controlled payload.
        matured: (week, outcome, horizon) of realised results computed in this run.
        on_demand: ``riskstrat monitor``: a check only, nothing published.
    """

    week: date
    data_date: date
    alarms: list[Alarm]
    page: Path
    json_path: Path
    scores_path: Path | None = None
    payload: dict[str, Any] = field(default_factory=dict)
    matured: list[tuple[date, str, int]] = field(default_factory=list)
    on_demand: bool = False

    @property
    def level(self) -> str | None:
        """The most serious alarm level, or None."""
        return worst(self.alarms)

    def summary(self) -> str:
        """One line for the command line and the demo."""
        critical = sum(a.level == "critical" for a in self.alarms)
        warnings = sum(a.level == "warning" for a in self.alarms)
        state = "no alarms" if not self.alarms else f"{critical} critical, {warnings} warning(s)"
        return f"Monitoring (week {self.week}): {state}; page {self.page}"


# ----------------------------------------------------------------------------- inputs


def monitoring_tables(
    con: ibis.BaseBackend,
    extract_dir: Path,
    present: Collection[str],
    opened: Mapping[str, ir.Table] | None = None,
) -> dict[str, ir.Table]:
    """The patients and event tables the checks read, on the feature backend (lazily).

    Args:
        con: The feature backend (DuckDB, or PySpark on the weekly session).
        extract_dir: The extract folder.
        present: Tables the gate found.
        opened: Tables already open on ``con`` (the weekly run's status and context tables), reused.

    Returns:
        Ibis tables by contract name.
    """
    tables = dict(opened or {})
    wanted = tuple(name for name in FEATURE_TABLES if name in present and name not in tables)
    tables.update(read_extract(con, Path(extract_dir), wanted))
    return tables


def mdt_of_practice(settings: MdtSettings) -> dict[str, str]:
    """Practice code -> the (first) MDT whose list covers it; empty when no MDT can be resolved."""
    practices_file = Path(settings.practices_file)
    practices = read_practices(practices_file) if practices_file.is_file() else None
    try:
        mdts = resolve_mdts(settings, practices)
    except RiskstratError:
        return {}
    owner: dict[str, str] = {}
    for mdt in mdts:
        for code in mdt.practices:
            owner.setdefault(str(code), mdt.name)
    return owner


def week_scores(
    scored: pd.DataFrame, week: date, data_date: date, mdts: Mapping[str, str], outcomes: Sequence[str]
) -> pa.Table:
    """This week's scores as stored (interfaces B): week, data_date, person_id, practice_code, mdt, p_<outcome>."""
    practice = scored["practice_code"].astype("string")
    columns: dict[str, pa.Array] = {
        "week": pa.array(np.full(len(scored), week), type=pa.date32()),
        "data_date": pa.array(np.full(len(scored), data_date), type=pa.date32()),
        "person_id": pa.array(scored["person_id"].astype(str), type=pa.string()),
        "practice_code": pa.array(practice, type=pa.string(), from_pandas=True),
        "mdt": pa.array(practice.map(dict(mdts)), type=pa.string(), from_pandas=True),
    }
    for name in outcomes:
        column = probability_column(name)
        values = scored[column] if column in scored.columns else pd.Series(np.nan, index=scored.index)
        columns[column] = pa.array(values.to_numpy(dtype=np.float64), type=pa.float64(), from_pandas=True)
    return pa.table(columns)


def write_week_scores(path: Path, table: pa.Table, models: Mapping[str, str]) -> Path:
    """Write one week's scores atomically, naming the models in the file's metadata."""
    meta = {
        **(table.schema.metadata or {}),
        SCORES_METADATA_KEY: json.dumps({"models": dict(models)}).encode(),
    }
    with atomic_path(Path(path)) as tmp:
        pq.write_table(table.replace_schema_metadata(meta), tmp, compression="zstd")
    return Path(path)


def stored_models(path: Path) -> dict[str, str]:
    """The models named in a stored week's scores (``{}`` when the file says none)."""
    meta = pq.read_schema(path).metadata or {}
    try:
        return dict(json.loads(meta.get(SCORES_METADATA_KEY, b"{}")).get("models", {}))
    except (ValueError, AttributeError):
        return {}


# ----------------------------------------------------------------------------- MLflow


def _champion_run(client: Any, model_name: str) -> str | None:
    """The training run of ``model_name``'s champion, or None when it has none."""
    from mlflow.exceptions import MlflowException

    try:
        return str(client.get_model_version_by_alias(model_name, CHAMPION).run_id)
    except MlflowException:
        return None


def _version_run(client: Any, label: str) -> str | None:
    """The training run of a "name vN" model label (None when it is not a registered version)."""
    from mlflow.exceptions import MlflowException

    name, _, version = label.rpartition(" v")
    if not name or not version.isdigit():
        return None
    try:
        return str(client.get_model_version(name, version).run_id)
    except MlflowException:
        return None


def champion_runs(config: Config, outcomes: Collection[str], uri: str) -> dict[str, str]:
    """Outcome -> the champion's training run ID, for the outcomes that have a champion."""
    runs = {}
    with tracking(uri) as client:
        for name in outcomes:
            run_id = _champion_run(client, config.model.mlflow.registered_models[name])
            if run_id is not None:
                runs[name] = run_id
    return runs


def load_reference(run_id: str, uri: str) -> dict[str, Any] | None:
    """The drift reference logged on a training run, or None when the run has none (an older model)."""
    from mlflow.exceptions import MlflowException

    with tracking(uri) as client, tempfile.TemporaryDirectory() as folder:
        try:
            path = client.download_artifacts(run_id, REFERENCE_ARTIFACT, folder)
        except (MlflowException, OSError):
            return None
        return json.loads(Path(path).read_text(encoding="utf-8"))


def tested_aurocs(runs: Mapping[str, str], uri: str) -> dict[str, float]:
    """Outcome -> the champion's test AUROC logged at training (``test_auroc``)."""
    out = {}
    with tracking(uri) as client:
        for name, run_id in runs.items():
            value = client.get_run(run_id).data.metrics.get("test_auroc")
            if value is not None:
                out[name] = float(value)
    return out


@functools.lru_cache(maxsize=64)
def model_test_auroc(label: str, uri: str) -> float | None:
    """The test AUROC logged with the model version a stored week names ("name vN"); None if unknown."""
    with tracking(uri) as client:
        run_id = _version_run(client, label)
        if run_id is None:
            return None
        value = client.get_run(run_id).data.metrics.get("test_auroc")
    return None if value is None else float(value)


def week_millis(week: date) -> int:
    """The week's Monday at midnight UTC, in milliseconds (MLflow metric timestamps)."""
    return int(datetime(week.year, week.month, week.day, tzinfo=UTC).timestamp() * 1000)


def log_metrics(uri: str, metrics: Mapping[str, Mapping[date, Mapping[str, float]]]) -> int:
    """Log monitoring metrics on training runs: run ID -> week -> key -> value (step = the week's ordinal).

    Returns:
        How many metric values were logged.
    """
    from mlflow.entities import Metric

    logged = 0
    with tracking(uri) as client:
        for run_id, weeks in metrics.items():
            batch = [
                Metric(key, float(value), week_millis(week), week.toordinal())
                for week, values in sorted(weeks.items())
                for key, value in sorted(values.items())
                if value is not None and math.isfinite(float(value))
            ]
            for start in range(0, len(batch), 1000):
                client.log_batch(run_id, metrics=batch[start : start + 1000])
            logged += len(batch)
    return logged


# ----------------------------------------------------------------------------- realised performance


def observed_events(
    tables: Mapping[str, ir.Table], person_ids: pa.Array, as_of: date, name: str, settings: Any
) -> np.ndarray:
    """0/1 per person: the outcome ``name`` happened in (as_of, as_of + horizon], from the current extract.

    Args:
        tables: Extract tables (``patients`` and the outcome's event tables).
        person_ids: The people, in the order wanted.
        as_of: The scored week's data date.
        name: The outcome (its registered label function is used).
        settings: The outcome's settings section, with the horizon wanted.

    Returns:
        One 0/1 value per person in ``person_ids``; a person the extract no longer holds counts as 0.
    """
    spec = outcome(name)
    people = ibis.memtable(pa.table({"person_id": person_ids}))
    patients = tables["patients"].select("person_id", "date_of_death")
    cohort = people.left_join(patients, "person_id").select(people.person_id, patients.date_of_death)
    labels = spec.label(cohort, tables, as_of, settings).select("person_id", name)
    events = labels.filter(labels[name] == 1).select("person_id").to_pyarrow()
    happened = set(events.column("person_id").to_pylist())
    ids = person_ids.to_pylist()
    return np.fromiter((p in happened for p in ids), dtype=np.int64, count=len(ids))


def _window_settings(outcomes: OutcomeSettings, name: str, horizon_days: int) -> Any:
    """The outcome's settings with its window set to ``horizon_days`` (and no extra horizons)."""
    section = outcomes.section(name)
    update: dict[str, Any] = {"horizon_days": horizon_days}
    if "additional_horizons_days" in type(section).model_fields:
        update["additional_horizons_days"] = ()
    return section.model_copy(update=update)


def realised_rows(result: Mapping[str, Any], week: date, name: str, horizon: int, model: str) -> pd.DataFrame:
    """One realised result flattened into ``monitoring/realised.parquet`` rows (one per cut and group)."""
    rows = []
    for cut, key in REALISED_CUTS.items():
        groups = [result.get("overall", {})] if key is None else list(result.get(key, []))
        for group in groups:
            row = {k: v for k, v in group.items() if not isinstance(v, dict | list)}
            # Groups give their O/E interval as low/high, the overall row as oe_low/oe_high.
            row = {{"low": "oe_low", "high": "oe_high"}.get(k, k): v for k, v in row.items()}
            label = "all" if key is None else row.pop(_group_key(row, cut), None)
            rows.append(
                {
                    "week": week,
                    "outcome": name,
                    "horizon_days": int(horizon),
                    "cut": cut,
                    "group": None if label is None else str(label),
                    "model": model,
                    **row,
                }
            )
    frame = pd.DataFrame(rows)
    for column in frame.columns:
        if column not in ("week", "outcome", "horizon_days", "cut", "group", "model"):
            frame[column] = pd.to_numeric(frame[column], errors="coerce").astype("float64")
    return frame


def _group_key(row: Mapping[str, Any], cut: str) -> str:
    for key in (cut, "group", "decile", "practice_code", "mdt", "name"):
        if key in row:
            return key
    return "group"


def published_score_weeks(outputs: OutputCatalog) -> list[tuple[date, Path]]:
    """Stored score files of published weeks (``worklists/<week>/`` exists), oldest first."""
    found = []
    folder = outputs.monitoring_scores_dir
    if not folder.is_dir():
        return []
    for path in sorted(folder.glob("*.parquet")):
        try:
            week = date.fromisoformat(path.stem)
        except ValueError:
            continue
        if outputs.week(week).is_dir():
            found.append((week, path))
    return found


def _read_cache(path: Path) -> pd.DataFrame:
    if not path.is_file():
        return pd.DataFrame(columns=["week", "outcome", "horizon_days", "cut", "group", "model"])
    cache = pd.read_parquet(path)
    cache["week"] = pd.to_datetime(cache["week"]).dt.date
    return cache


def update_realised(
    outputs: OutputCatalog,
    tables: Mapping[str, ir.Table],
    data_date: date,
    config: Config,
    outcomes: Sequence[str],
    uri: str,
) -> tuple[pd.DataFrame, list[Alarm], list[tuple[date, str, int, str, dict[str, Any]]]]:
    """Compute realised performance of published weeks whose window has just passed; update the cache.

    A stored week matures for a horizon when its data date plus the horizon is on or
    before ``data_date``; each (week, outcome, horizon) is computed once and cached in
    ``monitoring/realised.parquet``. Horizons: each outcome's full window
    (``configs/outcomes.yaml``) and the early read (``monitoring.realised.early_read_days``).

    Returns:
        The whole cache, the alarms of the newly matured results, and those results
        (week, outcome, horizon, model, result).
    """
    settings = config.monitoring.realised
    cache = _read_cache(outputs.monitoring_realised)
    done = set(zip(cache["week"], cache["outcome"], cache["horizon_days"].astype(int), strict=True))
    new_frames, alarms, matured = [], [], []
    for week, path in published_score_weeks(outputs):
        schema = pq.read_schema(path)
        names = [n for n in outcomes if probability_column(n) in schema.names]
        wanted = []
        for name in names:
            full = outcome(name).horizon_days(config.outcomes.section(name))
            early = {settings.early_read_days} if name not in NO_EARLY_READ else set()
            for horizon in sorted({full} | early):
                wanted.append((name, horizon, full))
        scores = None
        for name, horizon, full in wanted:
            if (week, name, horizon) in done:
                continue
            if scores is None:
                scores = pq.read_table(path)
                scored_on = scores.column("data_date")[0].as_py()
            if scored_on + timedelta(days=horizon) > data_date:
                continue
            probability = scores.column(probability_column(name)).to_numpy(zero_copy_only=False)
            keep = ~np.isnan(probability)
            if not keep.any():
                continue
            people = scores.filter(pa.array(keep))
            events = observed_events(
                tables,
                people.column("person_id").combine_chunks(),
                scored_on,
                name,
                _window_settings(config.outcomes, name, horizon),
            )
            frame = pd.DataFrame(
                {
                    "person_id": people.column("person_id").to_pandas(),
                    "practice_code": people.column("practice_code").to_pandas(),
                    "mdt": people.column("mdt").to_pandas(),
                    "expected": expected_within(probability[keep], horizon, full),
                    "event": events,
                }
            )
            result = realised_performance(frame, settings)
            model = stored_models(path).get(name, "")
            tested = model_test_auroc(model, uri)
            alarms.extend(realised_alarms(result, week, horizon, settings, name, tested))
            new_frames.append(realised_rows(result, week, name, horizon, model))
            matured.append((week, name, horizon, model, result))
    if new_frames:
        cache = pd.concat([cache, *new_frames], ignore_index=True) if len(cache) else pd.concat(new_frames)
        write_parquet(cache.reset_index(drop=True), outputs.monitoring_realised)
    return cache, alarms, matured


# ----------------------------------------------------------------------------- drift and history


def _score_bins(reference: Mapping[str, Any], name: str, probability: np.ndarray) -> dict[str, Any] | None:
    """The reference's score bins (its quantiles), its shares and this week's counts per bin (for the plot)."""
    entry = (reference.get("scores") or {}).get(name)
    if not entry or entry.get("kind") != "numeric" or not entry.get("edges"):
        return None
    inner = np.asarray(entry["edges"], dtype=np.float64)
    present = probability[~np.isnan(probability)]
    counts = np.bincount(np.searchsorted(inner, present, side="right"), minlength=len(inner) + 1)
    return {
        "edges": [0.0, *inner.tolist(), 1.0],
        "reference": list(entry["shares"][: len(inner) + 1]),
        "current": counts.tolist(),
    }


def history_rows(
    week: date,
    data_date: date,
    versions: Mapping[str, str],
    alarms: Sequence[Alarm],
    drifts: Mapping[str, Any],
    estimates: Mapping[str, Mapping[str, Any]],
    tested: Mapping[str, float],
) -> pd.DataFrame:
    """This week's metrics as history rows (aggregates only)."""
    rows = []

    def add(name: str, metric: str, value: Any) -> None:
        if value is None:
            return
        value = float(value)
        if math.isfinite(value):
            rows.append((week, data_date, name, metric, value, versions.get(name, "")))

    for level in ("critical", "warning"):
        add(
            "",
            f"feed_{level}",
            sum(a.level == level and a.check in ("feed", "stale", "coverage") for a in alarms),
        )
        add("", f"alarms_{level}", sum(a.level == level for a in alarms))
    for name in versions:
        result = drifts.get(name)
        if result is not None:
            table = result.table
            score = table[(table["kind"] == "score")]
            if len(score):
                add(name, "psi_score", score["psi"].max())
            features = table[table["kind"] == "feature"]
            if len(features):
                add(name, "psi_feature_max", features["psi"].max())
        estimate = estimates.get(name) or {}
        add(name, "estimated_auroc", estimate.get("estimated_auroc"))
        add(name, "estimated_auroc_low", estimate.get("auroc_low"))
        add(name, "estimated_auroc_high", estimate.get("auroc_high"))
        add(name, "expected_events", estimate.get("expected_events"))
        add(name, "test_auroc", tested.get(name))
    return pd.DataFrame(rows, columns=list(HISTORY_COLUMNS))


def read_history(path: Path) -> pd.DataFrame:
    """The stored history (empty, with its columns, when there is none yet)."""
    if not Path(path).is_file():
        return pd.DataFrame(columns=list(HISTORY_COLUMNS))
    history = pd.read_parquet(path)
    for column in ("week", "data_date"):
        history[column] = pd.to_datetime(history[column]).dt.date
    return history


def append_history(path: Path, rows: pd.DataFrame) -> pd.DataFrame:
    """Add this week's rows to the history (replacing the week's earlier rows), atomically; returns it all."""
    if Path(path).is_file():
        history = pd.read_parquet(path)
        for column in ("week", "data_date"):
            history[column] = pd.to_datetime(history[column]).dt.date
        weeks = set(rows["week"])
        history = history[~history["week"].isin(weeks)]
        history = pd.concat([history, rows], ignore_index=True) if len(history) else rows
    else:
        history = rows
    history = history.sort_values(["week", "outcome", "metric"], kind="stable").reset_index(drop=True)
    write_parquet(history, Path(path))
    return history


def _mlflow_values(
    alarms: Sequence[Alarm], drifts: Mapping[str, Any], estimates: Mapping[str, Mapping[str, Any]], name: str
) -> dict[str, float]:
    values: dict[str, float] = {
        "monitor_feed_critical": float(
            sum(a.level == "critical" and a.check in ("feed", "stale") for a in alarms)
        ),
        "monitor_feed_warning": float(
            sum(a.level == "warning" and a.check in ("feed", "stale", "coverage") for a in alarms)
        ),
        "monitor_alarms_critical": float(sum(a.level == "critical" for a in alarms)),
    }
    result = drifts.get(name)
    if result is not None:
        table = result.table
        score = table[table["kind"] == "score"]
        features = table[table["kind"] == "feature"]
        if len(score):
            values["monitor_psi_score"] = float(score["psi"].max())
        if len(features):
            values["monitor_psi_feature_max"] = float(features["psi"].max())
    estimate = estimates.get(name) or {}
    for key, metric in (
        ("estimated_auroc", "monitor_estimated_auroc"),
        ("expected_events", "monitor_expected_events"),
    ):
        if estimate.get(key) is not None:
            values[metric] = float(estimate[key])
    return values


# ----------------------------------------------------------------------------- the run


def run_monitoring(
    config: Config,
    tables: Mapping[str, ir.Table],
    data_date: date,
    week: date,
    scored: pd.DataFrame,
    features: pd.DataFrame | None,
    models: Mapping[str, RiskModel],
    versions: Mapping[str, str],
    *,
    uri: str,
    on_demand: bool = False,
    notes: Sequence[str] = (),
) -> MonitoringRun:
    """Run every monitoring check for one week and write what they found.

    Args:
        config: The run's settings (``config.monitoring``).
        tables: The extract's patients and event tables on the feature backend (:func:`monitoring_tables`).
        data_date: The data date of the scores.
        week: The week the lists are for.
        scored: The scored population (person_id, practice_code, p_<outcome>).
        features: Feature rows for drift (the whole matrix, or a sample on Spark); None: scores only.
        models: Outcome -> champion.
        versions: Outcome -> "name vN" of each champion.
        uri: The MLflow tracking URI.
        on_demand: ``riskstrat monitor``: no lists are published; nothing is logged to MLflow.
        notes: Lines shown under the alarms (e.g. that drift ran on a sample).

    Returns:
        What was found and where it was written. Raises nothing on an alarm: see :func:`stop_if_critical`.
    """
    settings: MonitoringSettings = config.monitoring
    outputs = output_catalog(config.data.output_dir)
    log = run_logger(__name__)
    outcomes = [name for name in versions if probability_column(name) in scored.columns]

    # 1. Feed health: counted on the backend, per practice and code group and week.
    feed_settings = settings.feed_health
    weeks = feed_settings.baseline_weeks + feed_settings.recent_weeks
    watched = [name for name in feed_settings.tables if name in tables]
    counts = weekly_event_counts(tables, data_date, weeks, feed_settings.code_groups, watched)
    registered = registered_by_practice(tables, week_ends(data_date, weeks))
    # Every watched table: one with no file is shown as not supplied (never alarmed).
    coverage = source_coverage(tables, data_date, 7 * feed_settings.baseline_weeks, feed_settings.tables)
    health = feed_health(counts, registered, coverage, data_date, feed_settings, week=week)
    alarms: list[Alarm] = list(health.alarms)

    # 2. Drift against each champion's training reference; 3. performance estimated from the scores.
    runs = champion_runs(config, outcomes, uri)
    tested = tested_aurocs(runs, uri)
    drifts: dict[str, Any] = {}
    bins: dict[str, Any] = {}
    estimates: dict[str, dict[str, Any]] = {}
    for number, name in enumerate(outcomes):
        probability = scored[probability_column(name)].to_numpy(dtype=np.float64)
        estimates[name] = estimated_performance(probability, settings.estimation, seed=number)
        reference = load_reference(runs[name], uri) if name in runs else None
        if reference is None:  # a champion trained before references were logged: no drift, no alarm
            drifts[name] = None
            continue
        rows = features
        if rows is None or not set(reference.get("features", {})) <= set(rows.columns):
            # No feature rows to compare (e.g. scores only): drift of the scores alone.
            reference = {**reference, "features": {}, "top_features": {}}
            rows = pd.DataFrame()
        result = drift(reference, {name: probability}, rows, settings.drift)
        drifts[name] = result
        alarms.extend(result.alarms)
        alarms.extend(estimated_alarms({name: estimates[name]}, reference, settings.estimation))
        bins[name] = _score_bins(reference, name, probability)

    # 4. Realised performance of published weeks whose window has passed.
    realised, realised_found, matured = update_realised(outputs, tables, data_date, config, outcomes, uri)
    alarms.extend(realised_found)

    # This week's scores (for its realised performance once the window passes), the history.
    # On demand nothing is published: the week's stored scores and history rows stay as they are.
    this_week = history_rows(week, data_date, versions, alarms, drifts, estimates, tested)
    scores_path: Path | None = None
    if on_demand:
        # The page's trend shows this check in place of the week's stored rows, in memory only.
        stored = read_history(outputs.monitoring_history)
        stored = stored[stored["week"] != week]
        history = pd.concat([stored, this_week], ignore_index=True) if len(stored) else this_week
        history = history.sort_values(["week", "outcome", "metric"], kind="stable").reset_index(drop=True)
    else:
        scores_path = write_week_scores(
            outputs.monitoring_scores(week),
            week_scores(scored, week, data_date, mdt_of_practice(config.mdts), outcomes),
            versions,
        )
        history = append_history(outputs.monitoring_history, this_week)

    # MLflow: this week's metrics on each champion's run; realised ones on the run that scored that week.
    if not on_demand:
        metrics: dict[str, dict[date, dict[str, float]]] = {}
        for name, run_id in runs.items():
            metrics.setdefault(run_id, {})[week] = _mlflow_values(alarms, drifts, estimates, name)
        with tracking(uri) as client:
            for scored_week, _name, horizon, model, result in matured:
                run_id = _version_run(client, model)
                overall = result.get("overall", {})
                if run_id is None:
                    continue
                values = metrics.setdefault(run_id, {}).setdefault(scored_week, {})
                for key in ("oe", "auroc"):
                    if overall.get(key) is not None:
                        values[f"monitor_realised_{key}_{horizon}d"] = float(overall[key])
        log.info("monitoring: %d metric values logged to MLflow", log_metrics(uri, metrics))

    # The page and its JSON, in one folder, atomically.
    blocked = stopping(alarms, settings.stop_checks) if settings.stop_on_critical else []
    inputs = MonitoringInputs(
        week=week,
        data_date=data_date,
        published=not on_demand and not blocked,
        on_demand=on_demand,
        models={name: versions[name] for name in outcomes},
        wordings={name: outcome_wording(name, config.outcomes) for name in outcomes},
        alarms=alarms,
        counts=counts,
        registered=registered,
        coverage=coverage,
        drift=drifts,
        score_bins={k: v for k, v in bins.items() if v},
        estimated=estimates,
        test_auroc=tested,
        history=history,
        realised=realised,
        horizons={
            name: {
                "full": outcome(name).horizon_days(config.outcomes.section(name)),
                **({"early": settings.realised.early_read_days} if name not in NO_EARLY_READ else {}),
            }
            for name in outcomes
        },
        notes=notes,
    )
    payload = monitoring_payload(inputs)
    html = render_page(payload, (settings.drift.psi_warning, settings.drift.psi_critical))
    text = json.dumps(payload, indent=2, sort_keys=True)
    if on_demand:  # beside the weekly page, replacing neither it nor its JSON
        page, json_path = outputs.monitoring_on_demand_page(week), outputs.monitoring_on_demand_json(week)
        for path, content in ((page, html), (json_path, text)):
            path.parent.mkdir(parents=True, exist_ok=True)
            with atomic_path(path) as tmp:
                Path(tmp).write_text(content, encoding="utf-8")
    else:
        page, json_path = outputs.monitoring_page(week), outputs.monitoring_json(week)
        with atomic_directory(outputs.monitoring_week(week)) as folder:
            (folder / page.name).write_text(html, encoding="utf-8")
            (folder / json_path.name).write_text(text, encoding="utf-8")
            for kept in (outputs.monitoring_on_demand_page(week), outputs.monitoring_on_demand_json(week)):
                if kept.is_file():  # an earlier on-demand check's page stays beside the new weekly one
                    (folder / kept.name).write_bytes(kept.read_bytes())
    for alarm in alarms:
        (log.error if alarm.level == "critical" else log.warning)(
            "monitoring %s: %s", alarm.level, alarm.message
        )
    return MonitoringRun(
        week=week,
        data_date=data_date,
        alarms=alarms,
        page=page,
        json_path=json_path,
        scores_path=scores_path,
        payload=payload,
        matured=[(w, n, h) for w, n, h, _, _ in matured],
        on_demand=on_demand,
    )


def stop_if_critical(run: MonitoringRun, settings: MonitoringSettings) -> None:
    """Raise :class:`MonitoringAlarmError` when a check in ``stop_checks`` raised a critical alarm.

    Raises:
        MonitoringAlarmError: Its message is the critical alarms' own (table, practices, weeks and size).
    """
    if not settings.stop_on_critical:
        return
    blocking = stopping(run.alarms, settings.stop_checks)
    if not blocking:
        return
    messages = [alarm.message for alarm in blocking]
    shown = " ".join(messages[:3]) + (f" (and {len(messages) - 3} more)" if len(messages) > 3 else "")
    plural = "s" if len(blocking) != 1 else ""
    if run.on_demand:  # riskstrat monitor publishes nothing, so it stops nothing: it reports and fails
        raise MonitoringAlarmError(
            f"the monitoring check of the week of {run.week} found {len(blocking)} critical alarm{plural}. "
            f"{shown}",
            hint=f"Read {run.page}; fix the feed before the weekly run, which would stop on this alarm.",
        )
    raise MonitoringAlarmError(
        f"monitoring stopped the week of {run.week} before publishing: {len(blocking)} critical alarm"
        f"{'s' if len(blocking) != 1 else ''}. {shown}",
        hint=f"Read {run.page}; fix the feed and run the week again (last week's lists stay published). "
        "To publish regardless, set stop_on_critical: false in configs/monitoring.yaml.",
    )


def alarm_subjects(alarms: Sequence[Alarm]) -> str:
    """The alarms' subjects in words (for log lines)."""
    return join_words([a.subject for a in alarms])


# ----------------------------------------------------------------------------- Prefect


@task(name="monitor", cache_policy=NO_CACHE)
def monitor_task(
    config: Config,
    tables: Mapping[str, ir.Table],
    data_date: date,
    week: date,
    scored: pd.DataFrame,
    features: pd.DataFrame | None,
    models: Mapping[str, RiskModel],
    versions: Mapping[str, str],
    notes: Sequence[str] = (),
    on_demand: bool = False,
) -> MonitoringRun:
    """The weekly run's monitoring step: run the checks, write the page, stop on a critical alarm."""
    run = run_monitoring(
        config,
        tables,
        data_date,
        week,
        scored,
        features,
        models,
        versions,
        uri=tracking_uri(config),
        on_demand=on_demand,
        notes=notes,
    )
    stop_if_critical(run, config.monitoring)
    return run


def spark_drift_sample(matrix: Any, names: Collection[str], population: int) -> pd.DataFrame:
    """A seeded sample of the Spark feature matrix (the named columns) for drift; the matrix stays on Spark."""
    columns = [c for c in dict.fromkeys(names) if c in matrix.columns]
    if not columns or population <= 0:
        return pd.DataFrame()
    fraction = min(1.0, SPARK_DRIFT_SAMPLE / population)
    return matrix.select(*columns).sample(False, fraction, SPARK_DRIFT_SEED).toPandas()


def drift_features(config: Config, runs: Mapping[str, str], uri: str) -> set[str]:
    """The features the champions' references watch (what a Spark run collects a sample of)."""
    names: set[str] = set()
    for run_id in runs.values():
        reference = load_reference(run_id, uri)
        if reference:
            names |= set(reference.get("features") or {})
    return names


def _monitor_name() -> str:
    from prefect.runtime import flow_run

    week = flow_run.parameters.get("week") or this_monday()
    return f"monitoring-{week}"


@flow(name="monitoring", flow_run_name=_monitor_name, validate_parameters=False)
@holds_output_lock("monitor")
def monitoring_flow(
    config_dir: str | None = None,
    extract_dir: str | None = None,
    week: date | None = None,
    as_of: date | None = None,
) -> MonitoringRun:
    """``riskstrat monitor``: the weekly checks on demand, for the extract's data date; no lists are published.

    Validates the extract, builds the features and scores them with the champions as the
    weekly run does, runs the checks and writes the page; fails (non-zero exit) on a
    critical alarm of a check in ``stop_checks``.
    """
    config = load_run_config(config_dir)
    week = week or this_monday()
    from riskstrat.pipelines.validate import run_gate
    from riskstrat.pipelines.weekly import drift_inputs, score_week

    extract = Path(extract_dir or config.data.extract_dir)
    report = run_gate(config, extract)
    scored = score_week(config, extract, report, as_of)
    features, notes = drift_inputs(config, scored)
    tables = monitoring_tables(scored.con, extract, report.row_counts, scored.tables)
    return monitor_task(
        config,
        tables,
        scored.when,
        week,
        scored.scored,
        features,
        scored.models,
        scored.versions,
        notes,
        on_demand=True,
    )


# ----------------------------------------------------------------------------- retrain: the drift reference


def reference_for(
    scores: np.ndarray, test_rows: pd.DataFrame, model: RiskModel, name: str, settings: MonitoringSettings
) -> dict[str, Any]:
    """The drift reference of a newly trained model: its test rows' scores and features, its gain importance."""
    booster = model.booster
    gain = dict(zip(booster.feature_name(), booster.feature_importance("gain").tolist(), strict=True))
    return drift_reference(
        {name: np.asarray(scores, dtype=np.float64)}, test_rows, {name: gain}, settings.drift
    )


def log_reference(run_id: str, uri: str, reference: Mapping[str, Any]) -> None:
    """Log the drift reference as ``monitoring/reference.json`` on the model's training run."""
    with tracking(uri) as client:
        client.log_text(run_id, json.dumps(reference, sort_keys=True), REFERENCE_ARTIFACT)
