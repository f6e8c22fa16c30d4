"""What more than one target needs: workload hardening, output paths, the canary rule.

Targets never import each other; whatever two of them must agree on lives here.

The security settings every workload gets are written once.

Tenant Helm values, preview Helm values and migration Jobs all run the platform's images;
if their pod settings were typed out in each place, one would drift (a missing
``seccompProfile`` in one template is exactly what checkov and a reviewer miss). Functions,
not constants: each caller gets its own dict to place in a document.
"""

from __future__ import annotations

from typing import Any

from generator.catalog.spec import Service
from generator.model.resolve import Deployment

#: The unprivileged user and group every container runs as (images are built for it).
RUN_AS = 10001


def pod_security_context() -> dict[str, Any]:
    """Pod level: non-root with a fixed uid/gid, volumes group-owned, default seccomp."""
    return {
        "runAsNonRoot": True,
        "runAsUser": RUN_AS,
        "runAsGroup": RUN_AS,
        "fsGroup": RUN_AS,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def container_security_context() -> dict[str, Any]:
    """Container level, as the stakater chart's ``containerSecurityContext`` takes it:
    read-only root, no privilege escalation, every capability dropped."""
    return {
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "allowPrivilegeEscalation": False,
        "privileged": False,
        "capabilities": {"drop": ["ALL"]},
    }


def values_path(env: str, tenant: str, service: str) -> str:
    """Where the Helm values of one tenant's service live (Argo CD reads them from here)."""
    return f"rendered/helm/{env}/{tenant}/{service}.yaml"


def job_path(env: str, tenant: str, service: str) -> str:
    """Where one tenant's migration Job lives (Argo CD syncs it as a PreSync hook)."""
    return f"rendered/migrations/{env}/{tenant}/{service}.yaml"


def canary_enabled(d: Deployment, service: Service) -> bool:
    """A canary needs all three: the environment does progressive delivery, the service
    declares canary steps, and no layer switched it off for this tenant."""
    return bool(d.environment.progressive_delivery and service.canary is not None and d.settings.services[service.name].canary.enabled)
