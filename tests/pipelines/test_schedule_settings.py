import pytest

from riskstrat.errors import SettingsError
from riskstrat.pipelines.settings import ScheduleSettings
from riskstrat.settings import REPO_CONFIG_DIR, load_settings


def test_shipped_schedules_are_the_documented_defaults():
    schedules = load_settings(REPO_CONFIG_DIR / "schedules.yaml", ScheduleSettings)
    assert schedules.timezone == "Europe/London"
    assert schedules.weekly_worklists.cron == "0 6 * * 1"
    assert schedules.fairness_audit.cron == "0 7 1 * *"
    assert schedules.retrain.cron == "0 5 1 1,4,7,10 *"


def test_invalid_cron_and_timezone_fail_naming_the_key(tmp_path):
    path = tmp_path / "schedules.yaml"
    path.write_text("timezone: Europe/Londn\nweekly_worklists:\n  cron: every monday\n")
    with pytest.raises(SettingsError) as error:
        load_settings(path, ScheduleSettings)
    message = str(error.value)
    assert "weekly_worklists.cron = 'every monday'" in message
    assert "timezone = 'Europe/Londn'" in message


def test_committed_generated_docs_match_the_code():
    from pathlib import Path

    from riskstrat.pipelines.docs import generated_pages

    docs = Path(__file__).resolve().parents[2] / "docs"
    for name, text in generated_pages().items():
        assert (docs / name).read_text() == text, f"docs/{name} is stale: run `riskstrat docs`"
