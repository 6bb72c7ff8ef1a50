"""riskstrat as a wheel: every module and package-data file (default settings, templates,
reference data) ships inside it, so an installed wheel works without the repository.

The slow test builds the wheel; `.ci/wheel-check` goes further and runs the demo from it
in a fresh virtualenv.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
import zipfile
from fnmatch import fnmatch
from pathlib import Path

import pytest

from riskstrat.settings import shipped_config_dir

REPO = Path(__file__).resolve().parents[1]
SETUPTOOLS = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]
NOT_SOURCES = shutil.ignore_patterns(
    ".venv", ".git", "outputs", "mlruns", "build", "*.egg-info", "__pycache__", ".*_cache", ".hypothesis"
)


def package_files() -> dict[str, Path]:
    """Every file of every mapped folder, by its path inside the wheel (``riskstrat/ingest/...``)."""
    files = {}
    for package, folder in SETUPTOOLS["package-dir"].items():
        root = REPO / folder
        for path in root.rglob("*"):
            if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
                files[f"{package.replace('.', '/')}/{path.relative_to(root).as_posix()}"] = path
    return files


def test_every_folder_with_modules_is_a_listed_package():
    listed = set(SETUPTOOLS["packages"])
    for package, folder in SETUPTOOLS["package-dir"].items():
        for init in (REPO / folder).rglob("__init__.py"):
            relative = init.parent.relative_to(REPO / folder).parts
            assert ".".join((package, *relative)) in listed, (
                f"{init.parent} is not in [tool.setuptools] packages"
            )


def test_every_data_file_matches_a_package_data_pattern():
    patterns = SETUPTOOLS["package-data"]
    for name in package_files():
        if name.endswith(".py"):
            continue
        folder, _, file = name.rpartition("/")
        matched = any(
            fnmatch(name, f"{package.replace('.', '/')}/{pattern}")
            for package, package_patterns in patterns.items()
            for pattern in package_patterns
        )
        assert matched, f"{name} ({folder}/{file}) is not package data: it would not ship in the wheel"


def test_the_default_settings_are_the_repositorys_configs_folder():
    # In this (editable) install the package riskstrat.configs is the checkout's configs/ itself.
    assert shipped_config_dir().resolve() == (REPO / "configs").resolve()


@pytest.mark.slow
def test_the_wheel_holds_every_module_and_data_file(tmp_path):
    # Built from a clean copy: a build/ folder left in the checkout could hold deleted modules.
    source = tmp_path / "src"
    shutil.copytree(REPO, source, ignore=NOT_SOURCES)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "--wheel-dir",
            str(tmp_path / "dist"),
            str(source),
        ],
        check=True,
        capture_output=True,
    )
    (wheel,) = (tmp_path / "dist").glob("riskstrat-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        shipped = {name for name in archive.namelist() if ".dist-info/" not in name}
    expected = set(package_files())
    assert expected - shipped == set(), "missing from the wheel"
    assert shipped - expected == set(), "in the wheel but not in the sources"
    assert {"riskstrat/configs/model.yaml", "riskstrat/evaluation/templates/report.html.j2"} <= shipped
