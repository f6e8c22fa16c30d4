"""``companyos flag SERVICE FLAG --env ENV [--tenant T] --set VARIANT | --kill``: the catalog
edit that switches a feature flag, decided without writing.

Without ``--tenant`` the environment's layer changes (``environments/<env>.yaml``
``settings.services.<service>.flags.<flag>``), so every tenant of the environment that runs
the service serves the new variant (unless its own layer overrides it); with ``--tenant``
only that tenant's override for the environment (``tenants/<t>.yaml``
``overrides.<env>.services...``). ``--set`` names a variant (and re-enables a killed flag);
``--kill`` sets ``state: DISABLED`` (flagd answers FLAG_DISABLED and the code's default is
used, whatever the targeting rules say). Where a targeting rule decides what a deployment of
the scope serves, ``--set`` also writes ``targeting: []`` in the same layer: "this scope
serves VARIANT" holds after the edit, rather than a rule silently overruling it. Refused: an unknown service, flag, environment, tenant or variant, a tenant that does
not run the service there. The write and re-render is ``lifecycle/flags.py``: a reviewed
one-line diff that Argo CD applies within a sync, not a hidden toggle.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.representer import RoundTripRepresenter
from ruamel.yaml.scalarstring import DoubleQuotedScalarString

from generator import pipeline
from generator.catalog import spec
from generator.errors import UsageError
from generator.model import flag_targeting
from generator.model.resolve import Deployment, Model


@dataclass(frozen=True)
class FlagChange:
    service: str
    flag: str
    env: str
    tenant: str | None
    #: ``{"default_variant": ...}``, ``{"state": ...}``, ``{"targeting": []}``: what the layer sets.
    values: dict[str, Any]
    #: The deployments whose served flag changes (tenant names).
    affected: tuple[str, ...]
    #: Repository-relative catalog file and its new text.
    path: str
    text: str
    unchanged: bool

    def as_json(self) -> dict[str, object]:
        return {
            "service": self.service,
            "flag": self.flag,
            "environment": self.env,
            "tenant": self.tenant,
            "set": self.values,
            "affected": list(self.affected),
            "file": self.path,
            "unchanged": self.unchanged,
        }


def plan(
    root: Path, service: str, flag: str, env: str, *, tenant: str | None = None, variant: str | None = None, kill: bool = False
) -> FlagChange:
    """The edit switching ``flag``; UsageError (nothing written) when refused."""
    if (variant is None) == (not kill):
        raise UsageError("give exactly one of --set VARIANT and --kill; nothing was written")
    model = pipeline.resolve_only(root)
    catalog = model.catalog
    _known("service", service, catalog.services)
    _known("environment", env, catalog.environments)
    if tenant is not None:
        _known("tenant", tenant, catalog.tenants)
    scope = _scope(model, service, env, tenant)
    declared = {name for d in scope for name in d.settings.services[service].flags}
    if flag not in declared:
        raise UsageError(
            f"service '{service}' declares no flag '{flag}' in {env} (declared: {', '.join(sorted(declared)) or 'none'}); nothing was written"
        )
    values: dict[str, Any] = {}
    if kill:
        values["state"] = "DISABLED"
    else:
        assert variant is not None
        for d in scope:
            known = d.settings.services[service].flags[flag].variants
            if variant not in known:
                raise UsageError(
                    f"'{variant}' is not a variant of flag '{flag}' of '{service}' (variants: {', '.join(sorted(known))}); nothing was written"
                )
        values["default_variant"] = variant
        if any(d.settings.services[service].flags[flag].state == "DISABLED" for d in scope):
            values["state"] = "ENABLED"
        if any(_served(d, service, flag).rule is not None for d in scope):
            values["targeting"] = []
    affected = tuple(sorted(d.name for d in scope if _differs(d, service, flag, values)))
    if tenant is None:
        path = catalog.environments[env].path
        keys: tuple[str, ...] = ("settings", "services", service, "flags", flag)
    else:
        path = catalog.tenants[tenant].path
        keys = ("overrides", env, "services", service, "flags", flag)
    text = (root / path).read_text(encoding="utf-8")
    new_text = _edited(text, keys, values)
    return FlagChange(service, flag, env, tenant, values, affected, path, new_text, new_text == text)


def _known(kind: str, name: str, known: dict[str, Any]) -> None:
    if name not in known:
        raise UsageError(f"unknown {kind} '{name}' (known: {', '.join(sorted(known)) or 'none'}); nothing was written")


def _scope(model: Model, service: str, env: str, tenant: str | None) -> list[Deployment]:
    """The deployments the edited layer covers that run ``service``."""
    found = [d for d in model.in_environment(env) if (tenant is None or d.name == tenant) and service in d.settings.services]
    found = [d for d in found if any(s.name == service for s in d.services)]
    if not found:
        who = f"tenant '{tenant}'" if tenant is not None else "no tenant"
        raise UsageError(f"{who} runs service '{service}' in {env}; nothing was written")
    return found


def _served(d: Deployment, service: str, flag: str, settings: spec.FlagSettings | None = None) -> flag_targeting.Served:
    current = settings or d.settings.services[service].flags[flag]
    return flag_targeting.served(current, d.name, d.tier.name, d.env)


def _differs(d: Deployment, service: str, flag: str, values: dict[str, Any]) -> bool:
    """Whether the edit changes what ``d`` serves (its variant, rollout or state)."""
    current = d.settings.services[service].flags[flag]
    edited = current.model_copy(update=values)
    return current.state != edited.state or _served(d, service, flag) != _served(d, service, flag, edited)


def _flow(value: list[Any]) -> CommentedSeq:
    seq = CommentedSeq(value)
    seq.fa.set_flow_style()
    return seq


def _null(representer: RoundTripRepresenter, _: None) -> Any:
    """Keep an explicit ``null`` as written (ruamel would print an empty value): a one-line diff."""
    return representer.represent_scalar("tag:yaml.org,2002:null", "null")


def _edited(text: str, keys: tuple[str, ...], values: dict[str, str]) -> str:
    """The layer file with ``keys`` set to ``values``, comments and layout kept."""
    yaml = YAML(typ="rt")
    yaml.preserve_quotes = True
    yaml.width = 4096
    yaml.indent(mapping=2, sequence=4, offset=2)
    yaml.representer.add_representer(type(None), _null)
    data = yaml.load(text)
    node = data
    for key in keys:
        child = node.get(key)
        if child is None:
            child = CommentedMap()
            node[key] = child
        node = child
    for key, value in values.items():
        # "on"/"off" stay strings for every YAML reader; a list (targeting: []) as a flow list
        node[key] = DoubleQuotedScalarString(value) if isinstance(value, str) else _flow(value)
    out = io.StringIO()
    yaml.dump(data, out)
    return out.getvalue()
