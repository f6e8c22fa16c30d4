"""A recorded unit's entries as ``SlimEntry`` records (``output.slim_entry``): each reads as
the dict of the same fields would, a catalog's decoder makes them straight from a unit
manifest, the plan shares equal ones (and the tenant's name), they survive a pickle and the
unit cache, and a render whose fleet map holds them writes and checks the same tree."""

from __future__ import annotations

import gc
import pickle
from collections.abc import Mapping
from pathlib import Path

import msgspec
import pytest

from generator import pipeline
from generator.output import units
from generator.output.slim_entry import SlimEntry

FIELDS = {"environment": "prod", "root": "rendered/terraform/prod/tenant-acme", "target": "terraform", "tenant": "acme"}


def test_an_entry_reads_as_the_dict_of_its_fields() -> None:
    slim, plain = SlimEntry(**FIELDS), dict(FIELDS)
    assert isinstance(slim, Mapping)
    assert list(slim) == list(plain) and len(slim) == len(plain) == 4
    assert dict(slim) == plain and {**slim} == plain
    assert list(slim.keys()) == list(plain.keys())
    assert list(slim.items()) == list(plain.items())
    assert list(slim.values()) == list(plain.values())
    for key, value in plain.items():
        assert key in slim and slim[key] == value and slim.get(key) == value
    assert slim == plain and plain == slim and (slim != plain) is False and (plain != slim) is False
    assert slim != {**plain, "tenant": "globex"} and slim != {**plain, "sha256": "0" * 64}


def test_an_absent_field_and_a_method_s_name_are_not_keys() -> None:
    slim = SlimEntry(target="argocd", tenant="acme")
    assert dict(slim) == {"target": "argocd", "tenant": "acme"}
    for key in ("environment", "limits", "root", "sha256", "get", "items", "kind", "__len__", 3):
        assert key not in slim
        assert slim.get(key) is None and slim.get(key, "x") == "x"  # type: ignore[arg-type]
        with pytest.raises(KeyError):
            slim[key]  # type: ignore[index]
    with pytest.raises(TypeError):
        hash(slim)  # equal to a dict, so unhashable as one


def test_a_unit_manifest_decodes_into_shared_records(repo: Path) -> None:
    """The catalog's decoder: entries are records whose target and environment are this
    catalog's strings; a value no target has makes the manifest invalid (rendered again)."""
    pipeline.render_tree(repo)
    model = pipeline.resolve_only(repo)
    raw = (repo / units.unit_path("tenant/acme")).read_bytes()
    unit = units.parse_unit(raw, units.shared_values(model))
    assert unit is not None and unit.entries
    assert all(isinstance(e, SlimEntry) for e in unit.entries.values())
    targets = {e["target"] for e in unit.entries.values()}
    same = {e["target"]: e["target"] for e in unit.entries.values()}
    assert all(e["target"] is same[e["target"]] for e in unit.entries.values()) and len(targets) > 3
    assert {e.get("tenant") for e in unit.entries.values()} == {"acme"}
    assert "sha256" not in next(iter(unit.entries.values()))  # skipped: read from the manifest when asked
    bad = raw.replace(b'"target":"helm"', b'"target":"hel"', 1)
    assert bad != raw and units.parse_unit(bad, units.shared_values(model)) is None


def test_the_plan_shares_equal_entries_and_the_tenant_s_name(repo: Path) -> None:
    pipeline.render_tree(repo)
    model = pipeline.resolve_only(repo)
    unit = units.parse_unit((repo / units.unit_path("tenant/acme")).read_bytes(), units.shared_values(model))
    assert unit is not None
    entries = unit.entries
    names = {id(e.get("tenant")) for e in entries.values()}
    assert len(names) > 1  # as decoded: a string each
    assert units._all_of("acme", entries)
    kinds = {id(e) for e in entries.values()}
    assert len(kinds) < len(entries)  # equal entries are one record now
    assert len({msgspec.structs.astuple(e) for e in entries.values() if e.get("limits") is None}) == len(
        {id(e) for e in entries.values() if e.get("limits") is None}
    )
    assert len({id(e.get("tenant")) for e in entries.values()}) == 1
    assert not units._all_of("globex", dict(entries))  # not that tenant's: refused, as before


def test_an_entry_near_a_limit_keeps_its_own_record() -> None:
    limits = {"breaches": [["a", "b", "c", True]]}
    entries = {
        "p1": SlimEntry(target="argocd", tenant="acme", limits=limits),
        "p2": SlimEntry(target="argocd", tenant="acme", limits=limits),
    }
    assert units._all_of("acme", entries)
    assert entries["p1"] is not entries["p2"] and entries["p1"] == entries["p2"]
    assert "limits" in entries["p1"] and entries["p1"]["limits"] == limits


def test_a_pickled_entry_is_a_plain_record_and_sharing_survives(repo: Path) -> None:
    """A result sent to another process: a catalog's decoder class cannot be found by name."""
    pipeline.render_tree(repo)
    model = pipeline.resolve_only(repo)
    unit = units.parse_unit((repo / units.unit_path("tenant/acme")).read_bytes(), units.shared_values(model))
    assert unit is not None and units._all_of("acme", unit.entries)
    entries = dict(unit.entries)
    assert type(next(iter(entries.values()))) is not SlimEntry  # the catalog's own subclass
    back = pickle.loads(pickle.dumps(entries))
    assert back == entries and all(type(e) is SlimEntry for e in back.values())
    assert len({id(e) for e in back.values()}) == len({id(e) for e in entries.values()})


def test_an_entry_encodes_as_its_dict_does() -> None:
    """msgspec writes the record's fields as the dict's keys (the unit cache keeps them)."""
    for fields in (FIELDS, {"target": "argocd", "tenant": "acme"}, {**FIELDS, "limits": {"server_side": ["x"]}}):
        assert msgspec.json.encode(SlimEntry(**fields), order="sorted") == msgspec.json.encode(fields, order="sorted")
        assert msgspec.msgpack.decode(msgspec.msgpack.encode(SlimEntry(**fields)), type=SlimEntry) == fields


def test_records_are_outside_the_garbage_collector() -> None:
    assert not gc.is_tracked(SlimEntry(**FIELDS))


def test_the_roots_a_manifest_names_count_records_too() -> None:
    """``tree.manifest_roots`` (the destruction report's new roots) reads a render's entries."""
    from generator.output.tree import manifest_roots

    files = {
        "a.tf": SlimEntry(**FIELDS),
        "b.yaml": SlimEntry(target="argocd", tenant="acme"),
        "c.tf": {"root": "rendered/x", "target": "terraform"},
    }
    assert manifest_roots(files) == {FIELDS["root"], "rendered/x"}
