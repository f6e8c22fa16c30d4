"""Platform add-ons (``catalog/addons/*.yaml``): the cross-file checks and the names both
targets derive from them.

The Argo CD Applications (``targets/addons.py``) and the IRSA roles of the shared Terraform
root must agree on the role name and on how placeholders are filled; both live here, below
the targets. The checks run with the other reference checks, so a bad add-on is a
``path:line:col`` error before anything is rendered.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

from generator.catalog import spec
from generator.catalog.load import Catalog, Entry
from generator.errors import CatalogError
from generator.model import naming

#: IAM role names stop at 64 characters.
MAX_ROLE_NAME = 64
#: Namespaces the generator hands out to tenants and previews; an add-on may not take one.
RESERVED_PREFIXES = ("tenant-", "pr-")
#: Placeholders only Terraform knows (the zone id is a resource attribute, not a catalog value).
TERRAFORM_ONLY = frozenset({"zone_id"})
_PLACEHOLDER = re.compile(r"\{([a-z_]+)\}")


def addons(catalog: Catalog) -> dict[str, Entry[spec.Addon]]:
    return catalog.of("addon")


def in_environment(catalog: Catalog, env: str) -> list[spec.Addon]:
    """The add-ons installed in ``env``, ordered by sync wave, then name."""
    chosen = [e.spec for e in addons(catalog).values() if e.spec.environments is None or env in e.spec.environments]
    return sorted(chosen, key=lambda a: (a.sync_wave, a.name))


def role_name(platform: spec.Platform, env: str, addon: str) -> str:
    """The IRSA role of an add-on's service account in one environment."""
    return f"{platform.organization}-{env}-addon-{addon}"


def role_arn(account_id: str, platform: spec.Platform, env: str, addon: str) -> str:
    return f"arn:aws:iam::{account_id}:role/{role_name(platform, env, addon)}"


def subject(addon: spec.Addon) -> str:
    """``<namespace>:<service account>``, what the role's trust policy names exactly."""
    assert addon.service_account is not None
    return f"{addon.namespace}:{addon.service_account}"


def placeholders(platform: spec.Platform, env: spec.Environment) -> dict[str, str]:
    """The values known at render time (``zone_id`` is filled by Terraform)."""
    return {
        "region": env.aws.region,
        "account": env.accounts.shared_services,
        "env": env.name,
        "cluster": naming.cluster_name(platform, env.name),
        "org": platform.organization,
        "domain": env.domain,
    }


#: S3 bucket names stop at 63 characters.
MAX_BUCKET_NAME = 63
#: The chart of the node-local OpenTelemetry collector the services send OTLP to.
COLLECTOR_CHART = "opentelemetry-collector"
#: OTLP over HTTP (the SDKs' ``http/protobuf``) and gRPC, the chart's default receiver ports.
OTLP_HTTP_PORT = 4318
OTLP_GRPC_PORT = 4317


def bucket_name(platform: spec.Platform, env: spec.Environment, addon: str, bucket: str) -> str:
    """``<org>-<env>-<addon>-<bucket>-<account>``: the account id keeps it globally unique."""
    return f"{platform.organization}-{env.name}-{addon}-{bucket}-{env.accounts.shared_services}"


def addon_placeholders(platform: spec.Platform, env: spec.Environment, addon: spec.Addon) -> dict[str, str]:
    """``placeholders`` plus ``{bucket_<name>}`` for each of the add-on's own buckets."""
    return {**placeholders(platform, env), **{f"bucket_{b.name}": bucket_name(platform, env, addon.name, b.name) for b in addon.buckets}}


def merged_values(addon: spec.Addon, env: str) -> dict[str, Any]:
    """``values`` with the environment's ``environment_values`` merged over them (mappings
    merge key by key, anything else is replaced)."""
    return _merge(dict(addon.values), addon.environment_values.get(env, {}))


def _merge(base: dict[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        out[key] = _merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def collector(catalog: Catalog, env: str) -> spec.Addon | None:
    """The environment's OpenTelemetry collector add-on, if it installs one."""
    return next((a for a in in_environment(catalog, env) if a.chart.name == COLLECTOR_CHART), None)


def collector_selector(addon: spec.Addon) -> dict[str, str]:
    """The chart's selector labels of the collector's pods (name: chart name, instance: release)."""
    return {"app.kubernetes.io/name": str(addon.values.get("nameOverride") or addon.chart.name), "app.kubernetes.io/instance": addon.name}


def otlp_endpoint(addon: spec.Addon) -> str:
    """The collector's Service, OTLP/HTTP: ``internalTrafficPolicy: Local`` (the chart's default
    for a DaemonSet) keeps each pod's telemetry on its own node."""
    return f"http://{addon.values.get('fullnameOverride') or addon.name}.{addon.namespace}.svc:{OTLP_HTTP_PORT}"


def fill(text: str, known: Mapping[str, str]) -> str:
    """Replace each ``{name}`` in ``known``; anything else (a Go template, say) stays."""
    return _PLACEHOLDER.sub(lambda m: known.get(m.group(1), m.group(0)), text)


def fill_values(value: Any, known: Mapping[str, str]) -> Any:
    """``fill`` through a values tree (keys are left alone)."""
    if isinstance(value, str):
        return fill(value, known)
    if isinstance(value, dict):
        return {k: fill_values(v, known) for k, v in value.items()}
    if isinstance(value, list):
        return [fill_values(v, known) for v in value]
    return value


# --- checks ------------------------------------------------------------------------------------


def check_addons(catalog: Catalog) -> list[CatalogError]:
    return [*_each(catalog), *_crd_owners(catalog), *_subjects(catalog)]


def _each(catalog: Catalog) -> Iterator[CatalogError]:
    tenants = {naming.namespace(t): t for t in catalog.tenants}
    longest_env = max((len(e) for e in catalog.environments), default=0)
    org = catalog.platform.spec.organization
    for name, entry in sorted(addons(catalog).items()):
        a: spec.Addon = entry.spec
        for i, env in enumerate(a.environments or []):
            if not catalog.defines("environment", env):
                known = ", ".join(sorted(catalog.environments)) or "none defined"
                yield CatalogError(entry.locate("environments", i), f"unknown environment '{env}' (known: {known})")
        if a.namespace in tenants:
            yield CatalogError(entry.locate("namespace"), f"namespace '{a.namespace}' is tenant {tenants[a.namespace]}'s namespace")
        elif a.namespace.startswith(RESERVED_PREFIXES):
            yield CatalogError(
                entry.locate("namespace"),
                f"namespace '{a.namespace}': prefixes {', '.join(RESERVED_PREFIXES)} are reserved for tenants and previews",
            )
        for env in a.environment_values:
            if not catalog.defines("environment", env):
                known = ", ".join(sorted(catalog.environments)) or "none defined"
                yield CatalogError(entry.locate("environment_values", env, key=True), f"unknown environment '{env}' (known: {known})")
        yield from _buckets(catalog, entry)
        if a.iam_policy and a.service_account is None:
            yield CatalogError(entry.locate("iam_policy"), "iam_policy needs service_account: the role is assumed by that service account")
        if a.service_account is not None and not a.iam_policy and not a.buckets:
            yield CatalogError(
                entry.locate("service_account"), "service_account gets an IRSA role; give it an iam_policy (or drop service_account)"
            )
        if a.service_account is not None and len(f"{org}--addon-{name}") + longest_env > MAX_ROLE_NAME:
            yield CatalogError(
                entry.locate("name"),
                f"IRSA role name '{role_name(catalog.platform.spec, 'x' * longest_env, name)}' would exceed {MAX_ROLE_NAME} characters",
            )
        yield from _statements(entry)
        yield from _value_placeholders(entry, entry.doc.data.get("values"), ("values",))
        for env, over in (entry.doc.data.get("environment_values") or {}).items():
            yield from _value_placeholders(entry, over, ("environment_values", env))


def _buckets(catalog: Catalog, entry: Entry[spec.Addon]) -> Iterator[CatalogError]:
    """Buckets need the role that may use them, a unique name, a Glacier move before expiry,
    and a name within S3's limit in the longest environment."""
    a = entry.spec
    longest = max((len(e) for e in catalog.environments), default=0)
    seen: set[str] = set()
    for i, b in enumerate(a.buckets):
        if a.service_account is None:
            yield CatalogError(entry.locate("buckets", i), "buckets need service_account: its IRSA role is what may read and write them")
        if b.name in seen:
            yield CatalogError(entry.locate("buckets", i, "name"), f"bucket '{b.name}' is declared twice")
        seen.add(b.name)
        if b.glacier_after_days is not None and b.glacier_after_days >= b.expire_after_days:
            yield CatalogError(
                entry.locate("buckets", i, "glacier_after_days"),
                f"glacier_after_days ({b.glacier_after_days}) must be below expire_after_days ({b.expire_after_days})",
            )
        length = len(f"{catalog.platform.spec.organization}--{a.name}-{b.name}-") + longest + 12
        if length > MAX_BUCKET_NAME:
            yield CatalogError(entry.locate("buckets", i, "name"), f"bucket name would be {length} characters; S3 allows {MAX_BUCKET_NAME}")


def _statements(entry: Entry[spec.Addon]) -> Iterator[CatalogError]:
    seen: dict[str, int] = {}
    for i, st in enumerate(entry.spec.iam_policy):
        if st.sid in seen:
            yield CatalogError(entry.locate("iam_policy", i, "sid"), f"duplicate sid '{st.sid}' (also statement {seen[st.sid] + 1})")
        seen.setdefault(st.sid, i)
        texts: list[tuple[tuple[str | int, ...], str]] = [(("iam_policy", i, "resources", j), r) for j, r in enumerate(st.resources)]
        texts += [(("iam_policy", i, "conditions", k, "values", j), v) for k, c in enumerate(st.conditions) for j, v in enumerate(c.values)]
        for keypath, text in texts:
            for unknown in sorted(set(_PLACEHOLDER.findall(text)) - set(spec.ADDON_PLACEHOLDERS)):
                yield CatalogError(
                    entry.locate(*keypath),
                    f"unknown placeholder {{{unknown}}}; known: {', '.join('{' + p + '}' for p in spec.ADDON_PLACEHOLDERS)}",
                )


def _value_placeholders(entry: Entry[spec.Addon], value: Any, keypath: tuple[str | int, ...]) -> Iterator[CatalogError]:
    if isinstance(value, str):
        found = set(_PLACEHOLDER.findall(value))
        for name in sorted(found & TERRAFORM_ONLY):
            yield CatalogError(entry.locate(*keypath), f"{{{name}}} is only known to Terraform; it cannot be used in Helm values")
        mine = {f"bucket_{b.name}" for b in entry.spec.buckets}
        for name in sorted(n for n in found if n.startswith("bucket_") and n not in mine):
            known = ", ".join("{" + m + "}" for m in sorted(mine)) or "none: declare it under buckets"
            yield CatalogError(entry.locate(*keypath), f"{{{name}}} names no bucket of this add-on (known: {known})")
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from _value_placeholders(entry, v, (*keypath, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _value_placeholders(entry, v, (*keypath, i))


def _crd_owners(catalog: Catalog) -> Iterator[CatalogError]:
    """One add-on per CRD kind: two charts installing one CRD fight over it on every sync."""
    owner: dict[str, Entry[spec.Addon]] = {}
    for _, entry in sorted(addons(catalog).items()):
        for i, kind in enumerate(entry.spec.provides_crds):
            first = owner.setdefault(kind, entry)
            if first is not entry:
                yield CatalogError(
                    entry.locate("provides_crds", i), f"CRD kind {kind} is already provided by add-on '{first.spec.name}' ({first.path})"
                )
            elif entry.spec.provides_crds.index(kind) != i:
                yield CatalogError(entry.locate("provides_crds", i), f"CRD kind {kind} is listed twice")


def _subjects(catalog: Catalog) -> Iterator[CatalogError]:
    """Two roles trusting one service account would make the effective policy ambiguous."""
    seen: dict[str, str] = {}
    for name, entry in sorted(addons(catalog).items()):
        if entry.spec.service_account is None:
            continue
        sub = subject(entry.spec)
        if sub in seen:
            yield CatalogError(entry.locate("service_account"), f"service account {sub} already has add-on '{seen[sub]}''s IRSA role")
        seen.setdefault(sub, name)
