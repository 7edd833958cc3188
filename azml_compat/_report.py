"""The one reporter of user-facing lines: the ``azml`` logger, with its own stderr handler.

Warnings, the exit's summary and the ``outputs/`` notices all go through it, so each line is
printed once with one ``azml: `` prefix (added here, never written into messages), whatever
logging the script configured: ``propagate`` is off, so ``logging.basicConfig()`` in a script
does not print them a second time as ``WARNING:azml:...``. ``sys.stderr`` is looked up at each
line, not kept: pytest's capture, a notebook kernel's stream or a script's own redirection
receive the lines written after they replaced it. Every record is redacted first (the
``RedactingFilter`` ``_redact`` puts on the logger). To silence it:
``logging.getLogger("azml").setLevel(logging.ERROR)``.
"""
from __future__ import annotations

import logging
import sys

from . import _redact  # noqa: F401 - puts the RedactingFilter on the logger

NAME = "azml"
PREFIX = "azml: "


class StderrHandler(logging.StreamHandler):
    """A StreamHandler on whatever ``sys.stderr`` is when a line is written."""

    def __init__(self) -> None:
        logging.Handler.__init__(self)  # StreamHandler's would keep today's stream

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:
        pass  # always the current sys.stderr

    def emit(self, record: logging.LogRecord) -> None:
        if sys.stderr is not None:  # pythonw, a daemon that closed it: nowhere to say it
            super().emit(record)


def install() -> logging.Logger:
    """Give the ``azml`` logger its handler (once per process) and make it the only one."""
    logger = logging.getLogger(NAME)
    if not any(isinstance(handler, StderrHandler) for handler in logger.handlers):
        handler = StderrHandler()
        handler.setFormatter(logging.Formatter(PREFIX + "%(message)s"))
        logger.addHandler(handler)
    logger.propagate = False
    if logger.level == logging.NOTSET:
        # Its own level: a script's root level (basicConfig(level=ERROR), pytest's) neither
        # silences our warnings nor, at DEBUG, lets anything below INFO through.
        logger.setLevel(logging.INFO)
    return logger


log = install()
