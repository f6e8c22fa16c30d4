"""``cells.tf`` of the shared root: Argo CD's registration of every cell's cluster after the first.

Argo CD runs on the first cell's cluster (``module.eks``). For each other cell the shared root
stores the cluster's name, endpoint and CA in a Secrets Manager secret (read by the
ExternalSecret of ``rendered/argocd/<env>/clusters/<cell>.yaml``, targets/argocd/clusters.py);
the cell's eks module in ``main.tf`` admits the controller's IRSA role by an access entry and
the first cluster's node security group on 443. One IRSA role serves the standby and every
cell: the standby's where the environment has one (dr.tf), else this file's. Its policy here
reads exactly these secrets. docs/delivery.md ("Cells").
"""

from __future__ import annotations

from typing import Any, Protocol

from generator.catalog import spec
from generator.formats.templating import Templates
from generator.model.resolve import Model
from generator.targets import common


class Root(Protocol):
    """What this module reads of a Terraform root (``target.Root``; a protocol, not an import:
    target.py imports this module)."""

    env: spec.Environment
    kind: str
    cells: list[dict[str, str]]


FILENAME = "cells.tf"
TEMPLATE = "terraform/cells.tf.j2"
MACROS = "terraform/_argocd.tf.j2"


def role_label(env: spec.Environment) -> str:
    """The Terraform label of the controller's role: dr.tf's where there is a standby."""
    return "argocd_standby" if env.disaster_recovery is not None else "argocd_controller"


def context(model: Model, root: Root) -> dict[str, Any]:
    """What main.tf (access entry, API rule of each extra cell) and cells.tf render from."""
    env = root.env
    platform = model.platform
    return {
        "role_label": role_label(env),
        "role": common.argocd_controller_role(platform, env),
        "creates_role": env.disaster_recovery is None,
        "namespace": platform.argocd_namespace,
        "service_account": common.ARGOCD_CONTROLLER_SA,
        "cells": [
            {
                **cell,
                "label": f"argocd_cell_{cell['name'].replace('-', '_')}",
                "secret": common.argocd_cell_secret(platform, env.name, cell["name"]),
            }
            for cell in root.cells[1:]
        ],
    }


def applies(root: Root) -> bool:
    return root.kind == "shared" and len(root.cells) > 1


def render(templates: Templates, root: Root, base: dict[str, Any]) -> str | None:
    """The text of ``cells.tf``; None for a single-cell environment (no file)."""
    if not applies(root):
        return None
    return templates.render(TEMPLATE, **base)
