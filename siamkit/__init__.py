"""siamkit: Siamese networks for similarity learning and visual object tracking."""

__version__ = "0.1.0"
