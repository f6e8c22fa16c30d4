"""Post-deploy smoke test: every public service of an environment answers its readiness probe.

The deploy workflow runs ``companyos smoke --env <env> --service <svc|all>`` after Argo CD
reports the applications healthy. The URL list comes from the model (hostname from
``naming``, path from the service's readiness probe), so it can never disagree with the
ingress the Helm values publish. ``--list`` prints the URLs without touching the network.
"""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass

from generator.errors import UsageError
from generator.model import naming
from generator.model.resolve import Model


@dataclass(frozen=True)
class Check:
    tenant: str
    service: str
    url: str


def checks(model: Model, env: str, service: str = "all") -> list[Check]:
    """Readiness URLs of the public services of ``env`` (one service, or ``all``)."""
    if env not in {e.name for e in model.environments}:
        raise UsageError(f"unknown environment '{env}' (expected one of: {', '.join(e.name for e in model.environments)})")
    if service != "all" and service not in model.services:
        raise UsageError(f"unknown service '{service}' (expected all or one of: {', '.join(model.services)})")
    out = []
    for d in model.in_environment(env):
        for svc in d.services:
            if service not in ("all", svc.name) or not d.public_ingress(svc) or svc.probes is None:
                continue
            out.append(Check(d.name, svc.name, f"https://{naming.hostname(svc.name, d.name, d.environment)}{svc.probes.readiness.path}"))
    return out


def probe(url: str, timeout: float = 10.0) -> str | None:
    """None when ``url`` answers 2xx, else a one-line reason."""
    request = urllib.request.Request(url, headers={"User-Agent": "companyos-smoke"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return None if 200 <= response.status < 300 else f"HTTP {response.status}"
    except urllib.error.HTTPError as exc:
        return f"HTTP {exc.code}"
    except (urllib.error.URLError, OSError) as exc:
        return str(getattr(exc, "reason", exc))


def run(
    items: list[Check],
    attempts: int = 10,
    delay: float = 15.0,
    check: Callable[[str], str | None] = probe,
    sleep: Callable[[float], None] = time.sleep,
) -> list[tuple[Check, str]]:
    """Probe every URL, retrying failures; return the ones still failing at the end."""
    failing = list(items)
    reasons: dict[str, str] = {}
    for attempt in range(attempts):
        still = []
        for item in failing:
            reason = check(item.url)
            if reason is not None:
                reasons[item.url] = reason
                still.append(item)
        failing = still
        if not failing:
            break
        if attempt + 1 < attempts:
            sleep(delay)
    return [(item, reasons[item.url]) for item in failing]
