"""The pure parts of the benchmark runner: growth ratios, comparisons, targets and the Markdown page.

Made-up results only; nothing is timed.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest

# benchmarks/ is a folder of scripts at the repository root, not part of the installed package.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.run import (
    ROWS,
    comparisons,
    growth_ratios,
    model_size_section,
    render_markdown,
    target_checks,
    work_seconds,
    write_docs,
)

WEEKLY = "Weekly run, whole (validate -> export)"
TRAIN = "Train (2 outcomes) + register in MLflow"


def _stage(peak: float = 1.0, **seconds: float) -> dict:
    return {"returncode": 0, "wall_seconds": 1.0, "peak_rss_gib": peak, "seconds": {"setup": 5.0, **seconds}}


def _run(people: int, scale: float, spark: bool = True, extrapolated: bool = False) -> dict:
    stages = {
        "generate": _stage(generate=10 * scale),
        "adapt": _stage(peak=2.0, adapt=3 * scale),
        "floor": _stage(floor=2 * scale, sources=3 * scale, shortcuts=4 * scale),
        "validate": _stage(validate=4 * scale),
        "features": _stage(training_table=20 * scale, write_state=1.0),
        "train": _stage(peak=3.0, train=30 * scale, register=5 * scale, promote=1 * scale, read_state=2.0),
        "weekly_features": _stage(features=5 * scale),
        "weekly_score": _stage(scoring=3 * scale),
        "weekly_reasons": _stage(reasons=0.5, select=0.1),
        "weekly_export": _stage(assemble=1.0, export=1.0, record_history=0.5),
        "weekly": _stage(peak=6.0, validate=4 * scale, features=5 * scale, scoring=3 * scale, reasons=0.5),
        "reasons_everyone": {**_stage(reasons_everyone=50 * scale), "extrapolated": extrapolated},
    }
    if spark:
        stages["features_spark"] = _stage(peak=4.0, features=15 * scale)
    return {"people": people, "folder": "/tmp/x", "stages": stages}


def _results(runs: list[dict], skip_spark: bool = False) -> dict:
    machine = {
        "cpu": "Test CPU @ 2GHz",
        "cores": 2,
        "ram_gib": 24.0,
        "os": "Linux",
        "python": "3.11.9",
        "packages": {"pandas": "3.1", "duckdb": "2.0"},
        "date": "2026-01-05 09:00 UTC",
    }
    return {
        "command": "python -m benchmarks.run",
        "machine": machine,
        "cap": 200_000,
        "skip_spark": skip_spark,
        "runs": runs,
    }


def test_work_seconds_sums_named_steps_and_all_but_setup():
    stage = _stage(validate=4.0, features=5.0)
    assert work_seconds(stage, ("validate",)) == 4.0
    assert work_seconds(stage, ("*",)) == 9.0  # set-up (imports, config) is not the stage's work
    assert work_seconds(stage, ("missing",)) is None
    assert work_seconds({**stage, "error": "Traceback"}, ("validate",)) is None
    assert work_seconds(None, ("validate",)) is None


def test_linear_growth_passes_and_superlinear_growth_is_flagged():
    slow = _run(1_000_000, 4.0)
    slow["stages"]["train"]["seconds"]["train"] = 30 * 2.0 * 2.5  # 2.5x per doubling in training alone
    growth = growth_ratios(_results([_run(500_000, 2.0), _run(250_000, 1.0), slow]))
    pairs = {(g["from"], g["to"]) for g in growth}
    assert pairs == {(250_000, 500_000), (500_000, 1_000_000)}  # consecutive sizes, in size order
    first = {g["stage"]: g for g in growth if g["from"] == 250_000}
    assert first["Generate"]["ratio"] == pytest.approx(2.0)
    assert first["Generate"]["limit"] == pytest.approx(2.2)
    assert first["Generate"]["ok"] is True
    second = {g["stage"]: g for g in growth if g["from"] == 500_000}
    assert second[TRAIN]["ok"] is False
    # A constant-time step (reasons for a fixed list size) grows 1x.
    assert second["Weekly: reasons (listed people only)"]["ratio"] == pytest.approx(1.0)


def test_growth_limit_scales_with_the_size_ratio_and_missing_times_give_no_verdict():
    small, large = _run(10_000, 1.0), _run(40_000, 5.0)
    del large["stages"]["generate"]["seconds"]["generate"]
    growth = {g["stage"]: g for g in growth_ratios(_results([small, large]))}
    assert growth["Validate"]["limit"] == pytest.approx(2.2)  # per doubling of people
    assert growth["Validate"]["per_doubling"] == pytest.approx(5**0.5)  # 4x the people is two doublings
    assert growth["Validate"]["ok"] is False  # 5x for 4x the people
    assert growth["Generate"]["ratio"] is None and growth["Generate"]["ok"] is None


def test_comparisons_report_floor_reasons_spark_and_validation_share():
    extra = comparisons(_run(250_000, 1.0))
    assert extra["floor_ratio"] == pytest.approx(2.5)
    assert extra["sources_ratio"] == pytest.approx(1.5)
    assert extra["shortcuts_ratio"] == pytest.approx(2.0)
    assert extra["reasons_ratio"] == pytest.approx(100.0)
    assert extra["spark_ratio"] == pytest.approx(3.0)
    assert extra["validation_share"] == pytest.approx(4 / 12.5)


def test_targets_are_judged_at_one_million_only():
    assert all(c["met"] is None for c in target_checks(_results([_run(5_000, 1.0)]))[:-1])
    checks = {c["target"]: c for c in target_checks(_results([_run(500_000, 2.0), _run(1_000_000, 4.0)]))}
    assert checks["Weekly run, 1M people: time"]["value"] == pytest.approx(4 * 12 + 0.5)
    assert checks["Weekly run, 1M people: time"]["met"] is True
    assert checks["Weekly run, 1M people: peak memory"]["met"] is True
    assert checks["Weekly features / floor, 1M people"]["met"] is True
    from_raw = checks["Weekly run from raw national files (adapt + weekly), 1M people: time"]
    assert from_raw["value"] == pytest.approx(4 * 12 + 0.5 + 3 * 4) and from_raw["met"] is True
    assert checks["Weekly run from raw national files, 1M people: peak memory"]["value"] == pytest.approx(6.0)
    assert checks["Time growth per doubling (every stage)"]["met"] is True


def test_markdown_shows_machine_every_stage_growth_and_comparisons():
    page = render_markdown(_results([_run(250_000, 1.0), _run(500_000, 2.0, extrapolated=True)]))
    assert "Test CPU @ 2GHz" in page and "| Cores available | 2 |" in page and "24.0 GiB" in page
    assert "Smoke run only" not in page
    for label, *_ in ROWS:
        assert f"| {label} |" in page
    assert "250,000 people: s | GiB" in page and "250,000 -> 500,000" in page
    assert "2.00x (2.00x per doubling; memory 1.00x)" in page
    assert "## Feature build against its floor" in page
    assert "| 250,000 | 2.0 | 3.0 | 1.50 | 5.0 | 2.50 | 4.0 | 2.00 |" in page
    assert "extrapolated linearly" in page and "100.0*" in page
    assert "## Features on DuckDB against PySpark local[2]" in page
    # Weekly whole at 250k: validate 4 + features 5 + scoring 3 + reasons 0.5 (set-up excluded).
    assert f"| {WEEKLY} | 12.5 | 6.00 |" in page
    assert "not measured" in page  # no 1M run: targets have no verdict
    assert "| 250,000 | 32% |" in page  # validation's share of the whole weekly run: 4 / 12.5


def test_markdown_marks_smoke_runs_failures_and_skipped_spark(tmp_path):
    run = _run(5_000, 1.0, spark=False)
    run["stages"]["train"] = {"returncode": 1, "peak_rss_gib": 0.5, "wall_seconds": 3.0, "error": "boom"}
    page = render_markdown(_results([run], skip_spark=True))
    assert "Smoke run only" in page
    assert "Failed stages: 5,000 people: train (exit 1)." in page
    assert f"| {TRAIN} | - | - |" in page
    assert "| skipped |" in page
    target = write_docs(page, tmp_path / "docs" / "performance.md")
    assert target.read_text() == page
    assert list(target.parent.iterdir()) == [target]  # no temporary file left behind


def test_model_size_table_shows_rounds_auroc_difference_with_interval_and_denominators():
    run = _run(250_000, 1.0)
    run["stages"]["model_size"] = {
        "outcomes": {
            "emergency_admission": {
                "budget": 500,
                "rounds_uncapped": 871,
                "rounds_capped": 500,
                "auroc_uncapped": 0.7425,
                "auroc_capped": 0.7418,
                "difference": -0.0007,
                "difference_ci": [-0.0012, -0.0002],
                "test_rows": 32_000,
                "test_events": 3_321,
            }
        }
    }
    lines = model_size_section([run])
    assert "## Model size: the boosting-round budget" in lines
    assert (
        "| 250,000 | emergency_admission | 500 | 871 | 500 | 0.7425 | 0.7418 | "
        "-0.0007 (-0.0012 to -0.0002) | 3,321 / 32,000 |"
    ) in lines
    assert "## Model size" in render_markdown(_results([run]))
    assert model_size_section([_run(250_000, 1.0)]) == []  # not measured: no section


def test_growth_to_the_largest_ics_is_judged_per_doubling_with_memory_growth():
    small, large = _run(1_000_000, 1.0), _run(3_200_000, 3.2)
    large["stages"]["train"]["peak_rss_gib"] = 3.0 * 3.2
    growth = {g["stage"]: g for g in growth_ratios(_results([small, large]))}
    # 3.2x the time for 3.2x the people is linear: 2x per doubling, within the 2.2x limit.
    assert growth["Validate"]["per_doubling"] == pytest.approx(2.0)
    assert growth["Validate"]["ok"] is True
    assert growth[TRAIN]["memory_per_doubling"] == pytest.approx(2.0)
    assert growth["Validate"]["memory_per_doubling"] == pytest.approx(1.0)


def test_largest_ics_targets_judge_weekly_training_and_every_stage_memory():
    large = _run(3_200_000, 3.2)
    large["stages"]["features"]["peak_rss_gib"] = 17.5  # one stage over 16 GiB
    checks = {c["target"]: c for c in target_checks(_results([large]))}
    assert checks["Weekly run, 3.2M people: time"]["met"] is True
    assert checks["Training, 3.2M people: time"]["met"] is True
    assert checks["Training, 3.2M people: peak memory"]["value"] == pytest.approx(3.0)
    every = next(c for name, c in checks.items() if name.startswith("Every stage, 3.2M"))
    assert every["value"] == pytest.approx(17.5) and every["met"] is False
    assert "Features" in next(name for name in checks if name.startswith("Every stage, 3.2M"))
    # Without a 3.2M run there is no largest-ICS verdict at all.
    assert not any("3.2M" in c["target"] for c in target_checks(_results([_run(1_000_000, 1.0)])))


def test_markdown_says_where_memory_goes_at_the_largest_size():
    large = _run(3_200_000, 3.2)
    large["stages"]["train"]["step_peak_gib"] = {"read_state": 2.5, "train": 9.25}
    page = render_markdown(_results([_run(1_000_000, 1.0), large]))
    assert "## Where memory goes at 3,200,000 people" in page
    assert "| train | train | 96.0 | 9.25 |" in page


def test_a_step_peak_counts_memory_held_only_inside_the_step():
    from benchmarks.memory import GIB, PeakSampler, tree_rss_bytes

    before = tree_rss_bytes(os.getpid())
    with PeakSampler(interval=0.01) as sampler:
        block = bytearray(300 * 1024**2)  # touched, so resident
        block[::4096] = b"x" * len(block[::4096])
        time.sleep(0.1)  # let the sampling thread see it (not a timing assertion)
        del block
    assert sampler.peak_bytes >= before + 250 * 1024**2
    assert sampler.peak_bytes / GIB < 64
