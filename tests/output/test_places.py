"""``output.places``: a large render's map of where each file lies, a tenant's places packed
beside its unit's path tuple, answers every question as the plain map it replaces."""

from __future__ import annotations

import random

import pytest

from generator.output.places import Places
from generator.output.spool import length_of, offset_of, spilled


def _filled(tenants: int = 3, files: int = 5) -> tuple[Places, dict[str, object], dict[str, dict[str, str]]]:
    """A map set loose as a render sets it (one shared fleet file too), and the plain dict."""
    entries: dict[str, dict[str, str]] = {}
    places = Places(entries)
    plain: dict[str, object] = {}
    offset = 0
    for t in range(tenants):
        for f in range(files):
            path = f"rendered/t{t}/file{f}.yaml"
            entries[path] = {"tenant": f"t{t}", "target": "helm"}
            places[path] = plain[path] = spilled(offset, 100 + f)
            offset += 100 + f
    entries["rendered/fleet.yaml"] = {"target": "argocd"}
    places["rendered/fleet.yaml"] = plain["rendered/fleet.yaml"] = spilled(offset, 7)
    return places, plain, entries


def _pack_all(places: Places, tenants: int = 3, files: int = 5) -> None:
    for t in range(tenants):
        # the unit's tuple holds equal strings made apart from the render's keys (decoded)
        places.pack(f"t{t}", tuple("".join(["rendered/", f"t{t}", f"/file{f}.yaml"]) for f in range(files)))


def test_a_packed_map_answers_as_the_plain_one() -> None:
    places, plain, _ = _filled()
    _pack_all(places)
    assert len(places._loose) == 1  # every tenant file packed, the fleet-wide one loose
    assert len(places) == len(plain)
    assert dict(places.items()) == plain
    assert sorted(places) == sorted(plain)
    for path, where in plain.items():
        assert path in places and places[path] == where
        assert (offset_of(places[path]), length_of(places[path])) == (offset_of(where), length_of(where))


def test_any_order_of_asking_finds_the_same_places() -> None:
    """The packed map guesses the next path of a unit asked in path order: asked out of that
    order (reversed, shuffled, twice running), it still answers exactly."""
    places, plain, _ = _filled(tenants=4, files=9)
    _pack_all(places, tenants=4, files=9)
    asked = sorted(plain)
    shuffled = asked[:]
    random.Random(7).shuffle(shuffled)
    for order in (asked, asked[::-1], shuffled, [p for p in shuffled for _ in (0, 1)]):
        assert [places[path] for path in order] == [plain[path] for path in order]
        assert all(path in places for path in order)


def test_a_path_not_set_is_not_there() -> None:
    places, _, entries = _filled()
    _pack_all(places)
    entries["rendered/t1/other.yaml"] = {"tenant": "t1"}  # an entry of a packed tenant, but no place
    for absent in ("rendered/t1/other.yaml", "rendered/t9/file0.yaml", "nowhere", 7):
        assert absent not in places
    with pytest.raises(KeyError):
        places["rendered/t1/other.yaml"]
    with pytest.raises(KeyError):
        del places["rendered/t0/file0.yaml"]  # a packed path is never taken out


def test_what_cannot_be_packed_stays_loose_under_the_unit_s_strings() -> None:
    """Bytes the spool could not take, a file longer than a packed word's length field: the
    tenant stays loose, keyed by the given (decoded) strings so the render's copies go."""
    entries = {f"rendered/a/{n}": {"tenant": "a"} for n in range(3)}
    entries.update({"rendered/b/0": {"tenant": "b"}, "rendered/c/0": {"tenant": "c"}})
    places = Places(entries)
    places["rendered/a/0"], places["rendered/a/1"], places["rendered/a/2"] = spilled(0, 5), b"held", spilled(5, 5)
    places["rendered/b/0"], places["rendered/c/0"] = spilled(10, 1 << 30), spilled(1 << 45, 3)  # too long, too far
    decoded_a = tuple("".join(["rendered/a/", str(n)]) for n in range(3))
    places.pack("a", decoded_a)
    places.pack("b", ("rendered/b/0",))
    places.pack("c", ("rendered/c/0",))
    assert not places._units and len(places) == 5
    assert places["rendered/a/1"] == b"held"
    assert places["rendered/b/0"] == spilled(10, 1 << 30) and places["rendered/c/0"] == spilled(1 << 45, 3)
    assert all(any(key is path for key in places._loose) for path in decoded_a)


def test_a_tenant_packed_twice_keeps_the_first() -> None:
    places, plain, _ = _filled(tenants=1)
    _pack_all(places, tenants=1)
    places["rendered/t0/late.yaml"] = spilled(1, 1)
    places.pack("t0", ("rendered/t0/late.yaml",))  # refused: stays loose, the first pack stands
    assert places["rendered/t0/late.yaml"] == spilled(1, 1)
    assert all(places[path] == where for path, where in plain.items())
