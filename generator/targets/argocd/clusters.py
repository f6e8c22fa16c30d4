"""Clusters Argo CD deploys to beyond its own: their registration, and who registers which name.

Argo CD runs on the first cell's cluster. Every other cell's cluster (``cells:`` in
``environments/<env>.yaml``) and the standby cluster (``standby.py``) are registered the same
way: the shared Terraform root writes the cluster's endpoint, CA and name to a Secrets Manager
secret after apply, and a SecretStore + ExternalSecret in Argo CD's namespace turn it into Argo
CD's cluster Secret (``argocd.argoproj.io/secret-type: cluster``, ``awsAuthConfig.clusterName``).
One file per extra cell, ``rendered/argocd/<env>/clusters/<cell>.yaml``: adding a cell adds a
file and changes no other registration. Each registration provides an ``argocd_cluster``
contract; every destination that names a cluster consumes one (docs/delivery.md, "Cells").
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from generator.catalog import spec
from generator.errors import Location
from generator.formats.templating import Templates
from generator.model import naming, networks
from generator.model.resolve import Model
from generator.targets import common
from generator.targets.base import RenderedFile
from generator.targets.contracts import Contract, deployed_kinds
from generator.targets.contracts import at as contract_at

ESO_API = "external-secrets.io/v1"
T_CLUSTER = "argocd/cluster.yaml.j2"
#: The kinds the gitops AppProject must also whitelist for a registration.
REGISTRATION_KINDS = (("external-secrets.io", "SecretStore"), ("external-secrets.io", "ExternalSecret"))
#: Where Argo CD itself runs, as Argo CD names its own cluster.
IN_CLUSTER = "in-cluster"


def clusters_dir(env: str) -> str:
    return f"rendered/argocd/{env}/clusters"


def registration_path(env: str, cell: str) -> str:
    return f"{clusters_dir(env)}/{cell}.yaml"


def extra_cells(env: spec.Environment) -> list[spec.Cell]:
    """The cells whose clusters Argo CD reaches from outside (all but the first, its own)."""
    return networks.cells(env)[1:]


def registers(env: spec.Environment) -> bool:
    """True when the environment's Argo CD registers a cluster besides its own (the
    gitops AppProject then whitelists :data:`REGISTRATION_KINDS`)."""
    return env.disaster_recovery is not None or bool(extra_cells(env))


def registration(platform: spec.Platform, env: spec.Environment, cluster: str, secret: str) -> list[dict[str, Any]]:
    """Argo CD's cluster Secret for ``cluster``, built by External Secrets from the connection
    the shared Terraform root stores in ``secret`` (endpoint and CA are only known after apply)."""
    argo_ns = platform.argocd_namespace
    store = f"{cluster}-registration"
    labels = naming.environment_labels(env.name)
    # No roleARN: argocd-k8s-auth uses the controller's own IRSA role, which each registered
    # cluster admits by an EKS access entry (templates/terraform/_argocd.tf.j2).
    config = '{"awsAuthConfig": {"clusterName": "{{ .cluster }}"}, "tlsClientConfig": {"caData": "{{ .ca }}"}}'
    return [
        {
            "apiVersion": ESO_API,
            "kind": "SecretStore",
            "metadata": {"name": store, "namespace": argo_ns, "labels": labels},
            "spec": {
                "provider": {
                    "aws": {
                        "service": "SecretsManager",
                        "region": env.aws.region,
                        "auth": {"jwt": {"serviceAccountRef": {"name": common.ARGOCD_CONTROLLER_SA}}},
                    }
                }
            },
        },
        {
            "apiVersion": ESO_API,
            "kind": "ExternalSecret",
            "metadata": {"name": cluster, "namespace": argo_ns, "labels": labels},
            "spec": {
                "refreshInterval": "1h",
                "secretStoreRef": {"name": store, "kind": "SecretStore"},
                "target": {
                    "name": cluster,
                    "creationPolicy": "Owner",
                    "template": {
                        "metadata": {"labels": {"argocd.argoproj.io/secret-type": "cluster", **labels}},
                        "data": {"name": cluster, "server": "{{ .server }}", "config": config},
                    },
                },
                "dataFrom": [{"extract": {"key": secret}}],
            },
        },
    ]


def cell_at(model: Model, env: spec.Environment, cell: str) -> Location:
    """The catalog line of ``cell`` in ``environments/<env>.yaml`` (the environment's own line
    when it declares no ``cells:``, i.e. the one default cell)."""
    for i, declared in enumerate(env.cells):
        if declared.name == cell:
            return contract_at(model, "environment", env.name, "cells", i, "name")
    return contract_at(model, "environment", env.name)


def cluster_cell(model: Model, env: spec.Environment, cluster: str) -> str | None:
    for cell in networks.cells(env):
        if networks.cell_cluster(model.platform, env, cell.name) == cluster:
            return cell.name
    return None


def destinations_consumed(model: Model, env: spec.Environment, documents: Iterable[dict[str, Any]], at: Location) -> list[Contract]:
    """An ``argocd_cluster`` contract for every cluster name the documents deploy to (an
    Application's or ApplicationSet template's ``destination``, an AppProject's
    ``destinations``). A cell's cluster is blamed at that cell's catalog line, others at ``at``."""
    names: list[str] = []
    for doc in documents:
        spec_ = doc.get("spec", {})
        if doc.get("kind") == "AppProject":
            names += [d["name"] for d in spec_.get("destinations", []) if "name" in d]
        else:
            target = spec_.get("template", {}).get("spec", spec_) if doc.get("kind") == "ApplicationSet" else spec_
            if "name" in target.get("destination", {}):
                names.append(target["destination"]["name"])
    out = []
    for name in dict.fromkeys(names):
        cell = cluster_cell(model, env, name)
        out.append(Contract("argocd_cluster", name, env.name, at=cell_at(model, env, cell) if cell is not None else at))
    return out


def own_cluster(model: Model, env: spec.Environment) -> tuple[Contract, ...]:
    """Argo CD's own cluster, under both names destinations use: ``in-cluster`` (Argo CD's
    name for the cluster it runs on) and the first cell's cluster name. Nothing is rendered for
    either: Argo CD is installed on the first cell's cluster by hand (docs/delivery.md, the one
    prerequisite), and that installation is the producer declared here. The first cell's name
    must be known to that installation (docs/delivery.md, "Cells": a known gap)."""
    first = networks.cells(env)[0].name
    at = cell_at(model, env, first)
    return (
        Contract("argocd_cluster", IN_CLUSTER, env.name, detail="", at=at),
        Contract("argocd_cluster", networks.cell_cluster(model.platform, env, first), env.name, at=at),
    )


def render(model: Model, templates: Templates, env: spec.Environment) -> Iterator[RenderedFile]:
    """One registration file per cell after the first; nothing for a single-cell environment."""
    platform = model.platform
    gitops = naming.gitops_project(platform, env.name)
    sources = (model.source("platform", "platform"), model.source("environment", env.name))
    for cell in extra_cells(env):
        cluster = networks.cell_cluster(platform, env, cell.name)
        documents = registration(platform, env, cluster, common.argocd_cell_secret(platform, env.name, cell.name))
        at = cell_at(model, env, cell.name)
        yield RenderedFile(
            path=registration_path(env.name, cell.name),
            text=templates.render(T_CLUSTER, env=env, cell=cell, cluster=cluster, documents=documents),
            sources=(*sources, templates.path(T_CLUSTER)),
            environment=env.name,
            provides=(Contract("argocd_cluster", cluster, env.name, at=at),),
            consumes=tuple(deployed_kinds(documents, gitops, env.name, at=at)),
        )
