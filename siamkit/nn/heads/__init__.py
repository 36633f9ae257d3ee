"""Heads that fuse template and search features (SiamFC, RPN, BAN, mask)."""
