from __future__ import annotations

from pathlib import Path

import pytest

from riskstrat.errors import SettingsError
from riskstrat.ingest.synthetic.settings import SyntheticSettings
from riskstrat.settings import REPO_CONFIG_DIR, load_settings


def test_shipped_yaml_loads_and_matches_defaults():
    settings = load_settings(REPO_CONFIG_DIR / "synthetic.yaml", SyntheticSettings)
    assert settings == SyntheticSettings()


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("peeple: 5\n", "peeple"),
        ("moved_in_share: lots\n", "moved_in_share"),
        ("lad_codes: [Dudley]\n", "lad_codes"),
        ("access_barrier: {enabled: true, group_value: Purple}\n", "access_barrier"),
        ("under_recording: {gp_activity_not_recorded: 1.5}\n", "gp_activity_not_recorded"),
    ],
)
def test_invalid_file_names_the_key(tmp_path: Path, text: str, key: str):
    path = tmp_path / "synthetic.yaml"
    path.write_text(text)
    with pytest.raises(SettingsError) as error:
        load_settings(path, SyntheticSettings)
    assert key in str(error.value)
