"""Artifact paths from untrusted input, made safe: nothing may escape a run's artifact root."""
from __future__ import annotations

import posixpath


def clean_artifact_path(path, *, what: str = "artifact path", allow_root: bool = False) -> str:
    """``path`` as a normalised relative POSIX path, or ValueError naming it.

    Backslashes count as separators (Workbench scripts were often written on Windows).
    Absolute paths, drive letters and ``..`` components are refused rather than rewritten:
    a script that names them has a bug we should show, not hide.
    """
    if not isinstance(path, str):
        raise TypeError(f"{what} must be a str, got {type(path).__name__}: {path!r}")
    if "\x00" in path:
        raise ValueError(f"{what} {path!r} contains a NUL character")
    unified = path.replace("\\", "/")
    if unified.startswith("/") or (len(unified) > 1 and unified[1] == ":"):
        raise ValueError(f"{what} {path!r} is absolute; give a path relative to the run")
    parts = [p for p in unified.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise ValueError(f"{what} {path!r} contains '..'; it would escape the run's artifacts")
    if not parts:
        if allow_root:
            return ""
        raise ValueError(f"{what} {path!r} is empty")
    return posixpath.join(*parts)
