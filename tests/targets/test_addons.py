"""Platform add-ons (issue 12 item 1): the rendered Argo CD objects validate against the
vendored CRD schemas, sync before every tenant object, and their IRSA roles in the shared
Terraform root trust exactly one service account with least-privilege policies; bad add-on
files are ``path:line:col`` errors with exit 2 and nothing written."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import hcl2
import jsonschema
import pytest
from hcl2.utils import SerializationOptions

from generator import pipeline, vendor
from generator.model import addons as model_addons
from generator.targets import addons as target
from helpers.repo import snapshot
from helpers.yaml_docs import load_yaml_docs

ENVS = ("dev", "stage", "prod")
#: Charts whose values schema is vendored in generator/vendor/helm/ (see ADDONS-PROVENANCE.md).
VALUES_SCHEMAS = {
    "external-secrets": "external-secrets-2.9.0.values.schema.json",
    "external-dns": "external-dns-1.21.1.values.schema.json",
}
#: Checked upstream at the pinned chart version: these charts ship no values.schema.json.
NO_SCHEMA = {"argo-rollouts", "aws-load-balancer-controller", "kube-prometheus-stack", "metrics-server"}


def _docs(sample: pipeline.Build, path: str) -> list[dict[str, Any]]:
    return [d for d in load_yaml_docs(sample.result.files[path]) if d]


def _wave(doc: dict[str, Any]) -> int:
    return int((doc["metadata"].get("annotations") or {}).get(target.WAVE, "0"))


def _applications(sample: pipeline.Build, env: str) -> dict[str, dict[str, Any]]:
    return {
        d["metadata"]["labels"]["companyos.io/addon"] + ("/store" if "directory" in d["spec"]["source"] else ""): d
        for d in _docs(sample, target.addons_path(env))
        if d["kind"] == "Application"
    }


def _hcl(data: bytes) -> dict[str, Any]:
    opts = SerializationOptions(strip_string_quotes=True, with_comments=False)
    return hcl2.loads(data.decode(), serialization_options=opts)


def _modules(sample: pipeline.Build, env: str) -> dict[str, dict[str, Any]]:
    """The IRSA role modules (the add-on buckets and their key: tests/targets/terraform/test_addon_buckets.py)."""
    parsed = _hcl(sample.result.files[f"rendered/terraform/{env}/shared/addons.tf"])
    return {name: body for block in parsed["module"] for name, body in block.items() if name.startswith("irsa_addon_")}


@pytest.mark.parametrize("env", ENVS)
def test_every_addon_object_validates_against_its_strict_crd_schema(sample, env):
    docs = _docs(sample, target.addons_path(env))
    kinds = {d["kind"] for d in docs}
    # No ClusterSecretStore: each tenant namespace has its own SecretStore (test_secret_access.py).
    assert kinds == {"AppProject", "Application"}
    for doc in docs:
        group, version = doc["apiVersion"].split("/")
        schema_path = vendor.crd_schema_dir() / f"{group}_{version}_{doc['kind']}.json"
        assert schema_path.is_file(), f"no vendored schema for {doc['apiVersion']} {doc['kind']}"
        validator = jsonschema.Draft7Validator(json.loads(schema_path.read_text()))
        errors = [f"{'.'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(doc)]
        assert errors == [], (doc["metadata"]["name"], errors)


def test_a_planted_bad_field_fails_the_strict_schema(sample):
    """The schema check above can fail: an unknown syncOption key is rejected."""
    app = next(d for d in _docs(sample, target.addons_path("prod")) if d["kind"] == "Application")
    app["spec"]["source"]["helm"]["valuesObjekt"] = {}
    schema = json.loads((vendor.crd_schema_dir() / "argoproj.io_v1alpha1_Application.json").read_text())
    assert list(jsonschema.Draft7Validator(schema).iter_errors(app))


@pytest.mark.parametrize("env", ENVS)
def test_addons_sync_before_every_tenant_object(sample, env):
    addon_docs = _docs(sample, target.addons_path(env))
    tenant_docs = [
        doc
        for path in sample.result.files
        if path.startswith(f"rendered/argocd/{env}/")
        and path.endswith(".yaml")
        and not path.startswith((target.addons_path(env), f"rendered/argocd/{env}/bootstrap.yaml"))
        and not path.endswith("/controller-values.yaml")  # the argo-cd chart's values, not a manifest
        for doc in _docs(sample, path)
        if doc["apiVersion"].startswith("argoproj.io/") and doc["kind"] in ("AppProject", "Application", "ApplicationSet")
    ]
    assert tenant_docs and addon_docs
    assert max(_wave(d) for d in addon_docs) < min(_wave(d) for d in tenant_docs)
    apps = _applications(sample, env)
    project = next(d for d in addon_docs if d["kind"] == "AppProject")
    assert _wave(project) < min(_wave(a) for a in apps.values())
    assert not any(key.endswith("/store") for key in apps)  # no ClusterSecretStore Application any more
    # The root Application applies addons.yaml.
    root = next(d for d in _docs(sample, f"rendered/argocd/{env}/bootstrap.yaml") if d["kind"] == "Application")
    assert "addons.yaml" in root["spec"]["source"]["directory"]["include"]


@pytest.mark.parametrize("env", ENVS)
def test_project_is_fenced_to_exactly_the_addons_repositories_and_namespaces(sample, env):
    model = sample.model
    chosen = model_addons.in_environment(model.catalog, env)
    project = next(d for d in _docs(sample, target.addons_path(env)) if d["kind"] == "AppProject")
    repos = {a.chart.repository for a in chosen}
    assert set(project["spec"]["sourceRepos"]) == repos
    assert {d["namespace"] for d in project["spec"]["destinations"]} == {a.namespace for a in chosen}
    for app in _applications(sample, env).values():
        assert app["spec"]["project"] == project["metadata"]["name"]
        assert app["spec"]["source"]["repoURL"] in project["spec"]["sourceRepos"]
        assert app["spec"]["destination"] in project["spec"]["destinations"]
        assert "ServerSideApply=true" in app["spec"]["syncPolicy"]["syncOptions"]
    for addon in chosen:
        src = _applications(sample, env)[addon.name]["spec"]["source"]
        assert (src["chart"], src["targetRevision"]) == (addon.chart.name, addon.chart.version)


@pytest.mark.parametrize("env", ENVS)
def test_irsa_roles_trust_exactly_the_annotated_service_account(sample, env):
    model = sample.model
    environment = model.environment(env)
    assert environment is not None
    modules = _modules(sample, env)
    apps = _applications(sample, env)
    with_roles = [a for a in model_addons.in_environment(model.catalog, env) if a.service_account]
    assert {f"irsa_addon_{a.name.replace('-', '_')}" for a in with_roles} == set(modules)
    for addon in with_roles:
        module = modules[f"irsa_addon_{addon.name.replace('-', '_')}"]
        providers = module["oidc_providers"]["shared"]
        assert providers["namespace_service_accounts"] == [f"{addon.namespace}:{addon.service_account}"]
        assert providers["provider_arn"] == "${module.eks.oidc_provider_arn}"
        assert module["trust_condition_test"] == "StringEquals"
        sa = apps[addon.name]["spec"]["source"]["helm"]["valuesObject"]["serviceAccount"]
        assert sa["name"] == addon.service_account
        assert sa["annotations"][target.ROLE_ANNOTATION] == f"arn:aws:iam::{environment.accounts.shared_services}:role/{module['name']}"
        assert apps[addon.name]["spec"]["destination"]["namespace"] == addon.namespace


@pytest.mark.parametrize("env", ENVS)
def test_policies_are_least_privilege(sample, env):
    environment = sample.model.environment(env)
    assert environment is not None
    modules = _modules(sample, env)
    for name, module in modules.items():
        for key, st in module["inline_policy_permissions"].items():
            for action in st["actions"]:
                assert action != "*" and not action.endswith(":*"), (name, key, action)
            if isinstance(st["resources"], str):  # a for expression over the tenant records (and the pools' readers): checked below
                assert st["resources"].startswith(("${[for t in values(local.tenant_records) :", "${distinct(concat([")), st["resources"]
                continue
            # literal ARNs, or references to exactly one resource of the same root (the zone, the add-on buckets' key)
            named = ("${aws_route53_zone.env.zone_id}", "${module.kms_addon_buckets.key_arn}")
            assert all("{" not in r.replace(named[0], "").replace(named[1], "") for r in st["resources"]), st["resources"]
    # ESO reads no secret as itself: it may only assume exactly the environment's tenant
    # secret-reader roles, each in the account holding that tenant's secrets (no wildcard).
    eso = modules["irsa_addon_external_secrets"]["inline_policy_permissions"]
    assert set(eso) == {"assumeTenantSecretReaders"}
    readers = sorted(f"arn:aws:iam::{d.account_id}:role/companyos-{env}-{d.name}-secret-reader" for d in sample.model.in_environment(env))
    assert eso["assumeTenantSecretReaders"]["actions"] == ["sts:AssumeRole", "sts:TagSession"]
    # the list is a for expression over the shared root's per-tenant files (tenants/<name>.json),
    # so onboarding adds a file instead of editing addons.tf; evaluated here as Terraform would
    # (tests/targets/terraform/test_tenant_records.py runs Terraform itself on it)
    expression = eso["assumeTenantSecretReaders"]["resources"]
    principal = f"arn:aws:iam::{environment.accounts.shared_services}:role/companyos-{env}-addon-external-secrets"
    # the pools' readers are listed by ARN before it (targets/pool_bootstrap.py's admin path)
    tiers = sorted({d.tier.name for d in sample.model.in_environment(env) if not d.dedicated})
    arns = [f"arn:aws:iam::{environment.accounts.pools[t]}:role/companyos-{env}-pool-{t}-secret-reader" for t in tiers]
    pools = ", ".join(f'"{arn}"' for arn in arns)
    listed = "${distinct(concat([" + pools + "], "
    assert expression.startswith(listed), expression
    expression = "${" + expression.removeprefix(listed).removesuffix("))}")
    assert expression.startswith("${[for t in values(local.tenant_records) : t.secret_reader.role if ")
    assert f't.secret_reader.principal == "{principal}"' in expression
    [pattern] = re.findall(r'regex\("([^"]+)", t\.secret_reader\.role\)', expression)
    records = [json.loads(data) for p, data in sample.result.files.items() if p.startswith(f"rendered/terraform/{env}/shared/tenants/")]
    granted = [r["secret_reader"]["role"] for r in records if r["secret_reader"]["principal"] == principal]
    assert all(re.fullmatch(pattern.replace("\\\\", "\\"), arn) for arn in granted)
    assert sorted(granted) == readers
    assert all("*" not in arn for arn in readers)
    dns = modules["irsa_addon_external_dns"]["inline_policy_permissions"]
    assert dns["changeEnvironmentZone"]["resources"] == ["arn:aws:route53:::hostedzone/${aws_route53_zone.env.zone_id}"]


def test_shared_root_with_addon_roles_passes_the_module_input_check(sample, tmp_path):
    for env in ENVS:
        for name in ("addons.tf", "main.tf"):
            dest = tmp_path / env / name
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_bytes(sample.result.files[f"rendered/terraform/{env}/shared/{name}"])
    tool = vendor.tools_dir() / "validate_tf.py"
    done = subprocess.run([sys.executable, str(tool), "-q", str(tmp_path)], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("addon", sorted(VALUES_SCHEMAS.keys() | NO_SCHEMA))
def test_rendered_values_validate_against_the_charts_values_schema(sample, addon):
    if addon in NO_SCHEMA:
        pytest.skip(f"{addon}: the chart ships no values.schema.json at its pinned version (checked upstream)")
    schema = json.loads((vendor.VENDOR_DIR / "helm" / VALUES_SCHEMAS[addon]).read_text())
    validator_cls = jsonschema.validators.validator_for(schema)
    for env in ENVS:
        values = _applications(sample, env)[addon]["spec"]["source"]["helm"]["valuesObject"]
        errors = [f"{e.json_path}: {e.message}" for e in validator_cls(schema).iter_errors(values)]
        assert errors == [], (env, errors)
        bad = {**values, "replicaCount": "two"}
        assert list(validator_cls(schema).iter_errors(bad)), "the schema must be able to fail"


def test_analysis_templates_query_the_prometheus_addon(sample):
    prom = sample.model.catalog.of("addon")["kube-prometheus-stack"].spec
    expected = f"http://{prom.values['fullnameOverride']}-prometheus.{prom.namespace}.svc:9090"
    addresses = {
        metric["provider"]["prometheus"]["address"]
        for path, data in sample.result.files.items()
        if "/rollouts/" in path
        for doc in load_yaml_docs(data)
        if doc and doc["kind"] == "AnalysisTemplate"
        for metric in doc["spec"]["metrics"]
    }
    assert addresses == {expected}


def test_values_placeholders_are_filled_per_environment(sample):
    for env in ENVS:
        environment = sample.model.environment(env)
        assert environment is not None
        values = _applications(sample, env)["external-dns"]["spec"]["source"]["helm"]["valuesObject"]
        assert values["domainFilters"] == [environment.domain]
        assert values["txtOwnerId"] == f"companyos-{env}"


# --- bad input -------------------------------------------------------------------------------


def _plant(repo: Path, addon: str, old: str, new: str) -> tuple[Path, int, int]:
    """Replace ``old`` by ``new`` in an add-on file; return the file and where ``new`` starts."""
    path = repo / "catalog" / "addons" / f"{addon}.yaml"
    text = path.read_text()
    assert text.count(old) == 1, old
    text = text.replace(old, new)
    path.write_text(text)
    offset = text.index(new)
    line = text.count("\n", 0, offset) + 1
    return path, line, offset - text.rfind("\n", 0, offset)


def _fails(companyos, repo: Path, expected: str) -> None:
    before = snapshot(repo)
    result = companyos("render", cwd=repo)
    assert result.code == 2, result.out + result.err
    assert expected in result.err, result.err
    assert "Traceback" not in result.err
    assert snapshot(repo) == before


@pytest.mark.parametrize("version", ["^3.5.0", "3.5", "3.5.0-rc1"])
def test_chart_version_must_be_exact_semver(companyos, repo, version):
    _, line, col = _plant(repo, "aws-load-balancer-controller", "  version: 3.5.0", f'  version: "{version}"')
    _fails(companyos, repo, f"catalog/addons/aws-load-balancer-controller.yaml:{line}:{col + 11}: chart.version:")


def test_two_addons_providing_one_crd_kind(companyos, repo):
    _, line, _ = _plant(repo, "metrics-server", "sync_wave: -20\n", "sync_wave: -20\nprovides_crds:\n  - argoproj.io/Rollout\n")
    _fails(
        companyos,
        repo,
        f"catalog/addons/metrics-server.yaml:{line + 2}:5: CRD kind argoproj.io/Rollout is already provided by add-on 'argo-rollouts'",
    )


@pytest.mark.parametrize(("action", "says"), [('"*"', "every service"), ("kms:*", "every action of kms")])
def test_wildcard_iam_action(companyos, repo, action, says):
    _, line, col = _plant(repo, "external-secrets", "      - sts:TagSession", f"      - {action}")
    _fails(companyos, repo, f"catalog/addons/external-secrets.yaml:{line}:{col + 8}: iam_policy.0.actions.1:")
    _fails(companyos, repo, says)


def test_unknown_environment(companyos, repo):
    _, line, _ = _plant(repo, "metrics-server", "sync_wave: -20\n", "sync_wave: -20\nenvironments: [dev, qa]\n")
    _fails(companyos, repo, f"catalog/addons/metrics-server.yaml:{line + 1}:21: unknown environment 'qa'")


def test_namespace_of_a_tenant(companyos, repo):
    _, line, _ = _plant(repo, "metrics-server", "namespace: kube-system", "namespace: tenant-acme")
    _fails(companyos, repo, f"catalog/addons/metrics-server.yaml:{line}:12: namespace 'tenant-acme' is tenant acme's namespace")
