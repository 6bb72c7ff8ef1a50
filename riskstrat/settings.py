"""Typed settings: every file in ``configs/`` is loaded into one pydantic model.

A wrong key, type or value fails at start-up with one line per problem naming
the file, the key, the value found and what was expected.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from riskstrat.errors import SettingsError

REPO_CONFIG_DIR = Path(__file__).resolve().parent.parent / "configs"
"""The configs/ folder of a source checkout (used when no other folder is given)."""

CONFIG_DIR_ENV = "RISKSTRAT_CONFIG_DIR"


class Settings(BaseModel):
    """Base of every settings model: unknown keys are errors, values are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)


SettingsT = TypeVar("SettingsT", bound=Settings)


def default_config_dir() -> Path:
    """The folder settings are read from.

    Order: the ``RISKSTRAT_CONFIG_DIR`` environment variable, ``./configs`` in
    the working folder, then the ``configs/`` folder of the source checkout.
    """
    if os.environ.get(CONFIG_DIR_ENV):
        return Path(os.environ[CONFIG_DIR_ENV])
    local = Path.cwd() / "configs"
    if local.is_dir():
        return local
    return REPO_CONFIG_DIR


def _describe_error(path: Path, error: dict[str, Any]) -> str:
    key = ".".join(str(part) for part in error["loc"]) or "(top level)"
    if error["type"] == "extra_forbidden":
        return f"{path}: unknown key '{key}' (check the spelling; see docs/configuration.md)"
    if error["type"] == "missing":
        return f"{path}: missing key '{key}'"
    value = error.get("input")
    return f"{path}: {key} = {value!r}: {error['msg']}"


def parse_settings(data: Any, model: type[SettingsT], source: Path) -> SettingsT:
    """Validate already-parsed settings data against ``model``.

    Args:
        data: The mapping read from a YAML file (None for an empty file).
        model: The settings model to validate against.
        source: The file the data came from, named in errors.

    Returns:
        The validated settings.

    Raises:
        SettingsError: Naming the file, key, value and expectation of every problem.
    """
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise SettingsError(
            f"{source}: expected a mapping of settings at the top level, found {type(data).__name__}",
            hint="Each configs/*.yaml file is a set of 'key: value' lines.",
        )
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        lines = [_describe_error(source, error) for error in exc.errors()]
        raise SettingsError(
            "invalid settings:\n  " + "\n  ".join(lines),
            hint=f"Fix {source.name}; docs/configuration.md lists every setting and its allowed values.",
        ) from None


class DuplicateKeyError(yaml.YAMLError):
    """A YAML mapping names the same key twice (YAML would silently keep the last value)."""

    def __init__(self, key: object, first_line: int, second_line: int) -> None:
        super().__init__(f"key '{key}' appears twice, on lines {first_line} and {second_line}")
        self.key = key
        self.first_line = first_line
        self.second_line = second_line


class StrictLoader(yaml.SafeLoader):
    """YAML's safe loader, except that a key given twice in one mapping is an error."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        """Check the mapping's own keys for repeats (merge keys ``<<`` aside), then build it."""
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=True)
            try:
                first = seen.get(key)
            except TypeError:  # an unhashable key: YAML itself rejects it below
                continue
            line = key_node.start_mark.line + 1
            if first is not None:
                raise DuplicateKeyError(key, first, line)
            seen[key] = line
        return super().construct_mapping(node, deep=deep)


def read_yaml(path: Path) -> Any:
    """Read a settings file strictly: not empty, valid YAML, no key given twice.

    Args:
        path: The YAML file.

    Returns:
        The parsed data.

    Raises:
        SettingsError: If the file is missing, empty (or only comments), not valid
            YAML, or repeats a key (naming the key and both lines).
    """
    path = Path(path)
    if not path.is_file():
        raise SettingsError(
            f"settings file not found: {path}",
            hint=f"Copy it from the repository's configs/ folder or set {CONFIG_DIR_ENV}.",
        )
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SettingsError(
            f"{path}: cannot be read ({exc})", hint="Check the file and its permissions."
        ) from None
    try:
        data = yaml.load(text, Loader=StrictLoader)  # StrictLoader is a SafeLoader
    except DuplicateKeyError as exc:
        raise SettingsError(
            f"{path}: {exc}",
            hint="Keep one of them: YAML would silently use the last value.",
        ) from None
    except yaml.YAMLError as exc:
        raise SettingsError(f"{path}: not valid YAML: {exc}", hint="Check indentation and quoting.") from None
    if data is None:
        raise SettingsError(
            f"{path} is empty{' (only comments)' if text.strip() else ''}: no settings in it",
            hint="An empty file is usually a truncated copy: restore it from the repository's configs/ "
            "folder. To take every default on purpose, write {} in it.",
        )
    return data


def load_settings(path: Path, model: type[SettingsT]) -> SettingsT:
    """Read a YAML settings file and validate it against ``model``.

    Args:
        path: The YAML file.
        model: The settings model for that file.

    Returns:
        The validated settings.

    Raises:
        SettingsError: If the file is missing, empty, not valid YAML, repeats a key
            or holds an invalid setting.
    """
    path = Path(path)
    return parse_settings(read_yaml(path), model, path)
