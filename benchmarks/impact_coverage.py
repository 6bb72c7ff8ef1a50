"""Coverage of the impact evaluation on simulated deployments with a known effect.

    python -m benchmarks.impact_coverage [--people 250000] [--seeds 1 2 3] [--effects 0 0.2]
        [--lottery off|on|both] [--root /tmp/riskstrat-impact] [--keep]

For each population size, seed, true effect and lottery setting: generates the synthetic
ICS with its simulated past deployment (``synthetic.deployment``: one MDT per
neighbourhood, lists at capacity, a quarter of listed people enrolled for 12 weeks, and
enrolment cutting the emergency admission hazard by ``admission_effect``), runs the impact
evaluation exactly as ``riskstrat evaluate-impact`` does, and compares each design with
the truth (``truth/deployment.parquet``):

- regression discontinuity: the true intention-to-treat at the cut-off, the mean of
  ``p_actual - p_none`` among listed minus among not listed, in the same first-time rows
  within the estimate's bandwidth;
- fuzzy regression discontinuity: the true effect of enrolment, the mean of
  ``p_actual - p_none`` among the enrolled in that sample;
- lottery (``--lottery on``: 5 places drawn among 10): winners minus losers, the same way.

Reports each run's estimate, interval, truth, whether the interval covers it, and the
minimum detectable effect with and without the lottery (the projection when it is off),
then the coverage of each design over the seeds. Results go to ``<root>/impact_coverage.json``
and ``.md`` and are printed. Each run's outputs are removed unless ``--keep``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import pandas as pd

from riskstrat.pipelines.config import load_config, write_relocated_config

OUTCOME = "emergency_admission"


def truth_rows(output_dir: Path) -> pd.DataFrame:
    """The simulated deployment's truth: week (ISO text), mdt, person_id, listed, enrolled, p_none, p_actual."""
    truth = pd.read_parquet(Path(output_dir) / "truth" / "deployment.parquet")
    return truth.assign(week=truth["week"].astype(str).str[:10], person_id=truth["person_id"].astype(str))


def _with_truth(rows: pd.DataFrame, truth: pd.DataFrame) -> pd.DataFrame:
    keyed = rows.assign(week=rows["week"].astype(str).str[:10], person_id=rows["person_id"].astype(str))
    merged = keyed.merge(
        truth[["week", "mdt", "person_id", "enrolled", "p_none", "p_actual"]],
        on=["week", "mdt", "person_id"],
        how="left",
        validate="one_to_one",
    )
    return merged.assign(gain=merged["p_actual"] - merged["p_none"])


def true_effects(
    rd_rows: pd.DataFrame, lottery_rows: pd.DataFrame, truth: pd.DataFrame, bandwidth: float | None
):
    """The true intention-to-treat at the cut-off, the true effect of enrolment and the lottery's truth."""
    out: dict[str, float | None] = {"itt": None, "enrolment": None, "lottery": None}
    if bandwidth is not None and len(rd_rows):
        near = _with_truth(rd_rows.loc[rd_rows["x"].abs() <= bandwidth], truth)
        listed = near["listed"].astype(bool)
        out["itt"] = float(near.loc[listed, "gain"].mean() - near.loc[~listed, "gain"].mean())
        enrolled = near["enrolled"].fillna(False).astype(bool)
        out["enrolment"] = float(near.loc[enrolled, "gain"].mean()) if enrolled.any() else None
    if len(lottery_rows):
        pool = _with_truth(lottery_rows, truth)
        won = pool["won"].astype(bool)
        out["lottery"] = float(pool.loc[won, "gain"].mean() - pool.loc[~won, "gain"].mean())
    return out


def _covered(design: dict[str, Any] | None, truth: float | None) -> bool | None:
    if (
        not design
        or truth is None
        or not all(isinstance(design.get(k), float | int) for k in ("lower", "upper"))
    ):
        return None
    return bool(design["lower"] <= truth <= design["upper"])


def run_one(root: Path, people: int, seed: int, effect: float, lottery: bool) -> dict[str, Any]:
    """Generate one simulated deployment, evaluate it and compare with the truth."""
    from riskstrat.pipelines.generate import write_synthetic
    from riskstrat.pipelines.impact import evaluate_impact, impact_inputs

    name = f"p{people}_s{seed}_e{effect:g}{'_lottery' if lottery else ''}"
    folder = root / name
    shutil.rmtree(folder, ignore_errors=True)
    deployment = {"admission_effect": effect, "lottery_places": 5 if lottery else 0, "lottery_pool": 10}
    config = load_config(
        write_relocated_config(
            folder / "configs", folder / "outputs", {"synthetic.yaml": {"deployment": deployment}}
        )
    )
    started = time.perf_counter()
    paths = write_synthetic(config.data.output_dir, people, seed, config.synthetic)
    generated = time.perf_counter() - started
    extract = Path(paths.extract_dir)
    payload = evaluate_impact(config, extract, OUTCOME)
    inputs = impact_inputs(config, extract, OUTCOME)
    rd, fuzzy, lot = payload.get("rd"), payload.get("fuzzy"), payload.get("lottery")
    truth = truth_rows(config.data.output_dir)
    rows = inputs.rows
    effects = true_effects(
        rows.rd if rows is not None else pd.DataFrame(),
        rows.lottery if rows is not None else pd.DataFrame(),
        truth,
        rd["bandwidth"] if rd else None,
    )
    projected = payload.get("projected_lottery") or {}
    result = {
        "run": name,
        "people": people,
        "seed": seed,
        "effect": effect,
        "lottery": lottery,
        "status": payload["status"],
        "weeks_matured": payload.get("weeks_matured"),
        "n_people": payload.get("n_people"),
        "rd": {
            k: (rd or {}).get(k)
            for k in ("estimate", "lower", "upper", "mde", "bandwidth", "n_below", "n_above")
        },
        "fuzzy": {k: (fuzzy or {}).get(k) for k in ("estimate", "lower", "upper", "mde", "first_stage")},
        "lottery_design": {
            k: (lot or {}).get(k) for k in ("estimate", "lower", "upper", "mde", "n_winners", "n_losers")
        },
        "projected_lottery_mde": projected.get("mde"),
        "truth": effects,
        "covered": {
            "rd": _covered(rd, effects["itt"]),
            "fuzzy": _covered(fuzzy, effects["enrolment"]),
            "lottery": _covered(lot, effects["lottery"]),
        },
        "seconds_generate": round(generated, 1),
        "seconds_total": round(time.perf_counter() - started, 1),
    }
    return result


def _fmt(value: Any, scale: float = 100.0) -> str:
    return f"{scale * value:+.1f}" if isinstance(value, float | int) and not isinstance(value, bool) else "-"


def table(results: list[dict[str, Any]]) -> str:
    """The runs as a Markdown table (effects in percentage points)."""
    lines = [
        "| people | seed | true effect | lottery | design | estimate (95% interval) | truth | covered | MDE | MDE with lottery |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in results:
        for design, key, truth in (
            ("RD (ITT)", "rd", r["truth"]["itt"]),
            ("fuzzy RD (enrolment)", "fuzzy", r["truth"]["enrolment"]),
            ("lottery", "lottery_design", r["truth"]["lottery"]),
        ):
            d = r[key]
            if d.get("estimate") is None:
                continue
            with_lottery = r["lottery_design"].get("mde") if r["lottery"] else r["projected_lottery_mde"]
            lines.append(
                f"| {r['people']:,} | {r['seed']} | {r['effect']:g} | {'on' if r['lottery'] else 'off'} | {design} | "
                f"{_fmt(d['estimate'])} ({_fmt(d['lower'])} to {_fmt(d['upper'])}) | {_fmt(truth)} | "
                f"{ {True: 'yes', False: 'no', None: '-'}[r['covered'][key.replace('_design', '')]] } | "
                f"{_fmt(d.get('mde')).lstrip('+')} | {_fmt(with_lottery).lstrip('+') if key == 'rd' else ''} |"
            )
    return "\n".join(lines)


def coverage(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Coverage of each design over the seeds, per population size, effect and lottery setting."""
    frame = pd.DataFrame(
        [
            {"people": r["people"], "effect": r["effect"], "lottery": r["lottery"], "design": d, "covered": c}
            for r in results
            for d, c in r["covered"].items()
            if c is not None
        ]
    )
    if frame.empty:
        return []
    grouped = frame.groupby(["people", "effect", "lottery", "design"])["covered"]
    return [
        {
            "people": int(p),
            "effect": float(e),
            "lottery": bool(lo),
            "design": d,
            "covered": int(s),
            "runs": int(n),
        }
        for (p, e, lo, d), s, n in zip(grouped.sum().index, grouped.sum(), grouped.count(), strict=True)
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--people", type=int, nargs="+", default=[250_000])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--effects", type=float, nargs="+", default=[0.0, 0.2])
    parser.add_argument(
        "--lottery",
        choices=("off", "on", "both"),
        default="off",
        help="Runs with the lottery at the margin off, on (5 places drawn among 10), or both.",
    )
    parser.add_argument("--root", type=Path, default=Path("/tmp/riskstrat-impact"))
    parser.add_argument("--keep", action="store_true", help="Keep each run's outputs.")
    args = parser.parse_args(argv)
    args.root.mkdir(parents=True, exist_ok=True)
    results_file = args.root / "impact_coverage.json"
    results: list[dict[str, Any]] = json.loads(results_file.read_text()) if results_file.is_file() else []
    done = {r["run"] for r in results}
    for people in args.people:
        for seed in args.seeds:
            for effect in args.effects:
                for lottery in {"off": (False,), "on": (True,), "both": (False, True)}[args.lottery]:
                    name = f"p{people}_s{seed}_e{effect:g}{'_lottery' if lottery else ''}"
                    if name in done:
                        continue
                    result = run_one(args.root, people, seed, effect, lottery)
                    results.append(result)
                    print(json.dumps(result), flush=True)
                    results_file.write_text(json.dumps(results, indent=1))
                    if not args.keep:
                        shutil.rmtree(args.root / name, ignore_errors=True)
    summary = coverage(results)
    text = (
        table(results)
        + "\n\nCoverage over seeds:\n\n"
        + "\n".join(
            f"- {c['people']:,} people, effect {c['effect']:g}, lottery {'on' if c['lottery'] else 'off'}, "
            f"{c['design']}: {c['covered']} of {c['runs']}"
            for c in summary
        )
    )
    (args.root / "impact_coverage.md").write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
