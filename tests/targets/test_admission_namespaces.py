"""CO046 restrict-namespaces (targets/admission.py): only Argo CD's controller creates a
Namespace, and a tenant Namespace carries every platform label. Evaluated with
helpers.kyverno against the sample's own rendered Namespaces and planted ones."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import yaml

from generator import pipeline
from generator.targets import admission
from generator.targets.argocd import target as argocd
from helpers.kyverno import request_refusals

CONTROLLER = "system:serviceaccount:argocd:argocd-application-controller"


@pytest.fixture(scope="module")
def policy(sample: pipeline.Build) -> dict[str, Any]:
    docs = [d for d in yaml.safe_load_all(sample.result.files[admission.path("prod")].decode()) if d]
    return next(d for d in docs if d["kind"] == "ClusterPolicy" and d["metadata"]["name"] == "restrict-namespaces")


@pytest.fixture(scope="module")
def tenant_namespaces(sample: pipeline.Build) -> list[dict[str, Any]]:
    out = []
    for d in sample.model.deployments:
        data = sample.result.files[argocd.namespace_path(d.env, d.name)]
        out += [doc for doc in yaml.safe_load_all(data.decode()) if doc and doc["kind"] == "Namespace"]
    return out


def test_rule_on_the_requester_is_not_run_in_background(policy):
    assert policy["spec"]["background"] is False
    assert policy["spec"]["validationFailureAction"] == "Enforce"
    assert policy["metadata"]["labels"]["companyos.io/policy-rule"] == "CO046"


def test_every_rendered_tenant_namespace_is_admitted_from_argocd(policy, tenant_namespaces):
    assert len(tenant_namespaces) >= 5
    for ns in tenant_namespaces:
        assert request_refusals(policy, ns, "CREATE", CONTROLLER) == [], ns["metadata"]["name"]
        assert request_refusals(policy, ns, "UPDATE", CONTROLLER) == [], ns["metadata"]["name"]


@pytest.mark.parametrize(
    "user",
    ["kubernetes-admin", "system:serviceaccount:tenant-acme:default", "system:serviceaccount:kube-system:argocd-application-controller"],
)
def test_a_namespace_created_by_anyone_else_is_refused(policy, tenant_namespaces, user):
    plain = {"kind": "Namespace", "metadata": {"name": "sneaky", "labels": {}}}
    assert request_refusals(policy, plain, "CREATE", user) == ["namespaces-only-from-argocd"]
    assert "namespaces-only-from-argocd" in request_refusals(policy, tenant_namespaces[0], "CREATE", user)


def test_an_addon_namespace_from_argocd_and_an_eks_addon_namespace_are_admitted(policy):
    addon = {"kind": "Namespace", "metadata": {"name": "external-secrets", "labels": {}}}
    assert request_refusals(policy, addon, "CREATE", CONTROLLER) == []
    cloudwatch = {"kind": "Namespace", "metadata": {"name": "amazon-cloudwatch"}}
    assert request_refusals(policy, cloudwatch, "CREATE", "eks:addon-manager") == []


@pytest.mark.parametrize(
    "label", ["companyos.io/tier", "companyos.io/environment", "pod-security.kubernetes.io/enforce", "app.kubernetes.io/managed-by"]
)
def test_a_tenant_namespace_without_a_platform_label_is_refused_even_from_argocd(policy, tenant_namespaces, label):
    ns = copy.deepcopy(tenant_namespaces[0])
    assert label in ns["metadata"]["labels"]
    del ns["metadata"]["labels"][label]
    assert request_refusals(policy, ns, "CREATE", CONTROLLER) == ["tenant-namespace-labels"]
    assert request_refusals(policy, ns, "UPDATE", CONTROLLER) == ["tenant-namespace-labels"]


def test_a_tenant_namespace_relaxed_to_baseline_is_refused(policy, tenant_namespaces):
    ns = copy.deepcopy(tenant_namespaces[0])
    ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] = "privileged"
    assert request_refusals(policy, ns, "UPDATE", CONTROLLER) == ["tenant-namespace-labels"]


def test_updates_of_untenanted_namespaces_are_not_judged(policy):
    addon = {"kind": "Namespace", "metadata": {"name": "kyverno", "labels": {}}}
    assert request_refusals(policy, addon, "UPDATE", "kubernetes-admin") == []
