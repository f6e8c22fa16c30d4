"""The admission policies (Kyverno, ``targets/admission.py``) by name, and their waivers.

Both the render and the policy checks need the table: which policies exist (a waiver naming
any other is a ``path:line:col`` error), which tiers each applies to, and which waivers are
in force. A waiver is ``catalog/waivers.yaml`` ``admission:``; it becomes a PolicyException
for one tenant's namespace (optionally one environment) until its expiry day.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterator
from dataclasses import dataclass

from generator.catalog import spec
from generator.catalog.load import Catalog
from generator.errors import CatalogError, Location

WAIVERS_KIND = "waivers"


@dataclass(frozen=True)
class AdmissionPolicy:
    name: str
    rule: str
    description: str
    #: Applies only to tenants of regulated tiers.
    regulated_only: bool = False


POLICIES: tuple[AdmissionPolicy, ...] = (
    AdmissionPolicy(
        "verify-image-signatures",
        "CO040",
        "Images of built services must be signed by their release workflow (cosign keyless) with an SBOM attestation.",
    ),
    AdmissionPolicy("disallow-privileged", "CO041", "No privileged containers, no privilege escalation."),
    AdmissionPolicy("disallow-host-namespaces", "CO042", "No host network, PID or IPC namespace, no hostPath volumes."),
    AdmissionPolicy("require-resource-limits", "CO043", "Every container sets CPU and memory limits and requests."),
    AdmissionPolicy("require-tenant-labels", "CO044", "Every pod carries the tenant, tier and environment labels."),
    AdmissionPolicy(
        "regulated-restricted",
        "CO045",
        "Regulated tiers: non-root, read-only root filesystem, all capabilities dropped, images by digest.",
        True,
    ),
    AdmissionPolicy(
        "restrict-namespaces",
        "CO046",
        "Only Argo CD's application controller creates namespaces; a tenant namespace carries the platform's labels.",
    ),
)
BY_NAME = {p.name: p for p in POLICIES}


def waivers(catalog: Catalog) -> list[tuple[spec.AdmissionWaiver, Location]]:
    entry = catalog.single(WAIVERS_KIND)
    if entry is None:
        return []
    return [(w, entry.locate("admission", i)) for i, w in enumerate(entry.spec.admission)]


def waiver_errors(catalog: Catalog) -> Iterator[CatalogError]:
    """Waivers naming an unknown policy, tenant or environment (no clock involved)."""
    for waiver, where in waivers(catalog):
        label = f"admission waiver of '{waiver.policy}' for tenant '{waiver.tenant}'"
        tenant = catalog.tenants.get(waiver.tenant)
        if waiver.policy not in BY_NAME:
            yield CatalogError(where, f"{label} names an unknown admission policy (known: {', '.join(sorted(BY_NAME))})")
        elif tenant is None:
            if not catalog.defines("tenant", waiver.tenant):  # a broken file was reported; an unread one exists
                yield CatalogError(where, f"{label} names an unknown tenant")
        elif waiver.environment is not None and waiver.environment not in tenant.spec.environments:
            yield CatalogError(where, f"{label} names environment '{waiver.environment}', which the tenant is not deployed to")
        elif _expiry(waiver) is None:
            yield CatalogError(where, f"{label}: expires '{waiver.expires}' is not a real date")


def expired(catalog: Catalog, today: datetime.date) -> Iterator[CatalogError]:
    for waiver, where in waivers(catalog):
        day = _expiry(waiver)
        if day is not None and day < today:
            yield CatalogError(
                where,
                f"admission waiver of '{waiver.policy}' for tenant '{waiver.tenant}' expired on {waiver.expires} "
                f"(approved by {waiver.approver}); fix the workload or get a new approval",
            )


def _expiry(waiver: spec.AdmissionWaiver) -> datetime.date | None:
    try:
        return datetime.date.fromisoformat(waiver.expires)
    except ValueError:
        return None
