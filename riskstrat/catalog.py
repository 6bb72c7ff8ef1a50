"""Every path under the outputs folder (``data.output_dir``), defined once.

The README's outputs table as code, in the spirit of Kedro's ``catalog.yml``:
the pipelines ask the catalog where a dataset lives and hand the path to the
stage, so no stage builds a path under the outputs folder itself.

=====================================  ==================================================
path under ``data.output_dir``          what it holds
=====================================  ==================================================
``raw/``                                raw national files (SUS+ APC, ECDS, CSDS, GP) the adapters read
``extract/``                            the extract: one file per contract table, and mapping_coverage.json
``truth/``                              synthetic ground truth (never read for training)
``truth/contract/``                     the generator's own contract tables (round-trip checks)
``reference/practices.csv``             practices and neighbourhoods of the synthetic extract
``features/<snapshot>/``                cached feature matrices of one extract snapshot
``features/audited/``                   the test rows each fairness audit judged, to re-check it
``mlflow.db``, ``mlartifacts/``         MLflow tracking database and run artifacts
``data_docs/``                          Data Docs: a page per validated extract and their index
``validation/``                         validation reports and the row-count history
``worklists/<week>/``                   one published week: lists, history rows, manifest
``decisions/history.parquet``           the MDTs' coded decisions on their lists (pseudonymised IDs)
``decisions/returns/``                  returned worklists waiting to be imported (``decisions.returns_dir``)
``reports/``                            governance (fairness) reports, HTML and JSON
``monitoring/``                         monitoring: ``<week>/`` page and JSON (and ``on-demand.*`` of ``riskstrat monitor``), ``scores/<week>.parquet``, ``history.parquet``, ``realised.parquet``
``impact/impact_<outcome>.json``        the impact evaluation: is the programme working? (disclosed figures only)
``prefect/``                            Prefect's home: its database of flow runs
``.riskstrat.lock``                     the output-folder lock
=====================================  ==================================================
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path

LOCK_FILE = ".riskstrat.lock"
"""The lock file in the outputs folder; it holds the current holder's PID, command and start time."""
MLFLOW_DB = "mlflow.db"
"""Default MLflow tracking database, relative to the outputs folder (``model.mlflow.tracking_db``)."""
MLFLOW_ARTIFACTS = "mlartifacts"
"""Default MLflow artifact folder, relative to the outputs folder (``model.mlflow.artifact_dir``)."""
VALIDATION_LATEST = "latest.json"
VALIDATION_HISTORY = "row_counts.json"
MAPPING_COVERAGE = "mapping_coverage.json"
"""The adapters' mapping coverage, written beside the contract tables in the extract folder."""


@dataclass(frozen=True)
class OutputCatalog:
    """Where each output of a run lives under one outputs folder.

    Attributes:
        root: The outputs folder (``data.output_dir``).
    """

    root: Path

    @property
    def raw(self) -> Path:
        """Raw national files (``riskstrat generate --national`` writes them; ``riskstrat adapt`` reads them)."""
        return self.root / "raw"

    @property
    def extract(self) -> Path:
        """The extract: contract tables written by ``riskstrat adapt`` (or ``riskstrat generate``)."""
        return self.root / "extract"

    @property
    def truth(self) -> Path:
        """Synthetic ground truth (the oracle baseline only)."""
        return self.root / "truth"

    @property
    def truth_contract(self) -> Path:
        """The generator's own contract tables when it writes raw national files (round-trip checks)."""
        return self.truth / "contract"

    @property
    def reference(self) -> Path:
        """Reference files written with the synthetic extract."""
        return self.root / "reference"

    @property
    def practices_file(self) -> Path:
        """Practices and neighbourhoods of the synthetic extract."""
        return self.reference / "practices.csv"

    @property
    def features(self) -> Path:
        """The feature-matrix cache."""
        return self.root / "features"

    def feature_file(self, snapshot_hash: str, as_of: date, key: str) -> Path:
        """The cached feature matrix of one extract snapshot, as-of date and settings key."""
        return self.features / snapshot_hash / f"features_{as_of.isoformat()}_{key}.parquet"

    def audited_rows(self, stem: str) -> Path:
        """The test rows one fairness audit judged (``stem`` names the outcome, model and version)."""
        return self.features / "audited" / f"{stem}.parquet"

    @property
    def mlflow_db(self) -> Path:
        """The default MLflow tracking database."""
        return self.root / MLFLOW_DB

    @property
    def mlflow_artifacts(self) -> Path:
        """The default MLflow artifact folder."""
        return self.root / MLFLOW_ARTIFACTS

    @property
    def data_docs(self) -> Path:
        """Data Docs: a folder per validated extract and an index of them (static HTML)."""
        return self.root / "data_docs"

    @property
    def validation(self) -> Path:
        """Validation reports (``<snapshot>.json``, ``latest.json``) and the row-count history."""
        return self.root / "validation"

    @property
    def latest_validation(self) -> Path:
        """The report of the latest validation."""
        return self.validation / VALIDATION_LATEST

    @property
    def row_count_history(self) -> Path:
        """Row counts of the extracts pipeline runs accepted."""
        return self.validation / VALIDATION_HISTORY

    def validation_report(self, snapshot_hash: str) -> Path:
        """The validation report of one extract snapshot."""
        return self.validation / f"{snapshot_hash}.json"

    @property
    def worklists(self) -> Path:
        """The published weeks, one folder each."""
        return self.root / "worklists"

    def week(self, week: date) -> Path:
        """One published week's folder."""
        return self.worklists / week.isoformat()

    @property
    def decisions(self) -> Path:
        """The MDTs' decisions: the decision history and, by default, the returns folder."""
        return self.root / "decisions"

    @property
    def decision_history(self) -> Path:
        """Every coded decision imported from returned worklists, one per MDT, week and person."""
        return self.decisions / "history.parquet"

    @property
    def decision_returns(self) -> Path:
        """The default folder of returned worklists waiting to be imported."""
        return self.decisions / "returns"

    @property
    def reports(self) -> Path:
        """Governance reports."""
        return self.root / "reports"

    @property
    def monitoring(self) -> Path:
        """Monitoring outputs: the weekly pages, stored scores, the metric history and realised performance."""
        return self.root / "monitoring"

    @property
    def monitoring_scores_dir(self) -> Path:
        """The whole population's scores of each monitored week, one file per week."""
        return self.monitoring / "scores"

    def monitoring_scores(self, week: date) -> Path:
        """The whole population's scores of one week (person_id, practice_code, mdt, p_<outcome>)."""
        return self.monitoring_scores_dir / f"{week.isoformat()}.parquet"

    def monitoring_week(self, week: date) -> Path:
        """One monitored week's folder: the monitoring page and its JSON."""
        return self.monitoring / week.isoformat()

    def monitoring_page(self, week: date) -> Path:
        """One week's monitoring page (offline HTML)."""
        return self.monitoring_week(week) / "monitoring.html"

    def monitoring_json(self, week: date) -> Path:
        """One week's monitoring figures (disclosure-controlled JSON, the page's payload)."""
        return self.monitoring_week(week) / "monitoring.json"

    def monitoring_on_demand_page(self, week: date) -> Path:
        """The page of ``riskstrat monitor`` for one week, beside the weekly page (never replacing it)."""
        return self.monitoring_week(week) / "on-demand.html"

    def monitoring_on_demand_json(self, week: date) -> Path:
        """The JSON payload of ``riskstrat monitor`` for one week, beside the weekly one."""
        return self.monitoring_week(week) / "on-demand.json"

    @property
    def monitoring_history(self) -> Path:
        """One row per monitored week and metric (aggregates only): the trends on the page."""
        return self.monitoring / "history.parquet"

    @property
    def monitoring_realised(self) -> Path:
        """Cached realised-performance aggregates per (week, outcome, horizon, cut)."""
        return self.monitoring / "realised.parquet"

    @property
    def impact(self) -> Path:
        """The impact evaluation's outputs (``riskstrat evaluate-impact``)."""
        return self.root / "impact"

    def impact_file(self, outcome: str) -> Path:
        """The impact evaluation of the lists ranked by ``outcome`` (disclosure-controlled JSON)."""
        return self.impact / f"impact_{outcome}.json"

    @property
    def prefect_home(self) -> Path:
        """Prefect's home (its database of flow runs) unless ``PREFECT_HOME`` is set."""
        return self.root / "prefect"

    @property
    def lock(self) -> Path:
        """The output-folder lock file."""
        return self.root / LOCK_FILE


def output_catalog(output_dir: Path | str) -> OutputCatalog:
    """The catalog of one outputs folder (``data.output_dir``)."""
    return OutputCatalog(Path(output_dir))
