"""The output kinds, in the order they render: an explicit table, one module per kind.

Adding a kind means writing its module (``render(model, templates)``) and listing it here.
"""

from __future__ import annotations

from generator.targets import (
    addons,
    admission,
    capacity,
    dashboards,
    feature_flags,
    helm,
    migrations,
    observability,
    policy_as_code,
    pool_bootstrap,
    probes,
    runbooks,
    workflows,
)
from generator.targets.argocd import target as argocd
from generator.targets.base import Target
from generator.targets.terraform import org as terraform_org
from generator.targets.terraform import target as terraform

TARGETS: tuple[Target, ...] = (
    helm,
    argocd,
    addons,
    capacity,
    migrations,
    pool_bootstrap,
    observability,
    dashboards,
    probes,
    feature_flags,
    terraform,
    terraform_org,
    policy_as_code,
    admission,
    workflows,
    runbooks,
)
