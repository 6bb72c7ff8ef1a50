"""Time and peak memory of training one outcome's model on a feature table.

Usage:
    python -m benchmarks.train --table outputs/features/training.parquet \
        --outcome emergency_admission [--features a,b,c] [--dictionary dict.parquet]
    python -m benchmarks.train --synthetic-persons 1000000   # no table: a made-up one

Peak memory is the process's maximum resident set size (ru_maxrss), which includes
reading the table; the table's own size in memory is reported alongside.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path

import pandas as pd

from riskstrat.models.settings import ModelSettings
from riskstrat.models.training import KEY_COLUMNS, train_outcome
from riskstrat.settings import load_settings

NON_FEATURES = {
    *KEY_COLUMNS,
    "emergency_admission",
    "frequent_attendance",
    "ethnic_group",
    "imd_quintile",
    "practice_code",
    "lsoa_code",
    "age_band",
    "sex",
    "on_caseload_in_window",
    "p_emergency_admission",
    "p_frequent_attendance",
}


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--table", type=Path, help="Stacked training table (parquet).")
    parser.add_argument("--synthetic-persons", type=int, default=0, help="Build a made-up table instead.")
    parser.add_argument("--outcome", default="emergency_admission")
    parser.add_argument("--features", default="", help="Comma-separated feature names.")
    parser.add_argument(
        "--dictionary", type=Path, help="Feature dictionary (parquet/csv) with a name column."
    )
    parser.add_argument("--config", type=Path, default=Path("configs/model.yaml"))
    parser.add_argument("--n-boot", type=int, default=None, help="Override evaluation.n_boot.")
    args = parser.parse_args(argv)

    started = time.perf_counter()
    if args.table:
        table = pd.read_parquet(args.table)
    elif args.synthetic_persons:
        sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "models"))
        from synthetic_training import make_training_table  # type: ignore[import-not-found]

        table = make_training_table(args.synthetic_persons)
    else:
        parser.error("give --table or --synthetic-persons")
    load_seconds = time.perf_counter() - started
    if args.features:
        features = args.features.split(",")
    elif args.dictionary:
        reader = pd.read_csv if args.dictionary.suffix == ".csv" else pd.read_parquet
        features = list(reader(args.dictionary)["name"])
    else:
        features = [c for c in table.columns if c not in NON_FEATURES]
    settings = load_settings(args.config, ModelSettings) if args.config.is_file() else ModelSettings()
    if args.n_boot:
        settings = settings.model_copy(
            update={"evaluation": settings.evaluation.model_copy(update={"n_boot": args.n_boot})}
        )

    before = _peak_mb()
    started = time.perf_counter()
    result = train_outcome(table, features, args.outcome, settings)
    seconds = time.perf_counter() - started
    auroc = result.metrics.query("model == 'lightgbm' and metric == 'auroc'")["value"].iloc[0]
    report = {
        "rows": len(table),
        "persons": int(table["person_id"].nunique()),
        "features": len(features),
        "outcome": args.outcome,
        "table_memory_mb": round(table.memory_usage(deep=True).sum() / 2**20, 1),
        "load_seconds": round(load_seconds, 1),
        "train_evaluate_seconds": round(seconds, 1),
        "best_iteration": result.model.best_iteration,
        "peak_rss_before_training_mb": round(before, 1),
        "peak_rss_mb": round(_peak_mb(), 1),
        "test_auroc": round(float(auroc), 4),
        "rows_train": result.summary["rows_train"],
    }
    print(json.dumps(report, indent=2))
    return report


if __name__ == "__main__":
    main()
