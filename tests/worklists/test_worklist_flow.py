import pandas as pd
import pytest
from worklist_fixtures import AS_OF, contributions_for

from riskstrat.pipelines.weekly import WeeklyInputs, worklists_flow
from riskstrat.worklists.export import read_list_csv


@pytest.mark.slow
def test_flow_runs_the_steps_as_prefect_tasks(
    prefect_harness, tmp_path, features, scored, boosters, mdt_settings
):
    from datetime import date

    inputs = WeeklyInputs(
        week=date(2026, 1, 5),
        data_date=AS_OF,
        scored=scored,
        features=features,
        contributions=contributions_for(boosters),
        settings=mdt_settings,
        output_dir=tmp_path,
    )
    folder = worklists_flow(inputs)
    assert (folder / "manifest.json").exists()
    north = read_list_csv(folder / "north-virtual-ward.csv", dtype=str)
    assert len(north) == 20
    assert (folder / "history.parquet").exists()  # published with the week, in one step


def test_objects_are_frozen_only_inside_the_block_even_when_it_fails():
    """The export leaves garbage collection as it found it, also when writing fails."""
    import gc

    from riskstrat.pipelines.weekly import long_lived_objects_frozen

    before = gc.get_freeze_count()
    with long_lived_objects_frozen():
        assert gc.get_freeze_count() > before
    assert gc.get_freeze_count() == before
    with pytest.raises(OSError), long_lived_objects_frozen():
        raise OSError("disk full")
    assert gc.get_freeze_count() == before


# ----------------------------------------------------------------------------- issue 16: one transaction per week


@pytest.fixture()
def week_inputs(tmp_path, features, scored, boosters, mdt_settings):
    from datetime import date

    return WeeklyInputs(
        week=date(2026, 1, 5),
        data_date=AS_OF,
        scored=scored,
        features=features,
        contributions=contributions_for(boosters),
        settings=mdt_settings,
        output_dir=tmp_path,
    )


def folder_bytes(folder):
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def next_week(inputs):
    from datetime import timedelta

    inputs.week = inputs.week + timedelta(7)
    return inputs


def test_a_week_is_published_with_its_history_or_not_at_all(week_inputs, monkeypatch):
    from riskstrat.pipelines.weekly import run_worklists
    from riskstrat.worklists import history

    first = run_worklists(week_inputs)
    recorded = pd.read_parquet(first / "history.parquet")
    assert len(recorded) and recorded["week"].eq("2026-01-05").all()
    before = folder_bytes(first)

    def disk_full(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(history, "record_week", disk_full)
    with pytest.raises(OSError, match="disk full"):
        run_worklists(next_week(week_inputs))
    # Neither the lists nor the history of the second week exist; the first is untouched.
    assert sorted(p.name for p in (week_inputs.output_dir / "worklists").iterdir()) == ["2026-01-05"]
    assert folder_bytes(first) == before


def test_the_next_week_is_compared_with_the_published_one(week_inputs):
    from riskstrat.pipelines.weekly import run_worklists

    first = read_list_csv(run_worklists(week_inputs) / "north-virtual-ward.csv", dtype=str)
    second = read_list_csv(run_worklists(next_week(week_inputs)) / "north-virtual-ward.csv", dtype=str)
    stayed = second["Person ID"].isin(set(first["Person ID"]))
    assert stayed.any()
    assert second.loc[stayed, "Weeks on list"].eq("2").all()
    assert second.loc[~stayed, "Change since last week"].eq("new").all()


def test_a_published_week_without_history_stops_the_next_week(week_inputs):
    from riskstrat.errors import RiskstratError
    from riskstrat.pipelines.weekly import run_worklists

    first = run_worklists(week_inputs)
    (first / "history.parquet").unlink()  # as a kill between export and history left it before
    with pytest.raises(RiskstratError, match="week 2026-01-05 was published"):
        run_worklists(next_week(week_inputs))
    assert sorted(p.name for p in (week_inputs.output_dir / "worklists").iterdir()) == ["2026-01-05"]


def test_an_earlier_versions_history_is_moved_and_used(week_inputs):
    import json

    from riskstrat.pipelines.weekly import run_worklists

    first = run_worklists(week_inputs)
    expected = read_list_csv(run_worklists(next_week(week_inputs)) / "north-virtual-ward.csv", dtype=str)
    # Put week 1 back as an earlier version kept it: the history apart, not in the manifest.
    legacy = week_inputs.output_dir / "worklists" / "history" / "2026-01-05.parquet"
    legacy.parent.mkdir()
    (first / "history.parquet").rename(legacy)
    manifest = json.loads((first / "manifest.json").read_text())
    del manifest["files"]["history.parquet"]
    (first / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    again = read_list_csv(run_worklists(week_inputs) / "north-virtual-ward.csv", dtype=str)
    pd.testing.assert_frame_equal(again, expected)
    assert (first / "history.parquet").is_file() and not legacy.parent.exists()


def test_every_flow_that_writes_outputs_holds_the_output_lock():
    from riskstrat.pipelines import audit, demo, features, retrain, validate, weekly

    writers = {
        validate.validate_flow.fn: "validate",
        validate.run_validate: "validate",
        features.build_features_flow.fn: "features",
        retrain.retrain_flow.fn: "train",
        retrain.run_promotion: "promote",
        weekly.weekly_worklists_flow.fn: "worklists",
        audit.fairness_audit_flow.fn: "audit",
        demo.demo_flow.fn: "demo",
    }
    for function, command in writers.items():
        assert getattr(function, "output_lock_command", None) == command, function.__name__


def test_a_locked_command_refuses_while_another_run_holds_the_folder(tmp_path):
    import subprocess
    import sys
    from types import SimpleNamespace

    from riskstrat.errors import RiskstratError
    from riskstrat.pipelines.shared import holds_output_lock

    ran = []

    @holds_output_lock("worklists")
    def weekly(config):
        ran.append(config)

    config = SimpleNamespace(data=SimpleNamespace(output_dir=tmp_path, lock_timeout_seconds=0))
    code = (
        "import sys, time\nfrom riskstrat.io import output_lock\n"
        "with output_lock(sys.argv[1], 'demo', 0):\n    print('held', flush=True)\n    time.sleep(30)\n"
    )
    holder = subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(RiskstratError, match=f"another riskstrat run is writing {tmp_path}"):
            weekly(config)
        assert ran == []
    finally:
        holder.kill()
        holder.wait()
    weekly(config)
    assert ran == [config]


@pytest.mark.slow
def test_a_flow_run_inside_another_re_enters_the_lock(prefect_harness, tmp_path):
    """The demo runs validate, retrain and the weekly run as subflows: they re-enter its lock, never wait."""
    from types import SimpleNamespace

    from prefect import flow

    from riskstrat.pipelines.shared import holds_output_lock

    config = SimpleNamespace(data=SimpleNamespace(output_dir=tmp_path, lock_timeout_seconds=0))

    @flow(name="inner-test")
    @holds_output_lock("worklists")
    def inner(config):
        return "published"

    @flow(name="outer-test")
    @holds_output_lock("demo")
    def outer(config):
        return [inner(config), inner(config)]

    assert outer(config) == ["published", "published"]


def test_a_damaged_history_stops_the_next_week_with_a_clear_error(week_inputs):
    from riskstrat.errors import RiskstratError
    from riskstrat.pipelines.weekly import run_worklists

    first = run_worklists(week_inputs)
    damaged = (first / "history.parquet").read_bytes()[:100]
    (first / "history.parquet").write_bytes(damaged)
    with pytest.raises(RiskstratError, match="history of week 2026-01-05 cannot be read") as caught:
        run_worklists(next_week(week_inputs))
    assert "re-run that week" in caught.value.hint
    assert sorted(p.name for p in (week_inputs.output_dir / "worklists").iterdir()) == ["2026-01-05"]


def test_an_mdt_with_nobody_registered_gets_an_empty_list_and_the_others_theirs(week_inputs):
    from riskstrat.pipelines.weekly import run_worklists
    from riskstrat.worklists.settings import MdtSettings

    settings = week_inputs.settings.model_dump()
    settings["mdts"] = [
        *settings["mdts"][:1],
        {"name": "Nobody here", "practices": ["ZZZ999"], "outcome": "frequent_attendance"},
    ]
    week_inputs.settings = MdtSettings.model_validate(settings)
    folder = run_worklists(week_inputs)
    assert len(read_list_csv(folder / "north-virtual-ward.csv", dtype=str)) == 20
    assert read_list_csv(folder / "nobody-here.csv", dtype=str).empty
