"""Guards at the points where input enters and output leaves (README, "Safety and failure").

- An output never overwrites an input: :func:`check_outputs` compares resolved paths (and
  ``samefile`` for links) before any work starts.
- An output folder that cannot be written fails before the work, not after it
  (:func:`check_output_dir`, :func:`check_output_file`).
- A weights file that is not what its name says fails with one line (:func:`check_weights_file`).
- Files that hold a user's data (uploads, checkpoints) are the user's only (:func:`make_private`).
- Worker processes die with their parent (:func:`die_with_parent`).
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import threading
import time
import zipfile
from collections.abc import Iterable, Mapping
from pathlib import Path

from siamkit.errors import ConfigError, DataError, WeightsError

PRIVATE_FILE = 0o600
PRIVATE_DIR = 0o700
PICKLE_CHECKPOINT_SUFFIXES = (".pth", ".pt", ".model", ".tar")


def _same_file(a: Path, b: Path) -> bool:
    if a.resolve() == b.resolve():
        return True
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return False


def check_outputs(outputs: Mapping[str, str | Path | None], inputs: Iterable[str | Path | None]) -> None:
    """Refuse an output that is one of the inputs, or another output (ConfigError, before any work)."""
    given = {label: Path(p) for label, p in outputs.items() if p is not None}
    sources = [Path(str(p)) for p in inputs if p is not None and not str(p).isdigit()]
    for label, path in given.items():
        for source in sources:
            if _same_file(path, source):
                raise ConfigError(
                    f"The {label} output {path} would overwrite the input {source}.",
                    hint="Write the output to another file name; siamkit never overwrites its inputs.",
                )
    labels = list(given)
    for i, first in enumerate(labels):
        for second in labels[i + 1:]:
            if _same_file(given[first], given[second]):
                raise ConfigError(f"The {first} and {second} outputs are the same file {given[first]}.",
                                  hint="Give each output its own file name.")


def check_output_dir(path: str | Path, what: str = "output") -> Path:
    """Check, before any work and without creating anything, that ``path`` can become a written folder.

    It must be a folder or not exist yet, and its nearest existing parent must be a folder this
    process may write into; DataError otherwise (the writers create the missing folders later).
    """
    folder = Path(path)
    hint = "Choose a folder you can write to."
    if folder.exists() and not folder.is_dir():
        raise DataError(f"The {what} folder {folder} is a file.", hint=hint)
    parent = folder
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise DataError(f"Cannot create the {what} folder {folder}: {parent} is not a folder.", hint=hint)
    if not os.access(parent, os.W_OK | os.X_OK):
        raise DataError(f"Cannot write into the {what} folder {folder} ({parent} is not writable).", hint=hint)
    return folder


def check_output_file(path: str | Path | None, what: str = "output") -> Path | None:
    """Check, before any work, that an output file can be written (None passes)."""
    if path is None:
        return None
    path = Path(path)
    if path.is_dir():
        raise DataError(f"The {what} {path} is a folder.", hint="Give a file name.")
    check_output_dir(path.parent, what=f"{what}'s")
    return path


def check_weights_file(weights: str | Path | None) -> None:
    """A ``.pth``-style checkpoint must be a PyTorch file (zip or pickle), not text or garbage."""
    if weights is None:
        return
    path = Path(str(weights))
    if path.suffix.lower() not in PICKLE_CHECKPOINT_SUFFIXES or not path.is_file():
        return
    with path.open("rb") as fh:
        head = fh.read(2)
    if not zipfile.is_zipfile(path) and not head.startswith(b"\x80"):
        raise WeightsError(f"{path} is not a PyTorch checkpoint (neither a zip archive nor a pickle).",
                           hint="Pass the .pth file the tracker's authors published, or a .safetensors zoo file.")


def make_private(path: str | Path) -> Path:
    """Make a file (0600) or folder (0700) readable by its owner only."""
    path = Path(path)
    os.chmod(path, PRIVATE_DIR if path.is_dir() else PRIVATE_FILE)
    return path


# --------------------------------------------------------------------------- child processes
PR_SET_PDEATHSIG = 1


def die_with_parent(parent_pid: int | None = None, poll_s: float = 0.5) -> None:
    """End this (worker) process when its parent dies, even by SIGKILL.

    On Linux the kernel sends SIGKILL when the parent goes (``prctl(PR_SET_PDEATHSIG)``); on every
    platform a daemon thread also watches the parent's pid and exits when it changes.
    """
    parent = os.getppid() if parent_pid is None else parent_pid
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        except (OSError, AttributeError):  # pragma: no cover - the watchdog still works
            pass
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(1)

    def watch() -> None:
        while True:
            time.sleep(poll_s)
            if os.getppid() != parent:
                os._exit(1)

    threading.Thread(target=watch, name="siamkit-parent-watchdog", daemon=True).start()
