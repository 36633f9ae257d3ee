"""Small helpers shared across siamkit (progress bars, logging, atomic file writes)."""
