"""``output.json_pieces``: a large JSON object encoded a piece at a time joins to exactly what
msgspec encodes at once, and decodes to the object."""

from __future__ import annotations

import json
import random

import msgspec
import pytest

from generator.output import json_pieces


def _sample(size: int) -> dict[str, object]:
    rng = random.Random(size)
    paths = [f"rendered/helm/t{rng.randrange(10**6):06d}/{i}.yaml" for i in range(size)]
    return {
        "version": 7,
        "create": paths,
        "racy": {p: f"{rng.getrandbits(256):064x}" for p in paths},
        "notes": ['a "quoted" note', "ünïcode"],
        "nested": {"z": [1, {"b": None, "a": True}], "a": 1.5},
        "manifest": None,
        "empty": [],
        "none": {},
    }


@pytest.mark.parametrize("size", [0, 1, json_pieces.PIECE, json_pieces.PIECE + 1, 3 * json_pieces.PIECE + 17])
def test_the_pieces_join_to_the_encoding_at_once(size: int) -> None:
    obj = _sample(size)
    pieces = list(json_pieces.pieces(obj))
    joined = b"".join(pieces)
    assert joined == msgspec.json.encode(obj, order="sorted")
    assert json.loads(joined) == obj
    if size > 3 * json_pieces.PIECE:  # and no piece holds a large value whole: a quarter of it at most
        assert max(map(len, pieces)) < len(msgspec.json.encode(obj["racy"])) / 3
