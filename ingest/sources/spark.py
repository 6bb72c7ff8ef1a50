"""The source adapters on Spark: each partition of a raw file adapted by an executor.

With ``backend: pyspark`` the raw file is read by Spark, spread over partitions by
the person ID (every row of a person in one partition; a source that must see the
whole file gets one partition), and the SAME adapt function runs on each partition
(``mapInArrow``): the executors write their contract rows as Parquet parts, and only
each partition's coverage, counts and problems come back to the driver, where they
are merged as batches are on one machine (:func:`~riskstrat.ingest.sources.base.merge_coverage`,
the source's ``describe``). No raw table comes to the driver; the numbers equal a
local run's.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa

from riskstrat.errors import ContractError, ContractProblem
from riskstrat.ingest.sources.base import (
    WHOLE,
    FieldCoverage,
    Source,
    SourceOutput,
    UnmappedCode,
    _check_fields,
    _local_names,
    _present,
    merge_coverage,
    raw_frame,
    raw_rows,
    raw_text,
)
from riskstrat.ingest.sources.extract import merged_problems

PartWriter = Callable[[str, pd.DataFrame, Path], None]
"""(contract table, rows, part file) -> writes the part; runs on the executors (must be importable there)."""


def _coverage_dict(coverage: FieldCoverage) -> dict[str, Any]:
    """A coverage record with its full tally, for the trip from an executor to the driver (codes only)."""
    return {
        "source": coverage.source,
        "field": coverage.field,
        "codelist": coverage.codelist,
        "rows": coverage.rows,
        "mapped": coverage.mapped,
        "unmapped": [[u.code, u.rows, u.system] for u in coverage.unmapped],
        "wrong_system": coverage.wrong_system,
        "tally": [[u.code, u.rows, u.system] for u in coverage.tally],
        "masked": coverage.masked,
    }


def _coverage_from(data: Mapping[str, Any]) -> FieldCoverage:
    return FieldCoverage(
        source=data["source"],
        field=data["field"],
        codelist=data["codelist"],
        rows=int(data["rows"]),
        mapped=int(data["mapped"]),
        unmapped=tuple(UnmappedCode(c, int(n), s) for c, n, s in data["unmapped"]),
        wrong_system=int(data["wrong_system"]),
        tally=tuple(UnmappedCode(c, int(n), s) for c, n, s in data["tally"]),
        masked=bool(data["masked"]),
    )


def adapt_partition(
    batches: Iterator[pa.RecordBatch],
    source: Source,
    renames: Mapping[str, str],
    parts_dir: Path,
    write_part: PartWriter,
    partition: int,
) -> dict[str, Any]:
    """Adapt one partition's raw rows and write its contract rows as part files.

    Returns:
        What the driver merges: rows read, rows written per table, coverage (with
        tallies), counts, and any contract problems with their hint.
    """
    received = list(batches)
    if not received:
        return {"rows": 0}
    frame = raw_frame(raw_text(pa.Table.from_batches(received)), source, renames)
    del received
    result: dict[str, Any] = {"rows": len(frame), "written": {}}
    try:
        output = source.adapt(frame)
    except ContractError as error:
        result["problems"] = [
            [p.table, p.column, p.expected, p.n_rows, list(p.examples)] for p in error.problems
        ]
        result["hint"] = error.hint
        return result
    for table, data in output.tables.items():
        write_part(table, data, Path(parts_dir) / table / f"part-{partition:05d}.parquet")
        result["written"][table] = len(data)
    result["coverage"] = [_coverage_dict(c) for c in output.coverage]
    result["counts"] = output.counts
    result["notes"] = output.notes
    return result


def spark_adapt_file(
    session: Any,
    source: Source,
    path: Path,
    renames: Mapping[str, str],
    batch_rows: int | None,
    parts_dir: Path,
    write_part: PartWriter,
) -> tuple[SourceOutput, int, dict[str, int]]:
    """Adapt one raw file on Spark; the executors write ``<parts_dir>/<table>/part-*.parquet``.

    Args:
        session: The Spark session.
        source: The source.
        path: Its raw file (readable by the executors under the same name).
        renames: National field name -> local column name.
        batch_rows: About how many raw rows each partition holds (None: one per 1,000,000).
        parts_dir: Folder for the part files (seen by the driver and the executors).
        write_part: Writes one part (converts to the contract schema); runs on the executors.

    Returns:
        The merged coverage, notes and counts (no tables), the raw rows read and the rows
        written per contract table.

    Raises:
        ContractError: If a required field is missing, or any partition breaks the contract
            (the problems of every partition, rows counted over the whole file).
    """
    from pyspark import TaskContext
    from pyspark.sql import functions as F

    local = _local_names(source, renames)
    present = _present(path)
    _check_fields(path, source, local, present)
    columns = [name for name in dict.fromkeys(local.values()) if name in present]
    if path.suffix == ".parquet":
        raw = session.read.parquet(str(path))
    else:  # the CSV rules of a local read: header row, text, RFC 4180 quotes, line breaks inside quotes
        raw = (
            session.read.option("header", True)
            .option("inferSchema", False)
            .option("encoding", "UTF-8")
            .option("escape", '"')
            .option("multiLine", True)
            .csv(str(path))
        )
    raw = raw.select(*[F.col(f"`{name}`").cast("string").alias(name) for name in columns])
    rows = raw_rows(path)
    if rows is None:
        rows = raw.count()
    if source.batching == WHOLE:
        spread = raw.repartition(1)
    else:
        parts = max(1, math.ceil(rows / (batch_rows or 1_000_000)))
        # The person: the first of its fields given (CLD: traced, else the LA's pseudonym).
        persons = [F.col(f"`{local[n]}`") for n in source.person_fields if local[n] in columns]
        spread = raw.repartition(parts, F.coalesce(*persons) if len(persons) > 1 else persons[0])

    def adapt_each(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        context = TaskContext.get()
        partition = context.partitionId() if context is not None else 0
        result = adapt_partition(batches, source, renames, parts_dir, write_part, partition)
        yield pa.RecordBatch.from_pydict({"result": [json.dumps(result)]})

    results = [json.loads(r["result"]) for r in spread.mapInArrow(adapt_each, "result string").collect()]
    results = [r for r in results if r["rows"]]
    problems = [
        ContractProblem(t, c, e, int(n), tuple(x)) for r in results for t, c, e, n, x in r.get("problems", [])
    ]
    if problems:
        hint = next(r["hint"] for r in results if r.get("hint"))
        raise ContractError(merged_problems(problems), hint=hint)
    written: dict[str, int] = {}
    coverage: list[FieldCoverage] = []
    counts: dict[str, int] = {}
    for result in results:
        for table, n in result["written"].items():
            written[table] = written.get(table, 0) + int(n)
        coverage = merge_coverage(coverage, [_coverage_from(c) for c in result["coverage"]])
        for key, value in result["counts"].items():
            counts[key] = counts.get(key, 0) + int(value)
    if not results:  # an empty file: its coverage and notes as a local read gives them
        empty = source.adapt(
            raw_frame(raw_text(pa.table({c: pa.array([], pa.string()) for c in columns})), source, renames)
        )
        return SourceOutput({}, empty.coverage, empty.notes, empty.counts), 0, {t: 0 for t in source.writes}
    # A source read whole has one partition: its own notes.
    notes = source.describe(counts, coverage) if source.describe is not None else results[0]["notes"]
    return SourceOutput({}, coverage, notes, counts), sum(r["rows"] for r in results), written
