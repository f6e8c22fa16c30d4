"""No Application or AppProject of one tenant can reach another tenant's namespace."""

from __future__ import annotations

import copy
import fnmatch

from generator.model import naming
from generator.targets import common


def isolation_problems(model, delivery_docs, applications) -> list[str]:
    """Every way a tenant's delivery could leave its own namespace."""
    problems = []
    projects = {(d.environment, d.data["metadata"]["name"]): d for d in delivery_docs if d.kind == "AppProject"}
    all_namespaces = {d.namespace for d in model.deployments}
    allowed_repos = {model.platform.repository.url} | {c.repository for c in model.platform.charts.values()}
    for env, params, app in applications:
        tenant = params["tenant"]
        own = naming.namespace(tenant)
        project_name = app["spec"]["project"]
        if project_name != naming.argocd_project(tenant, env):
            problems.append(f"{app['metadata']['name']} uses project {project_name}")
        if app["spec"]["destination"]["namespace"] != own:
            problems.append(f"{app['metadata']['name']} deploys to {app['spec']['destination']['namespace']}")
        project = projects.get((env, project_name))
        if project is None:
            problems.append(f"{app['metadata']['name']}: project {project_name} is not rendered")
            continue
        spec = project.data["spec"]
        for dest in spec["destinations"]:
            reachable = {ns for ns in all_namespaces if fnmatch.fnmatchcase(ns, dest["namespace"])}
            if reachable - {own} or dest["namespace"] != own:
                problems.append(f"project {project_name} reaches {dest['namespace']}")
            # the environment's cluster, or its DR standby cluster (issue 15) where it has one
            clusters = {naming.cluster_name(model.platform, env)}
            if next(e for e in model.environments if e.name == env).disaster_recovery is not None:
                clusters.add(common.standby_cluster(model.platform, env))
            if dest.get("name") not in clusters or "server" in dest:
                problems.append(f"project {project_name} reaches cluster {dest}")
        if spec.get("clusterResourceWhitelist"):
            problems.append(f"project {project_name} allows cluster-scoped resources")
        for repo in spec["sourceRepos"]:
            if repo not in allowed_repos:
                problems.append(f"project {project_name} allows source {repo}")
    for doc in delivery_docs:
        if doc.tenant and doc.kind == "Application":
            # an Application is an Argo CD control-plane object and lives in argocd;
            # what it can reach is its destination, which must be the tenant's own namespace
            reach = doc.data["spec"]["destination"].get("namespace")
            if reach != naming.namespace(doc.tenant):
                problems.append(f"{doc.where} of tenant {doc.tenant} deploys to {reach}")
        elif doc.tenant and doc.kind not in ("AppProject",):
            ns = doc.data["metadata"].get("namespace", doc.data["metadata"]["name"] if doc.kind == "Namespace" else None)
            if ns != naming.namespace(doc.tenant):
                problems.append(f"{doc.where} of tenant {doc.tenant} lives in {ns}")
        if doc.kind == "NetworkPolicy":
            rules = doc.data["spec"].get("ingress", []) + doc.data["spec"].get("egress", [])
            peers = [p for r in rules for p in r.get("from", []) + r.get("to", [])]
            for peer in peers:
                name = peer.get("namespaceSelector", {}).get("matchLabels", {}).get("kubernetes.io/metadata.name")
                if name in all_namespaces:
                    problems.append(f"{doc.where} opens traffic with tenant namespace {name}")
    return problems


def test_no_tenant_delivery_reaches_another_tenant(sample, delivery_docs, applications):
    assert applications and len({p["tenant"] for _, p, _ in applications}) > 1
    assert isolation_problems(sample.model, delivery_docs, applications) == []


def test_the_isolation_check_catches_a_leak(sample, delivery_docs, applications):
    """The check above is only worth something if a leak makes it fail."""
    env, params, app = applications[0]
    other = next(p["tenant"] for e, p, _ in applications if e == env and p["tenant"] != params["tenant"])
    leaked = copy.deepcopy(app)
    leaked["spec"]["project"] = naming.argocd_project(other, env)
    assert isolation_problems(sample.model, delivery_docs, [(env, params, leaked)])

    project = next(d for d in delivery_docs if d.kind == "AppProject" and d.tenant == params["tenant"] and d.environment == env)
    wide = copy.deepcopy(project)
    wide.data["spec"]["destinations"] = [{"name": naming.cluster_name(sample.model.platform, env), "namespace": "tenant-*"}]
    docs = [wide if d is project else d for d in delivery_docs]
    assert any("reaches tenant-*" in p for p in isolation_problems(sample.model, docs, [(env, params, app)]))
