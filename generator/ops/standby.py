"""Fail over or back through Git: ``disaster_recovery.active`` (the whole environment) or
``disaster_recovery.active_tenants`` (one dedicated tenant) in ``environments/<env>.yaml``.

The failover workflow runs ``companyos standby ENV --active [--tenant T]`` and ``companyos
render`` and commits both, so the standby Applications scale up because the catalog says so (a
reviewed, revertible commit, not a click); failback runs ``--standby [--tenant T]``. Round-trip
edit: comments and order of the file survive, only the one key changes. Whether the tenant may
be failed over alone (known, deployed there, dedicated) is the catalog's check at render.
"""

from __future__ import annotations

import io
import re
from pathlib import Path

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq

from generator.catalog.spec import NAME_PATTERN
from generator.errors import UsageError
from generator.output.atomic import write_atomic


def set_active(root: Path, env: str, active: bool, tenant: str | None = None) -> bool:
    """Set ``disaster_recovery.active`` of ``env``, or with ``tenant`` add it to (``active``) or
    remove it from ``active_tenants``; True when the file changed."""
    path = root / "environments" / f"{env}.yaml"
    if not path.is_file():
        raise UsageError(f"no environment {env!r} (environments/{env}.yaml)")
    if tenant is not None and not re.match(NAME_PATTERN, tenant):
        raise UsageError(f"{tenant!r} is not a tenant name (pattern {NAME_PATTERN})")
    if tenant is not None and not (root / "tenants" / f"{tenant}.yaml").is_file():
        raise UsageError(f"no tenant {tenant!r} (tenants/{tenant}.yaml)")
    text = path.read_text(encoding="utf-8")
    yaml = YAML(typ="rt")
    yaml.preserve_quotes = True
    yaml.width = 4096
    yaml.indent(mapping=2, sequence=4, offset=2)
    data = yaml.load(text)
    block = data.get("disaster_recovery") if isinstance(data, CommentedMap) else None
    if not isinstance(block, CommentedMap):
        raise UsageError(f"environments/{env}.yaml declares no disaster_recovery: nothing to fail over")
    if tenant is None:
        # failing the environment back brings every tenant back, those failed over alone too
        listed = "active_tenants" in block and not active
        if bool(block.get("active", False)) == active and not listed:
            return False
        block["active"] = active
        if listed:
            del block["active_tenants"]
    elif not _set_tenant(block, env, tenant, active):
        return False
    out = io.StringIO()
    yaml.dump(data, out)
    write_atomic(path, out.getvalue())
    return True


def _set_tenant(block: CommentedMap, env: str, tenant: str, active: bool) -> bool:
    """Add or remove ``tenant`` in ``active_tenants`` (the key goes when the list empties)."""
    listed = block.get("active_tenants")
    names = [str(n) for n in listed] if isinstance(listed, list) else []
    if not active and bool(block.get("active", False)):
        raise UsageError(
            f"{env} is failed over as a whole (disaster_recovery.active: true): every tenant is served from the DR region; "
            f"fail back the environment (companyos standby {env} --standby) rather than one tenant"
        )
    if (tenant in names) == active:
        return False
    if active:
        if isinstance(listed, CommentedSeq):
            listed.append(tenant)
        else:
            seq = CommentedSeq([tenant])
            seq.fa.set_flow_style()
            block["active_tenants"] = seq
    elif len(names) == 1:
        del block["active_tenants"]
    else:
        assert isinstance(listed, list)
        listed.remove(tenant)
    return True
