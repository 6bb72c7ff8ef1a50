"""Typed settings: every file in ``configs/`` is loaded into one pydantic model.

A wrong key, type or value fails at start-up with one line per problem naming
the file, the key, the value found and what was expected. A settings file that
cannot be a settings file (a folder, a device such as ``/dev/zero``, a named
pipe, more than :data:`MAX_SETTINGS_BYTES`, YAML nested more than
:data:`MAX_NESTING` levels deep or whose aliases expand to more than
:data:`MAX_VALUES` values) is refused with a :class:`SettingsError` that
says what it is, without reading it (a read would block or never end).
"""

from __future__ import annotations

import importlib.resources
import os
import stat
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from riskstrat.errors import SettingsError, one_line

DEFAULT_SETTINGS_PACKAGE = "riskstrat.configs"
"""The package holding the default settings: the repository's ``configs/``, installed as package data."""

CONFIG_DIR_ENV = "RISKSTRAT_CONFIG_DIR"

MAX_SETTINGS_BYTES = 1 << 20
"""Largest settings file read (1 MiB; the largest in configs/ is a few kilobytes)."""
MAX_NESTING = 64
"""Deepest nesting of lists and mappings a settings file may have (configs/ needs about 4)."""
MAX_VALUES = 100_000
"""Most values a settings file may expand to once YAML aliases (``*name``) are followed."""


def shipped_config_dir() -> Path:
    """The folder of default settings that ships with riskstrat.

    pyproject.toml installs the repository's ``configs/`` as the package
    :data:`DEFAULT_SETTINGS_PACKAGE`, so this is ``riskstrat/configs`` inside an
    installed wheel and the checkout's ``configs/`` in an editable install: one
    copy of the defaults either way.

    Returns:
        The folder.

    Raises:
        SettingsError: If riskstrat is installed somewhere that is not a folder
            on disk (a zip file), where settings files cannot be opened.
    """
    folder = importlib.resources.files(DEFAULT_SETTINGS_PACKAGE)
    if not isinstance(folder, Path):
        raise SettingsError(
            f"riskstrat's default settings are not a folder on disk ({type(folder).__name__})",
            hint=f"Install riskstrat from its wheel with pip, or set {CONFIG_DIR_ENV} to a configs/ folder.",
        )
    return folder


REPO_CONFIG_DIR = shipped_config_dir()
"""The default settings shipped with riskstrat (the repository's ``configs/``; see :func:`shipped_config_dir`)."""


class Settings(BaseModel):
    """Base of every settings model: unknown keys are errors, values are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)


SettingsT = TypeVar("SettingsT", bound=Settings)


def default_config_dir() -> Path:
    """The folder settings are read from.

    Order: the ``RISKSTRAT_CONFIG_DIR`` environment variable, ``./configs`` in
    the working folder, then the default settings shipped with riskstrat
    (:data:`REPO_CONFIG_DIR`).
    """
    if os.environ.get(CONFIG_DIR_ENV):
        return Path(os.environ[CONFIG_DIR_ENV])
    local = Path.cwd() / "configs"
    if local.is_dir():
        return local
    return REPO_CONFIG_DIR


def _describe_error(path: Path, error: dict[str, Any]) -> str:
    # One line each: a key or message from the file cannot break it (one_line), the value is a repr.
    key = one_line(".".join(str(part) for part in error["loc"]) or "(top level)")
    where = one_line(path)
    if error["type"] == "extra_forbidden":
        return f"{where}: unknown key '{key}' (check the spelling; see docs/configuration.md)"
    if error["type"] == "missing":
        return f"{where}: missing key '{key}'"
    value = error.get("input")
    return f"{where}: {key} = {_short_repr(value)}: {one_line(error['msg'])}"


def _short_repr(value: Any, limit: int = 200) -> str:
    """``repr(value)``, cut to ``limit`` characters (a value may be a whole nested structure)."""
    try:
        text = repr(value)
    except RecursionError:
        return f"a {type(value).__name__} nested too deeply to show"
    return text if len(text) <= limit else text[: limit - 1] + "…"


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
    except RecursionError:
        raise SettingsError(
            f"{one_line(source)}: settings nested too deeply to check",
            hint=f"Fix {source.name}; docs/configuration.md lists every setting and its allowed values.",
        ) from None
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


class NestingError(yaml.YAMLError):
    """A YAML document nests lists or mappings more than :data:`MAX_NESTING` levels deep."""

    def __init__(self, line: int) -> None:
        super().__init__(f"lists or mappings nested more than {MAX_NESTING} levels deep (line {line})")
        self.line = line


class ExpansionError(yaml.YAMLError):
    """A YAML document whose aliases expand to more than :data:`MAX_VALUES` values, or refer to themselves."""


def _expanded_size(root: yaml.Node) -> int:
    """How many values ``root`` stands for once every alias is followed (without following them)."""
    sizes: dict[int, int] = {}
    open_nodes: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        children: list[yaml.Node] = []
        if isinstance(node, yaml.SequenceNode):
            children = list(node.value)
        elif isinstance(node, yaml.MappingNode):
            children = [part for pair in node.value for part in pair]
        if children_done:
            open_nodes.discard(id(node))
            sizes[id(node)] = 1 + sum(sizes[id(child)] for child in children)
            continue
        if id(node) in sizes:
            continue
        if id(node) in open_nodes:
            raise ExpansionError("an alias refers to the list or mapping that holds it")
        open_nodes.add(id(node))
        stack.append((node, True))
        stack.extend((child, False) for child in children if id(child) not in sizes)
    return sizes[id(root)]


class StrictLoader(yaml.SafeLoader):
    """YAML's safe loader, except that a key given twice in one mapping is an error.

    Nesting deeper than :data:`MAX_NESTING` is an error too, found while the
    document is composed (PyYAML composes and builds nodes recursively, so a
    deeply nested file, ``[[[[...]]]]``, would otherwise raise RecursionError),
    and so are aliases that expand to more than :data:`MAX_VALUES` values (ten
    lines of ``&a``/``*a`` can stand for billions, which checking the settings
    would walk) or that refer to themselves.
    """

    def construct_document(self, node: yaml.Node) -> Any:
        """Check how many values the document expands to, then build it."""
        if _expanded_size(node) > MAX_VALUES:
            raise ExpansionError(f"YAML aliases (*name) expand it to more than {MAX_VALUES:,} values")
        return super().construct_document(node)

    _depth = 0

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        """Compose one node, counting how deep it is."""
        self._depth += 1
        try:
            if self._depth > MAX_NESTING:
                raise NestingError(self.peek_event().start_mark.line + 1)
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

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


def _read_text(path: Path) -> str:
    """The text of a settings file, checked to be a regular file of at most MAX_SETTINGS_BYTES first.

    The file is opened without blocking (a named pipe would wait for a writer)
    and checked again once open, so it cannot be swapped for a pipe or a device
    between the check and the read; at most one byte more than the limit is read
    (``/dev/zero`` never ends).
    """
    where = one_line(path)
    restore = f"Copy it from riskstrat's default settings ({REPO_CONFIG_DIR}) or set {CONFIG_DIR_ENV}."
    try:
        info = path.stat()
    except (FileNotFoundError, NotADirectoryError):
        raise SettingsError(f"settings file not found: {where}", hint=restore) from None
    except (OSError, ValueError) as exc:  # ValueError: a NUL byte in the path
        raise SettingsError(f"{where}: cannot be read ({one_line(exc)})", hint="Check the path.") from None
    _check_kind(path, info.st_mode, info.st_size)
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    except OSError as exc:
        raise SettingsError(
            f"{where}: cannot be read ({one_line(exc.strerror or exc)})",
            hint="Check the file and its permissions.",
        ) from None
    with os.fdopen(fd, "rb") as file:
        info = os.fstat(file.fileno())
        _check_kind(path, info.st_mode, info.st_size)
        try:
            data = file.read(MAX_SETTINGS_BYTES + 1)
        except OSError as exc:
            raise SettingsError(
                f"{where}: cannot be read ({one_line(exc.strerror or exc)})",
                hint="Check the file and its permissions.",
            ) from None
    if len(data) > MAX_SETTINGS_BYTES:
        _too_large(path)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SettingsError(
            f"{where}: cannot be read (not UTF-8 text: byte {exc.start:,} is not valid)",
            hint="Save the file as UTF-8 text.",
        ) from None


def _check_kind(path: Path, mode: int, size: int) -> None:
    where = one_line(path)
    if stat.S_ISDIR(mode):
        raise SettingsError(
            f"{where} is a folder, not a file",
            hint="Name the YAML file inside it, or point the settings folder at it instead.",
        )
    if not stat.S_ISREG(mode):
        kind = (
            "a named pipe"
            if stat.S_ISFIFO(mode)
            else "a device"
            if stat.S_ISCHR(mode) or stat.S_ISBLK(mode)
            else "a socket"
            if stat.S_ISSOCK(mode)
            else "a special file"
        )
        raise SettingsError(
            f"{where} is not a regular file ({kind})",
            hint=f"A settings file is a YAML text file: copy it from riskstrat's default settings ({REPO_CONFIG_DIR}).",
        )
    if size > MAX_SETTINGS_BYTES:
        _too_large(path)


def _too_large(path: Path) -> None:
    raise SettingsError(
        f"{one_line(path)} is larger than {MAX_SETTINGS_BYTES // (1 << 20)} MiB: too large for a settings file",
        hint=f"Settings files are a few kilobytes: restore it from riskstrat's default settings ({REPO_CONFIG_DIR}).",
    )


def read_yaml(path: Path) -> Any:
    """Read a settings file strictly: not empty, valid YAML, no key given twice.

    Args:
        path: The YAML file.

    Returns:
        The parsed data.

    Raises:
        SettingsError: If the file is missing, not a regular file (a folder, a
            device, a pipe), larger than :data:`MAX_SETTINGS_BYTES`, not UTF-8,
            empty (or only comments), not valid YAML, nested more than
            :data:`MAX_NESTING` levels deep, expands through aliases to more than
            :data:`MAX_VALUES` values, or repeats a key (naming the key and both lines).
    """
    path = Path(path)
    where = one_line(path)
    text = _read_text(path)
    try:
        data = yaml.load(text, Loader=StrictLoader)  # StrictLoader is a SafeLoader
    except DuplicateKeyError as exc:
        raise SettingsError(
            f"{where}: {one_line(exc)}",
            hint="Keep one of them: YAML would silently use the last value.",
        ) from None
    except (NestingError, ExpansionError, RecursionError) as exc:
        found = one_line(exc) if isinstance(exc, yaml.YAMLError) else "nested too deeply to read"
        raise SettingsError(
            f"{where}: {found}",
            hint="Settings need only a few levels of nesting: the file is probably not a settings file.",
        ) from None
    except yaml.YAMLError as exc:
        raise SettingsError(
            f"{where}: not valid YAML: {exc}", hint="Check indentation and quoting."
        ) from None
    if data is None:
        raise SettingsError(
            f"{where} is empty{' (only comments)' if text.strip() else ''}: no settings in it",
            hint="An empty file is usually a truncated copy: restore it from riskstrat's default settings "
            f"({REPO_CONFIG_DIR}). To take every default on purpose, write {{}} in it.",
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
