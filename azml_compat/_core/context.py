"""The tags MLflow's client adds to a new run (``mlflow.user``, the git commit), made without
MLflow: its ``resolve_tags`` imports MLflow and runs ``git`` through GitPython, which the
training process need not pay for when it talks to a server."""
from __future__ import annotations

import getpass
import os

from .._redact import redact_text


def context_tags(tags: dict) -> dict:
    """``tags`` with the run context MLflow's ``resolve_tags`` would add; given tags win."""
    found = {}
    try:
        found["mlflow.user"] = getpass.getuser()
    except Exception:  # noqa: BLE001 - no user name (a container without passwd): MLflow skips it too
        pass
    source = tags.get("mlflow.source.name") or ""
    found.update(git_tags(os.path.dirname(source) if os.path.isabs(source) else os.getcwd()))
    return {**found, **tags}


def git_tags(folder: str) -> dict:
    """``mlflow.source.git.commit``/``branch``/``repoURL`` of the repository holding ``folder``,
    read from its ``.git`` files (no subprocess); ``{}`` if there is none or it is unreadable."""
    try:
        git_dir = _git_dir(folder)
        if git_dir is None:
            return {}
        head = _read(os.path.join(git_dir, "HEAD"))
        branch = None
        if head.startswith("ref:"):
            ref = head[4:].strip()
            branch = ref[len("refs/heads/"):] if ref.startswith("refs/heads/") else None
            commit = _resolve_ref(git_dir, ref)
        else:
            commit = head
        if not commit or len(commit) != 40:
            return {}
        found = {"mlflow.source.git.commit": commit}
        if branch:
            found["mlflow.source.git.branch"] = branch
        url = _origin_url(git_dir)
        if url:
            found["mlflow.source.git.repoURL"] = redact_text(url)  # a token in the URL stays out
        return found
    except (OSError, UnicodeDecodeError, ValueError):
        return {}


def _read(path: str) -> str:
    with open(path, encoding="utf-8") as fh:
        return fh.read().strip()


def _git_dir(folder: str) -> str | None:
    folder = os.path.abspath(folder)
    while True:
        candidate = os.path.join(folder, ".git")
        if os.path.isdir(candidate):
            return candidate
        if os.path.isfile(candidate):  # a worktree or submodule: "gitdir: <path>"
            text = _read(candidate)
            if text.startswith("gitdir:"):
                return os.path.join(folder, text[len("gitdir:"):].strip())
            return None
        parent = os.path.dirname(folder)
        if parent == folder:
            return None
        folder = parent


def _common_dir(git_dir: str) -> str:
    """Where a worktree's shared refs and config live (``commondir``), else ``git_dir``."""
    path = os.path.join(git_dir, "commondir")
    if os.path.exists(path):
        return os.path.normpath(os.path.join(git_dir, _read(path)))
    return git_dir


def _resolve_ref(git_dir: str, ref: str) -> str | None:
    for base in (git_dir, _common_dir(git_dir)):
        path = os.path.join(base, *ref.split("/"))
        if os.path.isfile(path):
            return _read(path)
    packed = os.path.join(_common_dir(git_dir), "packed-refs")
    if os.path.isfile(packed):
        for line in _read(packed).splitlines():
            parts = line.split()
            if len(parts) == 2 and parts[1] == ref:
                return parts[0]
    return None


def _origin_url(git_dir: str) -> str | None:
    import configparser

    config = configparser.ConfigParser(strict=False, interpolation=None)
    try:
        config.read(os.path.join(_common_dir(git_dir), "config"), encoding="utf-8")
        return config.get('remote "origin"', "url", fallback=None)
    except configparser.Error:
        return None
