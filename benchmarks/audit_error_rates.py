"""Error rates of the fairness audit and the promotion gates, measured by simulation.

    python -m benchmarks.audit_error_rates [--people 100000] [--seed 5] [--replicates 200]
        [--effect-replicates 50] [--gate-replicates 400] [--outcomes emergency_admission ...]
        [--root /tmp/riskstrat-error-rates] [--reuse]

Builds a population with the real pipeline in ``<root>`` (a relocated copy of
``configs/``, the synthetic generator, the retrain flow's training table, one
LightGBM model per outcome, and each MDT's list back-tested on the test rows as
the retrain flow does), then runs ``riskstrat.evaluation.simulation`` on each
outcome's test rows: outcomes re-drawn from the model's own calibrated
predictions (the null: a perfectly calibrated, fair model), the effect
scenarios, and the calibration gate at known true O/E and slopes.

Results go to ``<root>/audit_error_rates.json`` and ``.md`` and are printed.
``--reuse`` skips the build when ``<root>/population/`` holds it already.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import pandas as pd

from riskstrat.pipelines.config import load_config, write_relocated_config

DEFAULT_OUTCOMES = ("emergency_admission", "frequent_attendance")


def write_config(root: Path, outcomes: tuple[str, ...]) -> Path:
    """The shipped settings with every output under ``<root>/outputs``."""
    return write_relocated_config(
        root / "configs", root / "outputs", {"model.yaml": {"outcomes": list(outcomes)}}
    )


def build_population(root: Path, people: int, seed: int, outcomes: tuple[str, ...]) -> dict[str, Path]:
    """Generate, build the training table, train each outcome and back-test the lists, as the retrain flow does.

    Returns:
        Per outcome, the folder holding ``predictions.parquet`` and ``selections.parquet``
        (the audit's inputs on the test rows, with the oracle's probability as ``p_oracle``).
    """
    from riskstrat.features.dictionary import feature_dictionary
    from riskstrat.models.training import train_outcome
    from riskstrat.pipelines import retrain
    from riskstrat.pipelines.audit import back_tested_lists
    from riskstrat.pipelines.generate import write_synthetic
    from riskstrat.pipelines.retrain import feature_names_from, read_truth

    config = load_config(write_config(root, outcomes))
    out = config.data.output_dir
    paths = write_synthetic(out, people, seed, config.synthetic)
    table = retrain.training_table.fn(config, paths.extract_dir)
    names = feature_names_from(retrain.dictionary_frame(feature_dictionary(config.features)))
    truth = read_truth.fn(config.data.truth_dir)
    folders: dict[str, Path] = {}
    for outcome in outcomes:
        result = train_outcome(table, names, outcome, config.model, truth=truth)
        test = table.iloc[result.test_rows]
        predictions, selections = back_tested_lists(
            test, result.test_scores["lightgbm"].to_numpy(), outcome, config.mdts, config.model
        )
        if "oracle" in result.test_scores:
            predictions["p_oracle"] = result.test_scores["oracle"].to_numpy()
        folder = root / "population" / outcome
        folder.mkdir(parents=True, exist_ok=True)
        predictions.to_parquet(folder / "predictions.parquet")
        selections.to_parquet(folder / "selections.parquet")
        folders[outcome] = folder
    return folders


def read_population(folder: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The saved predictions and selections of one outcome."""
    return pd.read_parquet(folder / "predictions.parquet"), pd.read_parquet(folder / "selections.parquet")


def main(argv: list[str] | None = None) -> int:
    """Build (or reuse) the population, run the simulations, print and write the tables."""
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--people", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--replicates", type=int, default=200, help="Null audits per outcome.")
    parser.add_argument("--effect-replicates", type=int, default=50, help="Audits per effect scenario.")
    parser.add_argument("--gate-replicates", type=int, default=400, help="Gate decisions per true value.")
    parser.add_argument("--outcomes", nargs="+", default=list(DEFAULT_OUTCOMES))
    parser.add_argument("--root", type=Path, default=Path("/tmp/riskstrat-error-rates"))
    parser.add_argument("--reuse", action="store_true", help="Reuse <root>/population when present.")
    parser.add_argument("--place", help="Local authority (LAD code) of the capture-loss scenario.")
    parser.add_argument("--build-only", action="store_true", help="Build the population and stop.")
    args = parser.parse_args(argv)
    outcomes = tuple(args.outcomes)
    root = args.root
    root.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    folders = {o: root / "population" / o for o in outcomes}
    if not (args.reuse and all((f / "predictions.parquet").is_file() for f in folders.values())):
        folders = build_population(root, args.people, args.seed, outcomes)
    print(f"population ready in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    if args.build_only:
        return 0
    results: dict[str, Any] = {
        "people": args.people,
        "seed": args.seed,
        "replicates": args.replicates,
        "effect_replicates": args.effect_replicates,
        "gate_replicates": args.gate_replicates,
    }
    return _run(results, folders, root, args)


def scenarios(predictions: pd.DataFrame, place: str | None) -> list[Any]:
    """The effect scenarios: the ones the developers' scenario tests use, at sizes a board cares about.

    Under-prediction of Asian and Black people (x1.2, x1.5), need x1.5 at equal risk for
    Black people, and 40% of one local authority's recorded events lost (``place``, or the
    first local authority in report order).
    """
    from riskstrat.evaluation.groups import assign_groups
    from riskstrat.evaluation.simulation import capture_loss, need_shift, under_prediction

    frame, groupings = assign_groups(predictions.reset_index(drop=True))
    chosen = [
        under_prediction("ethnic_group", "Asian", 1.2),
        under_prediction("ethnic_group", "Asian", 1.5),
        under_prediction("ethnic_group", "Black", 1.2),
        under_prediction("ethnic_group", "Black", 1.5),
        need_shift("ethnic_group", "Black", 1.5),
    ]
    places = next((g for g in groupings if g.name == "local_authority"), None)
    if places is not None:
        present = [g for g in places.groups if (frame["local_authority"] == g).any()]
        chosen.append(capture_loss("local_authority", place or present[0], 0.4))
    return chosen


def _progress(label: str, started: float) -> Any:
    def report(done: int) -> None:
        print(f"  {label}: {done} done, {time.perf_counter() - started:.0f} s", file=sys.stderr, flush=True)

    return report


def measure(
    folder: Path,
    replicates: int,
    effect_replicates: int,
    gate_replicates: int,
    seed: int,
    place: str | None,
    save: Any = None,
) -> dict[str, Any]:
    """Null audits, effect scenarios and the calibration gates on one outcome's test rows."""
    from riskstrat.evaluation.simulation import (
        Population,
        detection_row,
        null_table,
        simulate_audits,
        simulate_gates,
    )

    # The rules as they are now in configs/ (the population may have been built earlier).
    config = load_config()
    predictions, selections = read_population(folder)
    population = Population(predictions, selections)
    fairness = config.fairness
    started = time.perf_counter()
    measured: dict[str, Any] = {
        "test_rows": len(predictions),
        "events": int(predictions["y"].sum()),
        "expected_events": float(predictions["p"].sum()),
    }
    if "p_oracle" in predictions.columns:
        measured["oracle_oe"] = float(predictions["y"].sum() / predictions["p_oracle"].sum())
    null = simulate_audits(population, fairness, replicates, seed, progress=_progress("null", started))
    measured["null"] = null_table(null).to_dict(orient="records")
    measured["seconds_per_audit"] = (time.perf_counter() - started) / max(replicates, 1)
    # The gates are quick: measured before the scenarios, and each part saved as it is done.
    measured["gates"] = simulate_gates(
        predictions["p"].to_numpy(), config.model.promotion, config.model.evaluation, gate_replicates, seed
    ).to_dict(orient="records")
    rows: list[dict[str, Any]] = []
    measured["detection"] = rows
    if save is not None:
        save(measured)
    for k, scenario in enumerate(scenarios(predictions, place)):
        found = simulate_audits(
            population, fairness, effect_replicates, seed + 1 + k, scenario, _progress(scenario.name, started)
        )
        rows.append(detection_row(scenario, found))
        if save is not None:
            save(measured)
    measured["seconds"] = time.perf_counter() - started
    return measured


def _pct(value: float) -> str:
    return f"{100 * value:.1f}%"


def render_markdown(results: dict[str, Any]) -> str:
    """The measured tables as markdown (for docs/governance.md)."""
    lines = [
        f"Population: {results['people']:,} synthetic people, seed {results['seed']}; "
        f"{results['replicates']} null audits, {results['effect_replicates']} per scenario, "
        f"{results['gate_replicates']} gate draws per true value.",
    ]
    for outcome, measured in results["outcomes"].items():
        lines += [
            "",
            f"#### {outcome.replace('_', ' ')}: {measured['test_rows']:,} test rows, {measured['events']} events",
            "",
            "False raised flags under the null (a perfectly calibrated, fair model):",
            "",
            "| kind | audits | false flags per audit | audits with >= 1 | share (95% CI) |",
            "| --- | ---: | ---: | ---: | --- |",
        ]
        for row in measured["null"]:
            mean = (
                "" if row["mean_false_flags"] != row["mean_false_flags"] else f"{row['mean_false_flags']:.2f}"
            )
            lines.append(
                f"| {row['kind']} | {row['replicates']} | {mean} | {row['audits_with_one_or_more']} | "
                f"{_pct(row['share'])} ({_pct(row['share_lower'])} to {_pct(row['share_upper'])}) |"
            )
        lines += [
            "",
            "Detection (power) against known effects:",
            "",
            "| scenario | audits | detected | power (95% CI) | gate blocked |",
            "| --- | ---: | ---: | --- | ---: |",
        ]
        for row in measured["detection"]:
            lines.append(
                f"| {row['scenario']} | {row['replicates']} | {row['detected']} | {_pct(row['power'])} "
                f"({_pct(row['power_lower'])} to {_pct(row['power_upper'])}) | {_pct(row['gate_blocked_share'])} |"
            )
        lines += [
            "",
            "Calibration gates at a known true value:",
            "",
            "| gate | true value | error measured | draws | refused | error rate (95% CI) | stated by the reasons |",
            "| --- | ---: | --- | ---: | ---: | --- | ---: |",
        ]
        for row in measured["gates"]:
            stated = row.get("stated_refusal", float("nan"))
            stated = stated if row["inside_bounds"] else 1 - stated
            lines.append(
                f"| {row['gate']} | {row['true_value']:g} | {row['error']} | {row['replicates']} | "
                f"{row['refused']} | {_pct(row['error_rate'])} ({_pct(row['error_lower'])} to "
                f"{_pct(row['error_upper'])}) | {_pct(stated)} |"
            )
    return "\n".join(lines) + "\n"


def _run(results: dict[str, Any], folders: dict[str, Path], root: Path, args: argparse.Namespace) -> int:
    results["outcomes"] = {}
    for outcome, folder in folders.items():
        print(f"{outcome}:", file=sys.stderr)

        def save(measured: dict[str, Any], outcome: str = outcome) -> None:
            # Written as each part is measured, so a long run keeps what it has.
            results["outcomes"][outcome] = measured
            (root / "audit_error_rates.json").write_text(json.dumps(results, indent=2, default=str))

        save(
            measure(
                folder,
                args.replicates,
                args.effect_replicates,
                args.gate_replicates,
                args.seed,
                args.place,
                save,
            )
        )
    markdown = render_markdown(results)
    (root / "audit_error_rates.md").write_text(markdown)
    print(markdown)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
