"""Stateless tensor operations shared by the trackers (crops, correlations, anchors, windows)."""
