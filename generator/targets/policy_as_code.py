"""Rego policies for Terraform plans: ``rendered/policy/terraform/*.rego`` (conftest layout).

The terraform workflow runs them with conftest against ``terraform show -json`` of every
plan, so a plan that drops a required tag, leaves the allowed regions, turns encryption or a
regulated store's deletion protection off, or grants a wildcard IAM action fails review.
The rules are fixed templates; their data (tags, regions, protected stores) is the catalog's.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from generator.formats.templating import Templates
from generator.model import organization
from generator.model.resolve import Model
from generator.targets.base import RenderedFile

NAME = "policy"
DIR = "rendered/policy/terraform"
#: Rule files, each ``templates/policy/terraform/<name>.rego.j2``; guardrails holds the data.
FILES = ("guardrails", "tags", "regions", "encryption", "deletion_protection", "iam")
#: Where CloudFront's certificate and a CLOUDFRONT-scoped WAF live (the terraform target's edge).
EDGE_REGION = "us-east-1"
#: Tags every root applies when platform.yaml names no aws_organization.required_tags.
DEFAULT_REQUIRED_TAGS = ("tenant", "environment", "owner", "cost-center")


def render(model: Model, templates: Templates) -> Iterator[RenderedFile]:
    context = data(model)
    sources = [model.source("platform", "platform"), *(model.source("environment", e.name) for e in model.environments)]
    sources += sorted({model.source("tenant", name) for name in context["protected_sources"]})
    for name in FILES:
        template = f"policy/terraform/{name}.rego.j2"
        yield RenderedFile(
            path=f"{DIR}/{name}.rego", text=templates.render(template, **context), sources=(*sources, templates.path(template))
        )


def data(model: Model) -> dict[str, Any]:
    """The guardrails the rules read, from the catalog and the resolved settings."""
    org = model.platform.aws_organization
    protected = sorted({f"{d.env}/{d.name}" for d in model.deployments if d.tier.regulated and d.settings.database.deletion_protection})
    return {
        "required_tags": list(org.required_tags if org is not None else DEFAULT_REQUIRED_TAGS),
        "allowed_regions": {e.name: list(e.aws.allowed_regions) for e in model.environments},
        "edge_region": EDGE_REGION,
        "global_type_prefixes": list(organization.GLOBAL_TYPE_PREFIXES),
        "protected": protected,
        "protected_sources": sorted({key.split("/", 1)[1] for key in protected}),
    }
