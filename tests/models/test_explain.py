import numpy as np
import shap
from synthetic_training import FEATURES

from riskstrat.models.explain import BIAS, contributions


def test_pred_contrib_equals_shap_tree_explainer_and_sums_to_raw_score(trained, training_table):
    model = trained["emergency_admission"].model
    rows = training_table.iloc[trained["emergency_admission"].test_rows[:200]]
    contrib = contributions(model.booster, rows, model.feature_names)
    assert list(contrib.columns) == [*FEATURES, BIAS]
    expected = shap.TreeExplainer(model.booster).shap_values(rows[FEATURES].to_numpy(dtype=float))
    expected = expected[1] if isinstance(expected, list) else expected
    np.testing.assert_allclose(contrib[FEATURES].to_numpy(), expected, atol=1e-6)
    np.testing.assert_allclose(contrib.sum(axis=1).to_numpy(), model.raw_score(rows), atol=1e-9)
