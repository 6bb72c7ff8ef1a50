from pathlib import Path

import pytest

from riskstrat.config import CONFIG_FILES, DataSettings, load_config
from riskstrat.errors import SettingsError
from riskstrat.settings import REPO_CONFIG_DIR, load_settings


def test_every_shipped_config_file_loads():
    config = load_config(REPO_CONFIG_DIR)
    for name in CONFIG_FILES:
        assert getattr(config, Path(name).stem) is not None


def test_every_registered_file_is_shipped():
    shipped = {p.name for p in REPO_CONFIG_DIR.glob("*.yaml")}
    assert set(CONFIG_FILES) <= shipped


def test_unknown_key_names_file_and_key(tmp_path):
    path = tmp_path / "data.yaml"
    path.write_text("extract_dir: x\noutput_dri: y\n")
    with pytest.raises(SettingsError) as error:
        load_settings(path, DataSettings)
    assert "data.yaml" in str(error.value)
    assert "output_dri" in str(error.value)


def test_wrong_value_names_key_value_and_expectation(tmp_path):
    path = tmp_path / "data.yaml"
    path.write_text("extract_date: 31/12/2025\nimd_edition: '2025'\n")
    with pytest.raises(SettingsError) as error:
        load_settings(path, DataSettings)
    message = str(error.value)
    assert "extract_date = '31/12/2025'" in message
    assert "imd_edition = '2025'" in message
    assert "2019" in message


def test_missing_file_and_bad_yaml_are_clear(tmp_path):
    with pytest.raises(SettingsError, match="not found"):
        load_settings(tmp_path / "nope.yaml", DataSettings)
    bad = tmp_path / "data.yaml"
    bad.write_text("extract_dir: [unclosed\n")
    with pytest.raises(SettingsError, match="not valid YAML"):
        load_settings(bad, DataSettings)
    listing = tmp_path / "list.yaml"
    listing.write_text("- a\n- b\n")
    with pytest.raises(SettingsError, match="mapping"):
        load_settings(listing, DataSettings)


def test_settings_hash_changes_with_a_setting(tmp_path):
    for name in CONFIG_FILES:
        (tmp_path / name).write_text((REPO_CONFIG_DIR / name).read_text())
    before = load_config(tmp_path).settings_hash()
    (tmp_path / "data.yaml").write_text("output_dir: elsewhere\n")
    assert load_config(tmp_path).settings_hash() != before


def test_relocated_config_moves_outputs_and_merges_changes(tmp_path):
    from riskstrat.config import write_relocated_config

    out = tmp_path / "run"
    write_relocated_config(tmp_path / "configs", out, {"model.yaml": {"evaluation": {"n_boot": 20}}})
    config = load_config(tmp_path / "configs")
    assert config.data.extract_dir == out / "extract" and config.data.output_dir == out
    assert config.mdts.practices_file == out / "reference" / "practices.csv"
    assert config.model.evaluation.n_boot == 20
    # Keys beside a changed one keep their shipped values.
    assert (
        config.model.evaluation.capacity_share == load_config(REPO_CONFIG_DIR).model.evaluation.capacity_share
    )


def test_duplicate_key_names_file_key_and_both_lines(tmp_path):
    path = tmp_path / "data.yaml"
    path.write_text("extract_dir: a\noutput_dir: b\n# a comment\noutput_dir: c\n")
    with pytest.raises(SettingsError) as error:
        load_settings(path, DataSettings)
    assert str(error.value) == f"{path}: key 'output_dir' appears twice, on lines 2 and 4"
    assert "last value" in error.value.hint


def test_duplicate_nested_key_is_an_error_and_merge_keys_are_not(tmp_path):
    from riskstrat.settings import read_yaml

    nested = tmp_path / "nested.yaml"
    nested.write_text("a:\n  b: 1\n  c: 2\n  b: 3\n")
    with pytest.raises(SettingsError, match="key 'b' appears twice, on lines 2 and 4"):
        read_yaml(nested)
    merged = tmp_path / "merged.yaml"
    merged.write_text("base: &base {x: 1, y: 2}\nother:\n  <<: *base\n  x: 5\n")
    assert read_yaml(merged)["other"] == {"x": 5, "y": 2}


@pytest.mark.parametrize("text", ["", "   \n\n", "# every line commented out\n# extract_dir: x\n"])
def test_empty_settings_file_is_an_error(tmp_path, text):
    path = tmp_path / "data.yaml"
    path.write_text(text)
    with pytest.raises(SettingsError) as error:
        load_settings(path, DataSettings)
    assert str(error.value).startswith(f"{path} is empty")
    assert "{}" in error.value.hint


def test_an_explicit_empty_mapping_takes_every_default(tmp_path):
    path = tmp_path / "data.yaml"
    path.write_text("# defaults on purpose\n{}\n")
    assert load_settings(path, DataSettings) == DataSettings()


def test_unwritable_output_dir_is_a_settings_error_naming_the_setting(tmp_path):
    from riskstrat.config import check_output_dir

    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    with pytest.raises(SettingsError) as error:
        check_output_dir(blocker / "outputs")
    assert str(error.value).startswith(f"data.output_dir = {blocker / 'outputs'}: cannot write there")
    check_output_dir(tmp_path / "new" / "outputs")  # a folder that can be made is fine
    assert (tmp_path / "new" / "outputs").is_dir()
    assert not list((tmp_path / "new" / "outputs").iterdir())  # the write check leaves nothing behind
