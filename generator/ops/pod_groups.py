"""``companyos record-pod-groups``: record the shared root's pod security group ids in ``catalog/networks.yaml``
(the tenants' and the pools' bootstrap Jobs' ``pool_admin_security_group``).

The ``SecurityGroupPolicy`` of a tenant namespace must name its group by id (``sg-...``), and
AWS assigns that id when the shared root is applied, so it is a record fed back from
``terraform output -json`` (like ``allocate``'s CIDRs), not something the render can derive.
Until a tenant's id is recorded its namespace is held at zero pods (docs/isolation.md).
Every other line of the file stays as it was (ruamel round-trip).
"""

from __future__ import annotations

import io
import json
import re
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap

from generator.catalog.load import load_catalog
from generator.errors import UsageError
from generator.model import networks
from generator.output.atomic import write_atomic

#: The shared root's output (templates/terraform/shared/outputs.tf.j2): tenant -> group id.
OUTPUT = "pod_security_group_ids"
GROUP_ID = re.compile(r"^sg-[0-9a-f]{8,17}$")
#: The shared root's output naming the pools' bootstrap Jobs' group (one per environment): a
#: platform principal in ``<org>-pools`` that a pool's database (only) may admit.
POOL_ADMIN_OUTPUT = "pool_admin_security_group_id"


def parse_outputs(text: str) -> dict[str, str]:
    """Tenant -> id from ``terraform output -json`` (all outputs) or ``terraform output -json
    pod_security_group_ids`` (just the map); anything else is a usage error, never a guess."""
    try:
        data: Any = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(f"not JSON from `terraform output -json`: {exc}") from None
    if isinstance(data, dict) and OUTPUT in data:
        data = data[OUTPUT].get("value") if isinstance(data[OUTPUT], dict) else None
    if not isinstance(data, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in data.items()):
        raise UsageError(f"expected the shared root's output {OUTPUT} (a map of tenant to security group id)")
    bad = sorted(f"{k}={v}" for k, v in data.items() if not GROUP_ID.match(v))
    if bad:
        raise UsageError(f"not security group ids (sg-<hex>): {', '.join(bad)}")
    return dict(sorted(data.items()))


def parse_pool_admin(text: str) -> str | None:
    """The pools' bootstrap group id from ``terraform output -json`` (all outputs), or None when
    the output does not have it (no pool in the environment, or only the tenant map given)."""
    data: Any = json.loads(text)  # parse_outputs has already refused anything but JSON
    entry = data.get(POOL_ADMIN_OUTPUT) if isinstance(data, dict) else None
    value = entry.get("value") if isinstance(entry, dict) else None
    if value is None:
        return None
    if not isinstance(value, str) or not GROUP_ID.match(value):
        raise UsageError(f"not a security group id (sg-<hex>): {POOL_ADMIN_OUTPUT}={value}")
    return value


def record_pod_groups(root: Path, env: str, outputs: str, *, write: bool = True) -> list[str]:
    """Record the ids of ``env``'s tenants from the shared root's ``outputs`` and release those of
    tenants no longer in ``env``; return one line per change (a tenant the output lacks is
    reported as still held)."""
    ids = parse_outputs(outputs)
    pool_admin = parse_pool_admin(outputs)
    catalog = load_catalog(root)
    if env not in catalog.environments:
        raise UsageError(f"unknown environment '{env}' (known: {', '.join(sorted(catalog.environments))})")
    entry = networks.networks_entry(catalog)
    assert entry is not None, "networks.yaml is required and checked at load time"
    block = entry.spec.environments.get(env)
    if block is None:
        raise UsageError(f"{networks.NETWORKS_PATH} has no environments.{env}; run `companyos allocate` first")
    tenants = sorted(name for name, t in catalog.tenants.items() if env in t.spec.environments)
    recorded = dict(block.pod_security_groups)
    wanted = {t: ids[t] for t in tenants if t in ids}
    lines = [f"{env}: {t} -> {i}" for t, i in wanted.items() if recorded.get(t) != i]
    lines += [f"{env}: released {t} {i}" for t, i in recorded.items() if t not in tenants]
    lines += [f"{env}: {t} still held (not in the shared root's outputs: apply it first)" for t in tenants if t not in ids]
    admin = pool_admin or block.pool_admin_security_group  # only the full outputs carry it
    if admin != block.pool_admin_security_group:
        lines.append(f"{env}: pool bootstrap Jobs -> {admin}")
    if (wanted != recorded or admin != block.pool_admin_security_group) and write:
        path = root / networks.NETWORKS_PATH
        write_atomic(path, _edited(path.read_text(encoding="utf-8"), env, wanted, admin))
    return lines


def _edited(text: str, env: str, ids: dict[str, str], pool_admin: str | None = None) -> str:
    """Replace ``environments.<env>.pod_security_groups`` with ``ids`` (and set
    ``pool_admin_security_group``), comments and order kept."""
    yaml = YAML(typ="rt")
    yaml.preserve_quotes = True
    yaml.width = 4096
    yaml.indent(mapping=2, sequence=4, offset=2)
    data = yaml.load(text)
    block = data["environments"][env]
    if ids:
        block["pod_security_groups"] = CommentedMap(ids)
    elif "pod_security_groups" in block:
        del block["pod_security_groups"]
    if pool_admin:
        block["pool_admin_security_group"] = pool_admin
    out = io.StringIO()
    yaml.dump(data, out)
    return out.getvalue()
