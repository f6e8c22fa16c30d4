"""One namespace of names (issue 21, item 2) and tag limits at the catalog line (item 6).

Each test plants a catalog whose derived names clash (or a reserved tenant name, a secret
template without its tenant, an over-long owner) into a scratch copy and runs the real
``companyos validate``: exit 2, the message names both owners at the right file:line, and
nothing on disk changed.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable
from pathlib import Path

import hcl2
import pytest
import yaml

from generator import pipeline
from generator.catalog import spec
from generator.catalog.load import Catalog
from generator.errors import CatalogErrors
from generator.model import name_registry, naming
from helpers import k8s
from helpers.catalog_edit import write_tenant
from helpers.repo import REPO, CliResult, snapshot

Run = Callable[..., CliResult]


@pytest.fixture
def cat(tmp_path: Path) -> Path:
    """A scratch copy of the catalog inputs (no rendered tree: these runs never render)."""
    for item in ("catalog", "tenants", "environments", "templates"):
        shutil.copytree(REPO / item, tmp_path / item)
    return tmp_path


def service(root: Path, name: str, like: str = "web", change: Callable[[str], str] = lambda t: t) -> None:
    text = (root / "catalog/services" / f"{like}.yaml").read_text(encoding="utf-8")
    text = text.replace(f"name: {like}\n", f"name: {name}\n", 1)
    (root / "catalog/services" / f"{name}.yaml").write_text(change(text), encoding="utf-8")


def refused(companyos: Run, root: Path) -> list[str]:
    """Run ``validate``; it must exit 2 without a traceback and leave the tree as it was."""
    before = snapshot(root)
    result = companyos("validate", cwd=root)
    assert result.code == 2, result.out + result.err
    assert "Traceback" not in result.err
    assert snapshot(root) == before
    return [line for line in result.err.splitlines() if re.match(r"^\S+:\d+:\d+: ", line)]


def one(lines: list[str], *needles: str) -> str:
    found = [line for line in lines if all(n in line for n in needles)]
    assert len(found) == 1, f"expected one line with {needles}, got {found} of\n" + "\n".join(lines)
    return found[0]


def line_of(path: Path, text: str) -> int:
    """1-based line of the first line of ``path`` that contains ``text``."""
    return next(i for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1) if text in line)


# --- the sample -----------------------------------------------------------------------------


def test_sample_catalog_has_no_clash() -> None:
    catalog = pipeline.load(REPO)  # raises CatalogErrors on any clash
    assert name_registry.check_names(catalog) == []


def test_registry_knows_every_argocd_object_the_sample_renders(sample: pipeline.Build) -> None:
    """The registry derives names as the targets do: every AppProject, Application and
    ApplicationSet name the render writes is one the registry claimed (no kind forgotten)."""
    catalog: Catalog = sample.model.catalog
    registry = name_registry.NameRegistry()
    platform = catalog.platform
    for env_name, env_entry in catalog.environments.items():
        name_registry._platform_names(registry, catalog, platform, env_entry, env_name)
        for tier in env_entry.spec.accounts.pools:  # the pools' bootstrap Applications
            tier_entry = catalog.tiers.get(tier)
            if tier_entry is not None and tier_entry.spec.isolation == "pooled":
                name_registry._pool_names(registry, platform.spec, tier_entry, env_entry.spec)
    for entry in catalog.tenants.values():
        name_registry._tenant_names(registry, catalog, platform.spec, entry)
    claimed = {(kind, name) for kind, _scope, name in registry.owners}
    rendered = set()
    for path, data in sample.result.files.items():
        if path.startswith("rendered/argocd/") and path.endswith(".yaml"):
            for doc in yaml.safe_load_all(data):
                if doc and doc.get("kind") in ("AppProject", "Application", "ApplicationSet"):
                    rendered.add((f"Argo CD {doc['kind']}", doc["metadata"]["name"]))
                    if doc["kind"] == "ApplicationSet":  # the Applications it generates (git files generator)
                        for element in k8s.generator_params(doc["spec"]["generators"][0], sample.result.files):
                            rendered.add(("Argo CD Application", element["name"]))
    assert rendered, "no Argo CD objects found in the sample render"
    assert rendered <= claimed, sorted(rendered - claimed)


#: Which attribute of which Terraform module or resource names a unique AWS object.
MODULE_NAMES = {
    "irsa_": ("name", "IAM role"),
    "db": ("identifier", "RDS instance"),
    "db_security_group": ("name", "security group"),
    "queue": ("name", "SQS queue"),
    "events": ("name", "SNS topic"),
    "alerts": ("name", "SNS topic"),
    "waf": ("name", "WAF web ACL"),
    "cache": ("replication_group_id", "ElastiCache replication group"),
    "bucket": ("bucket", "S3 bucket"),
    "eks": ("name", "EKS cluster"),
}
RESOURCE_NAMES = {
    "aws_budgets_budget": ("name", "AWS Budgets budget"),
    "aws_ce_anomaly_monitor": ("name", "Cost Explorer anomaly monitor"),
    "aws_cloudwatch_log_group": ("name", "CloudWatch log group"),
    "aws_route53_zone": ("name", "DNS name"),
}


def _unquote(value: object) -> str:
    return str(value).strip('"')


def terraform_names(text: str) -> set[tuple[str, str]]:
    """(kind, name) of every uniquely named AWS object in one main.tf, parsed with python-hcl2."""
    doc = hcl2.loads(text)
    found: set[tuple[str, str]] = set()
    for block in doc.get("module", []):
        for label, body in block.items():
            label = _unquote(label)
            for start, (attr, kind) in MODULE_NAMES.items():
                if (label.startswith(start) if start.endswith("_") else label == start) and attr in body:
                    found.add((kind, _unquote(body[attr])))
            if label == "db" and "monitoring_role_name" in body:
                found.add(("IAM role", _unquote(body["monitoring_role_name"])))
            if label == "kms":
                found.add(("KMS alias", _unquote(body["aliases"][0])))
    for block in doc.get("resource", []):
        for rtype, named in block.items():
            if _unquote(rtype) in RESOURCE_NAMES:
                attr, kind = RESOURCE_NAMES[_unquote(rtype)]
                for body in named.values():
                    found.add((kind, _unquote(body[attr])))
    return found


def test_registry_knows_every_networkpolicy_and_aws_name_the_sample_renders(sample: pipeline.Build) -> None:
    catalog: Catalog = sample.model.catalog
    registry = name_registry.NameRegistry()
    for env_name, env_entry in catalog.environments.items():
        name_registry._platform_names(registry, catalog, catalog.platform, env_entry, env_name)
        for tier in env_entry.spec.accounts.pools:
            name_registry._pool_names(registry, catalog.platform.spec, catalog.tiers[tier], env_entry.spec)
    for entry in catalog.tenants.values():
        name_registry._tenant_names(registry, catalog, catalog.platform.spec, entry)
    claimed = {(kind, name) for kind, _scope, name in registry.owners}
    policies, aws = set(), set()
    for path, data in sample.result.files.items():
        if path.startswith("rendered/argocd/") and path.endswith(".yaml"):
            for doc in yaml.safe_load_all(data):
                if doc and doc.get("kind") == "NetworkPolicy":
                    policies.add(("NetworkPolicy", doc["metadata"]["name"]))
        if path.endswith("/main.tf"):
            aws |= terraform_names(data.decode())
    assert policies and policies <= claimed, sorted(policies - claimed)
    kinds = {kind for kind, _ in aws}
    assert {"IAM role", "RDS instance", "SQS queue", "AWS Budgets budget", "KMS alias", "S3 bucket", "WAF web ACL"} <= kinds
    # kms aliases of the DR and edge keys carry a suffix after the owner's alias (tenant names have no '/')
    aws = {(k, n) for k, n in aws if not (k == "KMS alias" and n.rsplit("/", 1)[-1] in ("dr", "edge", "dnssec"))}
    assert aws <= claimed, sorted(aws - claimed)


def test_every_prefix_suffix_in_the_templates_is_registered() -> None:
    """A template that names a resource ``r.prefix ~ "-new"`` must be known to the registry."""
    text = "\n".join(p.read_text(encoding="utf-8") for p in (REPO / "templates/terraform").rglob("*.j2"))
    used = set(re.findall(r'r\.prefix ~ "(-[a-z0-9-]+)"', text))
    used -= {"-endpoints-", "-to-shared"}  # a security group name prefix and Name tags: not unique names
    used -= {"-dr", "-to-standby", "-dr-to-standby", "-drill"}  # Name tags of the DR VPC, peerings and drill objects
    known = {suffix for names in naming.PREFIX_NAMES.values() for _kind, suffix in names}
    labels = set(re.findall(r'b\.budget\("\w+", "([a-z-]+)"\)', text)) | set(re.findall(r'b\.topic\("\w+", "([a-z-]+)"\)', text))
    assert used - {"-"} <= known
    assert {f"-{label}" for label in labels} <= known


def test_ci_roles_and_namespace_policies_match_the_targets() -> None:
    # the release target's ecr-push role is named in release.py, the rest in workflows.py
    workflows = "\n".join((REPO / f"generator/targets/{m}.py").read_text(encoding="utf-8") for m in ("workflows", "release"))
    assert set(re.findall(r'ci_role_arn\([^)]*"([a-z-]+)"\)', workflows)) == set(naming.CI_ROLE_PURPOSES)
    namespaces = (REPO / "generator/targets/argocd/namespaces.py").read_text(encoding="utf-8")
    assert set(re.findall(r'meta\("(allow-[a-z-]+|default-deny)"\)', namespaces)) == set(naming.NAMESPACE_POLICIES)


# --- clashes from the issue ------------------------------------------------------------------


def test_application_name_clash_names_both_tenants(companyos: Run, cat: Path) -> None:
    """``namespace-acme`` + service ``api`` and tenant ``acme-api``: both ``dev-namespace-acme-api``."""
    write_tenant(cat, "acme-api", "web")
    path = write_tenant(cat, "namespace-acme", "api")
    line = one(refused(companyos, cat), "dev-namespace-acme-api")
    assert line.startswith(f"tenants/namespace-acme.yaml:{line_of(path, 'services:')}:")
    assert "tenant 'namespace-acme' service 'api'" in line
    assert "tenant 'acme-api' namespace Application" in line and "(tenants/acme-api.yaml:1:" in line


@pytest.mark.parametrize("name", ["companyos-platform", "companyos-gitops", "companyos", "pool-standard", "pool-x", "shared", "platform",
                                  "argocd", "kube-x", "default", "monitoring", "shared-services"])  # fmt: skip
def test_reserved_tenant_names_are_refused(companyos: Run, cat: Path, name: str) -> None:
    write_tenant(cat, name)
    line = one(refused(companyos, cat), f"tenant name '{name}' is reserved")
    assert line.startswith(f"tenants/{name}.yaml:1:")


def test_reserved_words_follow_the_platform(companyos: Run, cat: Path) -> None:
    """The list is derived from the catalog: another organisation, another Argo CD namespace."""
    platform = cat / "catalog/platform.yaml"
    platform.write_text(
        platform.read_text(encoding="utf-8").replace("organization: companyos", "organization: initrode") + "argocd_namespace: gitops\n",
        encoding="utf-8",
    )
    write_tenant(cat, "initrode-ops")
    write_tenant(cat, "gitops")
    write_tenant(cat, "companyos-ops")  # no longer the organisation: allowed
    lines = refused(companyos, cat)
    one(lines, "tenant name 'initrode-ops' is reserved")
    one(lines, "tenant name 'gitops' is reserved")
    assert not [line for line in lines if "companyos-ops" in line]


def test_secret_template_without_tenant_is_refused_at_its_line(companyos: Run, cat: Path) -> None:
    path = cat / "catalog/services/api.yaml"
    path.write_text(path.read_text(encoding="utf-8").replace('"companyos/{env}/{tenant}/api/stripe"', '"companyos/{env}/api/stripe"'))
    line = one(refused(companyos, cat), "must contain {tenant}")
    assert line.startswith(f"catalog/services/api.yaml:{line_of(path, 'companyos/{env}/api/stripe')}:")


@pytest.mark.parametrize(
    ("key", "needle"),
    [("companyos/{tenant}/api/stripe", "must contain {env}"), ("companyos/{env}/{tenant}/{service}", "unknown placeholder {service}"),
     ("companyos/{env}/{tenant}}/x", "unbalanced")],
)  # fmt: skip
def test_secret_template_placeholders(companyos: Run, cat: Path, key: str, needle: str) -> None:
    path = cat / "catalog/services/api.yaml"
    path.write_text(path.read_text(encoding="utf-8").replace('"companyos/{env}/{tenant}/api/stripe"', f'"{key}"'))
    line = one(refused(companyos, cat), needle)
    assert line.startswith(f"catalog/services/api.yaml:{line_of(path, key)}:")


def test_owner_longer_than_an_aws_tag_value_is_refused_at_its_line(companyos: Run, cat: Path) -> None:
    owner = "a" * 245 + "@example.com"  # 257 characters, a valid address otherwise
    assert len(owner) == 257
    path = cat / "tenants/globex.yaml"
    path.write_text(re.sub(r"(?m)^owner: .*$", f"owner: {owner}", path.read_text(encoding="utf-8")))
    line = one(refused(companyos, cat), "at most 256 characters")
    assert line.startswith(f"tenants/globex.yaml:{line_of(path, 'owner:')}:")


def test_owner_with_a_character_aws_tags_refuse(companyos: Run, cat: Path) -> None:
    path = cat / "catalog/platform.yaml"
    path.write_text(path.read_text(encoding="utf-8").replace("owner: platform-team@example.com", "owner: platform%team@example.com"))
    line = one(refused(companyos, cat), "AWS tag value")
    assert line.startswith(f"catalog/platform.yaml:{line_of(path, 'owner:')}:")


def test_owner_of_256_characters_is_accepted(cat: Path) -> None:
    owner = "a" * 244 + "@example.com"
    path = cat / "tenants/globex.yaml"
    path.write_text(re.sub(r"(?m)^owner: .*$", f"owner: {owner}", path.read_text(encoding="utf-8")))
    assert pipeline.load(cat).tenants["globex"].spec.owner == owner


# --- clashes found by reading naming.py -------------------------------------------------------


def test_service_named_like_a_namespace_policy(companyos: Run, cat: Path) -> None:
    """Service ``dns`` gets NetworkPolicy ``allow-dns``, the namespace's own DNS allowance."""
    service(cat, "dns")
    path = write_tenant(cat, "hypno", "web, dns")
    line = one(refused(companyos, cat), "NetworkPolicy 'allow-dns'")
    assert line.startswith(f"tenants/hypno.yaml:{line_of(path, 'services:')}:")
    assert "tenant 'hypno' service 'dns'" in line and "tenant 'hypno' namespace defaults" in line


def test_service_named_like_another_services_migration_job(companyos: Run, cat: Path) -> None:
    """Service ``api-migrate`` next to ``api`` (which migrates): one workload label, one policy."""
    service(cat, "api-migrate")
    write_tenant(cat, "hypno", "api, api-migrate")
    lines = refused(companyos, cat)
    line = one(lines, "NetworkPolicy 'allow-api-migrate'")
    assert "service 'api-migrate'" in line and "migration Job of service 'api'" in line
    one(lines, "workload (app.kubernetes.io/name) 'api-migrate'")


def test_service_named_origin_takes_the_origin_record(companyos: Run, cat: Path) -> None:
    """``origin.<tenant>.<domain>`` is the ALB record CloudFront uses; a public service ``origin``
    would publish its own host under the same name."""
    service(cat, "origin")
    write_tenant(cat, "hypno", "origin")
    line = one(refused(companyos, cat), "DNS name 'origin.hypno.dev.companyos.example'")
    assert "tenant 'hypno' service 'origin' in 'dev'" in line and "tenant 'hypno' origin record in 'dev'" in line


def test_irsa_role_of_a_service_named_like_the_rds_monitoring_role(companyos: Run, cat: Path) -> None:
    service(cat, "rds-monitoring")
    path = cat / "tenants/acme.yaml"
    path.write_text(
        path.read_text(encoding="utf-8").replace("services: [api, worker, web]", "services: [api, worker, web, rds-monitoring]")
    )
    line = one(refused(companyos, cat), "IAM role 'companyos-dev-acme-rds-monitoring'")
    assert line.startswith(f"tenants/acme.yaml:{line_of(path, 'services:')}:")
    assert "service 'rds-monitoring'" in line


def test_dash_split_tenant_and_service_clash_in_iam_and_argocd(companyos: Run, cat: Path) -> None:
    """Tenant ``hypno`` service ``web-api`` and tenant ``hypno-web`` service ``api``."""
    service(cat, "web-api")
    write_tenant(cat, "hypno", "web-api")
    write_tenant(cat, "hypno-web", "api")
    lines = refused(companyos, cat)
    for kind, name in (("IAM role", "companyos-dev-hypno-web-api"), ("Argo CD Application", "dev-hypno-web-api")):
        line = one(lines, f"{kind} '{name}'")
        assert "tenant 'hypno-web' service 'api'" in line and "tenant 'hypno' service 'web-api'" in line


def test_secret_templates_that_meet_across_tenants(companyos: Run, cat: Path) -> None:
    """Both templates contain {tenant} and {env}, yet tenant ``hypno`` reads ``hypno-x``'s secret."""
    service(cat, "web-x", change=lambda t: t + 'secrets:\n  - env: TOKEN\n    key: "companyos/{env}/{tenant}-x/token"\n')
    service(cat, "web-y", change=lambda t: t + 'secrets:\n  - env: TOKEN\n    key: "companyos/{env}/{tenant}/token"\n')
    write_tenant(cat, "hypno", "web-x")
    write_tenant(cat, "hypno-x", "web-y")
    line = one(refused(companyos, cat), "Secrets Manager secret 'companyos/dev/hypno-x/token'")
    assert "tenant 'hypno'" in line and "tenant 'hypno-x'" in line and "catalog/services/web-" in line


def test_two_environments_with_one_domain(companyos: Run, cat: Path) -> None:
    path = cat / "environments/stage.yaml"
    path.write_text(path.read_text(encoding="utf-8").replace("domain: stage.companyos.example", "domain: dev.companyos.example"))
    lines = refused(companyos, cat)
    zone = one(lines, "DNS name 'dev.companyos.example'")
    assert zone.startswith(f"environments/stage.yaml:{line_of(path, 'domain:')}:") and "environments/dev.yaml" in zone
    assert any("DNS name 'api.globex.dev.companyos.example'" in line for line in lines)


def test_platform_namespace_that_is_a_tenants_namespace(companyos: Run, cat: Path) -> None:
    path = cat / "catalog/platform.yaml"
    path.write_text(path.read_text(encoding="utf-8") + "monitoring_namespace: tenant-globex\n")
    line = one(refused(companyos, cat), "Kubernetes namespace 'tenant-globex' (in cluster 'companyos-dev')")
    assert line.startswith("tenants/globex.yaml:") and "catalog/platform.yaml" in line


def test_errors_are_catalog_errors_not_tracebacks(cat: Path) -> None:
    write_tenant(cat, "acme-api", "web")
    write_tenant(cat, "namespace-acme", "api")
    with pytest.raises(CatalogErrors) as caught:
        pipeline.load(cat)
    assert all(re.match(r"^\S+:\d+:\d+: ", str(e)) for e in caught.value.errors)


# --- tags and labels the sample renders obey AWS and Kubernetes rules ----------------------------

AWS_TAG = re.compile(r"^[\w .:/=+@-]*$")
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")


def test_every_rendered_aws_tag_obeys_the_tagging_rules(sample: pipeline.Build) -> None:
    tags: dict[str, str] = {}
    for path, data in sample.result.files.items():
        if path.endswith("/providers.tf"):
            for provider in hcl2.loads(data.decode()).get("provider", []):
                for body in provider.values():
                    for block in body.get("default_tags", []):
                        tags.update({k: _unquote(v) for k, v in block["tags"].items()})
    assert {"owner", "tenant", "environment", "cost-center"} <= set(tags)
    for key, value in tags.items():
        assert len(key) <= spec.TAG_KEY_MAX and AWS_TAG.fullmatch(key), key
        assert len(value) <= spec.TAG_VALUE_MAX and AWS_TAG.fullmatch(value), value


def test_every_rendered_kubernetes_label_value_is_valid(sample: pipeline.Build) -> None:
    values: set[str] = set()

    def walk(node: object) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key in ("labels", "matchLabels") and isinstance(value, dict):
                    # ApplicationSet templates fill ``{{.tenant}}`` from their elements (names)
                    values.update(str(v) for v in value.values() if not re.fullmatch(r"\{\{\.\w+\}\}", str(v)))
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    for path, data in sample.result.files.items():
        if path.startswith("rendered/") and path.endswith(".yaml"):
            for doc in yaml.safe_load_all(data):
                # Kyverno validate patterns hold wildcards ("?*" = any non-empty value), not label values
                if doc and not str(doc.get("apiVersion", "")).startswith("kyverno.io/"):
                    walk(doc)
    assert values
    assert [v for v in values if len(v) > naming.MAX_LABEL or not LABEL_VALUE.fullmatch(v)] == []


def test_label_values_derived_from_the_longest_names_stay_valid() -> None:
    """Labels carry tenant, tier, environment and service names and the migration Job's name:
    with the longest name the spec allows they are still label values."""
    longest = "a" + "b" * 18 + "c"
    assert re.fullmatch(spec.NAME_PATTERN, longest)
    for value in (longest, naming.workload_name(longest), naming.migration_job_name(longest), naming.namespace(longest)):
        assert len(value) <= naming.MAX_LABEL and LABEL_VALUE.fullmatch(value)
    assert re.fullmatch(spec.NAME_PATTERN, "a-1") and LABEL_VALUE.fullmatch("a-1")


def test_name_longer_than_aws_allows_is_refused_at_its_line(companyos: Run, cat: Path) -> None:
    """An IRSA role ``<org>-<env>-<tenant>-<service>`` of 20-character names is 68 characters:
    IAM stops at 64, so apply would fail; the catalog line of the service says so first."""
    platform = cat / "catalog/platform.yaml"
    platform.write_text(platform.read_text(encoding="utf-8").replace("organization: companyos", "organization: abcdefghijklmnopqrst"))
    service(cat, "s" * 20)
    path = write_tenant(cat, "t" * 20, "s" * 20, envs="stage")
    line = one(refused(companyos, cat), f"IAM role 'abcdefghijklmnopqrst-stage-{'t' * 20}-{'s' * 20}'")
    assert line.startswith(f"tenants/{'t' * 20}.yaml:{line_of(path, 'services:')}:") and "at most 64" in line
