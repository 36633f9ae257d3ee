"""Distances and losses for similarity learning and tracking."""
