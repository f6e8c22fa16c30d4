"""`companyos schema`: the committed JSON Schemas match the models, and they really
validate (and reject) catalog files, as an editor would."""

from __future__ import annotations

import json

import jsonschema
import yaml

from generator.catalog.json_schema import json_schemas
from helpers.repo import REPO


def test_committed_schemas_are_up_to_date(companyos):
    result = companyos("schema", "--check", cwd=REPO)
    assert result.code == 0, result.out


def test_sample_files_point_at_their_schema_and_validate():
    schemas = json_schemas()
    for folder, kind in (
        ("tenants", "tenant"),
        ("environments", "environment"),
        ("catalog/tiers", "tier"),
        ("catalog/services", "service"),
    ):
        for path in sorted((REPO / folder).glob("*.yaml")):
            text = path.read_text()
            assert text.startswith("# yaml-language-server: $schema=") and f"{kind}.schema.json" in text.splitlines()[0], path
            jsonschema.Draft202012Validator(json.loads(schemas[f"{kind}.schema.json"])).validate(yaml.safe_load(text))


def test_schema_rejects_typos():
    schema = json.loads(json_schemas()["tenant.schema.json"])
    doc = yaml.safe_load((REPO / "tenants/acme.yaml").read_text())
    doc["settings"]["databse"] = doc["settings"].pop("database")
    errors = list(jsonschema.Draft202012Validator(schema).iter_errors(doc))
    assert errors and "databse" in errors[0].message
