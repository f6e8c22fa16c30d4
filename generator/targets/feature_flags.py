"""OpenFeature flags: a ``FeatureFlag`` and its ``FeatureFlagSource`` per tenant, environment
and service that declares flags (``settings.services.<name>.flags``).

The flags are resolved through the layers like every setting (service defaults, tier,
environment, tenant, tenant override); a flag's ``targeting`` rules (by tenant, tier and
environment) are decided per deployment (``model/flag_targeting.py``), so the rendered flag
set holds exactly what this deployment serves: a variant, or a percentage rollout as flagd's
``fractional`` targeting, evaluated per user. The service's pods carry ``openfeature.dev/featureflagsource``
(``targets/helm.py``), so the operator's flagd sidecar serves them; a killed flag is a
one-line catalog diff that Argo CD applies within a sync. Files:
``rendered/argocd/<env>/flags/<tenant>/<service>.yaml``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from generator.catalog import spec
from generator.formats import emit
from generator.formats.templating import Templates
from generator.model import flag_targeting, naming
from generator.model.resolve import Deployment, Model
from generator.targets.base import RenderedFile
from generator.targets.common import flag_source_name, flags_path
from generator.targets.contracts import Contract, deployed_kinds
from generator.targets.contracts import at as contract_at

NAME = "feature_flags"
#: Each environment's files depend on that environment's slice of the model only (see parallel.py).
PER_ENVIRONMENT = True
#: Rough work per deployment relative to the Helm target (only schedules parallel renders).
RELATIVE_COST = 1
API = "core.openfeature.dev/v1beta1"
T_FLAGS = "observability/feature-flags.yaml.j2"
#: flagd reads the FeatureFlag through the Kubernetes API (``provider: kubernetes``).
PROVIDER = "kubernetes"


def render(model: Model, templates: Templates) -> Iterator[RenderedFile]:
    for env in model.environments:
        for d in model.rendered_in(env.name):  # an incremental render (output/units.py) names a few
            for service in d.services:
                flags = d.settings.services[service.name].flags
                if not flags:
                    continue
                docs = [feature_flag(d, service, flags), flag_source(d, service)]
                where = contract_at(model, "service", service.name, "defaults", "flags")
                yield RenderedFile(
                    path=flags_path(env.name, d.name, service.name),
                    text=templates.render(T_FLAGS, d=d, service=service, flags=sorted(flags), documents=docs),
                    sources=(*d.sources, model.source("service", service.name), templates.path(T_FLAGS)),
                    tenant=d.name,
                    environment=env.name,
                    provides=(Contract("flag_source", f"{d.namespace}/{flag_source_name(service.name)}", env.name, at=where),),
                    consumes=(
                        Contract("namespace", d.namespace, env.name, at=where),
                        *deployed_kinds(docs, naming.argocd_project(d.name, env.name), env.name, at=where),
                    ),
                )


def _metadata(d: Deployment, service: spec.Service) -> dict[str, Any]:
    return {
        "name": flag_source_name(service.name),
        "namespace": d.namespace,
        "labels": {
            "app.kubernetes.io/part-of": service.name,
            "app.kubernetes.io/managed-by": emit.GENERATOR,
            **naming.tenant_labels(d),
        },
    }


def flag(settings: spec.FlagSettings, d: Deployment) -> dict[str, Any]:
    """One flag in flagd's schema as ``d`` serves it; the description (and the rule that
    decided, if one did) travel as flag metadata."""
    served = flag_targeting.served(settings, d.name, d.tier.name, d.env)
    metadata: dict[str, Any] = {"description": settings.description}
    if served.rule is not None:
        metadata["targetingRule"] = served.rule
    out: dict[str, Any] = {
        "state": settings.state,
        "variants": dict(sorted(settings.variants.items())),
        "defaultVariant": served.variant,
        "metadata": metadata,
    }
    if served.rollout:
        # No bucketing expression: flagd hashes the flag key with the evaluation's targeting key.
        out["targeting"] = {"fractional": [[variant, weight] for variant, weight in served.rollout]}
    return out


def feature_flag(d: Deployment, service: spec.Service, flags: dict[str, spec.FlagSettings]) -> dict[str, Any]:
    return {
        "apiVersion": API,
        "kind": "FeatureFlag",
        "metadata": _metadata(d, service),
        "spec": {
            "flagSpec": {
                "flags": {name: flag(flags[name], d) for name in sorted(flags)},
                "metadata": {"tenant": d.name, "environment": d.env, "service": service.name},
            }
        },
    }


def flag_source(d: Deployment, service: spec.Service) -> dict[str, Any]:
    return {
        "apiVersion": API,
        "kind": "FeatureFlagSource",
        "metadata": _metadata(d, service),
        "spec": {
            "sources": [{"source": f"{d.namespace}/{flag_source_name(service.name)}", "provider": PROVIDER}],
            "probesEnabled": True,
        },
    }
