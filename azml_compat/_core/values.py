"""What a value passed to ``logger.log`` becomes, decided at the call without importing
numpy or pandas (they are recognised by duck typing when the script already uses them).

=========================================  ==============================================
value                                      becomes
=========================================  ==============================================
int, float, numpy int/float scalar,        one metric point
numpy longdouble (rounded to a double),
0-d numpy array, fractions.Fraction
bool, numpy bool\\_                         one metric point, 1.0 or 0.0
str                                        the tag ``key`` (latest wins)
list/tuple/1-D array of numbers or bools   one metric point per element, steps continuing
pandas DataFrame, dict of equal-length     an MLflow table at artifact ``metrics/<key>.json``
lists of scalars                           (``orient="split"``, listed in
                                           ``mlflow.loggedArtifacts``; latest wins)
list/tuple/1-D array of str, other dict,   a JSON document at artifact ``metrics/<key>.json``
pandas Series                              (latest wins)
empty list/tuple/array                     nothing (a chart of no points)
anything else                              ``TypeError`` naming the metric
=========================================  ==============================================
"""
from __future__ import annotations

import json
import math
import numbers

# Kinds of what one log() call produces.
POINT, SERIES, TEXT, DOCUMENT, NOTHING = "point", "series", "text", "document", "nothing"
TABLE = "table"

ACCEPTED = (
    "int, float, bool, str, numpy scalars, lists/tuples/1-D arrays of numbers or of str, "
    "dict, pandas DataFrame/Series"
)


def _reject(name: str, value, why: str = "") -> TypeError:
    shown = repr(value)
    if len(shown) > 80:
        shown = shown[:77] + "..."
    detail = f" ({why})" if why else ""
    return TypeError(
        f"cannot log {type(value).__name__} {shown} as metric {name!r}{detail}; "
        f"accepted: {ACCEPTED}"
    )


def to_float(name: str, value) -> float:
    """A number as the float MLflow stores; ints too large for a float are an error."""
    try:
        return float(value)
    except OverflowError:
        raise ValueError(
            f"metric {name!r}: integer {value} is too large for a float (MLflow stores doubles)"
        ) from None


def encode_text(text: str) -> bytes:
    """UTF-8 bytes for any str, keeping lone surrogates rather than failing on them."""
    try:
        return text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogatepass")


def _is_numpy(value) -> bool:
    return type(value).__module__ == "numpy"


def _is_number(value) -> bool:
    if isinstance(value, numbers.Real):
        return True
    return _is_numpy(value) and getattr(value, "dtype", None) is not None and value.dtype.kind == "b"


def classify(name: str, value):
    """``(kind, payload)`` for a value, or TypeError/ValueError naming the metric."""
    kind = type(value)
    if kind is float:
        return POINT, value
    if kind is int or kind is bool:
        return POINT, to_float(name, value)
    if isinstance(value, str):
        return TEXT, str(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        raise _reject(name, value, "decode it to str, or use logger.upload() for binary content")
    if _is_numpy(value):
        return _classify_numpy(name, value)
    if isinstance(value, numbers.Real):
        return POINT, to_float(name, value)
    if isinstance(value, (list, tuple)):
        return _classify_sequence(name, value)
    if isinstance(value, dict):
        content = _jsonable(name, value)
        table = _columns(content)
        return (TABLE, table) if table is not None else (DOCUMENT, ("dict", content))
    module = type(value).__module__ or ""
    if module.startswith("pandas") and kind.__name__ == "DataFrame":
        return TABLE, _frame(value)
    if module.startswith("pandas") and kind.__name__ == "Series":
        return DOCUMENT, (kind.__name__, json.loads(value.to_json(orient="split")))
    raise _reject(name, value)


def _frame(frame) -> tuple[list, list]:
    """``(columns, rows)`` of a DataFrame as MLflow's ``log_table`` writes it (pandas'
    ``orient="split"`` without the index); an index that is not the default 0..n-1 (row labels
    such as a confusion matrix's) is kept as the first column(s), not dropped."""
    index = frame.index
    default = (type(index).__name__ == "RangeIndex" and index.start == 0 and index.step == 1
               and index.name is None)
    split = json.loads((frame if default else frame.reset_index()).to_json(orient="split",
                                                                            index=False))
    return [str(c) for c in split["columns"]], split["data"]


def _columns(content: dict) -> tuple[list, list] | None:
    """``(columns, rows)`` when a (JSON-safe) dict is a table: columns of equal length, at
    least one row, every cell a scalar; else None (it stays a document)."""
    if not content or not all(isinstance(v, list) for v in content.values()):
        return None
    lengths = {len(v) for v in content.values()}
    if len(lengths) != 1 or not lengths.pop():
        return None
    if any(isinstance(cell, (list, dict)) for v in content.values() for cell in v):
        return None
    return list(content), [list(row) for row in zip(*content.values())]


def _classify_numpy(name: str, value):
    ndim = getattr(value, "ndim", None)
    dtype = getattr(value, "dtype", None)
    if ndim == 0 and dtype is not None:  # numpy scalar or 0-d array
        if dtype.kind == "f":  # longdouble's item() is a longdouble, not a Python float
            return POINT, to_float(name, value)
        item = value.item()
        if isinstance(item, (bool, int, float)):
            return POINT, to_float(name, item)
        if isinstance(item, str):
            return TEXT, item
        raise _reject(name, value)
    if ndim == 1 and dtype is not None:
        if value.size == 0:
            return NOTHING, None
        if dtype.kind in "biuf":
            return SERIES, value.astype("float64").tolist()
        return _classify_sequence(name, value.tolist())
    if ndim is not None and ndim > 1:
        raise _reject(name, value, f"{ndim}-D array; log each row under its own name")
    raise _reject(name, value)


_MIXED = object()


def _classify_sequence(name: str, values):
    if not values:
        return NOTHING, None
    if all(type(v) is float for v in values):
        return SERIES, list(values)
    if all(_is_number(v) for v in values):
        return SERIES, [to_float(name, v) for v in values]
    if all(isinstance(v, str) for v in values):
        return DOCUMENT, ("list", [str(v) for v in values])
    other = next((v for v in values if not _is_number(v) and not isinstance(v, str)), _MIXED)
    if other is _MIXED:
        why = "it mixes numbers and strings"
    elif other is None:
        why = "it holds None"
    elif isinstance(other, (list, tuple, dict)) or getattr(other, "ndim", 0):
        why = "nested sequences cannot be charted; log each under its own name"
    else:
        why = f"element {other!r} of type {type(other).__name__}"
    raise _reject(name, values, why)


def _jsonable(name: str, value, depth: int = 0):
    """A copy of ``value`` that ``json.dumps`` writes as strict JSON (NaN/inf become null)."""
    if depth > 100:
        raise _reject(name, value, "nested too deeply")
    if value is None or isinstance(value, (str, bool)):
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        value = float(value)
        return value if math.isfinite(value) else None
    if _is_numpy(value) and hasattr(value, "tolist"):
        return _jsonable(name, value.tolist(), depth + 1)
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if not isinstance(k, (str, int, float, bool)) and k is not None:
                raise _reject(name, value, f"dict key {k!r} is not a str or number")
            out[str(k) if not isinstance(k, str) else k] = _jsonable(name, v, depth + 1)
        return out
    if isinstance(value, (list, tuple)):
        return [_jsonable(name, v, depth + 1) for v in value]
    raise _reject(name, value, f"{type(value).__name__} inside is not JSON-serialisable")
