"""Evaluation: tracking protocols and metric-learning metrics."""
