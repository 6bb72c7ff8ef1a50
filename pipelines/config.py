"""The configuration of a run: every ``configs/*.yaml`` file, each validated by its own model.

Each stage owns the settings model for its file; this module only lists which
file goes with which model and loads them all at start-up, so a wrong setting
stops the run before any work is done.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import yaml
from pydantic import Field

from riskstrat.catalog import output_catalog
from riskstrat.errors import SettingsError
from riskstrat.evaluation.impact_settings import ImpactSettings
from riskstrat.evaluation.monitoring_settings import MonitoringSettings
from riskstrat.evaluation.settings import FairnessSettings
from riskstrat.features.settings import FeatureSettings, OutcomeSettings
from riskstrat.ingest.sources.settings import SourceSettings
from riskstrat.ingest.synthetic.settings import SyntheticSettings
from riskstrat.ingest.validation_settings import ValidationSettings
from riskstrat.models.settings import ModelSettings
from riskstrat.pipelines.settings import ScheduleSettings
from riskstrat.settings import REPO_CONFIG_DIR, Settings, default_config_dir, load_settings, read_yaml
from riskstrat.worklists.settings import MdtSettings


class DataSettings(Settings):
    """Where extracts are read from and outputs written (``configs/data.yaml``)."""

    extract_dir: Path = Field(
        Path("outputs/extract"),
        description="Folder holding one Parquet or CSV file per contract table.",
    )
    output_dir: Path = Field(
        Path("outputs"),
        description="Folder all outputs go under (features, MLflow, Data Docs, worklists, reports).",
    )
    extract_date: date | None = Field(
        None,
        description=(
            "Date the extract was taken: the gate rejects later events and the weekly run scores as at "
            "this date. Empty: the gate checks against today and the weekly run uses the latest event date."
        ),
    )
    truth_dir: Path | None = Field(
        Path("outputs/truth"),
        description=(
            "Synthetic ground truth, used only for the oracle baseline in evaluation when the folder "
            "exists; never for training or scoring. Leave empty for a real extract."
        ),
    )
    imd_edition: str = Field(
        "2019",
        pattern=r"^2019$",
        description="IMD edition used for deprivation (2019, on LSOA 2011; the only one shipped).",
    )
    lock_timeout_seconds: float = Field(
        600,
        ge=0,
        description=(
            "How long a run waits for another run writing the same output_dir to finish (it says who "
            "holds the lock meanwhile) before refusing; 0 refuses at once."
        ),
    )


CONFIG_FILES: dict[str, type[Settings]] = {
    "data.yaml": DataSettings,
    "synthetic.yaml": SyntheticSettings,
    "validation.yaml": ValidationSettings,
    "features.yaml": FeatureSettings,
    "outcomes.yaml": OutcomeSettings,
    "model.yaml": ModelSettings,
    "mdts.yaml": MdtSettings,
    "fairness.yaml": FairnessSettings,
    "schedules.yaml": ScheduleSettings,
    "sources.yaml": SourceSettings,
    "impact.yaml": ImpactSettings,
    "monitoring.yaml": MonitoringSettings,
}
"""Every settings file and the model that validates it."""


@dataclass(frozen=True)
class Config:
    """All settings of a run, one attribute per ``configs/`` file."""

    data: DataSettings
    synthetic: SyntheticSettings
    validation: ValidationSettings
    features: FeatureSettings
    outcomes: OutcomeSettings
    model: ModelSettings
    mdts: MdtSettings
    fairness: FairnessSettings
    schedules: ScheduleSettings
    sources: SourceSettings
    impact: ImpactSettings
    monitoring: MonitoringSettings
    source_dir: Path

    def settings_hash(self) -> str:
        """A short hash of every setting, logged with each model and output."""
        payload = {
            name: getattr(self, name).model_dump(mode="json")
            for name in self.__dataclass_fields__
            if name != "source_dir"
        }
        return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:16]


def load_config(config_dir: Path | None = None) -> Config:
    """Load and validate every settings file in ``config_dir``.

    Args:
        config_dir: Folder of YAML files; defaults to :func:`default_config_dir`.

    Returns:
        The validated configuration.

    Raises:
        SettingsError: On the first file that is missing or invalid.
    """
    folder = Path(config_dir) if config_dir else default_config_dir()
    loaded = {Path(name).stem: load_settings(folder / name, model) for name, model in CONFIG_FILES.items()}
    return Config(source_dir=folder, **loaded)


def _merged(base: dict[str, Any], changes: Mapping[str, Any]) -> dict[str, Any]:
    """``base`` with ``changes`` applied; nested mappings are merged key by key."""
    out = dict(base)
    for key, value in changes.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = _merged(out[key], value)
        else:
            out[key] = value
    return out


def write_relocated_config(
    target: Path,
    output_dir: Path,
    changes: Mapping[str, Mapping[str, Any]] | None = None,
    source: Path = REPO_CONFIG_DIR,
) -> Path:
    """Copy every settings file with all outputs under ``output_dir``, then apply ``changes``.

    The raw folder, extract, truth, outputs, practice reference file and decision returns move under
    ``output_dir`` (as ``riskstrat generate --out`` writes them); ``changes``
    maps a file name to the settings to change in it, merged key by key. Used
    to run the pipeline in a folder of its own (tests, benchmarks, a trial run).

    Args:
        target: Folder to write the settings files into (created if missing).
        output_dir: Where the run reads and writes everything.
        changes: Per-file settings to change, e.g. ``{"model.yaml": {"evaluation": {"n_boot": 20}}}``.
        source: Folder of settings to copy (default: the shipped ``configs/``).

    Returns:
        ``target``.
    """
    outputs = output_catalog(output_dir)
    relocated: dict[str, dict[str, Any]] = {
        "data.yaml": {
            "extract_dir": str(outputs.extract),
            "output_dir": str(outputs.root),
            "truth_dir": str(outputs.truth),
        },
        "mdts.yaml": {
            "practices_file": str(outputs.practices_file),
            "decisions": {"returns_dir": str(outputs.decision_returns)},
        },
        "sources.yaml": {"raw_dir": str(outputs.raw)},
    }
    target = Path(target)
    target.mkdir(parents=True, exist_ok=True)
    for name in CONFIG_FILES:
        settings = read_yaml(Path(source) / name)
        settings = _merged(_merged(settings, relocated.get(name, {})), (changes or {}).get(name, {}))
        (target / name).write_text(yaml.safe_dump(settings, sort_keys=False), encoding="utf-8")
    return target


# ----------------------------------------------------------------------------- preflight


def _shown(path: Path) -> str:
    path = Path(path)
    return str(path) if path.is_absolute() else f"{path} (resolved: {path.resolve()})"


def check_output_dir(output_dir: Path) -> None:
    """Fail at start-up, as a settings error, when ``data.output_dir`` cannot be created or written.

    Raises:
        SettingsError: Naming ``data.output_dir`` and the path.
    """
    path = Path(output_dir)
    try:
        path.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".riskstrat-write-check-", dir=path)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise SettingsError(
            f"data.output_dir = {_shown(path)}: cannot write there ({exc.strerror or type(exc).__name__})",
            hint="Set data.output_dir in configs/data.yaml to a folder you can write to, "
            "or fix the folder's permissions.",
        ) from None


def check_worklist_files(config: Config) -> None:
    """Fail at the start of a weekly run when a file ``configs/mdts.yaml`` names is missing.

    ``mdts.practices_file`` is needed when no MDTs are listed (one per
    neighbourhood) or an MDT names a neighbourhood; ``mdts.reidentification_key``
    when it is set.

    Raises:
        SettingsError: Naming the setting and the path.
    """
    mdts = config.mdts
    needs_practices = not mdts.mdts or any(m.neighbourhood is not None for m in mdts.mdts)
    if needs_practices and not Path(mdts.practices_file).is_file():
        raise SettingsError(
            f"mdts.practices_file = {_shown(mdts.practices_file)}: file not found",
            hint="Run `riskstrat generate` (synthetic data) or set practices_file in configs/mdts.yaml "
            "to the practice reference CSV (practice_code, neighbourhood, ...).",
        )
    key = mdts.reidentification_key
    if key is not None and not Path(key).is_file():
        raise SettingsError(
            f"mdts.reidentification_key = {_shown(key)}: file not found",
            hint="Set reidentification_key in configs/mdts.yaml to the key file, or leave it empty.",
        )
