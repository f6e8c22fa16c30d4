"""A tenant team's access, as data: its AppProject role and its namespace Role/RoleBinding.

The team's identity-provider group (``naming.tenant_group``) may view and sync only the
applications of its own AppProject (and read their logs; no exec, no override, no delete),
and read the objects of its own namespace (plus pod logs; pod deletion to restart). Nothing
else names the group, so every other project and namespace stays closed to it: Argo CD and
Kubernetes RBAC both deny by default. docs/isolation.md ("Identity").
"""

from __future__ import annotations

from typing import Any

from generator.model import naming
from generator.model.resolve import Deployment, Model

#: The AppProject role and the namespace Role/RoleBinding of the tenant team.
ROLE = "tenant-team"
#: Argo CD actions the team has on its project's applications (``<project>/*``).
PROJECT_ACTIONS = (("applications", "get"), ("applications", "sync"), ("logs", "get"))
#: Read-only API groups and resources of the namespace the team may see.
READ_RULES: tuple[tuple[tuple[str, ...], tuple[str, ...]], ...] = (
    (("",), ("pods", "pods/log", "services", "endpoints", "configmaps", "events", "serviceaccounts", "persistentvolumeclaims")),
    (("apps",), ("deployments", "replicasets", "statefulsets")),
    (("batch",), ("jobs", "cronjobs")),
    (("autoscaling",), ("horizontalpodautoscalers",)),
    (("argoproj.io",), ("rollouts", "analysistemplates", "analysisruns")),
    (("networking.k8s.io",), ("ingresses", "networkpolicies")),
    (("external-secrets.io",), ("externalsecrets",)),
)


def project_role(model: Model, d: Deployment) -> dict[str, Any]:
    """The AppProject ``roles`` entry: the tenant group, its own project's applications only."""
    project = naming.argocd_project(d.name, d.env)
    subject = f"proj:{project}:{ROLE}"
    return {
        "name": ROLE,
        "description": f"Team of tenant {d.name}: view, sync and read logs of its {d.env} applications",
        "policies": [f"p, {subject}, {resource}, {action}, {project}/*, allow" for resource, action in PROJECT_ACTIONS],
        "groups": [naming.tenant_group(model.platform, d.name)],
    }


def namespace_documents(model: Model, d: Deployment, metadata: dict[str, Any]) -> list[dict[str, Any]]:
    """Role (read, logs, restart a pod; never secrets, exec or port-forward) and its binding to
    the tenant group, in the tenant's namespace. ``metadata`` has the namespace and labels."""
    rules: list[dict[str, Any]] = [
        {"apiGroups": list(groups), "resources": list(resources), "verbs": ["get", "list", "watch"]} for groups, resources in READ_RULES
    ]
    rules.append({"apiGroups": [""], "resources": ["pods"], "verbs": ["delete"]})
    meta = {**metadata, "name": ROLE}
    return [
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": meta, "rules": rules},
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": dict(meta),
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": ROLE},
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": naming.tenant_group(model.platform, d.name)}],
        },
    ]
