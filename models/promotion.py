"""Gated promotion: move the ``champion`` alias only when the challenger has earned it.

Rules (``promotion`` in ``configs/model.yaml``), judged on the challenger's test rows:
    - no champion yet: the challenger must beat both baselines (prior-utilisation rule
      and logistic regression) on AUROC;
    - a champion exists: the champion is scored on the same rows; the challenger's
      AUROC must be at least the champion's minus ``auroc_tolerance``;
    - always: the challenger's calibration slope and observed/expected ratio must lie
      within their bounds;
    - always: every open fairness flag must have been accepted (hook for the fairness audit).

Each decision is returned as a :class:`PromotionDecision`, tagged on the
challenger's MLflow run and model version, and saved there as a JSON artifact.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd

from riskstrat.models.baselines import LIGHTGBM, LOGISTIC, PRIOR_UTILISATION
from riskstrat.models.metrics import AUROC_DIFFERENCE, compare_models, metric_value
from riskstrat.models.registry import CHAMPION, Registration, alias_version, load_model, tracking
from riskstrat.models.settings import ModelSettings, PromotionSettings
from riskstrat.models.training import RiskModel

CHAMPION_MODEL = "champion"


@dataclass(frozen=True)
class PromotionDecision:
    """The outcome of a promotion check.

    Attributes:
        model_name: Registered model name.
        challenger_version: Version judged.
        champion_version: Version in use before the decision (None if none).
        eligible: Every gate passed.
        promoted: The champion alias was moved to the challenger.
        reasons: Plain-English reasons, one per gate (passed or failed).
        checks: The numbers behind the gates.
        decided_at: UTC time of the decision (ISO 8601).
    """

    model_name: str
    challenger_version: str
    champion_version: str | None
    eligible: bool
    promoted: bool
    reasons: list[str] = field(default_factory=list)
    checks: dict[str, Any] = field(default_factory=dict)
    decided_at: str = ""

    @property
    def status(self) -> str:
        """``promoted``, ``eligible_not_promoted`` or ``refused``."""
        if self.promoted:
            return "promoted"
        return "eligible_not_promoted" if self.eligible else "refused"

    def summary(self) -> str:
        """One paragraph for the command line and logs."""
        head = {
            "promoted": f"{self.model_name} version {self.challenger_version} is now the champion.",
            "eligible_not_promoted": (
                f"{self.model_name} version {self.challenger_version} passed every gate but was not promoted "
                "(auto-promotion is off; run riskstrat promote)."
            ),
            "refused": f"{self.model_name} version {self.challenger_version} was NOT promoted.",
        }[self.status]
        return head + "\n  - " + "\n  - ".join(self.reasons)


def _paired_difference(metrics: pd.DataFrame, other: str) -> str:
    """The paired AUROC difference with ``other``, e.g. "difference +0.0220, paired 95% CI +0.0040 to +0.0410".

    Empty when the metrics hold no ``auroc_difference`` row for ``other``.
    """
    rows = metrics[(metrics["metric"] == AUROC_DIFFERENCE) & (metrics["model"] == other)]
    if rows.empty:
        return ""
    row = rows.iloc[0]
    return f"difference {row['value']:+.4f}, paired 95% CI {row['ci_low']:+.4f} to {row['ci_high']:+.4f}"


def calibration_checks(
    challenger_metrics: pd.DataFrame, rules: PromotionSettings
) -> tuple[bool, list[str], dict[str, float]]:
    """The calibration gates: the challenger's calibration slope and observed/expected within bounds.

    They need no champion, so the governance report can show them before promotion.

    Returns:
        Whether both pass, a reason per gate ("passed: ..." / "failed: ...") and the values.
    """
    passed, reasons, values = True, [], {}
    for metric, bounds, label in (
        ("calibration_slope", rules.calibration_slope_bounds, "calibration slope"),
        ("oe_ratio", rules.oe_bounds, "observed/expected ratio"),
    ):
        value = metric_value(challenger_metrics, metric, LIGHTGBM)
        values[f"challenger_{metric}"] = value
        low, high = bounds
        if np.isfinite(value) and low <= value <= high:
            reasons.append(f"passed: {label} {value:.3f} is within [{low:g}, {high:g}].")
        else:
            passed = False
            side = "below" if value < low else "above"
            reasons.append(f"failed: {label} {value:.3f} is {side} the allowed range [{low:g}, {high:g}].")
    return passed, reasons, values


def decide(
    challenger_metrics: pd.DataFrame,
    rules: PromotionSettings,
    *,
    champion_auroc: float | None = None,
    open_fairness_flags: Sequence[str] = (),
) -> tuple[bool, list[str], dict[str, Any]]:
    """Apply the gates to metrics already computed on the same test rows.

    Args:
        challenger_metrics: Tidy metrics with a ``model`` column holding ``lightgbm``
            and, when there is no champion, ``prior_utilisation`` and ``logistic_regression``.
        rules: Promotion settings.
        champion_auroc: The champion's AUROC on the same rows (None: no champion yet).
        open_fairness_flags: Fairness flags raised by the audit and not yet resolved.

    Returns:
        Whether every gate passed, the reasons (one per gate) and the numbers.
    """
    reasons: list[str] = []
    checks: dict[str, Any] = {}
    passed = True
    auroc = metric_value(challenger_metrics, "auroc", LIGHTGBM)
    checks["challenger_auroc"] = auroc
    if champion_auroc is None:
        for baseline, label in (
            (PRIOR_UTILISATION, "prior-utilisation rule"),
            (LOGISTIC, "logistic regression"),
        ):
            base = metric_value(challenger_metrics, "auroc", baseline)
            checks[f"{baseline}_auroc"] = base
            paired = _paired_difference(challenger_metrics, baseline)
            paired = f"; {paired}" if paired else ""
            if auroc > base:
                reasons.append(f"passed: AUROC {auroc:.4f} beats the {label} ({base:.4f}{paired}).")
            else:
                passed = False
                reasons.append(
                    f"failed: AUROC {auroc:.4f} does not beat the {label} ({base:.4f}{paired}); "
                    "a first champion must beat both baselines."
                )
    else:
        checks["champion_auroc"] = champion_auroc
        floor = champion_auroc - rules.auroc_tolerance
        paired = _paired_difference(challenger_metrics, CHAMPION_MODEL)
        paired = f" ({paired})" if paired else ""
        if auroc >= floor:
            reasons.append(
                f"passed: AUROC {auroc:.4f} is not worse than the champion's {champion_auroc:.4f} "
                f"beyond the tolerance of {rules.auroc_tolerance:g}{paired}."
            )
        else:
            passed = False
            reasons.append(
                f"failed: AUROC {auroc:.4f} is worse than the champion's {champion_auroc:.4f} by "
                f"{champion_auroc - auroc:.4f}, more than the tolerance of {rules.auroc_tolerance:g}{paired}."
            )
    calibrated, calibration_reasons, calibration = calibration_checks(challenger_metrics, rules)
    passed = passed and calibrated
    reasons += calibration_reasons
    checks.update(calibration)
    # Flags arrive already filtered by configs/fairness.yaml accepted_flags (evaluation.fairness.open_flags).
    blocking = list(open_fairness_flags)
    checks["open_fairness_flags"] = blocking
    if blocking:
        passed = False
        reasons.append(
            f"failed: {len(blocking)} open fairness flag(s) not accepted by the governance board "
            "(accept one in configs/fairness.yaml with a reason): " + "; ".join(blocking)
        )
    else:
        reasons.append("passed: no open fairness flag.")
    return passed, reasons, checks


def promote(
    registration: Registration,
    test_features: pd.DataFrame,
    y_test: np.ndarray,
    challenger_metrics: pd.DataFrame,
    settings: ModelSettings,
    *,
    apply: bool | None = None,
    open_fairness_flags: Sequence[str] = (),
    challenger: RiskModel | None = None,
) -> PromotionDecision:
    """Judge the challenger against the champion on the same test rows; move the alias if it passes.

    Args:
        registration: The challenger's run and model version.
        test_features: The challenger's test rows (features).
        y_test: Their outcomes.
        challenger_metrics: The challenger's tidy test metrics, with the baselines
            (``TrainingResult.metrics``).
        settings: Model settings.
        apply: Move the champion alias when every gate passes; default ``promotion.auto_promote``.
        open_fairness_flags: Unresolved fairness flags (the audit's hook).
        challenger: The challenger in memory (loaded from the registry when omitted).

    Returns:
        The decision (also logged to the challenger's MLflow run and model version).
    """
    rules = settings.promotion
    apply = rules.auto_promote if apply is None else apply
    uri = registration.tracking_uri
    name = registration.model_name
    champion_version = alias_version(name, CHAMPION, uri)
    if champion_version == registration.version:
        champion_version = None  # re-judging the current champion: compare with the baselines
    champion_auroc = None
    metrics = challenger_metrics
    if champion_version is not None:
        if challenger is None:
            challenger = load_model(f"models:/{name}/{registration.version}", uri)
        champion = load_model(f"models:/{name}@{CHAMPION}", uri)
        missing = [c for c in champion.feature_names if c not in test_features.columns]
        if missing:
            return _record(
                registration,
                PromotionDecision(
                    name,
                    registration.version,
                    champion_version,
                    eligible=False,
                    promoted=False,
                    reasons=[
                        f"failed: the champion needs feature(s) {', '.join(missing[:5])} that the test rows "
                        "lack, so the two cannot be compared on the same rows."
                    ],
                    decided_at=_now(),
                ),
            )
        # Both on the same rows and the same bootstrap resamples.
        metrics = compare_models(
            y_test,
            {
                LIGHTGBM: challenger.predict_proba(test_features),
                CHAMPION_MODEL: champion.predict_proba(test_features),
            },
            top_fractions=settings.evaluation.top_fractions,
            capacity_share=settings.evaluation.capacity_share,
            n_boot=settings.evaluation.n_boot,
            seed=settings.evaluation.seed,
            reference=LIGHTGBM,
        )
        champion_auroc = metric_value(metrics, "auroc", CHAMPION_MODEL)
    eligible, reasons, checks = decide(
        metrics, rules, champion_auroc=champion_auroc, open_fairness_flags=open_fairness_flags
    )
    checks["test_rows"] = len(y_test)
    promoted = False
    if eligible and apply:
        with tracking(uri) as client:
            client.set_registered_model_alias(name, CHAMPION, registration.version)
        promoted = True
    decision = PromotionDecision(
        name, registration.version, champion_version, eligible, promoted, reasons, checks, _now()
    )
    return _record(registration, decision)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _record(registration: Registration, decision: PromotionDecision) -> PromotionDecision:
    """Tag the challenger's run and model version with the decision and save it as JSON."""
    payload = asdict(decision) | {"status": decision.status}
    stamp = decision.decided_at.replace(":", "").replace("-", "")
    with tracking(registration.tracking_uri) as client:
        client.set_tag(registration.run_id, "promotion_decision", decision.status)
        client.set_tag(registration.run_id, "promotion_reasons", " | ".join(decision.reasons)[:4900])
        client.set_tag(registration.run_id, "promotion_decided_at", decision.decided_at)
        client.log_dict(registration.run_id, payload, f"promotion/decision_{stamp}.json")
        if registration.version:
            client.set_model_version_tag(
                registration.model_name, registration.version, "promotion_decision", decision.status
            )
    return decision


def decision_json(decision: PromotionDecision) -> str:
    """The decision as JSON (for the command line)."""
    return json.dumps(asdict(decision) | {"status": decision.status}, indent=2, default=str)
