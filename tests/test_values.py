"""What each value given to log() becomes (the table in the logging API issue)."""
import fractions
import math

import numpy as np
import pandas as pd
import pytest

from azml_compat._core.values import DOCUMENT, NOTHING, POINT, SERIES, TABLE, TEXT, classify


@pytest.mark.parametrize("value, expected", [
    (7, 7.0), (0.5, 0.5), (2**70, float(2**70)), (True, 1.0), (False, 0.0),
    (np.float32(1.5), 1.5), (np.float64(2.25), 2.25), (np.int8(-3), -3.0), (np.int64(9), 9.0),
    (np.uint16(5), 5.0), (np.bool_(True), 1.0), (np.bool_(False), 0.0), (np.array(4.5), 4.5),
    (np.array(True), 1.0), (fractions.Fraction(1, 4), 0.25),
    (np.longdouble(0.75), 0.75), (np.array(np.longdouble(1.25)), 1.25), (np.float16(0.5), 0.5),
])
def test_scalars_become_points(value, expected):
    kind, payload = classify("m", value)
    assert kind == POINT and payload == expected and type(payload) is float


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf"), np.float64("nan")])
def test_nan_and_inf_are_points(value):
    kind, payload = classify("m", value)
    assert kind == POINT and (math.isnan(payload) or math.isinf(payload))


def test_huge_int_is_a_clear_error():
    with pytest.raises(ValueError, match="'m'.*too large"):
        classify("m", 10**400)


def test_strings_become_text():
    assert classify("m", "hello") == (TEXT, "hello")
    assert classify("m", np.str_("x")) == (TEXT, "x")


@pytest.mark.parametrize("value, expected", [
    ([1, 3, 5, 10, 6, 4], [1.0, 3.0, 5.0, 10.0, 6.0, 4.0]),
    ((0.5, 1), [0.5, 1.0]),
    ([True, False, np.float32(2)], [1.0, 0.0, 2.0]),
    (np.array([1, 2, 3], dtype=np.int64), [1.0, 2.0, 3.0]),
    (np.array([0.5, np.nan]), [0.5, float("nan")]),
    (np.array([True, False]), [1.0, 0.0]),
    (np.array([0.5, 2], dtype=np.longdouble), [0.5, 2.0]),
    ([np.longdouble(1.5), 2], [1.5, 2.0]),
])
def test_sequences_of_numbers_become_series(value, expected):
    kind, payload = classify("m", value)
    assert kind == SERIES
    assert len(payload) == len(expected)
    for got, want in zip(payload, expected):
        assert type(got) is float and (got == want or (math.isnan(got) and math.isnan(want)))


def test_series_is_a_snapshot_of_the_list():
    values = [1.0, 2.0]
    _, payload = classify("m", values)
    values.append(3.0)
    assert payload == [1.0, 2.0]


def test_documents():
    assert classify("m", ["a", "b"]) == (DOCUMENT, ("list", ["a", "b"]))
    assert classify("m", np.array(["a", "b"])) == (DOCUMENT, ("list", ["a", "b"]))
    kind, (typ, content) = classify("m", {"a": 1, "b": [np.float32(0.5), float("nan")], 3: None})
    assert kind == DOCUMENT and typ == "dict"
    assert content == {"a": 1, "b": [0.5, None], "3": None}
    # A dict that is not a table (a scalar, ragged or nested columns) stays a document.
    assert classify("m", {"a": [1, 2], "b": [3]})[0] == DOCUMENT
    assert classify("m", {"a": [[1], [2]]})[0] == DOCUMENT
    assert classify("m", {"a": []})[0] == DOCUMENT
    kind, (typ, content) = classify("m", pd.Series([1.5, 2.5], name="s"))
    assert typ == "Series" and content["data"] == [1.5, 2.5] and content["name"] == "s"


def test_tables():
    """A DataFrame and a dict of equal-length lists of scalars are MLflow tables: columns and
    rows as pandas' ``orient="split"`` without the index."""
    assert classify("m", pd.DataFrame({"x": [1, 2], "y": ["a", None]})) == (
        TABLE, (["x", "y"], [[1, "a"], [2, None]]))
    assert classify("m", {"x": [1, np.float32(0.5)], "y": ("a", float("nan"))}) == (
        TABLE, (["x", "y"], [[1, "a"], [0.5, None]]))
    # Row labels (a confusion matrix's) are a column, not lost with the index.
    frame = pd.DataFrame({"cat": [5, 1], "dog": [2, 7]}, index=["cat", "dog"])
    assert classify("m", frame) == (TABLE, (["index", "cat", "dog"],
                                            [["cat", 5, 2], ["dog", 1, 7]]))
    frame.index.name = "true"
    assert classify("m", frame)[1][0] == ["true", "cat", "dog"]


@pytest.mark.parametrize("value", [[], (), np.array([])])
def test_empty_sequences_are_nothing(value):
    assert classify("m", value) == (NOTHING, None)


@pytest.mark.parametrize("value, detail", [
    (None, "NoneType"),
    ([1, None], "holds None"),
    ([[1, 2], [3]], "nested"),
    ([1, "a"], "mixes numbers and strings"),
    (np.zeros((2, 2)), "2-D array"),
    (object(), "object"),
    (b"\xff\xfe", "decode it to str"),
    (1 + 2j, "complex"),
    ({"a": object()}, "not JSON-serialisable"),
    ({"a": {(1, 2): 3}}, "dict key"),
])
def test_other_values_are_type_errors_naming_the_metric(value, detail):
    with pytest.raises(TypeError) as info:
        classify("my metric", value)
    message = str(info.value)
    assert "'my metric'" in message and detail in message and "accepted:" in message
