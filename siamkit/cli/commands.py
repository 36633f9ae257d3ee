"""Registers every sub-command on the ``siamkit`` app (one import line per feature module)."""
# ruff: noqa: F401, I001

from siamkit.cli import demo
from siamkit.cli import serve
from siamkit.cli import train
from siamkit.cli import verify
from siamkit.cli import eval
from siamkit.cli import report
from siamkit.cli import track
from siamkit.cli import index
from siamkit.cli import search
from siamkit.cli import export
