"""The org root's IAM Identity Center files read as one: identity.tf (shared lookups) and
every tenant's identity-<tenant>.tf (one Terraform module, split per tenant for merges)."""

from __future__ import annotations

IDENTITY = "rendered/terraform/org/identity.tf"


def identity_text(files: dict[str, bytes]) -> str:
    """identity.tf followed by every identity-<tenant>.tf, in path order."""
    tenant_files = sorted(p for p in files if p.startswith("rendered/terraform/org/identity-"))
    return "\n".join(files[p].decode() for p in [IDENTITY, *tenant_files])
