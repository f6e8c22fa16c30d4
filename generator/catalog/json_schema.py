"""JSON Schemas of the input files, for editors (yaml-language-server) and reviewers."""

from __future__ import annotations

import json

from generator.catalog.load import LAYOUT

SCHEMA_DIR = "catalog/schemas"


def json_schemas() -> dict[str, str]:
    """``{file name: JSON text}`` for every input file kind."""
    out = {}
    for kind, model in ((k.kind, k.model) for k in sorted(LAYOUT, key=lambda k: k.kind)):
        schema = model.model_json_schema()
        schema = {"$schema": "https://json-schema.org/draft/2020-12/schema", "title": f"CompanyOS {kind} file", **schema}
        schema.setdefault("properties", {})["$schema"] = {"type": "string", "description": "Editor hint; ignored."}
        out[f"{kind}.schema.json"] = json.dumps(schema, indent=2, sort_keys=True) + "\n"
    return out
