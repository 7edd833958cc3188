"""Metric names -> MLflow keys: valid names unchanged, others mapped to keys MLflow accepts."""
import pytest
from hypothesis import given, settings, strategies as st
from mlflow.utils.validation import _validate_metric_name, _validate_tag_name

from azml_compat._core.keys import KeyMap, is_valid_key, sanitize
from azml_compat._core.records import NAME_TAG_PREFIX


@pytest.mark.parametrize("name", ["accuracy", "my metric 1", "loss/train", "a.b-c:d", "ünïcode",
                                  "trailing space ", "x" * 250])
def test_valid_names_are_kept(name):
    assert is_valid_key(name)
    assert sanitize(name) == name


@pytest.mark.parametrize("name, key", [
    ("accuracy (%)", "accuracy _pct_"),
    ("top@5", "top_at_5"),
    ("f1[macro]", "f1_macro_"),
    ("50%", "50_pct"),
    ("a<=b", "a_lt_eq_b"),
    ("a,b", "a_b"),
    ("/abs", "_/abs"),
    ("dir/", "dir/_"),
    ("a//b", "a/_/b"),
    ("./a", "_/a"),
    ("../a", "_/a"),
    ("..", "_"),
    ("..0", "_.0"),
    ("tab\there", "tab_here"),
    ("a+b=c@d#e", "a_plus_b_eq_c_at_d_num_e"),
    ("loss; val", "loss_ val"),
])
def test_invalid_names_are_mapped(name, key):
    assert sanitize(name) == key


def test_long_names_keep_distinct_keys():
    a, b = "x" * 300 + "a", "x" * 300 + "b"
    ka, kb = sanitize(a), sanitize(b)
    assert ka != kb
    assert len(NAME_TAG_PREFIX + ka) <= 250 and is_valid_key(ka)
    assert sanitize(a) == ka  # deterministic


def test_two_names_mapping_to_one_key_get_distinct_keys():
    keys = KeyMap()
    first, mapped_first = keys.add("a,b")
    second, mapped_second = keys.add("a;b")
    assert first == "a_b" and mapped_first
    assert second.startswith("a_b-") and mapped_second and second != first
    assert keys.add("a,b") == (first, True)  # remembered
    assert keys.known["a;b"] == second


def test_a_valid_name_colliding_with_a_mapped_one_is_kept_apart():
    keys = KeyMap()
    keys.add("a,b")
    key, mapped = keys.add("a_b")
    assert key != "a_b" and mapped


@pytest.mark.parametrize("bad, error", [("", ValueError), (None, TypeError), (3, TypeError)])
def test_empty_or_non_string_names_are_refused(bad, error):
    with pytest.raises(error, match="metric name"):
        KeyMap().add(bad)


@settings(max_examples=500, deadline=None)
@given(st.text(min_size=1, max_size=400))
def test_every_mapped_key_passes_mlflows_own_validation(name):
    key = sanitize(name)
    _validate_metric_name(key)  # MLflow's validator raises on anything it would reject
    _validate_tag_name(NAME_TAG_PREFIX + key)
    assert len(NAME_TAG_PREFIX + key) <= 250  # the tag holding the original name fits too
