"""Write a synthetic population to disk: the extract, the truth and the practice map.

Tables are written chunk by chunk (Parquet row groups), so memory stays bounded
for a million people. Each output folder is swapped in atomically.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from riskstrat.catalog import output_catalog
from riskstrat.ingest.contract import CONTRACT, Table
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


def contract_schema(table: Table) -> pa.Schema:
    """The Arrow schema of a contract table: dates as date32, date-times as timestamps."""
    return pa.schema([pa.field(c.name, _ARROW_TYPES[c.type]) for c in table.columns])


def to_arrow(frame: pd.DataFrame, schema: pa.Schema) -> pa.Table:
    """Convert a generated frame to ``schema`` (casting datetime64 dates to date32)."""
    arrays = []
    for field in schema:
        array = pa.array(frame[field.name], from_pandas=True)
        arrays.append(array.cast(field.type) if array.type != field.type else array)
    return pa.Table.from_arrays(arrays, schema=schema)


class _Writers:
    """One Parquet writer per table, appending each chunk as row groups."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.writers: dict[str, pq.ParquetWriter] = {}

    def write(self, name: str, table: pa.Table) -> None:
        if name not in self.writers:
            self.writers[name] = pq.ParquetWriter(self.folder / f"{name}.parquet", table.schema)
        self.writers[name].write_table(table)

    def close(self) -> None:
        for writer in self.writers.values():
            writer.close()


def write_synthetic(out_dir: Path, people: int, seed: int, settings: SyntheticSettings) -> GeneratedPaths:
    """Generate ``people`` people and write ``extract/``, ``truth/`` and ``reference/practices.csv`` under ``out_dir``.

    Args:
        out_dir: Output folder (e.g. ``outputs``).
        people: How many people ever registered during the history.
        seed: Seed; the same seed writes identical files.
        settings: Synthetic settings.

    Returns:
        The paths written.
    """
    started = time.perf_counter()
    out_dir = Path(out_dir)
    outputs = output_catalog(out_dir)
    plan = plan_population(settings, people, seed)
    n_chunks = len(plan.chunk_seeds)
    patients = []
    with (
        atomic_directory(outputs.extract) as extract,
        atomic_directory(outputs.truth) as truth,
        atomic_directory(outputs.reference) as reference,
    ):
        extract_writers, truth_writers = _Writers(extract), _Writers(truth)
        try:
            for index, chunk in enumerate(iter_population(plan), start=1):
                for name, frame in chunk.tables.items():
                    extract_writers.write(name, to_arrow(frame, contract_schema(CONTRACT[name])))
                for name, frame in chunk.truth.items():
                    truth_writers.write(name, pa.Table.from_pandas(frame, preserve_index=False))
                patients.append(chunk.tables["patients"][["practice_code", "registration_end"]])
                log.info(
                    "synthetic population: chunk %d/%d written (%.0f s)",
                    index,
                    n_chunks,
                    time.perf_counter() - started,
                )
        finally:
            extract_writers.close()
            truth_writers.close()
        practice_map(plan, pd.concat(patients, ignore_index=True)).to_csv(
            reference / outputs.practices_file.name, index=False
        )
    seconds = time.perf_counter() - started
    log.info("synthetic population of %d people written to %s in %.0f s", people, out_dir, seconds)
    return GeneratedPaths(outputs.extract, outputs.truth, outputs.practices_file, people, seconds)
