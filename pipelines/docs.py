"""Generated documentation: the data contract, the feature dictionary and the configuration reference.

Each page is rendered from the code that defines it; tests check the committed
pages match, and ``riskstrat docs`` rewrites them.
"""

from __future__ import annotations

import json
import types
import typing
from pathlib import Path

from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from riskstrat.features.dictionary import render_feature_docs
from riskstrat.features.outcomes import OUTCOMES
from riskstrat.features.settings import OutcomeSettings
from riskstrat.ingest.contract_docs import render_contract_docs
from riskstrat.io import atomic_path
from riskstrat.pipelines.config import CONFIG_FILES

CONFIG_INTRO = """\
# Configuration reference

riskstrat reads one YAML file per concern from `configs/` (or the folder given
by `--config-dir` or `RISKSTRAT_CONFIG_DIR`). Each file is validated on start-up
by its own settings model; an unknown key, a wrong type or a value out of range
stops the run with the file, the key, the value and what was expected. So do a
key given twice in one file (named with both line numbers; YAML alone would
silently keep the last value) and an empty file or one holding only comments
(usually a truncated copy; write `{}` in it to take every default on purpose).
An `output_dir` that cannot be created or written, and (for the weekly run) a
missing `practices_file` or `reidentification_key`, stop the run at start-up
naming the setting and the path.

This page is generated from the settings models (`riskstrat docs`).
"""


def _type_name(annotation: object) -> str:
    origin = typing.get_origin(annotation)
    if origin is typing.Literal:
        return " | ".join(repr(a) for a in typing.get_args(annotation))
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(annotation))
    if origin is tuple and typing.get_args(annotation)[-1:] == (Ellipsis,):
        return f"list of {_type_name(typing.get_args(annotation)[0])}"
    if origin is not None:
        args = ", ".join(_type_name(a) for a in typing.get_args(annotation))
        return f"{getattr(origin, '__name__', str(origin))}[{args}]"
    if annotation is type(None):
        return "empty"
    return getattr(annotation, "__name__", str(annotation))


def _jsonable(value: object) -> object:
    """A nested settings model as its set values (``{"critical_below": 0.95}``), anything else as text."""
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json", exclude_none=True)
    return str(value)


def _default(field: FieldInfo) -> str:
    if field.default is PydanticUndefined:
        if field.default_factory is not None:
            value = field.default_factory()  # type: ignore[call-arg]
        else:
            return "(required)"
    else:
        value = field.default
    if isinstance(value, BaseModel):
        return "(see below)"
    try:
        return f"`{json.dumps(value, default=_jsonable)}`"
    except TypeError:
        return f"`{value}`"


def _nested_models(annotation: object) -> list[type[BaseModel]]:
    found: list[type[BaseModel]] = []
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        found.append(annotation)
    for arg in typing.get_args(annotation):
        found.extend(_nested_models(arg))
    return found


def _model_rows(model: type[BaseModel], prefix: str, seen: set[type[BaseModel]]) -> list[str]:
    rows: list[str] = []
    nested: list[tuple[str, type[BaseModel]]] = []
    for name, field in model.model_fields.items():
        key = f"{prefix}{name}"
        description = (field.description or "").replace("|", "\\|").replace("\n", " ")
        rows.append(f"| `{key}` | {_type_name(field.annotation)} | {_default(field)} | {description} |")
        for sub in _nested_models(field.annotation):
            if sub not in seen:
                nested.append((key, sub))
    for key, sub in nested:
        seen.add(sub)
        rows.extend(_model_rows(sub, f"{key}.", seen))
    return rows


def render_configuration_docs() -> str:
    """Return the Markdown text of ``docs/configuration.md``."""
    parts = [CONFIG_INTRO]
    for filename, model in CONFIG_FILES.items():
        doc = (model.__doc__ or "").strip().splitlines()[0] if model.__doc__ else ""
        parts.append(f"## `configs/{filename}` ({model.__name__})\n\n{doc}\n")
        parts.append("| key | type | default | meaning |\n| --- | --- | --- | --- |")
        rows = _model_rows(model, "", {model})
        if model is OutcomeSettings:
            rows += _registered_outcome_rows()
        parts.append("\n".join(rows) + "\n")
    return "\n".join(parts)


def _registered_outcome_rows() -> list[str]:
    """Rows for the sections of registered outcomes that are not fields of ``OutcomeSettings``."""
    rows: list[str] = []
    for spec in OUTCOMES.values():
        if spec.name in OutcomeSettings.model_fields:
            continue
        description = spec.description.replace("|", "\\|")
        rows.append(f"| `{spec.name}` | {spec.settings_model.__name__} | (see below) | {description} |")
        rows += _model_rows(spec.settings_model, f"{spec.name}.", {spec.settings_model})
    return rows


def generated_pages() -> dict[str, str]:
    """Every generated page by file name."""
    pages = {
        "data-contract.md": render_contract_docs(),
        "configuration.md": render_configuration_docs(),
    }
    pages["features.md"] = render_feature_docs()
    return pages


def write_generated_docs(folder: Path) -> list[Path]:
    """Write every generated page into ``folder`` atomically.

    Returns:
        The paths written.
    """
    written = []
    for name, text in generated_pages().items():
        target = Path(folder) / name
        with atomic_path(target) as tmp:
            tmp.write_text(text, encoding="utf-8")
        written.append(target)
    return written
