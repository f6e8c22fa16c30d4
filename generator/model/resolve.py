"""The resolved model: what every target reads.

:func:`resolve` merges the layers for each (tenant, environment) pair, validates the resolved
settings and returns a frozen :class:`Model`. It only resolves: the policy stage runs after it
(``pipeline.judge``). Targets never see raw YAML, never read files, and never merge anything
themselves. The one read is the package's own ``defaults.yaml`` (the built-in layer).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from functools import cached_property
from importlib import resources
from typing import Any, cast

from pydantic import BaseModel, ValidationError

from generator.catalog import spec
from generator.catalog.load import Catalog
from generator.catalog.yaml_source import SourceDoc, parse_yaml
from generator.errors import ErrorSink
from generator.model import naming
from generator.model.layers import EMPTY, Layer, Merged, Provenance, apply, in_force

BUILTIN_PATH = "generator/defaults.yaml"


@dataclass(frozen=True)
class Deployment:
    """One tenant in one environment, fully resolved."""

    tenant: spec.Tenant
    environment: spec.Environment
    tier: spec.Tier
    settings: spec.Settings
    provenance: Provenance = field(repr=False)
    services: tuple[spec.Service, ...]
    #: Catalog files every output of this deployment depends on (platform, tier,
    #: environment, tenant); a target adds the service file and templates it uses.
    sources: tuple[str, ...]
    #: The tenant's name, the environment's, whether the tier is dedicated and the tenant's
    #: namespace, set once from the frozen fields above: the targets ask them ~1,500,000
    #: times at 10,000 tenants x 3, ~0.2 s of a one-tenant edit's global unit as properties.
    name: str = field(init=False, repr=False, compare=False)
    env: str = field(init=False, repr=False, compare=False)
    dedicated: bool = field(init=False, repr=False, compare=False)
    namespace: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        derived = {
            "name": self.tenant.name,
            "env": self.environment.name,
            "dedicated": self.tier.isolation == "dedicated",
            "namespace": naming.namespace(self.tenant.name),
        }
        for key, value in derived.items():
            object.__setattr__(self, key, value)  # frozen: set as built

    @property
    def account_id(self) -> str:
        """The AWS account that holds this tenant's data plane in this environment."""
        if self.dedicated:
            return (
                self.tenant.accounts.get(self.env)
                or self.tenant.vended_accounts.get(self.env)
                or naming.vended_account(self.name, self.env)
            )
        return self.environment.accounts.pools[self.tier.name]

    @property
    def vended(self) -> bool:
        """A dedicated account the organization root creates (never imported)."""
        return self.dedicated and self.env not in self.tenant.accounts

    @property
    def account_pending(self) -> bool:
        """Vended and its id not yet recorded (``companyos record-accounts``): Terraform reads it
        from the org state, the Kubernetes side is held (no file may hold a placeholder)."""
        return self.vended and self.env not in self.tenant.vended_accounts

    def public_ingress(self, service: spec.Service) -> bool:
        """Whether ``service`` is published to the internet here: it asks for an ingress and
        this deployment's network allows public ones (Helm ingress, CloudFront + WAF, the
        ingress controller's NetworkPolicy peer and the smoke test all follow this rule)."""
        return service.ingress.enabled and self.settings.network.public_ingress

    def image_tag(self, service: str) -> str:
        pinned = self.settings.services[service].image_tag
        if pinned is not None:
            return pinned
        svc = next(s for s in self.services if s.name == service)
        release = svc.image.releases.get(self.env)
        return release.tag if release is not None else svc.image.tag

    def image_digest(self, service: str) -> str | None:
        """The digest this deployment pulls: a pinned tag's own digest (or none: by tag), else
        the environment's release (``image.releases``); None when the catalog records none."""
        settings = self.settings.services[service]
        if settings.image_tag is not None:
            return settings.image_digest
        svc = next(s for s in self.services if s.name == service)
        release = svc.image.releases.get(self.env)
        return release.digest if release is not None else None

    def image_repository(self, service: str) -> str:
        """A built service (``build``) is pulled from this environment's own ECR copy, where
        the release workflow pushed or ``promote`` copied it; any other image as catalogued."""
        svc = next(s for s in self.services if s.name == service)
        return naming.ecr_repository_url(self.environment, svc.image.repository) if svc.build else svc.image.repository

    def image_ref(self, service: str) -> str:
        """``repository:tag@digest`` when a digest is recorded (the runtime pulls by digest; the
        tag stays for people), else ``repository:tag``."""
        digest = self.image_digest(service)
        ref = f"{self.image_repository(service)}:{self.image_tag(service)}"
        return f"{ref}@{digest}" if digest else ref


@dataclass(frozen=True)
class Model:
    platform: spec.Platform
    #: In promotion order (dev, stage, prod).
    environments: tuple[spec.Environment, ...]
    tiers: dict[str, spec.Tier]
    services: dict[str, spec.Service]
    tenants: dict[str, spec.Tenant]
    #: Sorted by environment promotion order, then tenant name.
    deployments: tuple[Deployment, ...]
    #: (kind, name) -> repository-relative source file.
    sources: dict[tuple[str, str], str]
    templates: dict[str, str] = field(repr=False)
    catalog: Catalog = field(repr=False, compare=False)
    #: (tier or None, environment) -> settings of infrastructure no single tenant owns: a
    #: pool is sized by defaults, tier and environment; the shared control plane (tier
    #: None) by defaults and environment. Tenant layers never size shared things.
    shared_settings: dict[tuple[str | None, str], spec.Settings] = field(default_factory=dict, repr=False)
    #: The tenants whose own files a render produces (None: all): an incremental render
    #: (``output.units``) passes a copy naming the changed ones. Skipping a tenant must never
    #: change another file's bytes (tested).
    rendering: frozenset[str] | None = field(default=None, repr=False, compare=False)

    def renders(self, tenant: str) -> bool:
        """Should this render produce ``tenant``'s own files? (Fleet-wide files: always.)"""
        return self.rendering is None or tenant in self.rendering

    def base_settings(self, tier: str | None, env: str) -> spec.Settings:
        return self.shared_settings[(tier, env)]

    def environment(self, name: str) -> spec.Environment | None:
        return next((e for e in self.environments if e.name == name), None)

    def in_environment(self, env: str) -> tuple[Deployment, ...]:
        return self._by_env.get(env, ())

    def rendered_in(self, env: str) -> tuple[Deployment, ...]:
        """:meth:`in_environment`, only the tenants whose own files this render produces, in
        the same order: an incremental render names a few, and each target's loop over
        10,000 deployments asking :meth:`renders` was ~0.5 s of a one-tenant edit."""
        if self.rendering is None:
            return self.in_environment(env)
        return tuple(d for name in sorted(self.rendering) if (d := self._index.get((name, env))) is not None)

    @property
    def rendered_deployments(self) -> tuple[Deployment, ...]:
        """:attr:`deployments` whose own files this render produces (:meth:`rendered_in`)."""
        if self.rendering is None:
            return self.deployments
        return tuple(d for env in self.environments for d in self.rendered_in(env.name))

    def of_tenant(self, tenant: str) -> tuple[Deployment, ...]:
        """The tenant's deployments in promotion order (indexed: fleet-wide loops stay linear)."""
        return self._by_tenant.get(tenant, ())

    @cached_property
    def _by_env(self) -> dict[str, tuple[Deployment, ...]]:
        out: dict[str, list[Deployment]] = {}
        for d in self.deployments:
            out.setdefault(d.env, []).append(d)
        return {env: tuple(ds) for env, ds in out.items()}

    @cached_property
    def _by_tenant(self) -> dict[str, tuple[Deployment, ...]]:
        out: dict[str, list[Deployment]] = {}
        for d in self.deployments:
            out.setdefault(d.name, []).append(d)
        return {name: tuple(ds) for name, ds in out.items()}

    def deployment(self, tenant: str, env: str) -> Deployment | None:
        return self._index.get((tenant, env))

    @cached_property
    def _index(self) -> dict[tuple[str, str], Deployment]:
        return {(d.name, d.env): d for d in self.deployments}

    def source(self, kind: str, name: str) -> str:
        return self.sources[(kind, name)]


def builtin_doc() -> SourceDoc:
    raw = resources.files("generator").joinpath("defaults.yaml").read_bytes()
    doc, errors = parse_yaml(BUILTIN_PATH, raw)
    if doc is None:  # pragma: no cover - a packaging bug, not a user mistake
        raise RuntimeError("; ".join(map(str, errors)))
    return doc


def promotion_order(envs: dict[str, spec.Environment]) -> list[str]:
    """Environments along the promotion chain (validated by ``references``)."""
    order = [n for n, e in sorted(envs.items()) if e.promotion.after is None]
    remaining = {n for n in envs if n not in order}
    while remaining:
        nxt = sorted(n for n in remaining if envs[n].promotion.after == order[-1])
        if not nxt:
            order.extend(sorted(remaining))
            break
        order.append(nxt[0])
        remaining.discard(nxt[0])
    return order


def resolve(catalog: Catalog, only: Collection[str] | None = None) -> Model:
    """Merge and validate every (tenant, environment); raise CatalogErrors on mistakes.

    Only resolves: policy is the next stage (``pipeline`` runs it), so a caller that needs an
    unjudged model (an old git ref, ``explain`` under failure) simply does not run it.
    ``only``: the deployments of these tenants alone (a partial model, for comparing a few
    tenants' settings with a base commit's; never rendered or judged)."""
    sink = ErrorSink()
    builtin = builtin_doc()
    service_names = sorted(catalog.services)
    defaults = _defaults(builtin, service_names)
    env_specs = {n: e.spec for n, e in catalog.environments.items()}
    order = promotion_order(env_specs)
    with_services = defaults
    for svc in service_names:
        with_services = apply(with_services, Layer(f"service {svc}", catalog.services[svc].doc, ("defaults",), ("services", svc)), defaults)
    bases: dict[tuple[str, str], Merged] = {}
    #: Validated settings of tenants that add nothing to their (tier, environment) base, per
    #: service list: validation is a pure function of the merged values, and most tenants of
    #: a large fleet customise nothing (validating each again was most of resolving 10,000).
    validated: dict[tuple[str, str, tuple[str, ...]], spec.Settings | None] = {}
    sections: dict[int, tuple[Any, BaseModel]] = {}  # for _share_sections
    deployments: list[Deployment] = []
    for env_name in order:
        env_entry = catalog.environments[env_name]
        for tenant_name, tenant_entry in sorted(catalog.tenants.items()):
            tenant: spec.Tenant = tenant_entry.spec
            if env_name not in tenant.environments or (only is not None and tenant_name not in only):
                continue
            tier_entry = catalog.tiers[tenant.tier]
            key = (tenant.tier, env_name)
            if key not in bases:
                merged = apply(with_services, Layer(f"tier {tenant.tier}", tier_entry.doc, ("settings",)), defaults)
                merged = apply(merged, Layer(f"environment {env_name}", env_entry.doc, ("settings",)), defaults)
                bases[key] = merged
            merged = apply(bases[key], Layer(f"tenant {tenant_name}", tenant_entry.doc, ("settings",)), defaults)
            merged = apply(merged, Layer(f"tenant {tenant_name} x {env_name}", tenant_entry.doc, ("overrides", env_name)), defaults)
            if merged is bases[key]:  # the tenant sets nothing here: its settings are its tier's in this environment
                shared = (*key, tuple(tenant.services))
                settings = validated.get(shared)
                if settings is None:  # a failure is not kept: each tenant is reported at its own file
                    settings = validated[shared] = _validated(merged, tenant, tenant_entry.doc, sink)
            else:
                settings = _validated(merged, tenant, tenant_entry.doc, sink)
                if settings is not None:
                    settings = _share_sections(settings, merged.values, bases[key].values, sections)
            if settings is None:
                continue
            services = tuple(catalog.services[s].spec for s in tenant.services)
            files = tuple(sorted({catalog.platform.path, tier_entry.path, env_entry.path, tenant_entry.path}))
            deployments.append(Deployment(tenant, env_entry.spec, tier_entry.spec, settings, merged.provenance, services, files))
    shared_settings = _shared_settings(catalog, defaults, order, sink)
    sink.raise_if_any()
    sources = {(kind, name): entry.path for kind, entries in catalog.entries.items() for name, entry in entries.items()}
    model = Model(
        platform=catalog.platform.spec,
        environments=tuple(env_specs[n] for n in order),
        tiers={n: e.spec for n, e in sorted(catalog.tiers.items())},
        services={n: e.spec for n, e in sorted(catalog.services.items())},
        tenants={n: e.spec for n, e in sorted(catalog.tenants.items())},
        deployments=tuple(deployments),
        sources=sources,
        templates=catalog.templates,
        catalog=catalog,
        shared_settings=shared_settings,
    )
    return model


def _shared_settings(catalog: Catalog, defaults: Merged, envs: list[str], sink: ErrorSink) -> dict[tuple[str | None, str], spec.Settings]:
    """Settings of the shared control plane and of every tier's pool, per environment."""
    out: dict[tuple[str | None, str], spec.Settings] = {}
    for env_name in envs:
        env_layer = Layer(f"environment {env_name}", catalog.environments[env_name].doc, ("settings",))
        for tier in (None, *sorted(catalog.tiers)):
            merged = defaults
            if tier is not None:
                merged = apply(merged, Layer(f"tier {tier}", catalog.tiers[tier].doc, ("settings",)), defaults)
            merged = apply(merged, env_layer, defaults)
            values = {**merged.values, "services": {}}
            try:
                out[(tier, env_name)] = spec.Settings.model_validate(values)
            except ValidationError as exc:
                owner = f"tier {tier}" if tier else "the shared control plane"
                _report_invalid(exc, merged, catalog.environments[env_name].path, f"{owner} in {env_name}", sink)
    return out


def _defaults(builtin: SourceDoc, services: list[str]) -> Merged:
    merged = apply(EMPTY, Layer("built-in defaults", builtin, ("settings",)), EMPTY)
    for svc in services:
        merged = apply(merged, Layer("built-in defaults", builtin, ("service_defaults",), ("services", svc)), EMPTY)
    return merged


def _share_sections(
    settings: spec.Settings, values: dict[str, Any], base: dict[str, Any], seen: dict[int, tuple[Any, BaseModel]]
) -> spec.Settings:
    """``settings`` with each section (and service) the tenant left as its base's replaced by
    one shared validated instance. A layer copies only the mappings it writes into, so an
    untouched section is the base's very dict, and validation is a pure function of it
    (models are frozen; no validator looks across sections). At 10,000 tenants x 3 one
    copy per deployment was ~45 MB. ``seen``: id of a base's dict -> (it, its model)."""

    def shared(source: Any, model: BaseModel) -> BaseModel:
        kept = seen.setdefault(id(source), (source, model))  # the dict is kept: its id stays its own
        return kept[1] if kept[0] is source else model

    for name in spec.Settings.model_fields:
        if name == "services":
            own, theirs = values.get("services", {}), base.get("services", {})
            for svc, model in settings.services.items():
                if own.get(svc) is theirs.get(svc) is not None:
                    settings.services[svc] = cast(spec.ServiceSettings, shared(own[svc], model))
        elif values.get(name) is base.get(name) is not None:
            settings.__dict__[name] = shared(values[name], getattr(settings, name))  # frozen: set as built
    return settings


def _validated(merged: Merged, tenant: spec.Tenant, doc: SourceDoc, sink: ErrorSink) -> spec.Settings | None:
    values: dict[str, Any] = dict(merged.values)
    values["services"] = {s: values["services"][s] for s in tenant.services if s in values.get("services", {})}
    try:
        return spec.Settings.model_validate(values)
    except ValidationError as exc:
        _report_invalid(exc, merged, doc.path, f"tenant '{tenant.name}'", sink)
        return None


def _report_invalid(exc: ValidationError, merged: Merged, fallback: str, subject: str, sink: ErrorSink) -> None:
    """Each problem of a resolved tree, at the file:line of the layer whose value is in force."""
    for err in exc.errors(include_url=False):
        path = ".".join(str(p) for p in err["loc"])
        sink.add(in_force(merged.provenance, path, fallback), f"resolved setting {path} for {subject}: {err['msg']}")
