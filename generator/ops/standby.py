"""Fail over or back through Git: ``disaster_recovery.active`` in ``environments/<env>.yaml``.

The failover workflow runs ``companyos standby ENV --active`` and ``companyos render`` and
commits both, so the standby Applications scale up because the catalog says so (a reviewed,
revertible commit, not a click); failback runs ``--standby``. Round-trip edit: comments and
order of the file survive, only the one key changes.
"""

from __future__ import annotations

import io
from pathlib import Path

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap

from generator.errors import UsageError
from generator.output.atomic import write_atomic


def set_active(root: Path, env: str, active: bool) -> bool:
    """Set ``disaster_recovery.active`` of ``env``; True when the file changed."""
    path = root / "environments" / f"{env}.yaml"
    if not path.is_file():
        raise UsageError(f"no environment {env!r} (environments/{env}.yaml)")
    text = path.read_text(encoding="utf-8")
    yaml = YAML(typ="rt")
    yaml.preserve_quotes = True
    yaml.width = 4096
    yaml.indent(mapping=2, sequence=4, offset=2)
    data = yaml.load(text)
    block = data.get("disaster_recovery") if isinstance(data, CommentedMap) else None
    if not isinstance(block, CommentedMap):
        raise UsageError(f"environments/{env}.yaml declares no disaster_recovery: nothing to fail over")
    if bool(block.get("active", False)) == active:
        return False
    block["active"] = active
    out = io.StringIO()
    yaml.dump(data, out)
    write_atomic(path, out.getvalue())
    return True
