"""Importers for third-party checkpoints (key-mapping tables, ``weights_only`` loading)."""
