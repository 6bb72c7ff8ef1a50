"""Evaluation: metrics with confidence intervals, fairness audit, disclosure control, reports, model card."""
