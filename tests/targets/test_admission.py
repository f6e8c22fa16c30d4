"""Admission policies (targets/admission.py): valid Kyverno objects, each policy refuses a
planted violating pod and admits the sample's own workloads, waivers become PolicyExceptions
and bad waivers are path:line:col errors. verifyImages is checked structurally (cosign
verification needs the registry and Rekor)."""

from __future__ import annotations

import copy
import re
from typing import Any

import pytest
import yaml

from generator import pipeline
from generator.model import admission as model_admission
from generator.model import naming
from generator.targets import admission
from helpers import k8s
from helpers.catalog_edit import edit_yaml
from helpers.kyverno import pod_of, violations


def docs_of(build: pipeline.Build, env: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(build.result.files[admission.path(env)].decode()) if d]


@pytest.fixture(scope="module")
def policies(sample) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in docs_of(sample, "prod") if d["kind"] == "ClusterPolicy"}


GOOD_POD: dict[str, Any] = {
    "metadata": {"labels": {"companyos.io/tenant": "acme", "companyos.io/tier": "regulated", "companyos.io/environment": "prod"}},
    "spec": {
        "containers": [
            {
                "name": "app",
                "image": "400000000001.dkr.ecr.eu-west-1.amazonaws.com/companyos/api:1.0@sha256:" + "a" * 64,
                "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}, "limits": {"cpu": "1", "memory": "1Gi"}},
                "securityContext": {
                    "runAsNonRoot": True,
                    "readOnlyRootFilesystem": True,
                    "allowPrivilegeEscalation": False,
                    "privileged": False,
                    "capabilities": {"drop": ["ALL"]},
                },
            }
        ]
    },
}


def test_every_policy_and_exception_is_valid_against_the_vendored_crd(sample):
    for env in sample.model.environments:
        docs = docs_of(sample, env.name)
        assert {d["metadata"]["name"] for d in docs if d["kind"] == "ClusterPolicy"} == {p.name for p in model_admission.POLICIES}
        for doc in docs:
            errors = [e.message for e in k8s._crd_validator(doc["kind"], doc["apiVersion"]).iter_errors(doc)]
            assert errors == [], (env.name, doc["metadata"]["name"], errors)


def test_kyverno_addon_installs_the_crds_the_policies_use(sample):
    addon = sample.model.catalog.of("addon")["kyverno"].spec
    assert {"kyverno.io/ClusterPolicy", "kyverno.io/PolicyException"} <= set(addon.provides_crds)
    assert admission.path("dev").startswith("rendered/argocd/dev/platform/")


def test_the_good_pod_passes_every_policy(policies):
    for name, policy in policies.items():
        assert violations(policy, GOOD_POD, "regulated") == [], name


@pytest.mark.parametrize(
    ("policy", "plant", "tier"),
    [
        ("disallow-privileged", lambda p: p["spec"]["containers"][0]["securityContext"].update(privileged=True), "standard"),
        ("disallow-privileged", lambda p: p["spec"]["containers"][0]["securityContext"].update(allowPrivilegeEscalation=True), "standard"),
        ("disallow-host-namespaces", lambda p: p["spec"].update(hostNetwork=True), "standard"),
        ("disallow-host-namespaces", lambda p: p["spec"].update(hostPID=True), "standard"),
        ("disallow-host-namespaces", lambda p: p["spec"].update(volumes=[{"name": "h", "hostPath": {"path": "/"}}]), "standard"),
        ("require-resource-limits", lambda p: p["spec"]["containers"][0]["resources"].pop("limits"), "standard"),
        ("require-resource-limits", lambda p: p["spec"]["containers"][0]["resources"]["limits"].pop("memory"), "standard"),
        ("require-tenant-labels", lambda p: p["metadata"]["labels"].pop("companyos.io/tenant"), "standard"),
        ("regulated-restricted", lambda p: p["spec"]["containers"][0]["securityContext"].update(runAsNonRoot=False), "regulated"),
        ("regulated-restricted", lambda p: p["spec"]["containers"][0].update(image="registry/app:1.0"), "regulated"),
        ("regulated-restricted", lambda p: p["spec"].update(initContainers=[{"name": "i", "image": "busybox:1"}]), "regulated"),
    ],
)
def test_each_policy_refuses_its_planted_violation(policies, policy, plant, tier):
    pod = copy.deepcopy(GOOD_POD)
    plant(pod)
    assert violations(policies[policy], pod, tier), policy
    others = [n for n, p in policies.items() if n != policy and violations(p, pod, tier)]
    assert policy not in others


def test_regulated_rules_do_not_apply_to_standard_tenants(policies):
    pod = copy.deepcopy(GOOD_POD)
    pod["spec"]["containers"][0]["image"] = "registry/app:1.0"
    assert violations(policies["regulated-restricted"], pod, "standard") == []


def test_the_samples_own_migration_pods_pass(sample, policies):
    jobs = 0
    for path, data in sample.result.files.items():
        if not path.startswith("rendered/migrations/"):
            continue
        for doc in yaml.safe_load_all(data.decode()):
            if not doc or doc.get("kind") != "Job":
                continue
            jobs += 1
            tenant = doc["metadata"]["labels"]["companyos.io/tenant"]
            env = doc["metadata"]["labels"]["companyos.io/environment"]
            tier = sample.model.deployment(tenant, env).tier.name
            pod = pod_of(doc)
            for name, policy in policies.items():
                assert violations(policy, pod, tier) == [], (path, name)
    assert jobs > 0


def test_signature_policy_trusts_only_the_release_workflow_identity(sample, policies):
    rule = policies["verify-image-signatures"]["spec"]["rules"][0]
    verify = rule["verifyImages"][0]
    keyless = verify["attestors"][0]["entries"][0]["keyless"]
    assert keyless["issuer"] == naming.GITHUB_OIDC_ISSUER
    identity = re.compile(keyless["subjectRegExp"])
    platform = sample.model.platform
    for service in ("api", "web", "worker"):
        assert identity.fullmatch(naming.release_identity(platform, service))
    assert not identity.fullmatch(naming.release_identity(platform, "api").replace("@refs/heads/main", "@refs/heads/feature"))
    assert not identity.fullmatch("https://github.com/someone/else/.github/workflows/release-api.yml@refs/heads/main")
    assert verify["required"] is True and verify["verifyDigest"] is True
    assert verify["attestations"][0]["type"] == "https://spdx.dev/Document"
    prod = sample.model.environment("prod")
    image = sample.model.deployment("umbrella", "prod").image_ref("api")
    assert image.startswith(naming.ecr_repository_url(prod, "x/companyos/api"))
    assert any(fnmatch_glob(ref, image) for ref in verify["imageReferences"])


def fnmatch_glob(pattern: str, value: str) -> bool:
    from fnmatch import fnmatchcase

    return fnmatchcase(value, pattern)


WAIVER = {
    "policy": "require-resource-limits",
    "tenant": "acme",
    "environment": "dev",
    "reason": "legacy batch job being rewritten (PLAT-123)",
    "approver": "security@example.com",
    "expires": "2099-12-31",
}


def test_a_waiver_becomes_a_policy_exception_in_the_tenants_namespace(repo):
    edit_yaml(repo / "catalog/waivers.yaml", lambda d: d.update(admission=[WAIVER]))
    built = pipeline.build(repo)
    exceptions = [d for d in docs_of(built, "dev") if d["kind"] == "PolicyException"]
    assert len(exceptions) == 1
    exc = exceptions[0]
    assert exc["metadata"]["namespace"] == naming.namespace("acme")
    assert exc["metadata"]["annotations"]["companyos.io/expires"] == "2099-12-31"
    assert exc["spec"]["exceptions"] == [{"policyName": "require-resource-limits", "ruleNames": ["cpu-and-memory-limits"]}]
    assert not [d for d in docs_of(built, "prod") if d["kind"] == "PolicyException"]
    errors = [e.message for e in k8s._crd_validator(exc["kind"], exc["apiVersion"]).iter_errors(exc)]
    assert errors == []


def test_a_waiver_for_an_unknown_policy_is_a_located_error(repo, companyos):
    edit_yaml(repo / "catalog/waivers.yaml", lambda d: d.update(admission=[{**WAIVER, "policy": "allow-everything"}]))
    before = (repo / admission.path("dev")).read_bytes() if (repo / admission.path("dev")).exists() else None
    result = companyos("render", cwd=repo)
    assert result.code == 2
    assert re.search(r"catalog/waivers\.yaml:\d+:\d+: admission waiver of 'allow-everything'.*unknown admission policy", result.err)
    after = (repo / admission.path("dev")).read_bytes() if (repo / admission.path("dev")).exists() else None
    assert before == after


def test_an_expired_waiver_fails_the_policy_check(repo, companyos):
    edit_yaml(repo / "catalog/waivers.yaml", lambda d: d.update(admission=[{**WAIVER, "expires": "2020-01-01"}]))
    result = companyos("check", cwd=repo)
    assert result.code == 2
    assert "expired on 2020-01-01" in result.err
