"""The ``evaluate_impact`` flow: is the programme working? (``riskstrat evaluate-impact``).

Reads the cut-off record of every published week (``worklists/<week>/assignment.parquet``)
and the MDTs' decision history, computes the outcome of each recorded person over the
impact horizon after their week's data date from the extract (on DuckDB), runs the designs
of :mod:`riskstrat.evaluation.impact` and writes ``impact/impact_<outcome>.json``
atomically. The monthly audit calls :func:`evaluate_impact` for the governance report's
"Is the programme working?" section. Nothing person-level is logged or written.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import pandas as pd
from prefect import flow

from riskstrat.catalog import output_catalog
from riskstrat.errors import RiskstratError
from riskstrat.evaluation.impact import (
    TAKEN_ON,
    AnalysisRows,
    analysis_rows,
    first_time_share,
    impact_outcomes,
    impact_payload,
    matured_weeks,
    no_history_payload,
    outcome_wording_at,
    too_short_payload,
)
from riskstrat.features.backends import connect, read_extract
from riskstrat.features.outcomes import outcome_names
from riskstrat.ingest import readers
from riskstrat.io import atomic_path
from riskstrat.pipelines.config import Config
from riskstrat.pipelines.decisions import read_decision_history
from riskstrat.pipelines.features import data_date
from riskstrat.pipelines.generate import is_simulated_week
from riskstrat.pipelines.logs import run_logger
from riskstrat.pipelines.shared import holds_output_lock, load_run_config
from riskstrat.worklists.assignment import read_assignments
from riskstrat.worklists.history import published_weeks

OUTCOME_TABLES: tuple[str, ...] = ("patients", "apc_spells", "ae_attendances")
"""Extract tables an outcome label may read (those present are registered)."""


def _lottery_settings(config: Config) -> dict[str, int]:
    lottery = getattr(config.mdts, "lottery", None)
    return {"places": int(getattr(lottery, "places", 5)), "pool": int(getattr(lottery, "pool", 10))}


def ranking_outcomes(config: Config) -> set[str]:
    """The outcomes the configured MDTs rank their lists by (``configs/mdts.yaml`` ``outcome``)."""
    default = config.mdts.default_mdt.outcome
    if not config.mdts.mdts:
        return {default}
    return {m.outcome or default for m in config.mdts.mdts}


def simulated_week_count(worklists_dir: Path, weeks: list[date]) -> int:
    """How many of ``weeks`` were written by the generator's simulated deployment (manifest ``"simulated": true``)."""
    folders = published_weeks(Path(worklists_dir))
    return sum(1 for week in weeks if week in folders and is_simulated_week(folders[week]))


@dataclass
class ImpactInputs:
    """What the designs run on (raw, person-level: never logged or written).

    Attributes:
        short: The short payload when there is no estimate to make (no history, too few weeks),
            else None.
        matured: The cut-off records of the weeks whose follow-up has ended.
        rows: The designs' rows (:func:`riskstrat.evaluation.impact.analysis_rows`).
        weeks: The matured weeks.
        recorded: Weeks with a cut-off record.
        as_of: The extract's data date.
        simulated: How many of ``weeks`` are a simulated past deployment.
    """

    short: dict[str, Any] | None
    matured: pd.DataFrame = field(default_factory=pd.DataFrame)
    rows: AnalysisRows | None = None
    weeks: list[date] = field(default_factory=list)
    recorded: int = 0
    as_of: date | None = None
    simulated: int = 0


def impact_inputs(config: Config, extract_dir: Path, outcome: str = "emergency_admission") -> ImpactInputs:
    """Read the cut-off records, decisions and outcomes of the lists ranked by ``outcome``.

    Returns:
        The inputs; ``short`` holds the payload to report instead when there is no history or
        fewer than ``impact.min_weeks`` weeks have ended their follow-up.
    """
    settings = config.impact
    output_dir = Path(config.data.output_dir)
    wording = outcome_wording_at(outcome, config.outcomes, settings.horizon_days)
    worklists = output_catalog(output_dir).worklists
    assignments = read_assignments(worklists)
    assignments = assignments.loc[assignments["outcome"] == outcome]
    if assignments.empty:
        ranked = outcome in ranking_outcomes(config)
        return ImpactInputs(short=no_history_payload(outcome, wording, settings, ranked=ranked))
    as_of = data_date.fn(Path(extract_dir), config.features, config.data.extract_date)
    weeks = matured_weeks(assignments, as_of, settings.horizon_days)
    recorded = int(assignments["week"].nunique())
    if len(weeks) < settings.min_weeks:
        short = too_short_payload(outcome, wording, recorded, len(weeks), settings)
        return ImpactInputs(short=short | {"data_date": as_of.isoformat()}, recorded=recorded, as_of=as_of)
    matured = assignments.loc[assignments["week"].isin(weeks)].reset_index(drop=True)
    present = tuple(name for name in OUTCOME_TABLES if readers.find_table_file(Path(extract_dir), name))
    tables = read_extract(connect(config.features), Path(extract_dir), present)
    outcomes = impact_outcomes(tables, matured, outcome, config.outcomes, settings.horizon_days)
    decisions = read_decision_history(output_dir)
    rows = analysis_rows(matured, outcomes, decisions, settings.running_variable, TAKEN_ON)
    simulated = simulated_week_count(worklists, weeks)
    return ImpactInputs(None, matured, rows, weeks, recorded, as_of, simulated)


def evaluate_impact(
    config: Config, extract_dir: Path, outcome: str = "emergency_admission"
) -> dict[str, Any]:
    """The impact payload of the lists ranked by ``outcome``: an estimate, or why there is none yet.

    Args:
        config: The run's settings (``impact``, ``outcomes``, ``mdts``, ``data``, ``features``).
        extract_dir: The extract the outcomes are read from.
        outcome: The registered outcome measured (and that the analysed lists rank by).

    Returns:
        The disclosed payload (:func:`riskstrat.evaluation.impact.impact_payload`), or a short
        one saying there is no history or too little (``status`` ``no_history`` / ``too_short``).
    """
    inputs = impact_inputs(config, extract_dir, outcome)
    if inputs.short is not None:
        return inputs.short
    assert inputs.rows is not None and inputs.as_of is not None
    matured, lottery = inputs.matured, _lottery_settings(config)
    draws = int(
        matured.loc[matured["cutoff_probability"].notna(), ["week", "mdt"]].drop_duplicates().shape[0]
    )
    payload = impact_payload(
        inputs.rows,
        outcome_name=outcome,
        wording=outcome_wording_at(outcome, config.outcomes, config.impact.horizon_days),
        settings=config.impact,
        weeks=inputs.weeks,
        weeks_recorded=inputs.recorded,
        mdts=sorted(matured["mdt"].astype(str).unique()),
        lottery_settings=lottery,
        draws=draws,
        pool_first_time_share=first_time_share(matured, lottery["places"], lottery["pool"]),
        simulated_weeks=inputs.simulated,
    )
    payload["data_date"] = inputs.as_of.isoformat()
    return payload


def write_impact(output_dir: Path, outcome: str, payload: dict[str, Any]) -> Path:
    """Write ``impact/impact_<outcome>.json`` atomically; returns its path."""
    path = output_catalog(output_dir).impact_file(outcome)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(payload, indent=1, ensure_ascii=False, default=str), encoding="utf-8")
    return path


def summary_lines(payload: dict[str, Any]) -> list[str]:
    """What ``riskstrat evaluate-impact`` prints: the estimate, its interval, people near the cut-off, the MDE."""
    lines = [str(payload.get("summary", ""))]
    rd = payload.get("rd")
    if rd:
        lines.append(
            f"Regression discontinuity: {rd['n_below']} people below and {rd['n_above']} above the cut-off "
            f"{rd['bandwidth_words']}."
        )
        if rd.get("bandwidth_cap_words"):
            lines.append(rd["bandwidth_cap_words"])
        density = rd.get("density") or {}
        if density.get("uneven") and density.get("sentence"):
            lines.append(density["sentence"])
        if rd.get("mde_sentence"):
            lines.append(rd["mde_sentence"])
    if payload.get("fuzzy"):
        fz = payload["fuzzy"]
        share = fz.get("first_stage")
        shown = f"{100 * share:.1f}%" if isinstance(share, float | int) else str(share)
        lines.append(f"{fz['sentence']} Share taken on among people listed near the cut-off: {shown}.")
    if payload.get("lottery"):
        lines.append(payload["lottery"]["sentence"])
    projected = payload.get("projected_lottery")
    if projected and isinstance(projected.get("mde"), float):
        lines.append(
            f"With the lottery at the margin on ({projected['places']} of {projected['pool']} places), the same "
            f"lists could detect a reduction of about {100 * projected['mde']:.1f} percentage points."
        )
    return [line for line in lines if line]


@flow(name="evaluate-impact", flow_run_name=lambda: "evaluate-impact", validate_parameters=False)
@holds_output_lock("evaluate-impact")
def impact_flow(
    config_dir: str | None = None, outcome: str = "emergency_admission", extract_dir: str | None = None
) -> dict[str, Any]:
    """Evaluate the programme's effect on ``outcome`` and write ``impact/impact_<outcome>.json``.

    Returns:
        The payload written (disclosed; no person-level rows).
    """
    if outcome not in outcome_names():
        raise RiskstratError(
            f"unknown outcome {outcome!r}", hint=f"Use one of: {', '.join(outcome_names())}."
        )
    config = load_run_config(config_dir)
    extract = Path(extract_dir or config.data.extract_dir)
    payload = evaluate_impact(config, extract, outcome)
    path = write_impact(Path(config.data.output_dir), outcome, payload)
    run_logger(__name__).info("impact evaluation (%s): %s; written to %s", payload["status"], outcome, path)
    return payload
