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
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from riskstrat.catalog import output_catalog
from riskstrat.errors import SettingsError
from riskstrat.ingest.contract import CONTRACT, Table
from riskstrat.ingest.sources import SOURCES
from riskstrat.ingest.sources.base import Source
from riskstrat.ingest.sources.settings import SourceSettings
from riskstrat.ingest.synthetic.generate import iter_population, plan_population, practice_map
from riskstrat.ingest.synthetic.settings import SyntheticSettings
from riskstrat.io import atomic_directory

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
    """One chunk's raw national frames, by raw file stem, each source drawing from its own spawned generator."""
    streams = rng.spawn(len(sources))
    return {
        source.file: source.to_national(tables, stream)  # type: ignore[misc]  # checked by national_sources
        for source, stream in zip(sources, streams, strict=True)
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
            for index, chunk in enumerate(iter_population(plan), start=1):
                for name, frame in chunk.tables.items():
                    arrow = to_arrow(frame, contract_schema(CONTRACT[name]))
                    contract_writers.write(name, arrow)
                    if national is not None and name in national.contract_tables:
                        raw_writers.write(name, arrow)
                for name, frame in chunk.truth.items():
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
    seconds = time.perf_counter() - started
    log.info("synthetic population of %d people written to %s in %.0f s", people, out_dir, seconds)
    return GeneratedPaths(
        outputs.extract,
        outputs.truth,
        outputs.practices_file,
        people,
        seconds,
        raw_dir=outputs.raw if national is not None else None,
    )
