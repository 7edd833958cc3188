"""``./outputs``: Workbench uploaded every file written there when the run ended."""
from __future__ import annotations

import logging
import os
import stat
import sys

ARTIFACT_DIR = "outputs"
log = logging.getLogger("azml")


def scan(outputs_dir: str, max_bytes: int):
    """``(uploads, skipped)``: ``(artifact_dir, local_path, size)`` to upload, ``(path, size)`` too big.

    Symlinked folders are not followed (they could lead anywhere); symlinked files are
    uploaded by content. Artifact paths come from the walk, so they stay under ``outputs/``.
    """
    uploads, skipped, special = [], [], []
    if not os.path.isdir(outputs_dir):
        return uploads, skipped
    for folder, dirs, files in os.walk(outputs_dir):
        dirs.sort()
        rel = os.path.relpath(folder, outputs_dir)
        artifact_dir = ARTIFACT_DIR if rel == "." else f"{ARTIFACT_DIR}/{rel.replace(os.sep, '/')}"
        for name in sorted(files):
            local = os.path.join(folder, name)
            try:
                info = os.stat(local)  # never opened here: opening a FIFO blocks
            except OSError:
                continue  # a dangling link or a file removed meanwhile
            if not stat.S_ISREG(info.st_mode):
                special.append(local)  # a FIFO, socket or device: reading it may never end
            elif info.st_size > max_bytes:
                skipped.append((local, info.st_size))
            else:
                uploads.append((artifact_dir, local, info.st_size))
    if special:
        log.warning("not uploading %d entr%s in outputs/ that %s not a regular file (FIFO, "
                    "socket or device): %s", len(special), "y" if len(special) == 1 else "ies",
                    "is" if len(special) == 1 else "are", ", ".join(special))
    return uploads, skipped


def warn_skipped(skipped, max_bytes: int) -> None:
    if not skipped:
        return
    listed = ", ".join(f"{path} ({size:,} bytes)" for path, size in skipped)
    log.warning("not uploading %d file(s) in outputs/ larger than %s bytes "
                "(AZML_MAX_OUTPUT_BYTES): %s", len(skipped), f"{max_bytes:,}", listed)


class ProgressBar:
    """A one-line bar on stderr, drawn only for a TTY and a large upload."""

    MIN_BYTES = 50 * 1024 * 1024
    WIDTH = 30

    def __init__(self, total_bytes: int, stream=None) -> None:
        self.stream = stream or sys.stderr
        self.total = total_bytes
        self.enabled = total_bytes >= self.MIN_BYTES and getattr(self.stream, "isatty", bool)()

    def draw(self, done_bytes: int) -> None:
        if not self.enabled:
            return
        frac = min(1.0, done_bytes / self.total) if self.total else 1.0
        filled = int(frac * self.WIDTH)
        bar = "#" * filled + "-" * (self.WIDTH - filled)
        self.stream.write(
            f"\razml: uploading outputs/ [{bar}] {done_bytes / 2**20:,.0f}/{self.total / 2**20:,.0f} MB"
        )
        self.stream.flush()

    def close(self) -> None:
        if self.enabled:
            self.stream.write("\n")
            self.stream.flush()
