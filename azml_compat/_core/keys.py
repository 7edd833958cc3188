"""Workbench metric names -> MLflow keys.

MLflow accepts a key only if it matches ``^[/\\w.\\- :]*$``, has at most 250 characters and is
unchanged by POSIX path normalisation (no empty, ``.`` or ``..`` component, no leading or
trailing ``/``). Workbench accepted any string, so names MLflow would reject are mapped:

1. every character outside ``[\\w.\\- :/]`` is replaced, readably: ``%`` ``+`` ``=`` ``@``
   ``#`` ``&`` ``<`` ``>`` by a word (``pct``, ``plus``, ``eq``, ``at``, ``num``, ``and``,
   ``lt``, ``gt``; joined to a neighbouring letter or digit with ``_``), every other one
   (brackets, ``,``, ``;``, quotes, tabs, ...) by ``_``: ``accuracy (%)`` is
   ``accuracy _pct_``, ``top@5`` is ``top_at_5``, ``f1[macro]`` is ``f1_macro_``;
2. every empty, ``.`` or ``..`` path component becomes ``_``, and a leading ``..`` (which MLflow
   reads as a parent folder even in ``..0``) becomes ``_.``;
3. a key longer than 233 characters is cut to 224 and gets ``-`` + 8 hex digits of the
   name's SHA-1, so long names that share a prefix stay apart;
4. if two different names of one run map to the same key, the later one gets the same
   ``-`` + hash suffix.

A name that is already valid is used unchanged. Runs logged before the readable words of step
1 (each refused character was ``_``: ``accuracy ___``) keep the keys they have. For each
mapped key the run carries the tag ``mlflow.azml.name.<key>`` holding the original name
(``azml.name.<key>`` on runs written by earlier versions: still read), which is what the
``azml`` CLI shows; the run's description lists them.
"""
from __future__ import annotations

import hashlib
import posixpath
import re
import threading

from .records import MAX_KEY, NAME_TAG_PREFIX

MAX_MAPPED_KEY = MAX_KEY - len(NAME_TAG_PREFIX)  # the name tag's key must fit MAX_KEY too

_VALID = re.compile(r"^[/\w.\- :]*$")
_INVALID_CHAR = re.compile(r"[^/\w.\- :]")
# Refused characters that read as a word in a metric's name; every other one becomes "_".
WORDS = {"%": "pct", "+": "plus", "=": "eq", "@": "at", "#": "num", "&": "and", "<": "lt",
         ">": "gt"}


def _readable(name: str) -> str:
    """Step 1: each refused character replaced by its word (``_``-joined to a letter or digit
    next to it) or by ``_``."""
    out: list[str] = []
    after_word = False
    for char in name:
        word = WORDS.get(char) if _INVALID_CHAR.match(char) else None
        if word is not None:
            if out and out[-1][-1].isalnum():
                out.append("_")
            out.append(word)
            after_word = True
            continue
        piece = "_" if _INVALID_CHAR.match(char) else char
        if after_word and piece.isalnum():
            out.append("_")
        out.append(piece)
        after_word = False
    return "".join(out)


def is_valid_key(name: str) -> bool:
    """True when MLflow accepts ``name`` as a metric, param or tag key unchanged."""
    if not name or len(name) > MAX_KEY or not _VALID.match(name):
        return False
    norm = posixpath.normpath(name)
    return norm == name and norm != "." and not norm.startswith(("..", "/"))


def _suffix(name: str) -> str:
    return "-" + hashlib.sha1(name.encode("utf-8", "surrogatepass")).hexdigest()[:8]


def sanitize(name: str) -> str:
    """Steps 1-3 of the mapping: a valid key for any non-empty name, the same every time."""
    if is_valid_key(name):
        return name
    key = _readable(name) if _INVALID_CHAR.search(name) else name
    key = "/".join(part if part not in ("", ".", "..") else "_" for part in key.split("/"))
    if key.startswith(".."):
        key = "_" + key[1:]
    if len(key) > MAX_MAPPED_KEY:
        key = key[: MAX_MAPPED_KEY - 9] + _suffix(name)
    return key


def check_name(name) -> None:
    if not isinstance(name, str):
        raise TypeError(f"metric name must be a str, got {type(name).__name__}: {name!r}")
    if not name:
        raise ValueError("metric name must not be empty")


class KeyMap:
    """Remembers the key each name got in this run, so collisions are settled once."""

    def __init__(self) -> None:
        self.known: dict[str, str] = {}  # name -> key, read without a lock by log()
        self._owners: dict[str, str] = {}
        self._lock = threading.Lock()

    def add(self, name: str) -> tuple[str, bool]:
        """Key for a name not seen before, and whether it differs from the name."""
        check_name(name)
        with self._lock:
            key = self.known.get(name)
            if key is not None:
                return key, key != name
            key = sanitize(name)
            owner = self._owners.get(key)
            if owner is not None and owner != name:
                key = key[: MAX_MAPPED_KEY - 9] + _suffix(name)
            self._owners[key] = name
            self.known[name] = key
            return key, key != name
