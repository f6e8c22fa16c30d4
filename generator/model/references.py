"""Cross-file checks: every name one file uses must be defined by another.

Each file was already validated on its own by ``load``; here we look across files (a
tenant's tier exists, its overrides name its own environments, a dedicated tenant has an
account per environment, ...). Every problem is reported with the location of the
reference, all at once.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator, Mapping
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from generator.catalog import spec
from generator.catalog.changewindow import cron_problem
from generator.catalog.load import Catalog, Entry
from generator.errors import CatalogError, Location
from generator.model import admission, naming
from generator.model.addons import check_addons
from generator.model.layers import lookup
from generator.model.name_registry import check_names
from generator.model.networks import check_networks


def check_references(catalog: Catalog, *, names: bool = True) -> list[CatalogError]:
    """Every cross-file check; ``names``: the name clashes too (the slowest: a caller may
    check them apart, ``pipeline.resolve_named``). Errors are sorted when raised
    (``CatalogErrors``): the order here does not matter."""
    return [
        *_environments(catalog),
        *_tiers(catalog),
        *_services(catalog),
        *_releases(catalog),
        *_flag_targeting(catalog),
        *admission.waiver_errors(catalog),
        *_tenants(catalog),
        *check_networks(catalog),
        *_kubernetes_names(catalog),
        *(check_names(catalog) if names else ()),
        *check_addons(catalog),
    ]


def _err(location: Location, message: str) -> CatalogError:
    return CatalogError(location, message)


def _unknown(kind: str, name: str, known: Mapping[str, object]) -> str:
    options = ", ".join(sorted(known)) or "none defined"
    return f"unknown {kind} '{name}' (known: {options})"


def _settings_services(
    catalog: Catalog, layer: spec.SettingsLayer | None, entry: Entry[spec.Environment] | Entry[spec.Tier], keypath: tuple[str, ...]
) -> Iterator[CatalogError]:
    if layer is None or not layer.services:
        return
    for name in layer.services:
        if not catalog.defines("service", name):
            yield _err(entry.locate(*keypath, "services", name, key=True), _unknown("service", name, catalog.services))


def _environments(catalog: Catalog) -> Iterator[CatalogError]:
    envs = catalog.environments
    for _name, entry in envs.items():
        env: spec.Environment = entry.spec
        if env.aws.region not in env.aws.allowed_regions:
            yield _err(entry.locate("aws", "region"), f"region '{env.aws.region}' is not in this environment's allowed_regions")
        if env.aws.dr_region == env.aws.region:
            yield _err(entry.locate("aws", "dr_region"), "dr_region must differ from region")
        if env.aws.dr_region not in env.aws.allowed_regions:
            yield _err(entry.locate("aws", "dr_region"), f"DR region '{env.aws.dr_region}' is not in this environment's allowed_regions")
        if env.promotion.after is not None and not catalog.defines("environment", env.promotion.after):
            yield _err(entry.locate("promotion", "after"), _unknown("environment", env.promotion.after, envs))
        if env.log_retention.min_days > env.log_retention.max_days:
            yield _err(entry.locate("log_retention"), "log_retention.min_days is greater than max_days")
        for tier in env.accounts.pools:
            if not catalog.defines("tier", tier):
                yield _err(entry.locate("accounts", "pools", tier, key=True), _unknown("tier", tier, catalog.tiers))
        if env.change_window is not None:
            try:
                ZoneInfo(env.change_window.timezone)
            except (ZoneInfoNotFoundError, ValueError):
                yield _err(entry.locate("change_window", "timezone"), f"unknown time zone '{env.change_window.timezone}'")
            problem = cron_problem(env.change_window.schedule)
            if problem:
                yield _err(
                    entry.locate("change_window", "schedule"),
                    f"change_window.schedule '{env.change_window.schedule}' is not a cron schedule Argo CD can use: {problem}",
                )
        if env.disaster_recovery is not None:
            for key in ("region_drill_schedule", "chaos_schedule"):
                expr = getattr(env.disaster_recovery, key)
                problem = cron_problem(expr)
                if problem:
                    yield _err(
                        entry.locate("disaster_recovery", key), f"disaster_recovery.{key} '{expr}' is not a cron schedule: {problem}"
                    )
            yield from _active_tenants(catalog, entry)
        yield from _settings_services(catalog, env.settings, entry, ("settings",))
    yield from _promotion_chain(catalog)


def _active_tenants(catalog: Catalog, entry: Entry[spec.Environment]) -> Iterator[CatalogError]:
    """``disaster_recovery.active_tenants``: dedicated tenants deployed to this environment, once
    each. A pooled tenant shares its database with the pool: failing it over moves every tenant
    of the pool, which is ``active: true`` (the whole environment)."""
    env = entry.spec
    assert env.disaster_recovery is not None
    seen: set[str] = set()
    for i, name in enumerate(env.disaster_recovery.active_tenants):
        where = entry.locate("disaster_recovery", "active_tenants", i)
        tenant_entry = catalog.tenants.get(name)
        if tenant_entry is None:
            if not catalog.defines("tenant", name):
                yield _err(where, _unknown("tenant", name, catalog.tenants))
            continue
        tenant = tenant_entry.spec
        tier = catalog.tiers.get(tenant.tier)
        if name in seen:
            yield _err(where, f"tenant '{name}' is listed more than once in disaster_recovery.active_tenants")
        elif env.name not in tenant.environments:
            yield _err(where, f"tenant '{name}' is not deployed to environment '{env.name}'")
        elif tier is not None and tier.spec.isolation != "dedicated":
            yield _err(
                where,
                f"tenant '{name}' is in the pooled tier '{tenant.tier}': its database is shared with the pool, so it fails "
                "over only with the whole environment (disaster_recovery.active: true)",
            )
        seen.add(name)


def promotion_chain_errors(catalog: Catalog) -> list[CatalogError]:
    """The promotion-chain problems alone (policy rule CO011 reports them too)."""
    return list(_promotion_chain(catalog))


def _promotion_chain(catalog: Catalog) -> Iterator[CatalogError]:
    """Environments must form one chain: exactly one first, each promoted to by at most one."""
    envs = catalog.environments
    if not envs:
        return
    firsts = [n for n, e in envs.items() if e.spec.promotion.after is None]
    followers: dict[str, list[str]] = {}
    for name, entry in envs.items():
        if entry.spec.promotion.after is not None:
            followers.setdefault(entry.spec.promotion.after, []).append(name)
    if len(firsts) != 1:
        where = envs[firsts[1]].locate("promotion") if len(firsts) > 1 else next(iter(envs.values())).locate("promotion")
        yield _err(
            where,
            f"environments must form one promotion chain with exactly one first environment; found {len(firsts)}: {', '.join(sorted(firsts)) or 'none'}",
        )
        return
    for parent, children in sorted(followers.items()):
        if len(children) > 1:
            second = sorted(children)[1]
            yield _err(
                envs[second].locate("promotion", "after"),
                f"'{parent}' is promoted to by more than one environment ({', '.join(sorted(children))}); promotion must be a chain",
            )
    seen, current = set(), firsts[0]
    while current in followers and current not in seen:
        seen.add(current)
        current = sorted(followers[current])[0]
    seen.add(current)
    for name in sorted(set(envs) - seen):
        yield _err(
            envs[name].locate("promotion", "after"),
            f"environment '{name}' is not reachable from '{firsts[0]}' in the promotion chain (cycle?)",
        )


def _tiers(catalog: Catalog) -> Iterator[CatalogError]:
    for _name, entry in catalog.tiers.items():
        tier: spec.Tier = entry.spec
        for path, rail in tier.guardrails.items():
            if not settings_path_exists(path):
                yield _err(entry.locate("guardrails", path, key=True), f"guardrail names '{path}', which is not a settings path")
            for env in rail.environments or []:
                if not catalog.defines("environment", env):
                    yield _err(entry.locate("guardrails", path, "environments"), _unknown("environment", env, catalog.environments))
        yield from _settings_services(catalog, tier.settings, entry, ("settings",))


def settings_path_exists(dotted: str) -> bool:
    """True when ``dotted`` names a field of the settings tree (``services.*`` allowed)."""
    return spec.annotation_at(spec.Settings, dotted.split(".")) is not None


def _services(catalog: Catalog) -> Iterator[CatalogError]:
    charts = catalog.platform.spec.charts
    for _name, entry in catalog.services.items():
        svc: spec.Service = entry.spec
        if svc.chart not in charts:
            yield _err(entry.locate("chart"), _unknown("chart", svc.chart, charts))
        port_names = {p.name for p in svc.ports}
        if svc.probes:
            for probe_name in ("readiness", "liveness", "startup"):
                probe = getattr(svc.probes, probe_name)
                if probe is not None and probe.port not in port_names:
                    yield _err(
                        entry.locate("probes", probe_name, "port"),
                        f"probe port '{probe.port}' is not one of the service's ports ({', '.join(sorted(port_names)) or 'none'})",
                    )
        if svc.canary:
            weights = [step.weight for step in svc.canary.steps]
            if any(b <= a for a, b in itertools.pairwise(weights)):
                yield _err(entry.locate("canary", "steps"), f"canary step weights must increase strictly; got {weights}")
            if weights[-1] != 100:
                yield _err(entry.locate("canary", "steps"), "the last canary step must reach weight 100")


def _flag_layers(catalog: Catalog) -> Iterator[tuple[Entry[Any], tuple[str, ...], Any]]:
    """Every place a layer declares flags: (file, keypath of its ``flags`` map, that map)."""
    for service in catalog.services.values():
        yield service, ("defaults", "flags"), lookup(service.doc.data, ("defaults", "flags"))
    layered: list[tuple[Entry[Any], tuple[str, ...]]] = []
    for kind in (catalog.tiers, catalog.environments, catalog.tenants):
        layered += [(e, ("settings",)) for e in kind.values()]
    for tenant in catalog.tenants.values():
        overrides = lookup(tenant.doc.data, ("overrides",))
        layered += [(tenant, ("overrides", str(env))) for env in (overrides if isinstance(overrides, dict) else {})]
    for entry, base in layered:
        services = lookup(entry.doc.data, (*base, "services"))
        for name in services if isinstance(services, dict) else {}:
            keypath = (*base, "services", name, "flags")
            yield entry, keypath, lookup(entry.doc.data, keypath)


def _flag_targeting(catalog: Catalog) -> Iterator[CatalogError]:
    """A flag's targeting rules name tenants, tiers and environments that exist (reported at
    the name, in whichever layer wrote the rule)."""
    kinds = (
        ("tenants", "tenant", catalog.tenants),
        ("tiers", "tier", catalog.tiers),
        ("environments", "environment", catalog.environments),
    )
    for entry, keypath, flags in _flag_layers(catalog):
        for flag, settings in (flags if isinstance(flags, dict) else {}).items():
            rules = settings.get("targeting") if isinstance(settings, dict) else None
            for i, rule in enumerate(rules if isinstance(rules, list) else ()):
                for field, kind, known in kinds:
                    names = rule.get(field) if isinstance(rule, dict) else None
                    for j, name in enumerate(names if isinstance(names, list) else ()):
                        if isinstance(name, str) and not catalog.defines(kind, name):
                            yield _err(entry.locate(*keypath, flag, "targeting", i, field, j), _unknown(kind, name, known))


def _releases(catalog: Catalog) -> Iterator[CatalogError]:
    """``image.releases`` name known environments, and a release moves only along the
    promotion chain: an environment runs a release only if the one it is promoted from does."""
    envs = catalog.environments
    for _name, entry in catalog.services.items():
        svc: spec.Service = entry.spec
        for env, _release in svc.image.releases.items():
            where = entry.locate("image", "releases", env, key=True)
            if env not in envs:
                yield _err(where, _unknown("environment", env, envs))
                continue
            after = envs[env].spec.promotion.after
            if after is not None and after in envs and after not in svc.image.releases:
                yield _err(
                    where,
                    f"{env} runs a release of '{svc.name}' but {after}, which {env} is promoted from, has none: "
                    f"a promotion cannot skip {after} (record {after}'s first)",
                )


def _tenants(catalog: Catalog) -> Iterator[CatalogError]:
    envs, tiers, services = catalog.environments, catalog.tiers, catalog.services
    account_owner: dict[str, str] = {}
    for _env_name, env_entry in envs.items():
        accounts = env_entry.spec.accounts
        account_owner.setdefault(accounts.shared_services, f"{env_entry.path} shared_services")
        for tier, account in accounts.pools.items():
            account_owner.setdefault(account, f"{env_entry.path} pools.{tier}")
    for _name, entry in catalog.tenants.items():
        tenant: spec.Tenant = entry.spec
        tier_entry = tiers.get(tenant.tier)
        if tier_entry is None and not catalog.defines("tier", tenant.tier):
            yield _err(entry.locate("tier"), _unknown("tier", tenant.tier, tiers))
        for i, env in enumerate(tenant.environments):
            if not catalog.defines("environment", env):
                yield _err(entry.locate("environments", i), _unknown("environment", env, envs))
        if len(set(tenant.environments)) != len(tenant.environments):
            yield _err(entry.locate("environments"), "environments are listed more than once")
        for i, svc in enumerate(tenant.services):
            if not catalog.defines("service", svc):
                yield _err(entry.locate("services", i), _unknown("service", svc, services))
        if len(set(tenant.services)) != len(tenant.services):
            yield _err(entry.locate("services"), "services are listed more than once")
        for env in tenant.overrides:
            if env not in tenant.environments:
                yield _err(
                    entry.locate("overrides", env, key=True), f"override for environment '{env}', which this tenant is not deployed to"
                )
            yield from _tenant_services(tenant, tenant.overrides[env], entry, ("overrides", env))
        yield from _tenant_services(tenant, tenant.settings, entry, ("settings",))
        dedicated = tier_entry is not None and tier_entry.spec.isolation == "dedicated"
        for env in tenant.accounts:
            if env not in tenant.environments:
                yield _err(
                    entry.locate("accounts", env, key=True), f"account for environment '{env}', which this tenant is not deployed to"
                )
        for env in tenant.environments:
            if env not in envs:
                continue
            if dedicated and env not in tenant.accounts and catalog.platform.spec.aws_organization is None:
                yield _err(
                    entry.locate("accounts") if tenant.accounts else entry.locate("tier"),
                    f"tier '{tenant.tier}' is dedicated: the tenant needs its own AWS account for '{env}' under accounts "
                    "(or platform.yaml aws_organization, which vends one)",
                )
            if not dedicated and tier_entry is not None:
                if env in tenant.accounts:
                    yield _err(
                        entry.locate("accounts", env),
                        f"tier '{tenant.tier}' is pooled: the tenant runs in the pool account, so it must not name its own account",
                    )
                elif tenant.tier not in envs[env].spec.accounts.pools:
                    yield _err(
                        entry.locate("tier"),
                        f"environment '{env}' has no pool account for tier '{tenant.tier}' (environments/{env}.yaml accounts.pools)",
                    )
        for env, account in tenant.accounts.items():
            owner = account_owner.setdefault(account, f"{entry.path} accounts.{env}")
            if owner != f"{entry.path} accounts.{env}":
                yield _err(
                    entry.locate("accounts", env),
                    f"account {account} is already used by {owner}; each dedicated tenant and environment needs its own account",
                )


def _tenant_services(
    tenant: spec.Tenant, layer: spec.SettingsLayer, entry: Entry[spec.Tenant], keypath: tuple[str, ...]
) -> Iterator[CatalogError]:
    if layer is None or not layer.services:
        return
    for svc in layer.services:
        if svc not in tenant.services:
            yield _err(
                entry.locate(*keypath, "services", svc, key=True),
                f"settings for service '{svc}', which this tenant does not run (services: {', '.join(tenant.services)})",
            )


#: A DNS-1123 label: what Kubernetes accepts as a namespace name.
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def _kubernetes_names(catalog: Catalog) -> Iterator[CatalogError]:
    """Every tenant's derived namespace must be a DNS-1123 label of at most 63 characters;
    Kubernetes would refuse it only at sync time, after everything else was applied."""
    for name, entry in catalog.tenants.items():
        namespace = naming.namespace(name)
        if len(namespace) > naming.MAX_LABEL:
            yield _err(
                entry.locate("name"),
                f"namespace '{namespace}' derived from tenant '{name}' is {len(namespace)} characters; Kubernetes allows at most {naming.MAX_LABEL}",
            )
        elif not _DNS_LABEL.fullmatch(namespace):
            yield _err(
                entry.locate("name"),
                f"namespace '{namespace}' derived from tenant '{name}' is not a valid Kubernetes name (lowercase letters, digits and '-')",
            )
