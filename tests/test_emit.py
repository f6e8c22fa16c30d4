"""The shared YAML emitter: whatever JSON-shaped data goes in, PyYAML (YAML 1.1) and
ruamel.yaml (YAML 1.2) read back exactly that data, and yamllint accepts the layout."""

from __future__ import annotations

import io

import yaml
from hypothesis import example, given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML
from yamllint import linter
from yamllint.config import YamlLintConfig

from generator.emit import finalize, to_json, to_yaml

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**63), max_value=2**63),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=30),
    st.sampled_from(["yes", "No", "on", "OFF", "y", "null", "~", "true", "1.10", "0777", "0x1F", "1e3", "-", "- a",
                     "a: b", "#x", "&a", "*a", "!t", "|", ">", "@x", "`x", "%x", "'q'", '"q"', "2026-01-01", ".inf", "x #y"]),
)
keys = st.one_of(st.text(min_size=0, max_size=12), st.sampled_from(["true", "no", "null", "a.b/c", "1", "-x", "key: x"]))
documents = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(keys, inner, max_size=4)), max_leaves=25)


@settings(max_examples=300, deadline=None)
@given(documents)
@example({"A\n": None, "b": "ends with a newline\n"})  # `$` in re.match accepts a final newline
def test_round_trips_through_yaml_1_1_and_1_2(data):
    text = to_yaml(data)
    assert yaml.safe_load(text) == data
    assert _plain(YAML(typ="safe", pure=True).load(io.StringIO(text))) == data


@settings(max_examples=100, deadline=None)
@given(st.dictionaries(keys, documents, min_size=1, max_size=4), st.integers(min_value=0, max_value=8))
def test_indented_block_nests_under_a_key(data, indent):
    text = "outer:\n" + to_yaml(data, indent=indent + 2)
    assert yaml.safe_load(text) == {"outer": data}


@settings(max_examples=200, deadline=None)
@given(scalars)
def test_json_filter_is_valid_yaml_and_json(value):
    import json

    assert yaml.safe_load("k: " + to_json(value))["k"] == value
    assert json.loads(to_json(value)) == value


def test_yamllint_accepts_the_layout():
    doc = {"apiVersion": "v1", "kind": "List", "items": [{"a": 1, "b": ["x", {"c": None}]}, [], {}], "s": "text with: colon"}
    conf = YamlLintConfig("extends: default\nrules: {document-start: disable, line-length: {max: 200}}")
    problems = list(linter.run(finalize(to_yaml(doc), ["x"]).decode(), conf))
    assert not problems, problems


def _plain(value):
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value
