"""Training: one Trainer (AMP, DDP, checkpoint and exact resume) and task adapters."""
