"""Elastic capacity in the cluster (targets/capacity.py): Karpenter NodePools and EC2NodeClass
per environment and KEDA ScaledObjects, validated against the vendored CRD schemas (strict),
cross-checked with the Helm values, the HPAs and the Terraform queues they depend on."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import time
from typing import Any

import hcl2
import jsonschema
import pytest
from hcl2.utils import SerializationOptions

from generator import vendor
from generator.model import quantities
from generator.targets import capacity, common
from helpers.k8s import brace_paths
from helpers.yaml_docs import load_yaml_docs

CRD_DIR = vendor.crd_schema_dir()
KINDS = {
    "NodePool": "karpenter.sh_v1_NodePool",
    "EC2NodeClass": "karpenter.k8s.aws_v1_EC2NodeClass",
    "ScaledObject": "keda.sh_v1alpha1_ScaledObject",
    "TriggerAuthentication": "keda.sh_v1alpha1_TriggerAuthentication",
}
ENVS = ("dev", "stage", "prod")


def validator(kind: str) -> jsonschema.Draft7Validator:
    schema = json.loads((CRD_DIR / f"{KINDS[kind]}.json").read_text())
    return jsonschema.Draft7Validator(schema, format_checker=jsonschema.Draft7Validator.FORMAT_CHECKER)


def docs(sample: Any, path: str) -> list[dict[str, Any]]:
    return [d for d in load_yaml_docs(sample.result.files[path]) if d]


def scaling_files(sample: Any) -> dict[str, list[dict[str, Any]]]:
    return {p: docs(sample, p) for p in sample.result.files if "/scaling/" in p}


def errors(doc: dict[str, Any]) -> list[str]:
    return [f"{'.'.join(map(str, e.absolute_path))}: {e.message}" for e in validator(doc["kind"]).iter_errors(doc)]


def test_every_capacity_document_validates_against_its_crd(sample):
    found: dict[str, int] = {}
    paths = [capacity.nodepools_path(env) for env in ENVS] + list(scaling_files(sample))
    for path in paths:
        for doc in docs(sample, path):
            assert errors(doc) == [], (path, doc["kind"])
            found[doc["kind"]] = found.get(doc["kind"], 0) + 1
    assert found["EC2NodeClass"] == 3 and found["NodePool"] >= 6
    assert found["ScaledObject"] == found["TriggerAuthentication"] >= 3


def test_the_schema_catches_a_broken_pool(sample):
    """The validation above can fail: a planted typo in a pool is reported."""
    pool = next(d for d in docs(sample, capacity.nodepools_path("prod")) if d["kind"] == "NodePool")
    broken = copy.deepcopy(pool)
    broken["spec"]["disruption"]["consolidationPolicy"] = "WhenIdle"
    assert any("consolidationPolicy" in e for e in errors(broken))


def test_one_node_class_and_a_pool_per_workload_class(sample):
    prod = docs(sample, capacity.nodepools_path("prod"))
    (node_class,) = [d for d in prod if d["kind"] == "EC2NodeClass"]
    assert node_class["metadata"]["name"] == "prod" and node_class["spec"]["role"] == "companyos-prod-karpenter-node"
    assert node_class["spec"]["metadataOptions"]["httpTokens"] == "required"
    pools = {d["metadata"]["name"]: d for d in prod if d["kind"] == "NodePool"}
    assert set(pools) == {"system", "tenant", "spot"}
    capacity_type = {n: p["spec"]["template"]["spec"]["requirements"][0] for n, p in pools.items()}
    assert all(r["key"] == "karpenter.sh/capacity-type" for r in capacity_type.values())
    assert {n: r["values"] for n, r in capacity_type.items()} == {"system": ["on-demand"], "tenant": ["on-demand"], "spot": ["spot"]}
    # the tenant and spot pools are tainted, so only services placed there land there
    assert "taints" not in pools["system"]["spec"]["template"]["spec"]
    for name in ("tenant", "spot"):
        (taint,) = pools[name]["spec"]["template"]["spec"]["taints"]
        assert taint == {"key": common.WORKLOAD_CLASS, "value": name, "effect": "NoSchedule"}
        assert pools[name]["spec"]["disruption"]["consolidationPolicy"] == "WhenEmptyOrUnderutilized"


def test_tenant_pool_limits_are_the_environment_budget_not_a_sum_over_tenants(sample):
    """The NodePools' limits come from environments/<env>.yaml node_limits, so adding a tenant
    changes no NodePool (parallel onboarding PRs merge); CO034 checks the quotas fit."""
    budget = sample.model.environment("dev").node_limits
    pools = {d["metadata"]["name"]: d for d in docs(sample, capacity.nodepools_path("dev")) if d.get("kind") == "NodePool"}
    for name in ("tenant", "spot"):
        assert pools[name]["spec"]["limits"] == {"cpu": str(budget.cpu), "memory": f"{budget.memory_gib}Gi"}
    cores, gib = quantities.quota_totals(sample.model.in_environment("dev"))
    assert 0 < cores <= budget.cpu and 0 < gib <= budget.memory_gib
    sources = sample.result.entry(capacity.nodepools_path("dev"))["sources"]
    assert not any(s.startswith("tenants/") for s in sources), sources


def test_the_pools_are_synced_by_their_own_fenced_project(sample):
    argo = docs(sample, capacity.capacity_path("dev"))
    project, app = argo
    assert project["spec"]["clusterResourceWhitelist"] == [
        {"group": "karpenter.sh", "kind": "NodePool"},
        {"group": "karpenter.k8s.aws", "kind": "EC2NodeClass"},
    ]
    assert project["spec"]["namespaceResourceWhitelist"] == []
    assert app["spec"]["project"] == project["metadata"]["name"]
    assert app["spec"]["source"]["path"] == "rendered/argocd/dev/capacity"
    # waves: every add-on (Karpenter's CRDs) first, then the project, then its Application

    def wave(doc: dict[str, Any]) -> int:
        return int((doc["metadata"].get("annotations") or {}).get("argocd.argoproj.io/sync-wave", "0"))

    addons = [d for d in docs(sample, "rendered/argocd/dev/addons.yaml") if d["kind"] == "Application"]
    assert max(wave(a) for a in addons) < wave(project) < wave(app)
    bootstrap = docs(sample, "rendered/argocd/dev/bootstrap.yaml")
    include = next(d for d in bootstrap if d["kind"] == "Application")["spec"]["source"]["directory"]["include"]
    assert "capacity.yaml" in brace_paths(include)


def test_worker_scales_on_its_own_queue_and_to_zero_in_dev(sample):
    scaled = next(d for d in docs(sample, common.scaling_path("dev", "hooli", "worker")) if d["kind"] == "ScaledObject")
    spec_ = scaled["spec"]
    assert spec_["minReplicaCount"] == 0 and spec_["maxReplicaCount"] == 10
    assert spec_["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "worker"}
    queue, cpu, memory = spec_["triggers"]
    assert queue["type"] == "aws-sqs-queue" and queue["metadata"]["queueLength"] == "20"
    assert queue["authenticationRef"]["name"] == "worker-aws"
    assert (cpu["type"], memory["type"]) == ("cpu", "memory") and memory["metadata"]["value"] == "80"
    # the URL names the queue the tenant's Terraform root creates, in the account it runs in
    tf = hcl2.loads(
        sample.result.files["rendered/terraform/dev/tenant-hooli/capacity.tf"].decode(),
        serialization_options=SerializationOptions(strip_string_quotes=True),
    )
    names = [body["name"] for block in tf["module"] for body in block.values() if "sqs" in body["source"]]
    assert names == ["companyos-dev-hooli-jobs"]
    account = sample.model.deployment("hooli", "dev").account_id
    assert queue["metadata"]["queueURL"] == f"https://sqs.eu-west-1.amazonaws.com/{account}/companyos-dev-hooli-jobs"
    prod = next(d for d in docs(sample, common.scaling_path("prod", "hooli", "worker")) if d["kind"] == "ScaledObject")
    assert prod["spec"]["minReplicaCount"] == 1


def test_keda_owns_the_hpa_where_it_scales(sample):
    """No second autoscaler: the chart's HPA is off and the Deployment has no replica count."""
    values = json.loads(json.dumps(load_yaml_docs(sample.result.files[common.values_path("dev", "hooli", "worker")])[0]))
    assert values["autoscaling"]["enabled"] is False
    assert "replicas" not in values["deployment"]
    api = load_yaml_docs(sample.result.files[common.values_path("dev", "globex", "api")])[0]
    assert api["autoscaling"]["enabled"] is True
    assert [m["resource"]["name"] for m in api["autoscaling"]["metrics"]] == ["cpu", "memory"]


@pytest.mark.parametrize(("tenant", "cls"), [("hooli", "spot"), ("acme", "tenant")])
def test_services_are_placed_on_their_class_pool(sample, tenant, cls):
    values = load_yaml_docs(sample.result.files[common.values_path("prod", tenant, "worker")])[0]
    assert values["deployment"]["nodeSelector"] == {common.WORKLOAD_CLASS: cls}
    assert values["deployment"]["tolerations"] == [
        {"key": common.WORKLOAD_CLASS, "operator": "Equal", "value": cls, "effect": "NoSchedule"}
    ]


def test_rollout_hpa_scales_on_cpu_and_memory(sample):
    rollout_docs = docs(sample, "rendered/argocd/prod/rollouts/globex/api.yaml")
    (hpa,) = [d for d in rollout_docs if d["kind"] == "HorizontalPodAutoscaler"]
    metrics = {m["resource"]["name"]: m["resource"]["target"]["averageUtilization"] for m in hpa["spec"]["metrics"]}
    assert metrics == {"cpu": 65, "memory": 80}


# --- previews: idle scale-to-zero and the TTL sweeper ----------------------------------------


def test_preview_idle_scaling_validates_and_covers_every_service(sample):
    idle = docs(sample, "rendered/previews/dev/idle-scaling.yaml")
    assert {d["spec"]["scaleTargetRef"]["name"] for d in idle} == set(sample.model.services)
    for doc in idle:
        assert errors(doc) == [] and "namespace" not in doc["metadata"]  # applied into each pr-* namespace
        assert doc["spec"]["minReplicaCount"] == 0
        (trigger,) = doc["spec"]["triggers"]
        assert trigger["type"] == "cron" and trigger["metadata"]["timezone"] == "Europe/Dublin"
    previews = load_yaml_docs(sample.result.files[".github/workflows/previews.yml"])[0]
    runs = "\n".join(step.get("run", "") for step in previews["jobs"]["deploy"]["steps"])
    assert "companyos.io/preview-expires=" in runs and "72 * 3600" in runs
    assert 'kubectl apply --namespace "$NAMESPACE" -f rendered/previews/dev/idle-scaling.yaml' in runs


def _sweeper_script(sample) -> tuple[dict[str, Any], str]:
    wf = load_yaml_docs(sample.result.files[".github/workflows/preview-sweeper.yml"])[0]
    (step,) = [s for s in wf["jobs"]["sweep"]["steps"] if s.get("name") == "Delete expired pr-* namespaces"]
    return wf, step


def test_sweeper_is_scheduled_least_privilege_and_pinned(sample):
    wf, step = _sweeper_script(sample)
    assert wf["permissions"] == {} and wf["jobs"]["sweep"]["permissions"] == {"id-token": "write"}
    assert wf[True]["schedule"] and "workflow_dispatch" in wf[True]
    uses = [s["uses"] for s in wf["jobs"]["sweep"]["steps"] if "uses" in s]
    assert uses and all(len(u.split("@")[1]) == 40 for u in uses)
    assert "${{" not in step["run"]


def test_sweeper_deletes_only_expired_pr_namespaces(sample, tmp_path):
    """Run the rendered script against a fake kubectl: expired pr-* go, the rest stay."""
    _, step = _sweeper_script(sample)
    now = int(time.time())
    listing = "\n".join(
        [
            f"pr-1 {now - 60}",  # expired a minute ago
            f"pr-2 {now + 3600}",  # an hour left
            f"dev-tools {now - 60}",  # not a preview namespace name
            "pr-3 ",  # no label: left alone, with a warning
            f"pr-4 {now - 7200}",
        ]
    )
    (tmp_path / "listing").write_text(listing + "\n")
    kubectl = tmp_path / "kubectl"
    kubectl.write_text('#!/bin/sh\nif [ "$1" = get ]; then cat "$(dirname "$0")/listing"; else echo "$@" >> "$(dirname "$0")/calls"; fi\n')
    kubectl.chmod(0o755)
    env = {**os.environ, "PATH": f"{tmp_path}:{os.environ['PATH']}", **step["env"]}
    run = subprocess.run(["bash", "-e", "-o", "pipefail", "-c", step["run"]], env=env, capture_output=True, text=True, check=False)
    assert run.returncode == 0, run.stderr
    deleted = [line.split()[2] for line in (tmp_path / "calls").read_text().splitlines()]
    assert deleted == ["pr-1", "pr-4"]
    assert "pr-3 has no valid" in run.stdout
