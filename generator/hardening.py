"""The security settings every workload gets, written once.

Tenant Helm values, preview Helm values and migration Jobs all run the platform's images;
if their pod settings were typed out in each place, one would drift (a missing
``seccompProfile`` in one template is exactly what checkov and a reviewer miss). Functions,
not constants: each caller gets its own dict to place in a document.
"""

from __future__ import annotations

from typing import Any

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
