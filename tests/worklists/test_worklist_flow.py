import pandas as pd
import pytest
from worklist_fixtures import AS_OF, contributions_for

from riskstrat.pipelines.weekly import WeeklyInputs, worklists_flow


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
    north = pd.read_csv(folder / "north-virtual-ward.csv", dtype=str)
    assert len(north) == 20
    assert (tmp_path / "worklists" / "history" / "2026-01-05.parquet").exists()


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
