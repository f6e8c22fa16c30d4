"""The catalog's YAML reader (``generator.catalog.yaml_source``): every input it refuses, each
with its message and the line:col to blame, and what it must still accept and locate."""

from __future__ import annotations

import pytest

from generator.catalog.yaml_source import MAX_DEPTH, MAX_FILE_BYTES, parse_yaml
from generator.errors import CatalogError, Location

PATH = "tenants/acme.yaml"


def refused(raw: bytes) -> CatalogError:
    doc, errors = parse_yaml(PATH, raw)
    assert doc is None, doc
    assert len(errors) == 1, errors
    return errors[0]


def nested(levels: int) -> bytes:
    """``levels`` block mappings nested below the top one, the last holding ``v: 1``: its
    scalar sits at depth ``levels + 1`` (the top mapping is depth 0)."""
    lines = ["  " * i + f"k{i}:" for i in range(levels)]
    return ("\n".join(lines) + "\n" + "  " * levels + "v: 1\n").encode()


REFUSALS = [
    # (id, input, line, col, message)
    ("not UTF-8", b"name: acme\nowner: caf\xe9@example.com\n", 2, 11, "file is not valid UTF-8"),
    ("not UTF-8 on line 1", b"\xff\xfename: acme\n", 1, 1, "file is not valid UTF-8"),
    (
        "python object tag",
        b"name: acme\nowner: !!python/object/apply:os.system [id]\n",
        2,
        8,
        "YAML tag tag:yaml.org,2002:python/object/apply:os.system is not allowed in the catalog",
    ),
    ("explicit core tag", b"name: acme\ncost: !!str 12\n", 2, 7, "YAML tag tag:yaml.org,2002:str is not allowed in the catalog"),
    ("local tag", b"name: acme\nowner: !secret x\n", 2, 8, "YAML tag !secret is not allowed in the catalog"),
    ("tag on a mapping", b"name: acme\nsettings: !!map {a: 1}\n", 2, 11, "YAML tag tag:yaml.org,2002:map is not allowed in the catalog"),
    ("anchor", b"name: acme\nsettings: &base {a: 1}\n", 2, 11, "YAML anchors and aliases are not allowed in the catalog"),
    ("alias", b"name: acme\nsettings: *base\n", 2, 11, "YAML anchors and aliases are not allowed in the catalog"),
    ("merge key", b"name: acme\nsettings:\n  <<: {a: 1}\n", 3, 3, "YAML merge keys (<<) are not allowed in the catalog"),
    ("duplicate key", b"name: acme\nsettings:\n  kms: 1\n  kms: 2\n", 4, 3, 'duplicate key "kms"'),
    ("duplicate top-level key", b"name: acme\ntier: standard\nname: hooli\n", 3, 1, 'duplicate key "name"'),
    ("integer key", b"name: acme\n42: answer\n", 2, 1, "mapping key '42' must be a string"),
    ("boolean key", b"name: acme\ntrue: yes\n", 2, 1, "mapping key 'true' must be a string"),
    ("null key", b"name: acme\n~: nothing\n", 2, 1, "mapping key '~' must be a string"),
    ("float key", b"name: acme\nsettings:\n  1.5: x\n", 3, 3, "mapping key '1.5' must be a string"),
    # one level past the limit: the scalar after the last "v: " is the first node too deep
    ("too deep", nested(MAX_DEPTH), MAX_DEPTH + 1, 2 * MAX_DEPTH + len("v: ") + 1, f"nesting deeper than {MAX_DEPTH} levels"),
    ("empty file", b"", 1, 1, "file is empty; expected a mapping"),
    ("only a comment", b"# nothing here\n", 1, 1, "file is empty; expected a mapping"),
    ("a list at the top", b"- name: acme\n", 1, 1, "expected a mapping at the top of the file"),
    ("a scalar at the top", b"acme\n", 1, 1, "expected a mapping at the top of the file"),
    ("two documents", b"name: acme\n---\nname: hooli\n", 2, 1, "YAML error: but found another document"),
    ("unclosed flow list", b"name: acme\nnotify: [a, b\n", 3, 1, "YAML error: did not find expected ',' or ']'"),
    ("tab indentation", b"name: acme\nsettings:\n\tkms: 1\n", 3, 1, "YAML error: found character that cannot start any token"),
    ("huge integer", b"name: acme\nbudget: " + b"9" * 65 + b"\n", 2, 9, "number with 65 digits is too large"),
    ("impossible date", b"name: acme\nsince: 2026-02-30\n", 2, 8, "invalid date '2026-02-30'"),
]


@pytest.mark.parametrize(("raw", "line", "col", "message"), [pytest.param(*case[1:], id=case[0]) for case in REFUSALS])
def test_refused_with_message_and_position(raw, line, col, message):
    assert refused(raw) == CatalogError(Location(PATH, line, col), message)


def test_a_file_over_the_size_limit_is_refused_before_parsing():
    error = refused(b"name: " + b"x" * MAX_FILE_BYTES + b"\n")
    assert error == CatalogError(Location(PATH, 1, 1), f"file is larger than {MAX_FILE_BYTES} bytes")


def test_nesting_at_the_limit_is_accepted():
    doc, errors = parse_yaml(PATH, nested(MAX_DEPTH - 1))
    assert not errors and doc is not None
    node = doc.data
    for i in range(MAX_DEPTH - 1):
        node = node[f"k{i}"]
    assert node == {"v": 1}


def test_a_complex_key_is_refused_at_the_key():
    error = refused(b"name: acme\n? [a, b]\n: x\n")
    assert error.location == Location(PATH, 2, 3)
    assert error.message.endswith("must be a string")


def test_an_alias_bomb_is_refused_at_its_first_anchor():
    bomb = b'a: &a ["x", "x"]\nb: &b [*a, *a]\nc: &c [*b, *b]\n'
    assert refused(bomb) == CatalogError(Location(PATH, 1, 4), "YAML anchors and aliases are not allowed in the catalog")


def test_characters_that_look_like_tags_or_anchors_inside_strings_are_accepted():
    raw = b"name: acme\nhost: '*.example.com'\nnote: \"R&D, now!\"\nplain: x!y&z*\n"
    doc, errors = parse_yaml(PATH, raw)
    assert not errors and doc is not None
    assert doc.data == {"name": "acme", "host": "*.example.com", "note": "R&D, now!", "plain": "x!y&z*"}


def test_yaml_1_2_core_schema_scalars():
    raw = b"a: no\nb: on\nc: 0777\nd: 0o17\ne: 0x1F\nf: .inf\ng: ~\nh: 2026-11-26\ni: True\nj: 1e3\n"
    doc, errors = parse_yaml(PATH, raw)
    assert not errors and doc is not None
    assert doc.data == {
        "a": "no",
        "b": "on",
        "c": 777,
        "d": 15,
        "e": 31,
        "f": float("inf"),
        "g": None,
        "h": "2026-11-26",
        "i": True,
        "j": 1000.0,
    }


def test_positions_of_values_keys_and_list_items():
    raw = b"name: acme\nsettings:\n  kms:\n    rotation_days: 90\n  notify:\n    - a@example.com\n    - b@example.com\n"
    doc, errors = parse_yaml(PATH, raw)
    assert not errors and doc is not None
    assert doc.locate(("settings", "kms", "rotation_days")) == Location(PATH, 4, 20)
    assert doc.locate(("settings", "kms", "rotation_days"), key=True) == Location(PATH, 4, 5)
    assert doc.locate(("settings", "notify", 1)) == Location(PATH, 7, 7)
    # a path the file does not have: its nearest ancestor that it has, else the top
    assert doc.locate(("settings", "kms", "multi_region")) == Location(PATH, 4, 5)
    assert doc.locate(("overrides", "prod")) == Location(PATH, 1, 1)
