"""The configuration of a run: every ``configs/*.yaml`` file, each validated by its own model.

Each stage owns the settings model for its file; this module only lists which
file goes with which model and loads them all at start-up, so a wrong setting
stops the run before any work is done.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import Field

from riskstrat.settings import Settings, default_config_dir, load_settings

if TYPE_CHECKING:
    from riskstrat.evaluation.settings import FairnessSettings
    from riskstrat.features.settings import FeatureSettings, OutcomeSettings
    from riskstrat.ingest.synthetic.settings import SyntheticSettings
    from riskstrat.ingest.validation_settings import ValidationSettings
    from riskstrat.models.settings import ModelSettings
    from riskstrat.pipelines.settings import ScheduleSettings
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


def _config_files() -> dict[str, type[Settings]]:
    # Imported here so each stage owns its settings model without import cycles.
    from riskstrat.evaluation.settings import FairnessSettings
    from riskstrat.features.settings import FeatureSettings, OutcomeSettings
    from riskstrat.ingest.synthetic.settings import SyntheticSettings
    from riskstrat.ingest.validation_settings import ValidationSettings
    from riskstrat.models.settings import ModelSettings
    from riskstrat.pipelines.settings import ScheduleSettings
    from riskstrat.worklists.settings import MdtSettings

    return {
        "data.yaml": DataSettings,
        "synthetic.yaml": SyntheticSettings,
        "validation.yaml": ValidationSettings,
        "features.yaml": FeatureSettings,
        "outcomes.yaml": OutcomeSettings,
        "model.yaml": ModelSettings,
        "mdts.yaml": MdtSettings,
        "fairness.yaml": FairnessSettings,
        "schedules.yaml": ScheduleSettings,
    }


CONFIG_FILES: dict[str, type[Settings]] = _config_files()
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
