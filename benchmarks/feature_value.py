"""What the hospital-diagnosis, ECDS complaint, recorded-eFI and social care features add, on a synthetic population.

Writes a synthetic population, builds the training table as ``riskstrat retrain`` does
(every as-of date, with outcomes), trains each outcome with the project's training code
with and without the new feature groups, and compares them on the SAME test rows:
AUROC with a paired bootstrap 95% interval of the difference (the same resamples for
both models), the oracle AUROC (the simulated true risk) on those rows, and for frequent
attendance the top of the list: how many of the people who go on to attend 5+ times are
in the top N (N = the MDTs' total capacity scaled to the test rows, as the audit's
back-test scales it) and the PPV in the top 0.5%.

``--groups`` picks the feature groups measured (default: the hospital-diagnosis, ECDS
complaint and recorded-eFI groups); ``--groups social_care`` compares the models with and
without the social care features (Adult Social Care CLD; the synthetic population writes
``social_care_events``), and also reports how many rows' local authority returns are known
and how many receive long-term support.

Usage:
    python -m benchmarks.feature_value [--people 100000] [--seed 7] [--out DIR] [--json FILE]
        [--per-group] [--n-boot 200] [--groups social_care]
"""

from __future__ import annotations

import argparse
import json
import math
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from riskstrat.features.dictionary import feature_names
from riskstrat.features.matrix import trained_features
from riskstrat.features.social_care import KNOWN, LONG_TERM_SUPPORT, SOCIAL_CARE_FEATURES
from riskstrat.models.metrics import compare_models
from riskstrat.models.training import train_outcome
from riskstrat.pipelines.config import load_config, write_relocated_config
from riskstrat.pipelines.generate import write_synthetic
from riskstrat.pipelines.retrain import read_truth, training_table

NEW_GROUPS: dict[str, tuple[str, ...]] = {
    "hospital_diagnoses": ("hospital_frailty_score", "charlson_index", "hospital_ltc_not_on_gp_record"),
    "ecds_complaints": ("ae_mental_health_", "ae_trend_90d"),
    "recorded_efi": ("recorded_efi",),
    "social_care": SOCIAL_CARE_FEATURES,
}
"""The new feature groups, as names or name prefixes (a windowed family)."""
DEFAULT_GROUPS: tuple[str, ...] = ("hospital_diagnoses", "ecds_complaints", "recorded_efi")
"""The groups measured when ``--groups`` is not given."""
TOP_SHARE = 0.005
FREQUENT = "frequent_attendance"


def group_features(names: list[str], group: str) -> list[str]:
    """The features of ``names`` that belong to the new feature group ``group``."""
    return [name for name in names if any(name.startswith(stem) for stem in NEW_GROUPS[group])]


def top_capture(y: np.ndarray, score: np.ndarray, n: int) -> int:
    """People with the outcome among the ``n`` highest scores (ties broken by position, stably)."""
    order = np.argsort(-score, kind="stable")[:n]
    return int(y[order].sum())


def mdt_capacity_on_test_rows(config: Any, practices_file: Path) -> int:
    """The MDTs' total weekly capacity scaled to the test rows (capacity x test share, per MDT)."""
    practices = pd.read_csv(practices_file, dtype=str)
    mdts = config.mdts.mdts or []
    count = len(mdts) if mdts else practices["neighbourhood"].nunique()
    capacity = config.mdts.default_mdt.capacity_people or 50
    return max(1, math.ceil(count * capacity * config.model.split.test))


def _auroc_rows(metrics: pd.DataFrame) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for row in metrics.itertuples():
        if row.metric == "auroc":
            out[f"auroc_{row.model}"] = [row.value, row.ci_low, row.ci_high]
        elif row.metric == "auroc_difference":
            out[f"with_minus_{row.model}"] = [row.value, row.ci_low, row.ci_high]
    return out


def run(
    people: int,
    seed: int,
    out: Path,
    per_group: bool,
    n_boot: int,
    reuse: bool = False,
    groups: tuple[str, ...] = DEFAULT_GROUPS,
) -> dict[str, Any]:
    """Generate, build, train with and without the new groups, compare; returns the figures."""
    started = time.perf_counter()
    config_dir = write_relocated_config(out / "configs", out)
    config = load_config(config_dir)
    if not (reuse and Path(config.data.extract_dir).is_dir()):
        write_synthetic(out, people, seed, config.synthetic)
    table = training_table.fn(config, config.data.extract_dir)
    truth = read_truth.fn(config.data.truth_dir)
    built = time.perf_counter() - started
    # The social care features only when the extract has social_care_events.
    every = trained_features(feature_names(config.features), table.columns)
    new = sorted({name for group in groups for name in group_features(every, group)})
    if not new:
        raise SystemExit(f"none of the features of {', '.join(groups)} are in the training table")
    variants = {"without_new": [name for name in every if name not in new]}
    if per_group:
        for group in groups:
            dropped = set(group_features(every, group))
            variants[f"without_{group}"] = [name for name in every if name not in dropped]
    coverage = {name: float((table[name].fillna(0) != 0).mean()) for name in new}
    results: dict[str, Any] = {
        "people": people,
        "seed": seed,
        "rows": len(table),
        "groups": list(groups),
        "new_features": new,
        "share_of_rows_nonzero": coverage,
        "outcomes": {},
    }
    for outcome in config.model.outcomes:
        full = train_outcome(table, every, outcome, config.model, truth=truth)
        scores = {"with_new": full.test_scores["lightgbm"].to_numpy()}
        for variant, names in variants.items():
            other = train_outcome(table, names, outcome, config.model, truth=None)
            assert np.array_equal(other.test_rows, full.test_rows), "the test rows must be the same"
            scores[variant] = other.test_scores["lightgbm"].to_numpy()
        if "oracle" in full.test_scores:
            scores["oracle"] = full.test_scores["oracle"].to_numpy()
        y = full.test_scores["y"].to_numpy()
        metrics = compare_models(
            y, scores, n_boot=n_boot, seed=config.model.evaluation.seed, reference="with_new"
        )
        figures: dict[str, Any] = {"test_rows": len(y), "events": int(y.sum()), **_auroc_rows(metrics)}
        if KNOWN in table.columns:
            test = table.iloc[full.test_rows]
            figures["test_rows_social_care_known"] = float(test[KNOWN].mean())
            figures["test_rows_long_term_support"] = float((test[LONG_TERM_SUPPORT] == 1).mean())
        if outcome == FREQUENT:
            capacity = mdt_capacity_on_test_rows(config, config.mdts.practices_file)
            top = max(1, math.ceil(TOP_SHARE * len(y)))
            figures["mdt_capacity_test_rows"] = capacity
            figures["top_share_rows"] = top
            for name, score in scores.items():
                figures[f"captured_at_capacity_{name}"] = top_capture(y, score, capacity)
                figures[f"ppv_top_0.5%_{name}"] = top_capture(y, score, top) / top
        results["outcomes"][outcome] = figures
    results["seconds"] = {
        "generate_and_features": round(built, 1),
        "total": round(time.perf_counter() - started, 1),
    }
    return results


def print_table(results: dict[str, Any]) -> None:
    """The figures as a plain table."""
    print(f"{results['people']:,} people, {results['rows']:,} rows, seconds {results['seconds']}")
    print("share of rows with a non-zero value:")
    for name, share in results["share_of_rows_nonzero"].items():
        print(f"  {name:36s} {share:.4f}")
    for outcome, figures in results["outcomes"].items():
        print(f"\n{outcome}: {figures['test_rows']:,} test rows, {figures['events']:,} events")
        for key, value in figures.items():
            if isinstance(value, list):
                print(f"  {key:42s} {value[0]: .4f}  [{value[1]: .4f}, {value[2]: .4f}]")
            elif key not in ("test_rows", "events"):
                print(f"  {key:42s} {value}")


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--out", type=Path, help="Folder for the population and outputs (default: a temp folder)."
    )
    parser.add_argument("--json", type=Path, default=Path("feature_value.json"))
    parser.add_argument("--per-group", action="store_true", help="Also leave out each new group on its own.")
    parser.add_argument("--n-boot", type=int, default=200)
    parser.add_argument("--reuse", action="store_true", help="Keep a population already in --out.")
    parser.add_argument(
        "--groups",
        nargs="+",
        choices=sorted(NEW_GROUPS),
        default=list(DEFAULT_GROUPS),
        help="The feature groups measured (default: %(default)s); e.g. --groups social_care.",
    )
    args = parser.parse_args(argv)
    groups = tuple(args.groups)
    if args.out is None:
        with tempfile.TemporaryDirectory(prefix="riskstrat-feature-value-") as folder:
            results = run(args.people, args.seed, Path(folder), args.per_group, args.n_boot, groups=groups)
    else:
        results = run(args.people, args.seed, args.out, args.per_group, args.n_boot, args.reuse, groups)
    print_table(results)
    args.json.write_text(json.dumps(results, indent=2), encoding="utf-8")
    return results


if __name__ == "__main__":
    main()
