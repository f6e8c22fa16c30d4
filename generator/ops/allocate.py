"""``companyos allocate``: record a CIDR for every VPC that lacks one in ``catalog/networks.yaml``.

First fit, lowest address first; releases entries whose tenant is gone; every other line of
the file stays byte-for-byte as it was (ruamel round-trip), so a review sees one line per VPC.
"""

from __future__ import annotations

import io
import ipaddress
from pathlib import Path

from generator.catalog import spec
from generator.catalog.load import load_catalog
from generator.errors import CatalogError, CatalogErrors
from generator.model import naming, networks
from generator.model.references import check_references
from generator.output.atomic import write_atomic


def allocate(root: Path, *, write: bool = True) -> list[str]:
    """Record a CIDR for every VPC that lacks one and release allocations that refer to
    nothing; return one line per change. Raises CatalogErrors for any other catalog
    mistake, or when an environment's space is full (nothing is written then)."""
    catalog = load_catalog(root)  # references run below, minus what allocating fixes
    fixable = {*networks.stale_errors(catalog), *networks.missing_errors(catalog)}
    errors = [e for e in check_references(catalog) if e not in fixable]
    if errors:
        raise CatalogErrors(errors)
    entry = networks.networks_entry(catalog)
    assert entry is not None, "networks.yaml is required and checked at load time"
    nets: spec.Networks = entry.spec
    changes: list[tuple[str, str, str | None]] = []  # (env, key, cidr or None for release)
    lines: list[str] = []
    for env, block in nets.environments.items():
        for key in block.vpcs:
            if env in catalog.environments and networks.stale_reason(catalog, env, key):
                changes.append((env, key, None))
                lines.append(f"{env}: released {key} {block.vpcs[key]}")
    sink: list[CatalogError] = []
    for env, keys in networks.required_vpcs(catalog).items():
        block = nets.environments[env]
        taken = [ipaddress.IPv4Network(c) for k, c in block.vpcs.items() if (env, k, None) not in changes]
        primary = ipaddress.IPv4Network(block.primary)
        for key in keys:
            if key in block.vpcs:
                continue
            prefix = nets.shared_prefix if key == naming.SHARED_ROOT else nets.vpc_prefix
            net = networks.first_free(primary, prefix, taken)
            if net is None:
                sink.append(
                    CatalogError(
                        entry.locate("environments", env, "primary"),
                        f"no free /{prefix} left in {primary} for {key} in '{env}' ({len(taken)} VPCs allocated); widen environments.{env}.primary and dr, or lower vpc_prefix",
                    )
                )
                continue
            taken.append(net)
            changes.append((env, key, str(net)))
            twin = networks.twin(block, net)
            lines.append(f"{env}: {key} -> {net} (DR twin {twin})")
    if sink:
        raise CatalogErrors(sink)
    if changes and write:
        path = root / networks.NETWORKS_PATH
        write_atomic(path, _edited(path.read_text(encoding="utf-8"), changes))
    return lines


def _edited(text: str, changes: list[tuple[str, str, str | None]]) -> str:
    """Apply ``changes`` with ruamel's round-trip mode, so comments and order survive."""
    from ruamel.yaml import YAML
    from ruamel.yaml.comments import CommentedMap

    yaml = YAML(typ="rt")
    yaml.preserve_quotes = True
    yaml.width = 4096
    yaml.indent(mapping=2, sequence=4, offset=2)
    data = yaml.load(text)
    for env, key, cidr in changes:
        block = data["environments"][env]
        if block.get("vpcs") is None:
            block["vpcs"] = CommentedMap()
        if cidr is None:
            del block["vpcs"][key]
        else:
            block["vpcs"][key] = cidr
    out = io.StringIO()
    yaml.dump(data, out)
    return out.getvalue()
