"""Verification, one-shot and retrieval metrics."""
