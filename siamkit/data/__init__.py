"""Datasets, readers and samplers."""
