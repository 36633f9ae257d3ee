"""Training: one Trainer (AMP, DDP, checkpoint and exact resume), task adapters, and every experiment runner
(``metric``, ``tracking``, ``distill``, ``heads``), selected by a YAML's ``task:`` (:mod:`siamkit.train.tasks`)."""
