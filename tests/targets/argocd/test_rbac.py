"""A tenant team's access (targets/argocd/rbac.py): its AppProject role and namespace RBAC
name only its own group and project, validate against the Argo CD CRD and the Kubernetes
API schemas, and are applied by the platform project (docs/isolation.md, "Identity")."""

from __future__ import annotations

from typing import Any

import yaml

from generator import pipeline
from generator.model import naming
from generator.targets.argocd import rbac


def _docs(sample: pipeline.Build, prefix: str) -> dict[str, list[dict[str, Any]]]:
    return {
        path: [d for d in yaml.safe_load_all(data.decode()) if d]
        for path, data in sample.result.files.items()
        if path.startswith(prefix) and path.endswith(".yaml")
    }


def access_findings(project: dict[str, Any], namespace_docs: list[dict[str, Any]], tenant: str, env: str, org: str) -> list[str]:
    """What in one tenant's AppProject and namespace file reaches beyond its own group and project."""
    found = []
    group, name = naming.tenant_group_of(org, tenant), naming.argocd_project(tenant, env)
    roles = project["spec"].get("roles", [])
    if [r["groups"] for r in roles] != [[group]]:
        found.append(f"{name}: role groups {[r['groups'] for r in roles]}")
    for role in roles:
        for policy in role["policies"]:
            _, subject, resource, action, obj, effect = (p.strip() for p in policy.split(","))
            if subject != f"proj:{name}:{role['name']}" or not obj.startswith(f"{name}/") or effect != "allow":
                found.append(f"{name}: policy {policy!r}")
            if (resource, action) not in rbac.PROJECT_ACTIONS:
                found.append(f"{name}: grants {resource} {action}")
    bindings = [d for d in namespace_docs if d["kind"] in ("RoleBinding", "ClusterRoleBinding")]
    if [s["name"] for b in bindings for s in b["subjects"]] != [group]:
        found.append(f"bindings name {[s['name'] for b in bindings for s in b['subjects']]}")
    for role in (d for d in namespace_docs if d["kind"] in ("Role", "ClusterRole")):
        for rule in role["rules"]:
            if "secrets" in rule["resources"] or "pods/exec" in rule["resources"] or "*" in rule["verbs"]:
                found.append(f"Role {role['metadata']['name']} grants {rule}")
            if set(rule["verbs"]) - {"get", "list", "watch"} and rule["resources"] != ["pods"]:
                found.append(f"Role {role['metadata']['name']} writes {rule['resources']}")
    return found


def test_every_tenant_team_reaches_only_its_own_project_and_namespace(sample: pipeline.Build) -> None:
    org = sample.model.platform.organization
    namespaces = _docs(sample, "rendered/argocd/")
    checked = 0
    for d in sample.model.deployments:
        project = namespaces[f"rendered/argocd/{d.env}/projects/{d.name}.yaml"][0]
        fence = namespaces[f"rendered/argocd/{d.env}/namespaces/{d.name}.yaml"]
        assert access_findings(project, fence, d.name, d.env, org) == []
        assert {doc["metadata"].get("namespace") for doc in fence if doc["kind"] in ("Role", "RoleBinding")} == {d.namespace}
        checked += 1
    assert checked == len(sample.model.deployments) > 0


def test_planted_widenings_are_caught(sample: pipeline.Build) -> None:
    org = sample.model.platform.organization
    d = sample.model.deployments[0]
    project = _docs(sample, "rendered/argocd/")[f"rendered/argocd/{d.env}/projects/{d.name}.yaml"][0]
    fence = _docs(sample, "rendered/argocd/")[f"rendered/argocd/{d.env}/namespaces/{d.name}.yaml"]
    other = naming.tenant_group_of(org, "someone-else")
    project["spec"]["roles"][0]["groups"].append(other)
    project["spec"]["roles"][0]["policies"].append(f"p, proj:{d.name}-{d.env}:tenant-team, applications, delete, */*, allow")
    binding = next(doc for doc in fence if doc["kind"] == "RoleBinding")
    binding["subjects"][0]["name"] = other
    role = next(doc for doc in fence if doc["kind"] == "Role")
    role["rules"].append({"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]})
    found = access_findings(project, fence, d.name, d.env, org)
    assert len(found) == 5, found


def test_role_binding_and_project_roles_validate(validation: dict[str, dict[str, list[str]]], sample: pipeline.Build) -> None:
    count = len(sample.model.deployments)
    for kind in ("Role", "RoleBinding"):
        assert len(validation[kind]) >= count
        assert {where: errors for where, errors in validation[kind].items() if errors} == {}
    assert {where: errors for where, errors in validation["AppProject"].items() if errors} == {}


def test_platform_project_may_apply_the_rbac(sample: pipeline.Build) -> None:
    """The namespace files go through the platform project, whose whitelist must list both kinds."""
    for env in sample.model.environments:
        platform = _docs(sample, f"rendered/argocd/{env.name}/platform.yaml")[f"rendered/argocd/{env.name}/platform.yaml"][0]
        kinds = {(k["group"], k["kind"]) for k in platform["spec"]["namespaceResourceWhitelist"]}
        assert {("rbac.authorization.k8s.io", "Role"), ("rbac.authorization.k8s.io", "RoleBinding")} <= kinds
