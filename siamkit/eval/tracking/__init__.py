"""Tracking benchmark protocols (OPE, VOT, GOT-10k), runner and reports."""
