"""ECR repositories of the shared roots (targets/terraform/registry.py): parsed with
python-hcl2, arguments checked against the vendored AWS provider schema."""

from __future__ import annotations

import json

import hcl2
from hcl2 import SerializationOptions

from generator import vendor
from generator.model import naming
from generator.targets.terraform import registry

PROVIDER = json.loads((vendor.terraform_data_dir() / "aws-provider-resources.json").read_text(encoding="utf-8"))


def parsed(sample, env: str) -> dict:
    options = SerializationOptions(strip_string_quotes=True, with_comments=False)
    return hcl2.loads(sample.result.files[f"rendered/terraform/{env}/shared/{registry.FILENAME}"].decode(), serialization_options=options)


def resources(doc: dict, kind: str) -> dict:
    out = {}
    for block in doc.get("resource", []):
        for name, body in block.get(kind, {}).items():
            out[name] = body
    return out


def test_every_environment_has_an_immutable_scanned_repository_per_built_service(sample):
    built = sorted(n for n, s in sample.model.services.items() if s.build is not None)
    for env in sample.model.environments:
        doc = parsed(sample, env.name)
        repos = resources(doc, "aws_ecr_repository")
        assert sorted(repos) == built
        for name, body in repos.items():
            assert body["name"] == naming.ecr_repository_name(sample.model.services[name].image.repository)
            assert body["image_tag_mutability"] == "IMMUTABLE"
            assert body["image_scanning_configuration"][0]["scan_on_push"] is True
            assert body["encryption_configuration"][0]["encryption_type"] == "KMS"
        policies = resources(doc, "aws_ecr_lifecycle_policy")
        assert sorted(policies) == built
        rules = registry.lifecycle_policy()["rules"]
        assert rules[0]["selection"]["tagStatus"] == "untagged"
        assert [r["rulePriority"] for r in rules] == [1, 2]


def test_only_the_next_environment_may_pull_for_promotion(sample):
    envs = sample.model.environments
    for env, nxt in zip(envs, [*envs[1:], None], strict=True):
        doc = parsed(sample, env.name)
        policies = resources(doc, "aws_ecr_repository_policy")
        text = sample.result.files[f"rendered/terraform/{env.name}/shared/{registry.FILENAME}"].decode()
        if nxt is None:
            assert policies == {}
        else:
            assert sorted(policies) == ["api", "web", "worker"]
            assert naming.ci_role_arn(nxt.accounts.shared_services, sample.model.platform, "ecr-push") in text
            assert "ecr:PutImage" not in text


def test_arguments_exist_in_the_aws_provider_schema(sample):
    schema = PROVIDER.get("resources", PROVIDER)
    doc = parsed(sample, "dev")
    for kind in ("aws_ecr_repository", "aws_ecr_lifecycle_policy", "aws_ecr_repository_policy"):
        known = set(schema[kind]["arguments"]) | set(schema[kind]["blocks"])
        for name, body in resources(doc, kind).items():
            given = {k for k in body if not k.startswith("__")}
            assert given <= known, (kind, name, given - known)


def test_images_run_from_the_environments_own_registry_by_digest(sample):
    for d in sample.model.deployments:
        for svc in d.services:
            ref = d.image_ref(svc.name)
            assert ref.startswith(naming.ecr_repository_url(d.environment, svc.image.repository) + ":")
            assert "@sha256:" in ref
