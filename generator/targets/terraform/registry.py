"""The environment's container registry, for the shared root's ``registry.tf``.

One ECR repository per service the release workflow builds (``build:`` in its catalog file),
named after the path of its catalog repository: tags immutable (a release is its digest, and a
tag can never be moved under it), scanned on push, encrypted with the control plane's KMS key,
and a lifecycle policy that expires untagged layers and caps the history. The next environment's
``ecr-push`` CI role may pull from it: that is how ``promote`` copies a digest (with its
signature and SBOM attestation) one step along the promotion chain and no further.
"""

from __future__ import annotations

from typing import Any

from generator.catalog import spec
from generator.formats.templating import hcl_value
from generator.model import naming
from generator.model.resolve import Model
from generator.targets import common

FILENAME = "registry.tf"
#: Untagged manifests (superseded multi-arch indexes, failed pushes) go after this many days.
UNTAGGED_DAYS = 14
#: Most tagged images kept per repository; releases the catalog still names are far fewer.
KEEP_TAGGED = 200


def resource_key(service: str) -> str:
    return service.replace("-", "_")


def lifecycle_policy() -> dict[str, Any]:
    """The ECR lifecycle policy document (also read by the tests)."""
    return {
        "rules": [
            {
                "rulePriority": 1,
                "description": f"Expire untagged images after {UNTAGGED_DAYS} days",
                "selection": {"tagStatus": "untagged", "countType": "sinceImagePushed", "countUnit": "days", "countNumber": UNTAGGED_DAYS},
                "action": {"type": "expire"},
            },
            {
                "rulePriority": 2,
                "description": f"Keep the newest {KEEP_TAGGED} images",
                "selection": {"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": KEEP_TAGGED},
                "action": {"type": "expire"},
            },
        ]
    }


def built_services(model: Model) -> list[spec.Service]:
    return [model.services[name] for name in sorted(model.services) if model.services[name].build is not None]


def next_environment(model: Model, env: spec.Environment) -> spec.Environment | None:
    """From the whole promotion chain: the render may hand this target ``env``'s slice alone."""
    return common.next_environment(model, env)


def text(model: Model, env: spec.Environment) -> str | None:
    """The HCL of ``registry.tf`` (None when no service is built)."""
    services = built_services(model)
    if not services:
        return None
    after = next_environment(model, env)
    puller = naming.ci_role_arn(after.accounts.shared_services, model.platform, "ecr-push") if after is not None else None
    out = [
        f"# Container registry of {env.name}: one ECR repository per service built by its release workflow",
        "# (catalog/services/*.yaml build:). Tags are immutable: environments run digests.",
    ]
    for svc in services:
        key = resource_key(svc.name)
        name = naming.ecr_repository_name(svc.image.repository)
        out += [
            "",
            f'resource "aws_ecr_repository" "{key}" {{',
            f"  name = {hcl_value(name)}",
            '  image_tag_mutability = "IMMUTABLE"',
            "  force_delete = false",
            "",
            "  image_scanning_configuration {",
            "    scan_on_push = true",
            "  }",
            "",
            "  encryption_configuration {",
            '    encryption_type = "KMS"',
            "    kms_key = module.kms.key_arn",
            "  }",
            "}",
            "",
            f'resource "aws_ecr_lifecycle_policy" "{key}" {{',
            f"  repository = aws_ecr_repository.{key}.name",
            f"  policy = jsonencode({hcl_value(lifecycle_policy())})",
            "}",
        ]
        if puller is not None:
            assert after is not None
            out += [
                "",
                f"# {after.name} is promoted from {env.name}: its promote job copies digests out of here.",
                f'data "aws_iam_policy_document" "ecr_{key}_promote" {{',
                "  statement {",
                '    sid = "PromoteToNextEnvironment"',
                '    actions = ["ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"]',
                "    principals {",
                '      type = "AWS"',
                f"      identifiers = [{hcl_value(puller)}]",
                "    }",
                "  }",
                "}",
                "",
                f'resource "aws_ecr_repository_policy" "{key}" {{',
                f"  repository = aws_ecr_repository.{key}.name",
                f"  policy = data.aws_iam_policy_document.ecr_{key}_promote.json",
                "}",
            ]
    out += ["", 'output "ecr_repository_urls" {', "  value = {"]
    out += [f"    {hcl_value(svc.name)} = aws_ecr_repository.{resource_key(svc.name)}.repository_url" for svc in services]
    out += ["  }", "}", ""]
    return "\n".join(out)


def sources(model: Model) -> list[str]:
    return [model.source("service", svc.name) for svc in built_services(model)]
