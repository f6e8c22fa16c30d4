"""VPC address plan: ``catalog/networks.yaml``, its checks and the CIDR lookups targets use.

Allocations are a committed record, not a formula (renumbering a VPC destroys it). Each
environment owns equal ``primary`` and ``dr`` spaces; a VPC's DR twin sits at the same offset.
The file is checked on load (malformed or overlapping CIDRs, unknown or missing entries), every
problem with its ``path:line:col``; ``ops.allocate`` fills in what is missing. Why and how:
docs/terraform.md ("Networks").
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Iterable, Iterator, Mapping

from generator.catalog import spec
from generator.catalog.load import Catalog, Entry
from generator.errors import CatalogError, Location
from generator.model import naming

NETWORKS_PATH = "catalog/networks.yaml"
ALLOCATE_HINT = "run `companyos allocate` to assign one"
#: The restore drill's VPC (an environment with ``disaster_recovery``): it lives in the
#: ``dr-verify`` account in the DR region, at its allocation's DR twin; the primary block stays
#: unused, so the drill network overlaps no VPC of either region (docs/resilience.md).
DRILL_VPC = "restore-drill"


#: The file's models live in ``spec`` (so ``companyos schema`` exports them); re-exported here.
EnvironmentNetworks = spec.EnvironmentNetworks
Networks = spec.Networks


# --- what must be allocated ----------------------------------------------------------------


def required_vpcs(catalog: Catalog) -> dict[str, list[str]]:
    """Environment -> VPC keys that need a CIDR, in allocation order (shared, pools, tenants).
    One pass over the tenants for every environment (at 10,000 tenants a sorted pass per
    environment, asked twice a run, was ~0.3 s)."""
    envs = sorted(catalog.environments)
    pools: dict[str, set[str]] = {env: set() for env in envs}
    dedicated: dict[str, list[str]] = {env: [] for env in envs}
    tiers = catalog.tiers
    for name, entry in sorted(catalog.tenants.items()):
        tenant: spec.Tenant = entry.spec
        tier = tiers.get(tenant.tier)
        if tier is None:
            continue
        own = tier.spec.isolation == "dedicated"
        for env in envs:
            if env in tenant.environments:
                if own:
                    dedicated[env].append(naming.tenant_root(name))
                else:
                    pools[env].add(naming.pool_root(tenant.tier))
    out: dict[str, list[str]] = {}
    for env in envs:
        drill = [DRILL_VPC] if catalog.environments[env].spec.disaster_recovery is not None else []
        out[env] = [naming.SHARED_ROOT, *sorted(pools[env]), *dedicated[env], *drill]
    return out


def stale_reason(catalog: Catalog, env: str, key: str) -> str | None:
    """Why the allocation ``key`` in ``env`` refers to nothing, or None when it is fine."""
    if key == DRILL_VPC:
        environment = catalog.environments.get(env)
        if environment is not None and environment.spec.disaster_recovery is None:
            return f"allocation for the restore drill's VPC, but '{env}' declares no disaster_recovery"
        return None
    if key.startswith("tenant-"):
        name = key.removeprefix("tenant-")
        entry = catalog.tenants.get(name)
        if entry is None:
            # a tenant file that failed to load was already reported; do not pile on
            return None if catalog.defines("tenant", name) else f"allocation for unknown tenant '{name}'"
        tier = catalog.tiers.get(entry.spec.tier)
        if tier is not None and tier.spec.isolation != "dedicated":
            return f"allocation for tenant '{name}', whose tier '{entry.spec.tier}' is pooled (it uses pool-{entry.spec.tier})"
        if env not in entry.spec.environments:
            return f"allocation for tenant '{name}', which is not deployed to '{env}'"
    elif key.startswith("pool-"):
        tier_name = key.removeprefix("pool-")
        tier = catalog.tiers.get(tier_name)
        if tier is None:
            return None if catalog.defines("tier", tier_name) else f"allocation for unknown tier '{tier_name}'"
        if tier.spec.isolation != "pooled":
            return f"allocation for tier '{tier_name}', which is dedicated (its tenants get their own VPCs)"
    return None


# --- checks run at load time -------------------------------------------------------------------


def check_networks(catalog: Catalog) -> list[CatalogError]:
    """Every problem with ``catalog/networks.yaml`` (structure, stale and missing entries)."""
    required = required_vpcs(catalog)
    return [
        *_structural(catalog),
        *stale_errors(catalog),
        *missing_errors(catalog, required),
        *missing_spaces(catalog, required),
        *cell_errors(catalog),
        *stale_cell_errors(catalog),
        *missing_cell_errors(catalog),
        *capacity_errors(catalog),
    ]


def networks_entry(catalog: Catalog) -> Entry[spec.Networks] | None:
    return catalog.single("networks")


def _structural(catalog: Catalog) -> Iterator[CatalogError]:
    entry = networks_entry(catalog)
    if entry is None:
        return
    nets: Networks = entry.spec
    for env, block in nets.environments.items():
        if env not in catalog.environments and not catalog.defines("environment", env):
            yield CatalogError(
                entry.locate("environments", env, key=True),
                f"address space for unknown environment '{env}' (known: {', '.join(sorted(catalog.environments)) or 'none'})",
            )
        primary, dr = parsed_network(block.primary), parsed_network(block.dr)
        if primary.prefixlen != dr.prefixlen:
            yield CatalogError(
                entry.locate("environments", env, "dr"), f"dr space {dr} must be the same size as primary {primary} (/{primary.prefixlen})"
            )
        if primary.overlaps(dr):
            yield CatalogError(
                entry.locate("environments", env, "dr"),
                f"dr space {dr} overlaps primary {primary}; the DR region's VPCs must not overlap the primary region's",
            )
        if primary.prefixlen > nets.shared_prefix or primary.prefixlen > nets.vpc_prefix:
            yield CatalogError(
                entry.locate("environments", env, "primary"),
                f"primary space {primary} is smaller than one VPC (/{min(nets.shared_prefix, nets.vpc_prefix)})",
            )
        nets_of = {key: parsed_network(value) for key, value in block.vpcs.items()}
        clash = _any_overlap(nets_of.values())  # one sorted pass; the pairwise messages only when there is one
        seen: list[tuple[ipaddress.IPv4Network, str]] = []
        for key, net in nets_of.items():
            where = entry.locate("environments", env, "vpcs", key)
            if not net.subnet_of(primary):
                yield CatalogError(where, f"{key} {net} is outside the environment's primary space {primary}")
            for other, other_key in seen if clash else ():
                if net.overlaps(other):
                    yield CatalogError(where, f"{key} {net} overlaps {other_key} {other} in '{env}'")
            if net.prefixlen > 24:
                yield CatalogError(where, f"{key} {net} is too small for a VPC with subnets in three zones (at most /24)")
            seen.append((net, key))


def _any_overlap(nets: Iterable[ipaddress.IPv4Network]) -> bool:
    """Whether any two of ``nets`` overlap: sorted by first address, a block overlaps an
    earlier one exactly when it starts before the furthest end seen so far (O(n log n); the
    pairwise loop over 1,000 dedicated VPCs per environment was half a million comparisons)."""
    end = -1
    for first, last in sorted((int(n.network_address), int(n.broadcast_address)) for n in nets):
        if first <= end:
            return True
        end = max(end, last)
    return False


def stale_errors(catalog: Catalog) -> list[CatalogError]:
    """Allocations that name a tenant, tier or environment that no longer needs them."""
    entry = networks_entry(catalog)
    if entry is None:
        return []
    out = []
    for env, block in entry.spec.environments.items():
        if env not in catalog.environments:
            continue
        for key in block.vpcs:
            reason = stale_reason(catalog, env, key)
            if reason:
                out.append(
                    CatalogError(
                        entry.locate("environments", env, "vpcs", key, key=True),
                        f"{reason} in '{env}'; run `companyos allocate` to release it",
                    )
                )
    return out


def missing_errors(catalog: Catalog, required: dict[str, list[str]] | None = None) -> list[CatalogError]:
    """VPCs that need a CIDR and have none recorded (``companyos allocate`` adds them).
    ``required``: :func:`required_vpcs`, when the caller has it."""
    entry = networks_entry(catalog)
    if entry is None:
        return []
    nets: Networks = entry.spec
    out = []
    for env, keys in (required if required is not None else required_vpcs(catalog)).items():
        block = nets.environments.get(env)
        if block is None:
            continue  # reported by missing_spaces: allocate cannot invent an address space
        for key in keys:
            if key in block.vpcs:
                continue
            where = _blame_missing(catalog, env, key) or entry.locate("environments", env, "vpcs", key=True)
            out.append(CatalogError(where, f"no network allocation for {key} in '{env}' ({NETWORKS_PATH}); {ALLOCATE_HINT}"))
    return out


def missing_spaces(catalog: Catalog, required: dict[str, list[str]] | None = None) -> list[CatalogError]:
    """Environments that need VPCs but have no address space in the file."""
    entry = networks_entry(catalog)
    if entry is None:
        return []
    return [
        CatalogError(
            entry.locate("environments", key=True),
            f"no address space for environment '{env}': add environments.{env} with primary and dr CIDRs, then run `companyos allocate`",
        )
        for env in (required if required is not None else required_vpcs(catalog))
        if env not in entry.spec.environments
    ]


def _blame_missing(catalog: Catalog, env: str, key: str) -> Location | None:
    if key.startswith("tenant-"):
        tenant = catalog.tenants.get(key.removeprefix("tenant-"))
        if tenant is not None and env in tenant.spec.environments:
            return tenant.locate("environments", tenant.spec.environments.index(env))
    return None


# --- cells: which cluster of an environment runs a tenant ---------------------------------------

#: The one cell of an environment that declares none (no capacity limit).
DEFAULT_CELL = spec.Cell(name="main", max_tenants=1_000_000)


def cells(env: spec.Environment) -> list[spec.Cell]:
    """The environment's cells in declaration order (the first is the original cluster)."""
    return list(env.cells) or [DEFAULT_CELL]


def cell_cluster(platform: spec.Platform, env: spec.Environment, cell: str) -> str:
    """The EKS cluster of ``cell``: the first cell keeps the environment's cluster name, so
    declaring more cells never renames the cluster every tenant already runs on."""
    base = naming.cluster_name(platform, env.name)
    return base if cell == cells(env)[0].name else f"{base}-{cell}"


def tenants_in(catalog: Catalog, env: str) -> list[str]:
    """Tenants deployed to ``env`` whose files loaded, by name."""
    return sorted(name for name, entry in catalog.tenants.items() if env in entry.spec.environments)


def recorded_cells(catalog: Catalog, env: str) -> Mapping[str, str]:
    """Tenant -> the cell networks.yaml records for it in ``env``: the catalog's own table,
    not a copy (asked once per deployment by the targets; at 10,000 tenants a copy per ask
    was most of the address-plan checks' time)."""
    entry = networks_entry(catalog)
    block = entry.spec.environments.get(env) if entry is not None else None
    return block.cells if block is not None else {}


def tenant_cell(catalog: Catalog, env: str, tenant: str) -> str:
    """The cell ``tenant`` runs in: its record, or the only cell of a single-cell
    environment (no record needed there, so onboarding a tenant adds no line)."""
    environment = catalog.environments[env].spec
    record = recorded_cells(catalog, env).get(tenant)
    return record if record is not None else cells(environment)[0].name


def cell_members(catalog: Catalog, env: str) -> dict[str, list[str]]:
    """Cell -> tenants of ``env`` in it (unknown cells included, so they can be reported).
    In a several-cell environment an unrecorded tenant is in no cell yet (reported missing)."""
    declared = cells(catalog.environments[env].spec)
    out: dict[str, list[str]] = {c.name: [] for c in declared}
    recorded = recorded_cells(catalog, env)
    for tenant in tenants_in(catalog, env):
        if len(declared) > 1 and tenant not in recorded:
            continue
        out.setdefault(tenant_cell(catalog, env, tenant), []).append(tenant)
    return out


def cell_errors(catalog: Catalog) -> list[CatalogError]:
    """Tenants pinned to a cell their environment does not declare."""
    entry = networks_entry(catalog)
    if entry is None:
        return []
    out = []
    for env, block in entry.spec.environments.items():
        if env not in catalog.environments:
            continue
        known = [c.name for c in cells(catalog.environments[env].spec)]
        for tenant, cell in block.cells.items():
            if cell not in known:
                out.append(
                    CatalogError(
                        entry.locate("environments", env, "cells", tenant),
                        f"tenant '{tenant}' is pinned to unknown cell '{cell}' in '{env}' (cells: {', '.join(known)})",
                    )
                )
    return out


def stale_cell_reason(catalog: Catalog, env: str, tenant: str) -> str | None:
    entry = catalog.tenants.get(tenant)
    if entry is None:
        return None if catalog.defines("tenant", tenant) else f"cell record for unknown tenant '{tenant}'"
    if env not in entry.spec.environments:
        return f"cell record for tenant '{tenant}', which is not deployed to '{env}'"
    return None


def stale_cell_errors(catalog: Catalog) -> list[CatalogError]:
    """Cell records of tenants that are gone (``companyos allocate`` releases them)."""
    entry = networks_entry(catalog)
    if entry is None:
        return []
    out = []
    for env, block in entry.spec.environments.items():
        if env not in catalog.environments:
            continue
        for tenant in block.cells:
            reason = stale_cell_reason(catalog, env, tenant)
            if reason:
                where = entry.locate("environments", env, "cells", tenant, key=True)
                out.append(CatalogError(where, f"{reason} in '{env}'; run `companyos allocate` to release it"))
    return out


def missing_cell_errors(catalog: Catalog) -> list[CatalogError]:
    """Tenants of a several-cell environment with no recorded cell (``allocate`` adds them)."""
    entry = networks_entry(catalog)
    if entry is None:
        return []
    out = []
    for env, env_entry in sorted(catalog.environments.items()):
        if len(cells(env_entry.spec)) < 2 or env not in entry.spec.environments:
            continue
        recorded = entry.spec.environments[env].cells
        for tenant in tenants_in(catalog, env):
            if tenant not in recorded:
                where = _blame_missing(catalog, env, naming.tenant_root(tenant)) or entry.locate("environments", env, key=True)
                out.append(CatalogError(where, f"tenant '{tenant}' has no cell in '{env}' ({NETWORKS_PATH}); {ALLOCATE_HINT}"))
    return out


def capacity_errors(catalog: Catalog) -> list[CatalogError]:
    """Cells holding more tenants than their ``max_tenants``."""
    out = []
    for env, env_entry in sorted(catalog.environments.items()):
        members = cell_members(catalog, env)
        for i, cell in enumerate(env_entry.spec.cells):
            count = len(members.get(cell.name, []))
            if count > cell.max_tenants:
                out.append(
                    CatalogError(
                        env_entry.locate("cells", i, "max_tenants"),
                        f"cell '{cell.name}' of '{env}' is over capacity: {count} tenants, max_tenants {cell.max_tenants}; "
                        "raise it, add a cell, or move tenants with `companyos move-tenant`",
                    )
                )
    return out


def free_vpcs(nets: Networks, env: str) -> int:
    """How many more dedicated (``vpc_prefix``) VPCs fit in ``env``'s primary space."""
    block = nets.environments[env]
    primary = parsed_network(block.primary)
    taken = [parsed_network(c) for c in block.vpcs.values()]
    size = 1 << (32 - nets.vpc_prefix)
    used = sum(max(size, t.num_addresses) // size for t in taken if t.subnet_of(primary))
    return max(0, primary.num_addresses // size - used)


# --- what the Terraform target reads ------------------------------------------------------------


@functools.lru_cache(maxsize=1 << 16)
def parsed_network(text: str) -> ipaddress.IPv4Network:
    """``ipaddress.IPv4Network(text)``, parsed once per run and text: at 10,000 tenants x 3
    each VPC's CIDR was parsed ~4 times (~0.3 s). The objects are immutable."""
    return ipaddress.IPv4Network(text)


def vpc_cidr(nets: Networks, env: str, key: str) -> ipaddress.IPv4Network:
    return parsed_network(nets.environments[env].vpcs[key])


def dr_cidr(nets: Networks, env: str, key: str) -> ipaddress.IPv4Network:
    """The VPC's twin in the DR region (see :func:`twin`)."""
    return twin(nets.environments[env], vpc_cidr(nets, env, key))


# --- address arithmetic ----------------------------------------------------------------------


def twin(block: EnvironmentNetworks, net: ipaddress.IPv4Network) -> ipaddress.IPv4Network:
    """``net``'s twin in the DR region: the same offset in the environment's ``dr`` space."""
    primary, dr = parsed_network(block.primary), parsed_network(block.dr)
    return ipaddress.IPv4Network((int(dr.network_address) + int(net.network_address) - int(primary.network_address), net.prefixlen))


def first_free(space: ipaddress.IPv4Network, prefix: int, taken: list[ipaddress.IPv4Network]) -> ipaddress.IPv4Network | None:
    """Lowest aligned /prefix block in ``space`` that overlaps nothing in ``taken``."""
    if prefix < space.prefixlen:
        return None
    size = 1 << (32 - prefix)
    start, end = int(space.network_address), int(space.broadcast_address) + 1
    busy = sorted((int(t.network_address), int(t.broadcast_address) + 1) for t in taken)
    candidate = start
    for lo, hi in busy:
        if candidate + size <= lo:
            break
        if hi > candidate:
            candidate = -(-hi // size) * size  # round up to the block size
    if candidate + size > end:
        return None
    return ipaddress.IPv4Network((candidate, prefix))
