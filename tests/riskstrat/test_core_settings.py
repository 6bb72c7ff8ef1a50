from pathlib import Path

import pytest

from riskstrat.errors import SettingsError
from riskstrat.pipelines.config import CONFIG_FILES, DataSettings, load_config
from riskstrat.settings import MAX_NESTING, MAX_SETTINGS_BYTES, REPO_CONFIG_DIR, load_settings, read_yaml


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
    from riskstrat.pipelines.config import write_relocated_config

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
    from riskstrat.pipelines.config import check_output_dir

    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    with pytest.raises(SettingsError) as error:
        check_output_dir(blocker / "outputs")
    assert str(error.value).startswith(f"data.output_dir = {blocker / 'outputs'}: cannot write there")
    check_output_dir(tmp_path / "new" / "outputs")  # a folder that can be made is fine
    assert (tmp_path / "new" / "outputs").is_dir()
    assert not list((tmp_path / "new" / "outputs").iterdir())  # the write check leaves nothing behind


@pytest.mark.parametrize(
    "text",
    [
        "extract_dir: " + "[" * 20000 + "]" * 20000 + "\n",  # RecursionError in PyYAML, before
        "extract_dir: " + "{a: " * 5000 + "1" + "}" * 5000 + "\n",
        "".join(f"{'  ' * depth}k{depth}:\n" for depth in range(MAX_NESTING + 1))
        + "  " * (MAX_NESTING + 1)
        + "v: 1\n",
        "extract_dir:\n" + "- " * 3000 + "x\n",
    ],
)
def test_deeply_nested_yaml_is_a_settings_error_naming_the_file(tmp_path, text):
    path = tmp_path / "data.yaml"
    path.write_text(text)
    with pytest.raises(SettingsError, match=f"nested more than {MAX_NESTING} levels deep") as error:
        load_settings(path, DataSettings)
    assert str(path) in str(error.value)


def test_nesting_up_to_the_limit_is_read():
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "x.yaml"
        path.write_text("a: " + "[" * (MAX_NESTING - 1) + "]" * (MAX_NESTING - 1) + "\n")
        data = read_yaml(path)
    depth, value = 0, data["a"]
    while value is not None and isinstance(value, list):
        depth += 1
        value = value[0] if value else None
    assert depth == MAX_NESTING - 1


def test_a_settings_path_that_is_not_a_regular_file_says_what_it_is_and_never_blocks(tmp_path):
    import os

    folder = tmp_path / "data.yaml"
    folder.mkdir()
    with pytest.raises(SettingsError, match="is a folder, not a file"):
        load_settings(folder, DataSettings)
    if Path("/dev/zero").exists():
        with pytest.raises(SettingsError, match=r"/dev/zero is not a regular file \(a device\)"):
            read_yaml(Path("/dev/zero"))
        link = tmp_path / "zero.yaml"
        link.symlink_to("/dev/zero")
        with pytest.raises(SettingsError, match=r"is not a regular file \(a device\)"):
            read_yaml(link)
    if hasattr(os, "mkfifo"):
        fifo = tmp_path / "fifo.yaml"
        os.mkfifo(fifo)  # reading it would wait for a writer for ever
        with pytest.raises(SettingsError, match=r"fifo.yaml is not a regular file \(a named pipe\)"):
            read_yaml(fifo)
    with pytest.raises(SettingsError, match="settings file not found"):
        read_yaml(tmp_path / "missing.yaml")
    with pytest.raises(SettingsError, match="settings file not found"):
        read_yaml(tmp_path / "missing" / "data.yaml")


def test_a_settings_file_larger_than_the_limit_is_refused_unread(tmp_path):
    path = tmp_path / "data.yaml"
    path.write_text("extract_dir: x\n" + "#" * MAX_SETTINGS_BYTES)
    with pytest.raises(SettingsError, match="larger than 1 MiB") as error:
        load_settings(path, DataSettings)
    assert str(path) in str(error.value)
    path.write_text("extract_dir: x\n" + "#" * (MAX_SETTINGS_BYTES - 20))  # under the limit: read
    assert load_settings(path, DataSettings).extract_dir is not None


def test_a_settings_file_that_is_not_utf8_is_a_settings_error(tmp_path):
    path = tmp_path / "data.yaml"
    path.write_bytes(b"extract_dir: caf\xe9\n")
    with pytest.raises(SettingsError, match="not UTF-8"):
        load_settings(path, DataSettings)


def test_a_line_break_in_a_key_or_value_cannot_forge_a_line(tmp_path):
    path = tmp_path / "data.yaml"
    path.write_text('"output_dri\\nhint: all fine": 1\nimd_edition: "x\\u2028y"\n')
    with pytest.raises(SettingsError) as error:
        load_settings(path, DataSettings)
    lines = error.value.message.splitlines()
    assert lines[0] == "invalid settings:" and len(lines) == 3
    assert not any(line.lstrip().startswith("hint:") for line in lines)
    assert "output_dri\\nhint: all fine" in error.value.message


def test_an_alias_bomb_or_a_self_referring_alias_is_a_settings_error(tmp_path):
    lines = ['a0: &a0 ["x", "x", "x", "x", "x", "x", "x", "x", "x", "x"]']
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 9)]  # 10**9 values
    path = tmp_path / "data.yaml"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(SettingsError, match=r"aliases .* expand it to more than") as error:
        load_settings(path, DataSettings)
    assert str(path) in str(error.value)
    path.write_text("a: &a [1, *a]\n")
    with pytest.raises(SettingsError, match="refers to the list or mapping that holds it"):
        load_settings(path, DataSettings)
    path.write_text("base: &base {x: 1}\nother: *base\nmerged: {<<: *base, y: 2}\n")  # ordinary aliases: fine
    assert read_yaml(path) == {"base": {"x": 1}, "other": {"x": 1}, "merged": {"x": 1, "y": 2}}
