"""Place in the audit on real pipeline output: a local authority whose admissions stop reaching the extract.

The capture-loss scenario (``configs/synthetic.yaml`` ``capture_loss``) drops a share
of Dudley residents' emergency admissions from the extract from the day after the
test as-of date, as when they start going to a trust outside the area whose activity
is not in the feed. Health and the truth are unchanged. The model is trained as the
retrain flow trains it and its test rows are audited as the retrain flow audits them:
by local authority of residence, MDT and practice among the other groupings. The
audit must say that Dudley's recorded admissions fell below prediction, that the
place may have lost data rather than gained health, and the gate must refuse.

Why the loss starts after the test as-of date: a loss that starts earlier also thins
the features the test rows are scored on (fewer prior admissions recorded), so the
model predicts less for the place and its O/E falls less (the issue measured 0.74
with the loss from after the training dates). Starting in the test rows' outcome year
is the case where the inputs look normal and only the outcomes go missing.

Why 60% here: measured at 40,000 people (seed 5; Dudley 1,474 test rows), 40% lost
gives Dudley O/E 0.70 (95% CI 0.56-0.80), which the audit's error control (BH across
the 43 O/E checks, and the whole interval beyond 0.8) does not raise: at this size
the check cannot tell 0.70 from the tolerance. 60% lost gives O/E 0.54 (0.41-0.63),
p = 3e-7, raised for Dudley and its MDT, and the gate refuses; no other local
authority is flagged (Sandwell 1.06, Walsall 1.00, Wolverhampton 1.02). A 40% loss
needs roughly five times the people: at the demo's 250,000 (Dudley 8,915 test rows,
616 events) it gives O/E 0.70 (0.66-0.75), q = 0.004, raised for Dudley and for one of
its two MDTs (0.66; the other 0.73, not raised), and the gate refuses.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pandas as pd
import pytest

from riskstrat.evaluation.fairness import FairnessAudit, open_flags, run_audit
from riskstrat.pipelines.config import load_config, write_relocated_config
from riskstrat.worklists.backtest import back_test_lists
from riskstrat.worklists.settings import read_practices, resolve_mdts

pytestmark = pytest.mark.slow

PEOPLE = 40_000
SEED = 5
OUTCOME = "emergency_admission"
DUDLEY = "E08000027"
LOSS_START = load_config().model.as_of.test + timedelta(days=1)
CAPTURE_LOSS = {
    "enabled": True,
    "lad_code": DUDLEY,
    "emergency_admissions_lost": 0.6,
    "start_date": LOSS_START.isoformat(),
}


def run_place_scenario(
    root: Path, capture_loss: dict | None = CAPTURE_LOSS
) -> tuple[FairnessAudit, pd.DataFrame]:
    """Generate, build the training table, train and audit, as the retrain flow does; the audit and its rows."""
    from riskstrat.features.dictionary import feature_dictionary
    from riskstrat.models.training import train_outcome
    from riskstrat.pipelines import retrain
    from riskstrat.pipelines.generate import write_synthetic
    from riskstrat.pipelines.retrain import feature_names_from

    out = root / "outputs"
    changes: dict[str, dict] = {
        "model.yaml": {"outcomes": [OUTCOME], "evaluation": {"n_boot": 30}},
        "fairness.yaml": {"bootstrap_n": 100},
    }
    if capture_loss:
        changes["synthetic.yaml"] = {"capture_loss": dict(capture_loss)}
    config = load_config(write_relocated_config(root / "configs", out, changes))
    paths = write_synthetic(out, PEOPLE, SEED, config.synthetic)
    table = retrain.training_table.fn(config, paths.extract_dir)
    names = feature_names_from(retrain.dictionary_frame(feature_dictionary(config.features)))
    result = train_outcome(table, names, OUTCOME, config.model)
    test = table.iloc[result.test_rows]
    mdts = resolve_mdts(config.mdts, read_practices(config.mdts.practices_file))
    predictions, selections = back_test_lists(
        test,
        result.test_scores["lightgbm"].to_numpy(),
        OUTCOME,
        mdts,
        config.mdts.risk_bands,
        config.model.split.test,
        config.model.evaluation.capacity_share,
    )
    return run_audit(predictions, selections, config.fairness), predictions


@pytest.fixture(scope="module")
def capture_loss_run(tmp_path_factory):
    return run_place_scenario(tmp_path_factory.mktemp("capture_loss"))


def test_the_place_that_lost_admissions_is_flagged_as_possible_data_loss_and_the_gate_refuses(
    capture_loss_run,
):
    audit, _ = capture_loss_run
    settings = audit.settings
    cells = audit.performance[audit.performance["grouping"] == "local_authority"].set_index("group")
    assert cells.loc[DUDLEY, "oe_ratio"] < settings.tolerances.oe_low, cells[["n", "events", "oe_ratio"]]
    flag = next((f for f in audit.flags if f.flag_id == f"calibration_oe:local_authority:{DUDLEY}"), None)
    assert flag is not None and flag.status == "raised", [f.sentence for f in audit.flags]
    assert "may have lost data rather than gained health" in flag.sentence
    assert flag.flag_id in {f.flag_id for f in open_flags(audit, settings)}


def test_the_other_places_are_not_flagged_for_lost_data(capture_loss_run):
    audit, _ = capture_loss_run
    others = [
        f.flag_id
        for f in audit.flags
        if f.kind == "calibration_oe" and f.grouping == "local_authority" and f.group != DUDLEY
    ]
    assert others == []


def test_places_are_audited_from_the_test_rows(capture_loss_run):
    audit, predictions = capture_loss_run
    names = {g.name for g in audit.groupings}
    assert {"local_authority", "mdt", "gp_practice"} <= names
    # The independent need check by place: GP-recorded conditions and frailty at equal risk.
    need = audit.need_ratios[audit.need_ratios["grouping"] == "local_authority"]
    assert {"ltc_count", "efi_score"} <= set(need["measure"])
    assert "hospital_ltc_count" in predictions.columns
    assert audit.recording is not None and (audit.recording["grouping"] == "local_authority").any()
