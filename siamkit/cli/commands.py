"""Registers every sub-command on the ``siamkit`` app.

Each feature lives in its own module; this file only imports them so that the order of
``siamkit --help`` is stable.
"""

from siamkit.cli import demo, stubs  # noqa: F401
