"""Kubernetes resource quantities ("500m", "2Gi"): parse and sum the tenants' quota limits.

The NodePools' limits are a catalog budget (``Environment.node_limits``); the policy checks
that the tenants' namespace quotas fit in it, and the capacity target prices nothing from it.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable

from generator.model.resolve import Deployment

_UNITS = {"": 1.0, "m": 0.001, "Ki": 2.0**10, "Mi": 2.0**20, "Gi": 2.0**30, "Ti": 2.0**40}


@functools.lru_cache(maxsize=4096)
def quantity(value: str) -> float:
    """A Kubernetes quantity as a float (cores or bytes); the settings schema has already validated it.
    Kept per text: a fleet's quotas are a few texts, summed over 30,000 deployments at 10,000 x 3."""
    match = re.fullmatch(r"([0-9.]+)([A-Za-z]*)", value)
    if match is None or match.group(2) not in _UNITS:
        raise ValueError(f"not a Kubernetes quantity: {value!r}")
    return float(match.group(1)) * _UNITS[match.group(2)]


def quota_totals(deployments: Iterable[Deployment]) -> tuple[float, float]:
    """(cores, GiB): the sum of the deployments' namespace quota limits."""
    cores = gib = 0.0
    for d in deployments:
        cores += quantity(d.settings.quota.limits_cpu)
        gib += quantity(d.settings.quota.limits_memory) / 2.0**30
    return cores, gib
