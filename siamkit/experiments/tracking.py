"""Tracker training as a ``siamkit train`` task (``task: tracker`` in configs/*_train.yaml)."""

from siamkit.train import tracking  # noqa: F401  (registers the task)
