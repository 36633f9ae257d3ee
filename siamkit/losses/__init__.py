"""Distances and losses for similarity learning and tracking.

Importing this package registers the metric-learning losses in :data:`siamkit.config.LOSSES`.
"""

from siamkit.losses import metric  # noqa: F401  (registers the losses)
