"""Experiment runners: one per ``task:`` in a training YAML (see :data:`siamkit.train.tasks.TASKS`)."""
