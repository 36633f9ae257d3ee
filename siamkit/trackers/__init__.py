"""Trackers: every Siamese tracker of siamkit and the wrapped peers, created by name.

The engine all Siamese trackers run on is :mod:`siamkit.trackers.engine`; building one (device,
weights, published configurations, the registry of tracker modules) is :mod:`siamkit.trackers.build`.
"""

from __future__ import annotations

from siamkit.trackers.base import Tracker, TrackResult
from siamkit.trackers.build import BACKENDS, available_trackers, create_tracker, usable_trackers

__all__ = ["BACKENDS", "Tracker", "TrackResult", "create_tracker", "available_trackers", "usable_trackers"]
