"""Read rendered YAML back with a different parser than the one that wrote it."""

from __future__ import annotations

from typing import Any

import yaml as pyyaml


def load_yaml_docs(data: bytes) -> list[Any]:
    """Every non-empty document of ``data``, parsed by PyYAML (the render writes with ruamel)."""
    return [doc for doc in pyyaml.safe_load_all(data.decode("utf-8")) if doc is not None]
