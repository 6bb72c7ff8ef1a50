"""The worklist half of the weekly flow: select -> explain -> publish the lists with their history, in one step.

The lead's flow runs validate -> features as at the run date -> score in front
of this and hands over in-memory inputs (:class:`WeeklyInputs`). Re-running a
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
from collections.abc import Callable, Collection, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import pandas as pd
from prefect import flow, task
from prefect.cache_policies import NO_CACHE

from riskstrat.worklists.export import MdtOutput, RunInfo, read_reidentification_key, write_worklists
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
from riskstrat.worklists.rows import build_rows, listed_context
from riskstrat.worklists.selection import STATUS_COLUMNS, MdtSelection, attach_status, select_worklists
from riskstrat.worklists.settings import MdtSettings, read_practices, resolve_mdts

ContributionsFn = Callable[[str, pd.DataFrame], pd.DataFrame]
"""(outcome, feature rows of the listed people) -> TreeSHAP contributions, one row per person."""

FeatureRowsFn = Callable[[Collection[str]], pd.DataFrame]
"""(person IDs) -> their feature-matrix rows, sorted by ``person_id`` (e.g. collected from Spark)."""

ReasonsFn = Callable[[str, Collection[str], int], pd.DataFrame]
"""(outcome, listed person IDs, reasons per person) -> ``top_reasons`` output indexed by sorted ``person_id``."""


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
        status: :func:`riskstrat.worklists.selection.population_status` for every patient
            (also says why someone left: died, deregistered, joined a caseload).
        tables: Extract tables by contract name; ``apc_spells`` and ``ae_attendances``
            give the last emergency admission and A&E dates of listed people, and
            ``community_contacts`` the community services they saw (else taken from
            the features, which count only some services).
        feature_rows: Fetches the feature rows of given people; when None they are
            taken from ``features``. The Spark path collects listed people only.
        reasons: Computes the listed people's reasons itself (the Spark path does,
            per partition); when None, ``contributions`` and ``top_reasons`` run here.
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
    tables: Mapping[str, pd.DataFrame] = field(default_factory=dict)
    feature_rows: FeatureRowsFn | None = None
    reasons: ReasonsFn | None = None

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
    return select_worklists(scored, mdts, inputs.settings.risk_bands)


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
    context = None
    if {"apc_spells", "ae_attendances", "community_contacts"} & set(inputs.tables):
        context = listed_context(
            inputs.tables.get("apc_spells"),
            inputs.tables.get("ae_attendances"),
            inputs.data_date,
            listed_ids,
            community_contacts=inputs.tables.get("community_contacts"),
        )
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
        left = leavers(selection.mdt, mdt_history, selection.listed, people)
        counts = {
            "registered": selection.registered,
            "eligible": selection.eligible,
            "capacity": selection.capacity,
            **{f"excluded_{k}": v for k, v in selection.excluded.items()},
        }
        outputs.append(
            MdtOutput(
                mdt=selection.mdt,
                rows=rows,
                leavers=left,
                counts=counts,
                previous_week=previous_week(mdt_history, name),
            )
        )
    return outputs


@task(name="export worklists", cache_policy=NO_CACHE)
def export_task(inputs: WeeklyInputs, outputs: list[MdtOutput], selections: dict[str, MdtSelection]) -> Path:
    """Publish the week in one atomic step: XLSX, CSV, its history rows and the manifest."""
    key = inputs.settings.reidentification_key
    nhs_numbers = read_reidentification_key(key) if key is not None else None
    info = RunInfo(
        week=inputs.week,
        data_date=inputs.data_date,
        model_versions=dict(inputs.model_versions),
        extract_snapshot_hash=inputs.extract_snapshot_hash,
        settings_hash=inputs.settings.fingerprint(),
        risk_bands=inputs.settings.risk_bands,
    )
    with long_lived_objects_frozen():
        return write_worklists(
            inputs.output_dir, outputs, info, nhs_numbers, history_records(inputs.week, selections)
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
