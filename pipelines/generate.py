"""Write a synthetic population to disk: the extract (or raw national files), the truth and the practice map.

Tables are written chunk by chunk (Parquet row groups), so memory stays bounded
for a million people. Each output folder is swapped in atomically.

Two ways in, as for real data:

* contract format (default): the contract tables go to ``extract/``, ready for the gate;
* national format (``national=``, ``riskstrat generate --national``, ``synthetic.write_national``):
  every enabled source's raw national file goes to ``raw/`` (through the source's
  ``to_national``, which adds the code variants and noise real extracts carry), with the
  contract-format tables listed in ``sources.contract_tables``; the generator's own
  contract tables go to ``truth/contract/`` for round-trip checks, and ``riskstrat adapt``
  then makes ``extract/`` from ``raw/`` through the adapters.

With ``synthetic.deployment`` on (the default) the generator also simulates a past
deployment (``ingest/synthetic/deployment.py``) and writes it where a real one would be:
``worklists/<week>/`` (``history.parquet``, ``assignment.parquet`` and a manifest that says
``"simulated": true``) for every simulated week, the simulated decisions in
``decisions/history.parquet``, the whole population's scores every few weeks in
``monitoring/scores/<week>.parquet``, and the truth in ``truth/deployment.parquet``. A new
generation replaces what an earlier one simulated; it never touches weeks that were
really published, and refuses to write over one (:func:`check_simulated_weeks`).
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from riskstrat.catalog import OutputCatalog, output_catalog
from riskstrat.errors import RiskstratError, SettingsError
from riskstrat.ingest.contract import CONTRACT, Table
from riskstrat.ingest.sources import SOURCES
from riskstrat.ingest.sources.base import Source
from riskstrat.ingest.sources.settings import SourceSettings
from riskstrat.ingest.synthetic import deployment as simulated
from riskstrat.ingest.synthetic.generate import (
    iter_population,
    plan_deployment,
    plan_population,
    practice_map,
)
from riskstrat.ingest.synthetic.settings import SyntheticSettings
from riskstrat.io import atomic_directory, atomic_path, file_sha256, write_parquet
from riskstrat.worklists.assignment import ASSIGNMENT_COLUMNS, record_assignment
from riskstrat.worklists.decisions import DECISION_HISTORY_COLUMNS
from riskstrat.worklists.export import MANIFEST
from riskstrat.worklists.history import HISTORY_COLUMNS, published_weeks, record_week
from riskstrat.worklists.selection import risk_band
from riskstrat.worklists.settings import RiskBandSettings

log = logging.getLogger(__name__)

_ARROW_TYPES = {
    "string": pa.string(),
    "date": pa.date32(),
    "datetime": pa.timestamp("s"),
    "integer": pa.int64(),
    "float": pa.float64(),
}


@dataclass(frozen=True)
class GeneratedPaths:
    """Where a synthetic population was written."""

    extract_dir: Path
    truth_dir: Path
    practices_csv: Path
    people: int
    seconds: float
    raw_dir: Path | None = None
    """The raw national files, when written (``extract_dir`` is then still to be made by ``riskstrat adapt``)."""
    simulated_weeks: tuple[date, ...] = ()
    """The weeks of the simulated deployment written to ``worklists/`` (none when it is off)."""


def contract_schema(table: Table) -> pa.Schema:
    """The Arrow schema of a contract table: dates as date32, date-times as timestamps."""
    return pa.schema([pa.field(c.name, _ARROW_TYPES[c.type]) for c in table.columns])


def to_arrow(frame: pd.DataFrame, schema: pa.Schema) -> pa.Table:
    """Convert a generated frame to ``schema`` (casting datetime64 dates to date32)."""
    arrays = []
    for field in schema:
        if field.name not in frame.columns:  # an optional column the generator does not draw
            arrays.append(pa.nulls(len(frame), field.type))
            continue
        array = pa.array(frame[field.name], from_pandas=True)
        arrays.append(array.cast(field.type) if array.type != field.type else array)
    return pa.Table.from_arrays(arrays, schema=schema)


NATIONAL_SEED_TAG = 18
"""Mixed into the seed of the national writer's noise, so it never shares a stream with the population."""


def national_sources(sources: SourceSettings) -> list[Source]:
    """The enabled sources the national writer writes, in registration order.

    Raises:
        SettingsError: If an enabled source cannot write its national format.
    """
    enabled = [s for name, s in SOURCES.items() if sources.section(name).enabled]
    unable = [s.name for s in enabled if s.to_national is None]
    if unable:
        raise SettingsError(
            f"sources {', '.join(unable)}: no national writer (to_national), so no raw file can be generated",
            hint="Disable them in configs/sources.yaml and list their tables under contract_tables, "
            "or generate in the contract format (without --national).",
        )
    return enabled


def as_raw_text(frame: pd.DataFrame) -> pa.Table:
    """A raw national frame as an all-text Arrow table (raw files are text; chunks then share one schema)."""
    arrays = []
    for name in frame.columns:
        column = frame[name]
        if pd.api.types.is_datetime64_any_dtype(column):
            # ISO text, as warehouses export: dates alone when every value is at midnight.
            midnight = bool((column.dropna() == column.dropna().dt.normalize()).all())
            text = column.dt.strftime("%Y-%m-%d" if midnight else "%Y-%m-%d %H:%M:%S")
        else:
            text = column.astype("string")
        arrays.append(pa.array(text.astype(object).where(text.notna(), None), type=pa.string()))
    return pa.Table.from_arrays(arrays, names=[str(c) for c in frame.columns])


def national_frames(
    sources: list[Source], tables: dict[str, pd.DataFrame], rng: np.random.Generator
) -> dict[str, pd.DataFrame]:
    """One chunk's raw national frames, by raw file stem, each source drawing from its own spawned generator.

    A source whose tables the population does not generate (social care switched off) writes
    no file, as an ICS without that optional dataset has none; the others' streams are unchanged.
    """
    streams = rng.spawn(len(sources))
    return {
        source.file: source.to_national(tables, stream)  # type: ignore[misc]  # checked by national_sources
        for source, stream in zip(sources, streams, strict=True)
        # Any: CLD also writes social_care_returns, which the adapter derives (never generated).
        if any(name in tables for name in source.writes)
    }


class _Writers:
    """One Parquet writer per table, appending each chunk as row groups."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.writers: dict[str, pq.ParquetWriter] = {}

    def write(self, name: str, table: pa.Table) -> None:
        if name not in self.writers:
            self.writers[name] = pq.ParquetWriter(self.folder / f"{name}.parquet", table.schema)
        writer = self.writers[name]
        if table.schema != writer.schema:  # a raw chunk whose columns came out in another order
            table = table.select(writer.schema.names).cast(writer.schema)
        writer.write_table(table)

    def close(self) -> None:
        for writer in self.writers.values():
            writer.close()


def write_synthetic(
    out_dir: Path,
    people: int,
    seed: int,
    settings: SyntheticSettings,
    national: SourceSettings | None = None,
) -> GeneratedPaths:
    """Generate ``people`` people and write them under ``out_dir`` with ``truth/`` and ``reference/practices.csv``.

    Args:
        out_dir: Output folder (e.g. ``outputs``).
        people: How many people ever registered during the history.
        seed: Seed; the same seed writes identical files.
        settings: Synthetic settings.
        national: Source settings to write raw national files with: ``raw/`` gets every
            enabled source's national file and the ``contract_tables`` in the contract
            format, and the generator's contract tables go to ``truth/contract/``
            (``extract/`` is left for ``riskstrat adapt``). None: contract tables to ``extract/``.

    Returns:
        The paths written.
    """
    started = time.perf_counter()
    out_dir = Path(out_dir)
    outputs = output_catalog(out_dir)
    sources = national_sources(national) if national is not None else []
    plan = plan_population(settings, people, seed)
    if settings.deployment.enabled:
        check_simulated_weeks(outputs, simulated.deployment_weeks(settings.deployment, settings.extract_date))
    deployment = plan_deployment(plan, seed)
    deployment_truth: list[pd.DataFrame] = []
    n_chunks = len(plan.chunk_seeds)
    patients = []
    # Contract tables: the extract (contract format) or the truth's copy (national format).
    tables_dir = outputs.extract if national is None else outputs.raw
    with (
        atomic_directory(tables_dir) as staged,
        atomic_directory(outputs.truth) as truth,
        atomic_directory(outputs.reference) as reference,
    ):
        contract = staged if national is None else truth / outputs.truth_contract.name
        contract.mkdir(exist_ok=True)
        contract_writers, truth_writers, raw_writers = _Writers(contract), _Writers(truth), _Writers(staged)
        seeds = np.random.SeedSequence([seed, NATIONAL_SEED_TAG]).spawn(n_chunks)
        try:
            for index, chunk in enumerate(iter_population(plan, deployment), start=1):
                for name, frame in chunk.tables.items():
                    arrow = to_arrow(frame, contract_schema(CONTRACT[name]))
                    contract_writers.write(name, arrow)
                    if national is not None and name in national.contract_tables:
                        raw_writers.write(name, arrow)
                for name, frame in chunk.truth.items():
                    if name == "deployment":  # put together once every chunk is done
                        deployment_truth.append(frame)
                        continue
                    truth_writers.write(name, pa.Table.from_pandas(frame, preserve_index=False))
                if sources:
                    rng = np.random.default_rng(seeds[index - 1])
                    for stem, raw in national_frames(sources, chunk.tables, rng).items():
                        raw_writers.write(stem, as_raw_text(raw))
                patients.append(chunk.tables["patients"][["practice_code", "registration_end"]])
                log.info(
                    "synthetic population: chunk %d/%d written (%.0f s)",
                    index,
                    n_chunks,
                    time.perf_counter() - started,
                )
        finally:
            contract_writers.close()
            truth_writers.close()
            raw_writers.close()
        practice_map(plan, pd.concat(patients, ignore_index=True)).to_csv(
            reference / outputs.practices_file.name, index=False
        )
        if deployment is not None:
            write_deployment_truth(truth / "deployment.parquet", deployment, deployment_truth)
    write_deployment(outputs, deployment)
    seconds = time.perf_counter() - started
    log.info("synthetic population of %d people written to %s in %.0f s", people, out_dir, seconds)
    return GeneratedPaths(
        outputs.extract,
        outputs.truth,
        outputs.practices_file,
        people,
        seconds,
        raw_dir=outputs.raw if national is not None else None,
        simulated_weeks=deployment.weeks if deployment is not None else (),
    )


# ----------------------------------------------------------------------------- the simulated deployment

SIMULATED = "simulated"
"""Manifest key that marks a week folder written by the generator's simulated deployment."""
SCORES_METADATA_KEY = b"riskstrat"
"""Parquet key-value metadata of stored scores (interfaces B; ``pipelines.monitor.SCORES_METADATA_KEY``)."""


def _manifest_of(folder: Path) -> dict:
    path = folder / MANIFEST
    try:
        return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    except (OSError, ValueError):
        return {}


def is_simulated_week(folder: Path) -> bool:
    """Whether a week folder was written by the simulated deployment (its manifest says ``"simulated": true``)."""
    return _manifest_of(folder).get(SIMULATED) is True


def check_simulated_weeks(outputs: OutputCatalog, weeks: list[date]) -> None:
    """Refuse to simulate weeks over lists that were really published.

    Raises:
        RiskstratError: If a week folder in the simulated weeks' span is not a simulated one.
    """
    if not weeks:
        return
    first, last = weeks[0], weeks[-1]
    real = [
        week
        for week, folder in published_weeks(outputs.worklists).items()
        if first <= week <= last and not is_simulated_week(folder)
    ]
    if real:
        raise RiskstratError(
            f"{outputs.worklists} holds {len(real):,} published week(s) inside the simulated deployment's weeks "
            f"{first} to {last}, e.g. {real[0]}: generating would mix simulated lists with lists really sent out",
            hint="Generate into another output folder (--out), or set synthetic.deployment.enabled: false "
            "(or start_week/end_week outside those weeks) in configs/synthetic.yaml.",
        )


def _clear_simulated(outputs: OutputCatalog) -> None:
    """Remove what an earlier generation simulated: its week folders and stored scores (never a real week's)."""
    for folder in published_weeks(outputs.worklists).values():
        if is_simulated_week(folder):
            shutil.rmtree(folder)
    scores = outputs.monitoring_scores_dir
    for path in sorted(scores.glob("*.parquet")) if scores.is_dir() else []:
        try:
            meta = pq.read_schema(path).metadata or {}
            models = json.loads(meta.get(SCORES_METADATA_KEY, b"{}")).get("models", {})
        except (OSError, ValueError, AttributeError):
            continue
        if models and all(value == simulated.SCORE_MODEL for value in models.values()):
            path.unlink()


def write_deployment_truth(
    path: Path, deployment: simulated.SimulatedDeployment, frames: list[pd.DataFrame]
) -> None:
    """Write ``truth/deployment.parquet`` with the deployment's settings in its metadata (key ``riskstrat``)."""
    table = pa.Table.from_pandas(deployment.truth(frames), preserve_index=False)
    table = table.cast(table.schema.set(table.schema.get_field_index("week"), pa.field("week", pa.date32())))
    meta = {**(table.schema.metadata or {}), SCORES_METADATA_KEY: json.dumps(deployment.metadata()).encode()}
    with atomic_path(path) as tmp:
        pq.write_table(table.replace_schema_metadata(meta), tmp)


def write_deployment(outputs: OutputCatalog, deployment: simulated.SimulatedDeployment | None) -> None:
    """Write the simulated deployment's weeks, decisions and stored scores, replacing an earlier generation's.

    Each week folder is published atomically, like a real week: ``history.parquet``,
    ``assignment.parquet`` and ``manifest.json`` (with ``"simulated": true`` and the
    files' SHA-256). Decisions imported from real lists stay in the decision history.
    """
    _clear_simulated(outputs)
    _write_decisions(outputs, deployment)
    if deployment is None:
        return
    bands = RiskBandSettings()
    for week in deployment.weeks:
        history = deployment.history(week)
        history["risk_band"] = risk_band(history["probability"], bands).astype(str).to_numpy()
        assignment = deployment.assignment(week)
        with atomic_directory(outputs.week(week)) as staging:
            files = {}
            for path in (
                record_week(staging, history[list(HISTORY_COLUMNS)]),
                record_assignment(staging, assignment[list(ASSIGNMENT_COLUMNS)]),
            ):
                files[path.name] = file_sha256(path)
            listed = history.groupby("mdt")["person_id"].size()
            content = {
                "week": week.isoformat(),
                "data_date": simulated.data_date_of(week).isoformat(),
                SIMULATED: True,
                "model_versions": {simulated.OUTCOME: simulated.SCORE_MODEL},
                "mdts": {
                    str(mdt): {"outcome": simulated.OUTCOME, "listed": int(count)}
                    for mdt, count in listed.items()
                },
                "files": dict(sorted(files.items())),
            }
            (staging / MANIFEST).write_text(json.dumps(content, indent=2) + "\n", encoding="utf-8")
    for week in deployment.scored_weeks():
        _write_scores(outputs.monitoring_scores(week), deployment.scores(week))
    log.info(
        "simulated deployment: %d weeks, %d enrolments, admission effect %.2f",
        len(deployment.weeks),
        len(deployment.enrolments),
        deployment.settings.admission_effect,
    )


def _write_decisions(outputs: OutputCatalog, deployment: simulated.SimulatedDeployment | None) -> None:
    """The decision history with the simulated decisions replaced (real ones kept)."""
    path = outputs.decision_history
    frames = []
    if path.is_file():
        existing = pd.read_parquet(path)
        frames.append(existing.loc[existing["source_digest"] != simulated.DECISION_SOURCE])
        if len(frames[0]) == len(existing) and deployment is None:
            return  # nothing simulated before, nothing now
    if deployment is not None:
        frames.append(deployment.decisions())
    frames = [f for f in frames if len(f)]
    if not frames:
        if path.is_file():
            path.unlink()
        return
    merged = pd.concat(frames, ignore_index=True)[list(DECISION_HISTORY_COLUMNS)]
    merged["imported_at"] = pd.to_datetime(merged["imported_at"]).astype("datetime64[us]")
    path.parent.mkdir(parents=True, exist_ok=True)
    write_parquet(merged.sort_values(["mdt", "week", "person_id"], ignore_index=True), path)


def _write_scores(path: Path, scores: pd.DataFrame) -> None:
    """One simulated week's stored scores (interfaces B), naming the synthetic score as the model."""
    table = pa.table(
        {
            "week": pa.array(scores["week"].to_numpy(dtype="datetime64[D]"), type=pa.date32()),
            "data_date": pa.array(scores["data_date"].to_numpy(dtype="datetime64[D]"), type=pa.date32()),
            "person_id": pa.array(scores["person_id"].to_numpy(dtype=object), type=pa.string()),
            "practice_code": pa.array(scores["practice_code"].to_numpy(dtype=object), type=pa.string()),
            "mdt": pa.array(scores["mdt"].to_numpy(dtype=object), type=pa.string()),
            "p_emergency_admission": pa.array(scores["p_emergency_admission"], type=pa.float64()),
        }
    )
    meta = {SCORES_METADATA_KEY: json.dumps({"models": {simulated.OUTCOME: simulated.SCORE_MODEL}}).encode()}
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        pq.write_table(table.replace_schema_metadata(meta), tmp, compression="zstd")
