"""Layer merging (``generator.model.layers``) on real YAML read by the catalog's own reader:
mappings merge, scalars and lists replace, an explicit null resets to the built-in default,
every value remembers the file:line:col of each layer that set it, and merging never
modifies its inputs (copy-on-write, unchanged subtrees shared)."""

from __future__ import annotations

import copy

import pytest

from generator.catalog.yaml_source import SourceDoc, parse_yaml
from generator.errors import Location
from generator.model.layers import EMPTY, Layer, Merged, Origin, apply, in_force

DEFAULTS = """\
settings:
  kms:
    rotation_days: 365
    multi_region: false
  database:
    instance_class: db.t4g.small
    backup_retention_days: 7
  image_tag: null
  notify: [ops@example.com]
service_defaults:
  replicas: 2
"""

TIER = """\
settings:
  kms:
    rotation_days: 90
  notify:
    - sec@example.com
    - ops@example.com
"""

TENANT = """\
name: acme
settings:
  image_tag: v1.2.3
  database:
    backup_retention_days: 30
  notify: [acme@example.com]
overrides:
  prod:
    kms: null
    image_tag: null
    database:
      instance_class: null
"""

SERVICE = """\
name: api
defaults:
  replicas: 4
"""


def doc(path: str, text: str) -> SourceDoc:
    parsed, errors = parse_yaml(path, text.encode("utf-8"))
    assert parsed is not None and not errors, errors
    return parsed


def at(path: str, text: str, needle: str, after: str | None = None) -> Location:
    """Where ``needle`` starts in ``text`` (1-based line and column), searching from the
    line that contains ``after``: the expectation is read off the input, not typed in."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if after in line) if after else 0
    for number, line in enumerate(lines[start:], start=start + 1):
        if needle in line:
            return Location(path, number, line.index(needle) + 1)
    raise AssertionError(f"{needle!r} not in {path}")


@pytest.fixture
def docs() -> dict[str, SourceDoc]:
    return {
        "defaults": doc("defaults.yaml", DEFAULTS),
        "tier": doc("catalog/tiers/regulated.yaml", TIER),
        "tenant": doc("tenants/acme.yaml", TENANT),
        "service": doc("catalog/services/api.yaml", SERVICE),
    }


@pytest.fixture
def defaults(docs: dict[str, SourceDoc]) -> Merged:
    """Built the way ``resolve`` builds them: the defaults file applied to nothing."""
    return apply(EMPTY, Layer("built-in defaults", docs["defaults"], ("settings",)), EMPTY)


def layered(docs: dict[str, SourceDoc], defaults: Merged, *, prod: bool = True) -> Merged:
    merged = apply(defaults, Layer("tier regulated", docs["tier"], ("settings",)), defaults)
    merged = apply(merged, Layer("tenant acme", docs["tenant"], ("settings",)), defaults)
    if prod:
        merged = apply(merged, Layer("tenant acme x prod", docs["tenant"], ("overrides", "prod")), defaults)
    return merged


def test_mappings_merge_key_by_key(docs, defaults):
    merged = apply(defaults, Layer("tier regulated", docs["tier"], ("settings",)), defaults)
    assert merged.values["kms"] == {"rotation_days": 90, "multi_region": False}  # sibling kept
    assert merged.values["database"] == {"instance_class": "db.t4g.small", "backup_retention_days": 7}


def test_scalars_and_lists_replace(docs, defaults):
    tier = apply(defaults, Layer("tier regulated", docs["tier"], ("settings",)), defaults)
    assert tier.values["notify"] == ["sec@example.com", "ops@example.com"]  # not appended to the default
    merged = layered(docs, defaults, prod=False)
    assert merged.values["notify"] == ["acme@example.com"]
    assert merged.values["database"]["backup_retention_days"] == 30
    assert merged.values["image_tag"] == "v1.2.3"


def test_explicit_null_resets_to_the_builtin_default(docs, defaults):
    merged = layered(docs, defaults)
    # kms: null drops the tier's 90 as well as anything else above the defaults
    assert merged.values["kms"] == {"rotation_days": 365, "multi_region": False}
    assert merged.values["database"] == {"instance_class": "db.t4g.small", "backup_retention_days": 30}
    assert merged.values["image_tag"] is None  # no built-in default: unset
    reset = merged.provenance["kms.rotation_days"][-1]
    null_at = at("tenants/acme.yaml", TENANT, "null", after="kms:")
    assert reset == Origin("tenant acme x prod", null_at, 365, reset=True)
    assert merged.provenance["kms.multi_region"][-1] == Origin("tenant acme x prod", null_at, False, reset=True)
    image = merged.provenance["image_tag"]
    assert [o.layer for o in image] == ["built-in defaults", "tenant acme", "tenant acme x prod"]
    assert image[-1].reset and image[-1].value is None
    assert image[-1].location == at("tenants/acme.yaml", TENANT, "null", after="image_tag: null")


def test_provenance_records_file_line_col_of_each_layer(docs, defaults):
    merged = layered(docs, defaults, prod=False)
    assert merged.provenance["kms.rotation_days"] == (
        Origin("built-in defaults", at("defaults.yaml", DEFAULTS, "365"), 365),
        Origin("tier regulated", at("catalog/tiers/regulated.yaml", TIER, "90"), 90),
    )
    assert merged.provenance["database.backup_retention_days"] == (
        Origin("built-in defaults", at("defaults.yaml", DEFAULTS, "7"), 7),
        Origin("tenant acme", at("tenants/acme.yaml", TENANT, "30"), 30),
    )
    # a list is one value, located where it starts (flow or block style)
    assert [(o.layer, o.location) for o in merged.provenance["notify"]] == [
        ("built-in defaults", at("defaults.yaml", DEFAULTS, "[ops@")),
        ("tier regulated", at("catalog/tiers/regulated.yaml", TIER, "- sec@")),
        ("tenant acme", at("tenants/acme.yaml", TENANT, "[acme@")),
    ]
    # untouched by any layer above the defaults: only the defaults' origin
    assert merged.provenance["kms.multi_region"] == (Origin("built-in defaults", at("defaults.yaml", DEFAULTS, "false"), False),)
    assert in_force(merged.provenance, "kms.rotation_days", "x") == at("catalog/tiers/regulated.yaml", TIER, "90")
    assert in_force(merged.provenance, "no.such.key", "tenants/acme.yaml") == Location("tenants/acme.yaml")


def test_a_prefix_places_the_layer_under_a_path_and_locates_it_in_its_own_file(docs):
    defaults = apply(EMPTY, Layer("built-in defaults", docs["defaults"], ("service_defaults",), ("services", "api")), EMPTY)
    merged = apply(defaults, Layer("service api", docs["service"], ("defaults",), ("services", "api")), defaults)
    assert merged.values == {"services": {"api": {"replicas": 4}}}
    assert merged.provenance["services.api.replicas"] == (
        Origin("built-in defaults", at("defaults.yaml", DEFAULTS, "2", after="service_defaults:"), 2),
        Origin("service api", at("catalog/services/api.yaml", SERVICE, "4"), 4),
    )


def test_merging_is_copy_on_write(docs, defaults):
    inputs = {name: copy.deepcopy(d.data) for name, d in docs.items()}
    defaults_before = (copy.deepcopy(defaults.values), dict(defaults.provenance))
    tier = apply(defaults, Layer("tier regulated", docs["tier"], ("settings",)), defaults)
    tier_before = (copy.deepcopy(tier.values), dict(tier.provenance))

    merged = apply(tier, Layer("tenant acme", docs["tenant"], ("settings",)), defaults)
    merged = apply(merged, Layer("tenant acme x prod", docs["tenant"], ("overrides", "prod")), defaults)

    # no input was modified: the parsed files, the defaults, the shared base layer
    assert {name: d.data for name, d in docs.items()} == inputs
    assert (defaults.values, dict(defaults.provenance)) == defaults_before
    assert (tier.values, dict(tier.provenance)) == tier_before
    # what a layer did not touch is shared with the base, not copied ...
    assert tier.values["database"] is defaults.values["database"]
    # ... and a reset is a copy of the default, so editing the result cannot reach the defaults
    assert merged.values["kms"] == defaults.values["kms"] and merged.values["kms"] is not defaults.values["kms"]
    merged.values["kms"]["rotation_days"] = 1
    assert defaults.values["kms"]["rotation_days"] == 365


def test_a_layer_with_nothing_at_its_keypath_returns_the_base_itself(docs, defaults):
    assert apply(defaults, Layer("tenant acme x dev", docs["tenant"], ("overrides", "dev")), defaults) is defaults
    assert apply(defaults, Layer("service api", docs["service"], ("name",)), defaults) is defaults  # a scalar, not a mapping
