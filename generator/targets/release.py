"""The release and promotion workflows, for the workflows target (not a target of its own).

``release-<service>.yml`` for every service whose catalog file has ``build``: lint, test,
dependency review and CodeQL on pull requests; on the platform revision a BuildKit build with
SBOM, push to the first environment's ECR repository, cosign keyless signature and SBOM
attestation, then a pull request recording the digest. ``promote.yml`` moves a digest one
environment along the promotion chain. Images are signed by the release workflow's identity
(:func:`naming.release_identity`), which admission (targets/admission.py) verifies.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from generator.catalog import spec
from generator.formats.templating import Templates, shell_join
from generator.model import naming
from generator.model.resolve import Model
from generator.targets.base import RenderedFile

RELEASE_TEMPLATE = "workflows/release.yml.j2"
PROMOTE_TEMPLATE = "workflows/promote.yml.j2"
PROMOTE_WORKFLOW = "promote"
MACROS = "workflows/_steps.j2"


def built(model: Model) -> list[spec.Service]:
    return [model.services[n] for n in sorted(model.services) if model.services[n].build is not None]


def environment_row(model: Model, env: spec.Environment, service: spec.Service | None = None) -> dict[str, Any]:
    shared = env.accounts.shared_services
    return {
        "name": env.name,
        "region": env.aws.region,
        "cluster": naming.cluster_name(model.platform, env.name),
        "deploy_role": naming.ci_role_arn(shared, model.platform, "deploy"),
        "push_role": naming.ci_role_arn(shared, model.platform, "ecr-push"),
        "registry": f"{shared}.dkr.ecr.{env.aws.region}.amazonaws.com",
        "change_window": env.change_window,
        "image": naming.ecr_repository_url(env, service.image.repository) if service is not None else None,
    }


def service_row(model: Model, svc: spec.Service) -> dict[str, Any]:
    build = svc.build
    assert build is not None
    first = model.environments[0]
    return {
        "name": svc.name,
        "context": build.context,
        "dockerfile_path": f"{build.context}/{build.dockerfile}",
        "tests": [{"name": t.name, "command": shell_join(t.run)} for t in build.tests],
        "languages": list(build.codeql_languages),
        "image": naming.ecr_repository_url(first, svc.image.repository),
    }


def promotions(model: Model) -> list[dict[str, Any]]:
    by_name = {e.name: e for e in model.environments}
    out = []
    for env in model.environments:
        after = env.promotion.after
        if after is not None and after in by_name:
            out.append({"source": environment_row(model, by_name[after]), "target": environment_row(model, env)})
    return out


def render(model: Model, templates: Templates, ctx: dict[str, Any]) -> Iterator[RenderedFile]:
    """``ctx`` is the workflows target's context (quoting helpers, ``uses`` pins, ci, platform)."""
    services = built(model)
    if not services:
        return
    first = environment_row(model, model.environments[0])
    base = {**ctx, "first": first}
    macros = templates.path(MACROS)
    platform_src = model.source("platform", "platform")
    env_src = model.source("environment", model.environments[0].name)
    for svc in services:
        yield RenderedFile(
            path=naming.workflow_path(naming.release_workflow_name(svc.name)),
            text=templates.render(RELEASE_TEMPLATE, **base, svc=service_row(model, svc)),
            sources=(platform_src, env_src, model.source("service", svc.name), templates.path(RELEASE_TEMPLATE), macros),
        )
    chain = promotions(model)
    if chain:
        yield RenderedFile(
            path=naming.workflow_path(PROMOTE_WORKFLOW),
            text=templates.render(
                PROMOTE_TEMPLATE,
                **base,
                promotions=chain,
                release_services=[s.name for s in services],
                identity=naming.release_identity_pattern(model.platform),
            ),
            sources=(
                platform_src,
                *sorted(model.source("environment", e.name) for e in model.environments),
                *sorted(model.source("service", s.name) for s in services),
                templates.path(PROMOTE_TEMPLATE),
                macros,
            ),
        )
