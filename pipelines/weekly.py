"""The ``weekly_worklists`` flow: validate -> features -> score -> select -> explain -> publish, with history.

:func:`weekly_worklists_flow` first imports the MDTs' returned decisions
(:func:`~riskstrat.pipelines.decisions.import_returns_task`), which shape the
lists by the rules in ``configs/mdts.yaml``, then runs validate -> features as at the data date ->
score (pandas, or on Spark) and hands in-memory inputs (:class:`WeeklyInputs`)
to the worklist steps (:func:`run_worklists`). Every patient's status and the
listed people's context are computed by the point-in-time engine on the
features' backend, DuckDB or Spark (:func:`population_status_task`,
:func:`listed_context_reader`); the gate hands no tables on. Re-running a
week gives the same rows in the same order and identical CSV bytes: selection
and reasons are deterministic, and a week is only ever compared with the
published weeks before it. A week is one transaction: its lists, manifest and
history rows are written into one staging folder and published in one atomic
step, so a failed or killed run leaves last week's outputs (and the history)
as they were, and never a week the history does not know. Before anything is
computed, an earlier version's history is moved into the week folders and a
week without a history is refused (:func:`~riskstrat.worklists.history.reconcile_history`).
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import ibis
import ibis.expr.types as ir
import pandas as pd
import pyarrow as pa
from prefect import flow, task
from prefect.cache_policies import NO_CACHE
from prefect.runtime import flow_run

from riskstrat.features.backends import connect_duckdb, connect_pyspark, read_extract
from riskstrat.features.dictionary import feature_names
from riskstrat.features.matrix import feature_matrix_schema
from riskstrat.features.outcomes import outcome_names
from riskstrat.features.point_in_time import Tables
from riskstrat.features.settings import FeatureSettings, OutcomeSettings
from riskstrat.features.social_care import KNOWN, SOCIAL_CARE_TABLE, not_known_columns
from riskstrat.features.status import CONTEXT_TABLES, STATUS_TABLES, listed_context_at, population_status_at
from riskstrat.ingest.social_care import (
    RETURNS_TABLE,
    ReturnsCoverage,
    expected_local_authorities,
    local_authority_of_lsoa,
    social_care_returns,
)
from riskstrat.ingest.sources.settings import SocialCareSettings
from riskstrat.models.explain import contributions
from riskstrat.models.scoring import champion_models, score_population, with_unscored_outcomes
from riskstrat.models.settings import MlflowSettings
from riskstrat.models.spark_scoring import collect_scores, score_partitions
from riskstrat.models.training import RiskModel
from riskstrat.pipelines.config import Config, check_worklist_files
from riskstrat.pipelines.decisions import import_returns_task, read_decision_history
from riskstrat.pipelines.features import data_date, features_at, read_feature_matrix
from riskstrat.pipelines.logs import run_logger
from riskstrat.pipelines.monitor import (
    SPARK_DRIFT_SAMPLE,
    MonitoringAlarmError,
    champion_runs,
    drift_features,
    monitor_task,
    monitoring_tables,
    spark_drift_sample,
)
from riskstrat.pipelines.shared import (
    IO_RETRIES,
    holds_output_lock,
    load_run_config,
    this_monday,
    tracking_uri,
)
from riskstrat.pipelines.sources import adapt_task, resolved_raw_dir
from riskstrat.pipelines.spark import feature_rows, listed_reasons, spark_feature_matrix, weekly_session
from riskstrat.pipelines.validate import run_gate
from riskstrat.worklists.assignment import assignment_records
from riskstrat.worklists.export import (
    MdtOutput,
    RunInfo,
    outcome_wordings,
    read_reidentification_key,
    write_worklists,
)
from riskstrat.worklists.history import (
    change_since_last_week,
    history_by_mdt,
    history_dir,
    history_records,
    leavers,
    load_history,
    person_lookup,
    previous_week,
    reconcile_history,
)
from riskstrat.worklists.reasons import feature_vocabulary, top_reasons
from riskstrat.worklists.rows import build_rows, social_care_text, worklist_context, worklist_rows_schema
from riskstrat.worklists.selection import (
    STATUS_COLUMNS,
    MdtSelection,
    attach_status,
    decisions_in_force,
    people_not_to_score,
    scored_population_schema,
    select_worklists,
    without_people,
    worklist_status,
)
from riskstrat.worklists.settings import MdtSettings, read_practices, resolve_mdts

ContributionsFn = Callable[[str, pd.DataFrame], pd.DataFrame]
"""(outcome, feature rows of the listed people) -> TreeSHAP contributions, one row per person."""

FeatureRowsFn = Callable[[Collection[str]], pd.DataFrame]
"""(person IDs) -> their feature-matrix rows, sorted by ``person_id`` (e.g. collected from Spark)."""

ReasonsFn = Callable[[str, Collection[str], int], pd.DataFrame]
"""(outcome, listed person IDs, reasons per person) -> ``top_reasons`` output indexed by sorted ``person_id``."""

ListedContextFn = Callable[[Collection[str]], pd.DataFrame]
"""(listed person IDs) -> their context, as :func:`~riskstrat.worklists.rows.worklist_context` gives it."""


@dataclass
class WeeklyInputs:
    """Everything the worklist steps need, in memory.

    Attributes:
        week: The week the lists are for (names the output folder).
        data_date: The as-of date of the features and scores (the extract date).
        scored: Scored population: person_id, practice_code, age, p_<outcome>, and
            either the status flags or ``status`` to attach them from.
        features: Feature matrix at ``data_date`` (person_id, features, audit columns);
            None when ``feature_rows`` fetches the rows (the matrix stays on Spark).
        contributions: Returns TreeSHAP contributions for given rows and outcome
            (``models.explain``); called for listed people only, unless ``reasons`` is given.
        settings: Worklist settings.
        output_dir: The outputs folder.
        model_versions: Outcome -> model name/version/alias, for titles and the manifest.
        extract_snapshot_hash: :func:`riskstrat.io.folder_snapshot_hash` of the extract.
        practices: Practice reference table; read from ``settings.practices_file`` if None.
        status: :func:`riskstrat.worklists.selection.worklist_status` of every patient
            (also says why someone left: died, deregistered, joined a caseload).
        listed_context: Returns the listed people's last emergency admission and A&E
            dates and, when the extract has ``community_contacts``, the community
            services they saw (:func:`listed_context_reader`); when None the last A&E
            date and the services are taken from the features (which count only some
            services) and the last emergency admission is left blank.
        feature_rows: Fetches the feature rows of given people; when None they are
            taken from ``features``. The Spark path collects listed people only.
        reasons: Computes the listed people's reasons itself (the Spark path does,
            per partition); when None, ``contributions`` and ``top_reasons`` run here.
        outcome_settings: The run's outcome settings, which word what each list ranks by
            ("... in the next 12 months"); None: the defaults.
        decisions: The MDTs' decision history (:mod:`riskstrat.worklists.decisions`);
            None: read from the outputs folder when the lists are drawn up.
        social_care: The local authorities' social care returns at ``data_date``
            (:func:`social_care_returns_at`), for "About this list"; None when the
            extract has no social care data.
    """

    week: date
    data_date: date
    scored: pd.DataFrame
    features: pd.DataFrame | None
    contributions: ContributionsFn
    settings: MdtSettings
    output_dir: Path
    model_versions: Mapping[str, str] = field(default_factory=dict)
    extract_snapshot_hash: str = ""
    practices: pd.DataFrame | None = None
    status: pd.DataFrame | None = None
    listed_context: ListedContextFn | None = None
    feature_rows: FeatureRowsFn | None = None
    reasons: ReasonsFn | None = None
    outcome_settings: OutcomeSettings | None = None
    decisions: pd.DataFrame | None = None
    social_care: ReturnsCoverage | None = None

    def rows_of(self, people: Collection[str]) -> pd.DataFrame:
        """The feature rows of ``people``, ``person_id`` as text, sorted by ``person_id``."""
        if self.feature_rows is not None:
            return self.feature_rows(people)
        if self.features is None:
            raise ValueError("WeeklyInputs needs features or feature_rows")
        wanted = {str(p) for p in people}
        rows = self.features.loc[self.features["person_id"].astype(str).isin(wanted)]
        return rows.assign(person_id=rows["person_id"].astype(str)).sort_values("person_id")


@task(name="select worklists", cache_policy=NO_CACHE)
def select_task(inputs: WeeklyInputs) -> dict[str, MdtSelection]:
    """Exclusions, ranking and capacity for every MDT."""
    practices = inputs.practices
    needs_reference = not inputs.settings.mdts or any(m.neighbourhood for m in inputs.settings.mdts)
    if practices is None and needs_reference:
        practices = read_practices(inputs.settings.practices_file)
    mdts = resolve_mdts(inputs.settings, practices)
    scored = inputs.scored
    if inputs.status is not None and not set(STATUS_COLUMNS) <= set(scored.columns):
        scored = attach_status(scored, inputs.status)
    scored_population_schema({mdt.outcome for mdt in mdts}).check(scored)
    history = inputs.decisions if inputs.decisions is not None else read_decision_history(inputs.output_dir)
    rules = inputs.settings.decisions
    decisions = {mdt.name: decisions_in_force(history, mdt.name, inputs.week, rules) for mdt in mdts}
    return select_worklists(
        scored,
        mdts,
        inputs.settings.risk_bands,
        decisions,
        rules,
        week=inputs.week,
        lottery=inputs.settings.lottery,
        cutoff_record=inputs.settings.cutoff_record,
    )


@task(name="explain listed people", cache_policy=NO_CACHE)
def explain_task(inputs: WeeklyInputs, selections: dict[str, MdtSelection]) -> dict[str, pd.DataFrame]:
    """Reasons for listed people only, once per outcome (people on two lists are explained once)."""
    wanted: dict[str, set[str]] = {}
    for selection in selections.values():
        wanted.setdefault(selection.mdt.outcome, set()).update(selection.listed["person_id"].astype(str))
    reasons: dict[str, pd.DataFrame] = {}
    vocabulary = feature_vocabulary()
    for outcome, people in sorted(wanted.items()):
        if not people:  # every list for this outcome is empty (e.g. no one registered): nothing to explain
            continue
        if inputs.reasons is not None:
            reasons[outcome] = inputs.reasons(outcome, people, inputs.settings.reasons_count)
            continue
        rows = inputs.rows_of(people)
        # models.explain returns contributions indexed like its input: index by person_id.
        rows.index = pd.Index(rows["person_id"].to_numpy())
        contributions = inputs.contributions(outcome, rows)
        reasons[outcome] = top_reasons(contributions, rows, inputs.settings.reasons_count, vocabulary)
    return reasons


@task(name="assemble rows", cache_policy=NO_CACHE)
def assemble_task(
    inputs: WeeklyInputs, selections: dict[str, MdtSelection], reasons: dict[str, pd.DataFrame]
) -> list[MdtOutput]:
    """Rows, change since last week and leavers for every MDT."""
    history = load_history(history_dir(inputs.output_dir), before=inputs.week)
    listed_ids = pd.concat([s.listed["person_id"] for s in selections.values()] or [pd.Series(dtype=str)])
    context = inputs.listed_context(listed_ids) if inputs.listed_context is not None else None
    # Whole-population and whole-history lookups are built once here; each MDT then
    # does work in proportion to its own list. Leavers take their status flags from
    # ``status`` when given (else from ``scored``), so the flags need not be attached.
    people = person_lookup(inputs.scored, inputs.status)
    past = history_by_mdt(history)
    no_past = history.iloc[0:0]
    # Look up features for listed people only: the rows step scales with the lists, not the population.
    listed_features = inputs.rows_of(set(listed_ids.astype(str)))
    feature_people = pd.Index(listed_features["person_id"].astype(str))
    outputs = []
    for name, selection in selections.items():
        mdt_history = past.get(name, no_past)
        at = feature_people.get_indexer(selection.listed["person_id"].astype(str))
        change = change_since_last_week(selection.listed, name, mdt_history)
        rows = build_rows(
            selection.listed,
            listed_features.iloc[at[at >= 0]],  # this list's people only
            reasons.get(selection.mdt.outcome, pd.DataFrame()),
            change,
            context,
            inputs.data_date,
            inputs.settings.reasons_count,
            flag_caseload=selection.mdt.exclusions.active_caseload == "flag",
        )
        worklist_rows_schema(inputs.settings.reasons_count).check(rows)
        left = leavers(
            selection.mdt,
            mdt_history,
            selection.listed,
            people,
            selection.held_by_decision,
            selection.lottery_losers,
        )
        counts = {
            "registered": selection.registered,
            "eligible": selection.eligible,
            "capacity": selection.capacity,
            **{f"excluded_{k}": v for k, v in selection.excluded.items()},
            **selection.lottery_counts(),
        }
        outputs.append(
            MdtOutput(
                mdt=selection.mdt,
                rows=rows,
                leavers=left,
                counts=counts,
                previous_week=previous_week(mdt_history, name),
                lottery_seed=selection.lottery_seed,
            )
        )
    return outputs


@task(name="export worklists", cache_policy=NO_CACHE)
def export_task(inputs: WeeklyInputs, outputs: list[MdtOutput], selections: dict[str, MdtSelection]) -> Path:
    """Publish the week in one atomic step: XLSX, CSV, its history rows, its cut-off record and the manifest."""
    key = inputs.settings.reidentification_key
    nhs_numbers = read_reidentification_key(key) if key is not None else None
    info = RunInfo(
        week=inputs.week,
        data_date=inputs.data_date,
        model_versions=dict(inputs.model_versions),
        extract_snapshot_hash=inputs.extract_snapshot_hash,
        settings_hash=inputs.settings.fingerprint(),
        risk_bands=inputs.settings.risk_bands,
        outcome_wordings=outcome_wordings(inputs.outcome_settings),
        social_care=inputs.social_care,
    )
    with long_lived_objects_frozen():
        return write_worklists(
            inputs.output_dir,
            outputs,
            info,
            nhs_numbers,
            history_records(inputs.week, selections),
            assignment_records(inputs.week, inputs.data_date, selections),
        )


@contextmanager
def long_lived_objects_frozen() -> Iterator[None]:
    """Keep the objects alive when the block starts out of garbage collection until it ends.

    A run holds about half a million long-lived Python objects (libraries, models,
    frames). Writing the workbooks makes a million short-lived ones, and each full
    collection they trigger walks every long-lived object too: at 1,000,000 people
    that added a quarter of a second to a 0.8 s export. Frozen, the export costs the
    same per list at any population size.
    """
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def run_worklists(inputs: WeeklyInputs, *, as_tasks: bool = False) -> Path:
    """Select, explain and publish one week with its history.

    An earlier version's history is first moved into the week folders, and a
    published week without a history before this one stops the run
    (:func:`~riskstrat.worklists.history.reconcile_history`); run it while
    holding the output folder's lock (the flows do).

    Args:
        inputs: The week's in-memory inputs.
        as_tasks: Run each step as a Prefect task (inside a flow); otherwise call
            the plain functions.

    Returns:
        The week's output folder.
    """

    def step(t):
        return t if as_tasks else t.fn

    reconcile_history(inputs.output_dir, inputs.week)
    selections = step(select_task)(inputs)
    reasons = step(explain_task)(inputs, selections)
    outputs = step(assemble_task)(inputs, selections, reasons)
    return step(export_task)(inputs, outputs, selections)


@flow(name="publish-worklists", validate_parameters=False)
def worklists_flow(inputs: WeeklyInputs) -> Path:
    """The worklist steps of the weekly run as a Prefect (sub)flow."""
    return run_worklists(inputs, as_tasks=True)


# ----------------------------------------------------------------------------- the weekly flow


def point_in_time_tables(
    con: ibis.BaseBackend, extract_dir: Path, present: Collection[str]
) -> dict[str, ir.Table]:
    """The extract's status and context tables on the feature backend (lazily: nothing is read yet).

    Args:
        con: The feature backend (DuckDB, or PySpark on the weekly session).
        extract_dir: The extract folder.
        present: The tables the gate found (``caseload``, ``opt_outs`` and the event
            tables may be missing; their columns then say nothing happened).

    Returns:
        Ibis tables by contract name, typed as the contract says.
    """
    names = tuple(
        name
        for name in (*STATUS_TABLES, *CONTEXT_TABLES, SOCIAL_CARE_TABLE, RETURNS_TABLE)
        if name in present
    )
    return read_extract(con, extract_dir, names)


@task(name="population-status", cache_policy=NO_CACHE)
def population_status_task(tables: Tables, as_of: date) -> pd.DataFrame:
    """Every patient's status at ``as_of``, computed where the features are; seven narrow columns come back."""
    return worklist_status(population_status_at(tables, as_of).to_pyarrow().to_pandas())


def listed_context_reader(
    tables: Tables,
    as_of: date,
    social_care: ReturnsCoverage | None = None,
    county_of_district: Mapping[str, str] | None = None,
) -> ListedContextFn | None:
    """The hook that computes listed people's context on the feature backend (the worklists' ``listed_context``).

    Args:
        tables: :func:`point_in_time_tables`.
        as_of: The data date; later events are ignored.
        social_care: The local authorities' returns (:func:`social_care_returns_at`): a
            listed person whose authority's return for a due quarter of the last 12 months
            is missing is shown as "Not known" (None: no such note).
        county_of_district: Two-tier areas, district -> county (``social_care`` in
            ``configs/sources.yaml``), to find a listed person's authority from their LSOA.

    Returns:
        A function of the listed person IDs returning their context (only their rows come
        to the driver; with ``social_care_events`` in ``tables``, its ``social_care`` text);
        None when the extract has none of the event tables it reads.
    """
    if not {*CONTEXT_TABLES, SOCIAL_CARE_TABLE} & set(tables):
        return None

    def read(person_ids: Collection[str]) -> pd.DataFrame:
        ids = list(dict.fromkeys(str(p) for p in person_ids))
        people = ibis.memtable(pa.table({"person_id": pa.array(ids, type=pa.string())}))
        context = listed_context_at(tables, people, as_of).to_pyarrow().to_pandas()
        care = None
        if SOCIAL_CARE_TABLE in tables:
            care = listed_social_care(tables, people, ids, as_of, social_care, county_of_district)
        return worklist_context(context, ids, care)

    return read


def listed_social_care(
    tables: Tables,
    people: ir.Table,
    ids: list[str],
    as_of: date,
    returns: ReturnsCoverage | None,
    county_of_district: Mapping[str, str] | None,
) -> pd.Series:
    """The listed people's "Social care" text: only their events and LSOAs come to the driver."""
    events = tables[SOCIAL_CARE_TABLE]
    events = events.filter(events.event_start_date <= as_of)
    events = events.semi_join(people, events.person_id == people.person_id)
    patients = tables["patients"]
    homes = patients.semi_join(people, patients.person_id == people.person_id)
    homes = homes.select("person_id", "lsoa_code")
    homes = homes.to_pyarrow().to_pandas()
    places = pd.Series(
        local_authority_of_lsoa(homes["lsoa_code"], county_of_district).to_numpy(),
        index=homes["person_id"].astype(str).to_numpy(),
    )
    return social_care_text(events.to_pyarrow().to_pandas(), ids, as_of, places, returns)


def social_care_returns_at(
    tables: Tables, as_of: date, settings: SocialCareSettings
) -> ReturnsCoverage | None:
    """Which local authorities' quarterly social care returns are in the extract at ``as_of``, and which are missing.

    Only the (authority, quarter) pairs and the people per LSOA come to the driver. The
    returns received are read from ``social_care_returns`` when the extract has it, else
    inferred from the events (a quarter holding any row).

    Args:
        tables: :func:`point_in_time_tables`.
        as_of: The data date: quarters due by it count; returns for later quarters are ignored.
        settings: ``social_care`` in ``configs/sources.yaml`` (expected authorities, first quarter).

    Returns:
        The coverage, or None when the extract has no ``social_care_events``.
    """
    if SOCIAL_CARE_TABLE not in tables:
        return None
    if RETURNS_TABLE in tables:
        returned = tables[RETURNS_TABLE]
        returned = returned.filter(returned.reporting_period_start <= as_of)
        quarters = returned.select("la_code", "reporting_period_start", "rows").to_pyarrow().to_pandas()
    else:
        events = tables[SOCIAL_CARE_TABLE]
        events = events.filter(events.reporting_period_start <= as_of)
        quarters = events.select("la_code", "reporting_period_start").distinct().to_pyarrow().to_pandas()
    expected = list(settings.local_authorities)
    if not expected:
        patients = tables["patients"]
        homes = patients.group_by("lsoa_code").agg(people=patients.count()).to_pyarrow().to_pandas()
        lsoas = homes["lsoa_code"].repeat(homes["people"].to_numpy())
        expected = expected_local_authorities(lsoas, settings.county_of_district)
    return social_care_returns(quarters, expected, as_of, settings.first_quarter)


def ranking_outcomes(settings: MdtSettings) -> set[str]:
    """The outcomes some MDT ranks its list by (each needs a champion model)."""
    practices_file = Path(settings.practices_file)
    practices = read_practices(practices_file) if practices_file.is_file() else None
    return {mdt.outcome for mdt in resolve_mdts(settings, practices)}


def _champions(
    mlflow: MlflowSettings, uri: str, required: set[str]
) -> tuple[dict[str, RiskModel], dict[str, str]]:
    """Each outcome's champion (:func:`~riskstrat.models.scoring.champion_models`), saying which go unscored."""
    models, versions = champion_models(mlflow.registered_models, uri, required)
    for outcome in outcome_names():
        if outcome not in models:
            run_logger(__name__).warning(
                "no champion for %s: its risk is not scored this week", mlflow.registered_models[outcome]
            )
    return models, versions


@task(name="score-population", cache_policy=NO_CACHE)
def score_population_task(
    features: pd.DataFrame, mlflow: MlflowSettings, uri: str, required: set[str]
) -> tuple[pd.DataFrame, dict[str, RiskModel], dict[str, str]]:
    """Score everyone with the champion model of each outcome.

    An outcome an MDT ranks by must have a champion; other outcomes are scored
    when a champion exists (their column is empty otherwise). A champion trained with
    social care scoring an extract without ``social_care_events`` reads everyone's social
    care as not known: the columns are added to ``features`` (in place, so reasons and
    drift see what the model saw), with a warning.
    """
    models, versions = _champions(mlflow, uri, required)
    for name, value in social_care_not_known(features.columns, models).items():
        features[name] = value
    return score_population(features, models), models, versions


def social_care_not_known(columns: Iterable[str], models: Mapping[str, RiskModel]) -> dict[str, float]:
    """The social care columns the champions read that the features lack, with their not-known value.

    The one place both scoring paths (pandas and Spark) decide it, and warn: a champion trained
    with social care scoring an extract without ``social_care_events`` reads everyone's social
    care as not known (:func:`riskstrat.features.social_care.not_known_columns`).
    """
    needed = {name for model in models.values() for name in model.feature_names}
    added = not_known_columns(columns, needed)
    if added:
        run_logger(__name__).warning(
            "the extract has no %s but the champions were trained with social care: everyone's social "
            "care is scored as not known (%s = 0; %d other social care features empty)",
            SOCIAL_CARE_TABLE,
            KNOWN,
            len(added) - 1,
        )
    return added


@task(name="spark-features", **IO_RETRIES)
def spark_features_at(
    session: Any,
    extract_dir: Path,
    output_dir: Path,
    as_of: date,
    settings: FeatureSettings,
    snapshot_hash: str | None,
    county_of_district: Mapping[str, str] | None = None,
) -> Any:
    """Build (or reuse) the feature matrix at ``as_of`` on Spark; it stays a Spark DataFrame."""
    return spark_feature_matrix(
        session, extract_dir, Path(output_dir), as_of, settings, snapshot_hash, county_of_district
    )


@task(name="score-population-spark", cache_policy=NO_CACHE)
def score_population_spark(
    matrix: Any, mlflow: MlflowSettings, uri: str, required: set[str]
) -> tuple[pd.DataFrame, dict[str, RiskModel], dict[str, str]]:
    """Score everyone on Spark, per partition; only the scores come to the driver.

    Same result as :func:`score_population_task` (one row per person sorted by
    ``person_id``; the champions are loaded once here and broadcast).
    """
    from pyspark.sql import functions as F

    models, versions = _champions(mlflow, uri, required)
    for name, value in social_care_not_known(matrix.columns, models).items():
        matrix = matrix.withColumn(name, F.lit(None if value != value else value).cast("double"))  # NaN: null
    return with_unscored_outcomes(collect_scores(score_partitions(matrix, models))), models, versions


def champion_contributions(models: Mapping[str, RiskModel]) -> ContributionsFn:
    """TreeSHAP contributions of given rows with each outcome's champion (the worklists' reasons)."""

    def explain(outcome: str, rows: pd.DataFrame) -> pd.DataFrame:
        model = models[outcome]
        return contributions(model.booster, rows, model.feature_names)

    return explain


@dataclass
class ScoredWeek:
    """The population at the data date scored by the champions: what the weekly run and ``riskstrat monitor`` share.

    Attributes:
        when: The data date.
        con: The feature backend (DuckDB, or PySpark on the weekly session).
        tables: The extract's status and context tables on it (:func:`point_in_time_tables`).
        status: Every patient's status at ``when`` (:func:`population_status_task`).
        scored: The scores, one row per scored person.
        models: Outcome -> its champion.
        versions: Outcome -> the champion's name, version and alias.
        features: The feature matrix of the scored people (None on Spark, where it stays).
        matrix: The Spark feature matrix (None on DuckDB).
    """

    when: date
    con: ibis.BaseBackend
    tables: dict[str, ir.Table]
    status: pd.DataFrame
    scored: pd.DataFrame
    models: dict[str, RiskModel]
    versions: dict[str, str]
    features: pd.DataFrame | None
    matrix: Any = None


def score_week(config: Config, extract: Path, report: Any, as_of: date | None) -> ScoredWeek:
    """Status at the data date, then features and scores with each champion, on DuckDB or on Spark.

    Args:
        config: The run's settings.
        extract: The extract folder (already through the gate).
        report: The gate's report (row counts and snapshot hash).
        as_of: The data date; None: ``data.extract_date`` or the latest event.

    Returns:
        The scored week.
    """
    when = as_of or data_date(extract, config.features, config.data.extract_date)
    on_spark = config.features.backend == "pyspark"
    session = weekly_session(config.features) if on_spark else None
    # Status and listed people's context are computed where the features are; only their
    # narrow results come to the driver.
    con = connect_pyspark(session) if on_spark else connect_duckdb(config.features)
    tables = point_in_time_tables(con, extract, report.row_counts)
    status = population_status_task(tables, when)
    # Type 1 opt-outs are not scored at all when no MDT lists them.
    unscored = people_not_to_score(config.mdts, status)
    required = ranking_outcomes(config.mdts)
    uri = tracking_uri(config)
    if on_spark:
        matrix = spark_features_at(
            session,
            extract,
            Path(config.data.output_dir),
            when,
            config.features,
            report.snapshot_hash,
            config.sources.social_care.county_of_district,
        )
        if unscored:
            matrix = matrix.filter(~matrix["person_id"].isin(sorted(unscored)))
        scored, models, versions = score_population_spark(matrix, config.model.mlflow, uri, required)
        return ScoredWeek(when, con, tables, status, scored, models, versions, None, matrix)
    features = feature_matrix_schema(feature_names(config.features)).check(
        read_feature_matrix(
            features_at(config, extract, when, with_outcomes=False, snapshot_hash=report.snapshot_hash)
        )
    )
    features = without_people(features, unscored)
    scored, models, versions = score_population_task(features, config.model.mlflow, uri, required)
    return ScoredWeek(when, con, tables, status, scored, models, versions, features)


def drift_inputs(config: Config, week: ScoredWeek) -> tuple[pd.DataFrame | None, list[str]]:
    """The feature rows the monitor's drift check reads, and a note for the page when they are a sample."""
    if week.matrix is None:
        return week.features, []
    # The matrix stays on Spark: feature drift on a seeded sample of it, score drift on everyone.
    watched = drift_features(
        config, champion_runs(config, week.versions, tracking_uri(config)), tracking_uri(config)
    )
    note = (
        f"Feature drift was computed on a seeded sample of about {SPARK_DRIFT_SAMPLE:,} people "
        "(the matrix stays on Spark); score drift on everyone."
    )
    return spark_drift_sample(week.matrix, watched, len(week.scored)), [note]


def _weekly_name() -> str:
    week = flow_run.parameters.get("week") or this_monday()
    return f"weekly-worklists-{week}"


@flow(name="weekly_worklists", flow_run_name=_weekly_name, validate_parameters=False)
@holds_output_lock("worklists")
def weekly_worklists_flow(
    config_dir: str | None = None,
    extract_dir: str | None = None,
    week: date | None = None,
    as_of: date | None = None,
    read_national: bool = False,
) -> str:
    """Validate -> features as at the data date -> score -> monitor -> select -> explain -> export -> record history.

    The monitor step (:mod:`riskstrat.pipelines.monitor`, when ``monitoring.enabled``) writes the
    week's monitoring page and fails the run, before publishing, on a critical feed alarm.

    Args:
        config_dir: Settings folder.
        extract_dir: Extract folder (default ``data.extract_dir``).
        week: Week commencing the lists are for (default: this week's Monday).
        as_of: Data date of features and scores (default: ``data.extract_date`` or the latest event).
        read_national: First read this week's raw national files (``sources.raw_dir``) into the
            extract folder through the adapters (the scheduled run does when ``raw_dir`` is set).

    Returns:
        The week's output folder.
    """
    config = load_run_config(config_dir)
    check_worklist_files(config)  # before any work: the practices file and re-identification key exist
    output_dir = Path(config.data.output_dir)
    # Before any work too: an earlier version's history moved into place, or a gap refused.
    reconcile_history(output_dir, week or this_monday())
    # The MDTs' returned decisions shape this week's lists, so they are imported first.
    import_returns_task(config.mdts.decisions, output_dir)
    extract = Path(extract_dir or config.data.extract_dir)
    if read_national:
        adapt_task(config, resolved_raw_dir(config), extract)
    report = run_gate(config, extract)
    week_scores = score_week(config, extract, report, as_of)
    scored, models, versions = week_scores.scored, week_scores.models, week_scores.versions
    matrix, features = week_scores.matrix, week_scores.features
    hooks: dict[str, Any] = {}
    if matrix is not None:
        # Features, scoring and reasons run on the executors; the driver gets scores and listed rows.
        hooks = {
            "feature_rows": lambda people: feature_rows(matrix, people),
            "reasons": lambda outcome, people, count: listed_reasons(matrix, models[outcome], people, count),
        }
    when, tables = week_scores.when, week_scores.tables
    if config.monitoring.enabled:
        # Feed health, drift, estimated and realised performance; a critical feed alarm stops the run here,
        # before anything is published (last week's lists stay).
        try:
            drift_rows, notes = drift_inputs(config, week_scores)
            monitor_task(
                config,
                monitoring_tables(week_scores.con, extract, report.row_counts, tables),
                when,
                week or this_monday(),
                scored,
                drift_rows,
                models,
                versions,
                notes,
            )
        except MonitoringAlarmError:
            raise
        except Exception as error:  # a fault in the checks must not hold back the MDTs' lists
            # Only the error's type is logged: a library's message may quote data values.
            run_logger(__name__).error(
                "monitoring failed (%s); the lists are published without this week's monitoring page. "
                "Run `riskstrat monitor --week %s` to see the error.",
                type(error).__name__,
                week or this_monday(),
            )
    care = config.sources.social_care
    social_care = social_care_returns_at(tables, when, care)
    inputs = WeeklyInputs(
        week=week or this_monday(),
        data_date=when,
        scored=scored,
        features=features,
        contributions=champion_contributions(models),
        settings=config.mdts,
        output_dir=output_dir,
        model_versions=versions,
        extract_snapshot_hash=report.snapshot_hash,
        status=week_scores.status,
        listed_context=listed_context_reader(tables, when, social_care, care.county_of_district),
        outcome_settings=config.outcomes,
        social_care=social_care,
        **hooks,
    )
    return str(run_worklists(inputs, as_tasks=True))
