"""Credentials out of everything we print, log or store: one function, ``redact_text``."""
from __future__ import annotations

import logging
import os
import re

# Variables whose values are secrets MLflow sends with every request.
CREDENTIAL_VARIABLES = ("MLFLOW_TRACKING_PASSWORD", "MLFLOW_TRACKING_TOKEN")
# A value shorter than this is not searched for: hiding every "ab" would garble every message.
_MIN_SECRET_LENGTH = 4
# ``scheme://userinfo@``: the userinfo runs to the authority's last "@" (a raw "@" in a
# password is still part of it), never past a "/", "?", "#" or a space.
_USERINFO = re.compile(r"\b([A-Za-z][\w+.-]*://)([^/\s?#]+)@")


def redact_text(text: str) -> str:
    """``text`` fit to print or store: the one place credentials are taken out.

    In every ``scheme://user:password@`` the password becomes ``***``; a user with no password
    (``http://TOKEN@host``, how tokens are often passed) becomes ``***`` itself; and the values
    of MLFLOW_TRACKING_PASSWORD/TOKEN become ``***`` wherever they appear.
    """
    text = _USERINFO.sub(_hide_userinfo, text)
    for name in CREDENTIAL_VARIABLES:
        # Read at each call, not kept in the settings: a secret is never held longer than
        # the environment holds it, and one set after the logger was made is hidden too.
        secret = os.environ.get(name)
        if secret and len(secret) >= _MIN_SECRET_LENGTH:
            text = text.replace(secret, "***")
    return text


def _hide_userinfo(match: re.Match) -> str:
    user, colon, _ = match.group(2).partition(":")
    return f"{match.group(1)}{user + ':***' if colon else '***'}@"


def redact(uri: str) -> str:
    """``uri`` fit to print or store (see ``redact_text``)."""
    return redact_text(uri)


class RedactingFilter(logging.Filter):
    """Every record of the ``azml`` logger goes out through ``redact_text``: its messages
    carry URIs and store errors (MLflow's name the request's URL, credentials included)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):  # kept as arguments, for filters after this one
            record.msg = redact_text(str(record.msg))
            record.args = tuple(a if isinstance(a, (int, float)) else redact_text(str(a))
                                for a in record.args)
            return True
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a malformed record is logging's to report
            return True
        record.msg, record.args = redact_text(message), None
        return True


logging.getLogger("azml").addFilter(RedactingFilter())
