"""``companyos allocate``: record a CIDR for every VPC that lacks one in ``catalog/networks.yaml``.

First fit, lowest address first; releases entries whose tenant is gone; every other line of
the file stays byte-for-byte as it was (ruamel round-trip), so a review sees one line per VPC.
"""

from __future__ import annotations

import io
import ipaddress
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from generator.catalog import spec
from generator.catalog.load import Catalog, load_catalog
from generator.errors import CatalogError, CatalogErrors
from generator.model import naming, networks
from generator.model.references import check_references
from generator.output.atomic import write_atomic


def allocate(root: Path, *, write: bool = True) -> list[str]:
    """Record a CIDR for every VPC that lacks one and release allocations that refer to
    nothing; return one line per change. Raises CatalogErrors for any other catalog
    mistake, or when an environment's space is full (nothing is written then)."""
    catalog = load_catalog(root)  # references run below, minus what allocating fixes
    fixable = {
        *networks.stale_errors(catalog),
        *networks.missing_errors(catalog),
        *networks.stale_cell_errors(catalog),
        *networks.missing_cell_errors(catalog),
    }
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
    cell_changes = _assign_cells(catalog, nets, lines, sink)
    if sink:
        raise CatalogErrors(sink)
    if (changes or cell_changes) and write:
        path = root / networks.NETWORKS_PATH
        write_atomic(path, _edited(path.read_text(encoding="utf-8"), changes, cell_changes))
    return lines


def headroom(root: Path) -> list[str]:
    """One line per environment: how many more dedicated VPCs its primary space holds (run
    after :func:`allocate`, so it counts what was just recorded)."""
    entry = networks.networks_entry(load_catalog(root))
    if entry is None:
        return []
    nets: spec.Networks = entry.spec
    return [
        f"{env}: room for {networks.free_vpcs(nets, env)} more dedicated /{nets.vpc_prefix} VPCs in {block.primary}"
        for env, block in nets.environments.items()
    ]


def _assign_cells(catalog: Catalog, nets: spec.Networks, lines: list[str], sink: list[CatalogError]) -> list[tuple[str, str, str | None]]:
    """Release cell records of departed tenants and put each unrecorded tenant of a
    several-cell environment in the first cell (declaration order) with room. Recorded
    tenants never move here: that is ``companyos move-tenant``'s job."""
    changes: list[tuple[str, str, str | None]] = []
    for env, block in nets.environments.items():
        if env not in catalog.environments:
            continue
        for tenant, cell in block.cells.items():
            if networks.stale_cell_reason(catalog, env, tenant):
                changes.append((env, tenant, None))
                lines.append(f"{env}: released {tenant} from cell {cell}")
    for env, env_entry in sorted(catalog.environments.items()):
        cells = networks.cells(env_entry.spec)
        if len(cells) < 2 or env not in nets.environments:
            continue
        recorded = {t: c for t, c in nets.environments[env].cells.items() if (env, t, None) not in changes}
        load = {c.name: sum(1 for v in recorded.values() if v == c.name) for c in cells}
        for tenant in networks.tenants_in(catalog, env):
            if tenant in recorded:
                continue
            home = next((c for c in cells if load[c.name] < c.max_tenants), None)
            if home is None:
                sink.append(
                    CatalogError(
                        env_entry.locate("cells"),
                        f"no cell of '{env}' has room for tenant '{tenant}' (all {len(cells)} cells are full); add a cell or raise max_tenants",
                    )
                )
                continue
            load[home.name] += 1
            recorded[tenant] = home.name
            changes.append((env, tenant, home.name))
            lines.append(f"{env}: {tenant} -> cell {home.name}")
    return changes


def _edited(text: str, changes: Sequence[tuple[str, str, str | None]], cell_changes: Sequence[tuple[str, str, str | None]] = ()) -> str:
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
    for env, tenant, cell in cell_changes:
        block = data["environments"][env]
        set_cell(block, tenant, cell)
    out = io.StringIO()
    yaml.dump(data, out)
    return out.getvalue()


def set_cell(block: Any, tenant: str, cell: str | None) -> None:
    """Record (or, with None, drop) ``tenant``'s cell in a ruamel environment block, keeping
    the records sorted by tenant: two branches that each onboard a tenant then insert at
    different lines, so git merges them without a conflict."""
    from ruamel.yaml.comments import CommentedMap

    records = block.get("cells")
    if records is None:
        records = block["cells"] = CommentedMap()
    if cell is None:
        records.pop(tenant, None)
        return
    if tenant in records:
        records[tenant] = cell
        return
    position = sum(1 for existing in records if existing < tenant)
    records.insert(position, tenant, cell)
