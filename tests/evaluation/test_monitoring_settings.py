"""Monitoring settings: the shipped file loads and documents every setting; a wrong one names itself."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic import BaseModel

from riskstrat.errors import SettingsError
from riskstrat.evaluation.alarms import Alarm, stopping, worst
from riskstrat.evaluation.monitoring_settings import MonitoringSettings
from riskstrat.settings import load_settings

SHIPPED = Path(__file__).resolve().parents[2] / "configs" / "monitoring.yaml"


def test_shipped_monitoring_settings_load_as_the_defaults():
    assert load_settings(SHIPPED, MonitoringSettings) == MonitoringSettings()


def _fields(model: type[BaseModel], prefix: str = "") -> list[tuple[str, str, object]]:
    found = []
    for name, info in model.model_fields.items():
        found.append((prefix + name, name, info))
        annotation = info.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            found.extend(_fields(annotation, prefix + name + "."))
    return found


def test_every_setting_has_a_description_and_appears_in_the_shipped_file():
    text = SHIPPED.read_text()
    for path, name, info in _fields(MonitoringSettings):
        assert info.description, f"{path} has no description"
        assert re.search(rf"^\s*{name}:", text, re.MULTILINE), f"{path} is not in monitoring.yaml"
    # Every setting line is commented: beside it, above it, above the run of settings it is in,
    # or (a mapping's entries) on its parent.
    lines = text.splitlines()

    def indent(line: str) -> int:
        return len(line) - len(line.lstrip())

    for i, line in enumerate(lines):
        if not re.match(r"^\s*[a-z_]+:", line) or "#" in line:
            continue
        j = i - 1
        while j >= 0 and re.match(r"^\s*[a-z_]+:", lines[j]) and indent(lines[j]) == indent(line):
            j -= 1
        above = lines[j] if j >= 0 else ""
        assert above.strip().startswith("#") or indent(above) < indent(line), f"no comment for: {line}"


def _write(tmp_path, text):
    path = tmp_path / "monitoring.yaml"
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("enabeld: true\n", "enabeld"),
        ("stop_checks: [feed, weather]\n", "stop_checks.1"),
        ("feed_health:\n  baseline_weeks: 2\n", "feed_health.baseline_weeks"),
        ("feed_health:\n  warning_ratio: 1.5\n", "feed_health.warning_ratio"),
        ("feed_health:\n  warning_ratio: 0.3\n  critical_ratio: 0.4\n", "critical_ratio"),
        ("feed_health:\n  false_alarm_rate: 0\n", "feed_health.false_alarm_rate"),
        ("feed_health:\n  tables: [gp_appointments, caseload]\n", "feed_health.tables.1"),
        ("feed_health:\n  code_groups:\n    gp_diagnosis: condition\n", "feed_health.code_groups"),
        ("drift:\n  psi_warning: 0.3\n  psi_critical: 0.2\n", "psi_critical"),
        ("drift:\n  bins: 1\n", "drift.bins"),
        ("estimation:\n  draws: lots\n", "estimation.draws"),
        ("realised:\n  oe_tolerance: 0.8\n", "realised.oe_tolerance"),
    ],
)
def test_invalid_monitoring_settings_fail_naming_the_setting(tmp_path, text, key):
    with pytest.raises(SettingsError) as error:
        load_settings(_write(tmp_path, text), MonitoringSettings)
    message = str(error.value)
    assert "monitoring.yaml" in message and key in message


def test_worst_and_stopping_alarms():
    warning = Alarm("drift", "warning", "features", "moved")
    critical_drift = Alarm("drift", "critical", "features", "moved a lot")
    critical_feed = Alarm("feed", "critical", "gp_appointments", "stopped")
    assert worst([]) is None and worst([warning]) == "warning"
    assert worst([warning, critical_drift]) == "critical"
    checks = MonitoringSettings().stop_checks
    assert stopping([warning, critical_drift], checks) == []
    assert stopping([warning, critical_drift, critical_feed], checks) == [critical_feed]
