"""How fast could the feature build be? The same matrix with every shortcut that measured faster.

The weekly feature build misses its target of 3x the floor (``docs/performance.md``). This
script bounds what is reachable on DuckDB: it builds the same feature matrix with every
shortcut that measured faster at 1,000,000 people, including those riskstrat does not ship:

- **packed window counts**: the counts of one kind over every window are one 64-bit sum,
  a 16-bit lane per window, unpacked after the group-by. Not shipped: a lane overflows past
  65,535 events (a placeholder person ID in a real extract can hold that many), fewer bits
  are left per lane as windows are added, and the feature code is harder to check;
- **the BNF section read with a plain** ``substring`` (Ibis compiles a ``CASE`` on the
  start position, which DuckDB evaluates per row). Not shipped: 0.1 s at 1,000,000 people;
- **no sort by person**. Not shipped: the stored matrix's row order would change from run
  to run;
- **the cache written with snappy and no dictionaries**. Not shipped: the file is about
  2.5 times larger, and weekly matrices are kept.

It first checks that the matrix equals the shipped build's (rows sorted alike), then times
the floor, the shipped build and the shortcut build in turn, each in a fresh process, and
keeps the best of ``--repeat`` runs of each.

    .venv/bin/python -m benchmarks.feature_shortcuts --extract /path/to/outputs/extract
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import date
from pathlib import Path
from typing import Any
from unittest import mock

import ibis
import ibis.expr.datatypes as dt
import ibis.expr.types as ir
import pyarrow as pa
import pyarrow.parquet as pq

from benchmarks.features import cpu_seconds, run_measurement
from riskstrat.features import acute, common, community, matrix, primary
from riskstrat.features.common import Tables
from riskstrat.features.settings import FeatureSettings

LANE_BITS = 16
"""Bits per window in a packed count: up to 65,535 events per person and window (32,767 in the
longest, whose top bit is the sign of the 64-bit sum)."""
PACKED_PREFIX = "_packed_"


def packed_windowed_counts(
    event_date: ir.DateValue,
    as_of: date,
    windows: tuple[int, ...],
    stem: str,
    condition: ir.BooleanValue | None = None,
) -> dict[str, ir.IntegerScalar]:
    """:func:`riskstrat.features.common.windowed_counts` as one packed sum (see :func:`unpack_counts`).

    Each event adds 1 to the lane of every window it falls in; the windows are nested,
    so an event in the shortest window adds to every lane.
    """
    if len(windows) * LANE_BITS > 64:
        raise ValueError(f"{len(windows)} windows do not fit {LANE_BITS}-bit lanes in a 64-bit sum")
    ordered = sorted(windows)
    lanes = [
        (
            event_date > common.window_start(as_of, days),
            ibis.literal(sum(1 << (LANE_BITS * lane) for lane in range(index, len(ordered))), "int64"),
        )
        for index, days in enumerate(ordered)
    ]
    value = ibis.cases(*lanes, else_=ibis.literal(0, "int64"))
    if condition is not None:
        value = condition.ifelse(value, ibis.literal(0, "int64"))
    return {f"{PACKED_PREFIX}{stem}": value.sum()}


def unpack_counts(aggregate: ir.Table, windows: tuple[int, ...]) -> ir.Table:
    """``aggregate`` with each packed sum replaced by its ``<stem>_<w>d`` counts."""
    packed = [name for name in aggregate.columns if name.startswith(PACKED_PREFIX)]
    if not packed:
        return aggregate
    mask = (1 << LANE_BITS) - 1
    counts = {
        f"{name.removeprefix(PACKED_PREFIX)}_{days}d": (aggregate[name].cast("int64") >> (LANE_BITS * lane))
        & mask
        for name in packed
        for lane, days in enumerate(sorted(windows))
    }
    return aggregate.mutate(**counts).drop(*packed)


@ibis.udf.scalar.builtin(name="substring")
def _substring(text: dt.string, start: dt.int64, length: dt.int64) -> dt.string:  # type: ignore[empty-body]
    """SQL ``substring`` (1-based start), without the ``CASE`` Ibis puts around the start."""


def _prescribing_features(tables: Tables, as_of: date) -> ir.Table:
    """:func:`riskstrat.features.primary.prescribing_features` with a plain ``substring``."""
    medications = tables["gp_medications"]
    issued = medications.filter(common.in_window(medications.issue_date, as_of, primary.BNF_SECTION_DAYS))
    section = _substring(issued.bnf_code, 1, primary.BNF_SECTION_LENGTH)
    return issued.group_by("person_id").agg(bnf_sections_365d=section.nunique())


@contextmanager
def shortcuts(settings: FeatureSettings) -> Iterator[None]:
    """Inside this block, the feature modules build with packed counts and a plain substring.

    Every patch is undone on leaving the block, even on an error.
    """
    sources = matrix.feature_sources

    def unpacked_sources(*args: Any, **kwargs: Any) -> tuple[ir.Table, list[ir.Table]]:
        cohort, aggregates = sources(*args, **kwargs)
        return cohort, [unpack_counts(aggregate, settings.windows) for aggregate in aggregates]

    with ExitStack() as stack:
        for module in (acute, community, primary):
            stack.enter_context(mock.patch.object(module, "windowed_counts", packed_windowed_counts))
        stack.enter_context(mock.patch.object(primary, "prescribing_features", _prescribing_features))
        stack.enter_context(mock.patch.object(matrix, "feature_sources", unpacked_sources))
        yield


def build_with_shortcuts(tables: Tables, as_of: date, settings: FeatureSettings) -> pa.Table:
    """The feature matrix of :func:`riskstrat.features.matrix.build_feature_table`, rows unsorted."""
    with shortcuts(settings):
        expr = matrix.shape_matrix_expr(matrix.feature_matrix_expr(tables, as_of, settings), settings)
        return matrix.add_as_of(expr.to_pyarrow(), as_of)


def check_same_matrix(extract: Path, as_of: date, settings: FeatureSettings) -> list[str]:
    """Columns where the shortcut build differs from the shipped build (sorted alike); empty if none."""
    from riskstrat.features.backends import connect, read_extract

    shipped = matrix.build_feature_table(read_extract(connect(settings), extract), as_of, settings)
    fast = matrix.sort_by_person(
        build_with_shortcuts(read_extract(connect(settings), extract), as_of, settings)
    )
    if shipped.column_names != fast.column_names or shipped.num_rows != fast.num_rows:
        return ["(shape)"]
    return [name for name in shipped.column_names if not shipped.column(name).equals(fast.column(name))]


def _measure(extract: Path, as_of: str) -> None:
    """Time the shortcut build in this (fresh) process; print as ``benchmarks.features`` does."""
    import ibis.backends.duckdb  # noqa: F401  (imported before the clock, as for the shipped build)

    from riskstrat.features.backends import connect, read_extract

    settings = FeatureSettings()
    with tempfile.TemporaryDirectory() as output_dir:
        cpu_started = cpu_seconds()
        started = time.perf_counter()
        table = build_with_shortcuts(
            read_extract(connect(settings), extract), date.fromisoformat(as_of), settings
        )
        built = time.perf_counter()
        pq.write_table(table, Path(output_dir) / "matrix.parquet", compression="snappy", use_dictionary=False)
        seconds = time.perf_counter() - started
        cpu = cpu_seconds() - cpu_started
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"cpu={cpu:.3f} build={built - started:.2f} write={seconds - (built - started):.2f}")
    print(f"{seconds:.3f} {peak_mb:.0f} {table.num_rows}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--extract", type=Path, required=True, help="extract folder (Parquet)")
    parser.add_argument("--as-of", default="2025-12-31", help="as-of date (default: the data date)")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each measurement; the best is kept")
    parser.add_argument("--measure", choices=["shortcuts"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        _measure(args.extract, args.as_of)
        return
    differing = check_same_matrix(args.extract, date.fromisoformat(args.as_of), FeatureSettings())
    if differing:
        raise SystemExit(f"the shortcut build differs from the shipped build in: {', '.join(differing)}")
    print("same matrix as the shipped build: every column equal once rows are sorted by person")
    runs: dict[str, list[tuple[float, float, float, int, str]]] = {
        "floor": [],
        "features": [],
        "shortcuts": [],
    }
    for _ in range(args.repeat):  # in turn, so a busy spell on a shared machine hits all of them alike
        runs["floor"].append(run_measurement("floor", args.extract, args.as_of))
        runs["features"].append(run_measurement("features", args.extract, args.as_of))
        runs["shortcuts"].append(
            run_measurement("shortcuts", args.extract, args.as_of, module="benchmarks.feature_shortcuts")
        )
    best = {mode: min(results) for mode, results in runs.items()}
    floor = best["floor"][0]
    labels = {
        "floor": "floor (scan columns read + group by person)",
        "features": "feature build, as shipped",
        "shortcuts": "feature build, every shortcut",
    }
    print(f"best of {args.repeat}")
    print(f"{'step':<44}{'seconds':>9}{'CPU s':>8}{'peak MB':>9}{'x floor':>9}  steps")
    for mode, label in labels.items():
        seconds, cpu, peak, _, steps = best[mode]
        print(f"{label:<44}{seconds:>9.2f}{cpu:>8.2f}{peak:>9.0f}{seconds / floor:>9.2f}  {steps}")


if __name__ == "__main__":
    main()
