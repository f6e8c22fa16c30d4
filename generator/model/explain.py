"""``companyos explain``: where did this value come from?

For every resolved settings leaf of one tenant in one environment: the value, the
file:line that set it, and the values it overrode on the way up the layers.
"""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass
from typing import Any

from generator.errors import UsageError
from generator.model.layers import Origin, lookup
from generator.model.resolve import Model


@dataclass(frozen=True)
class Explanation:
    key: str
    value: Any
    origins: tuple[Origin, ...]
    #: Policy findings about this value (``[CO012] ...``), filled in by the caller that
    #: judged the model; explain itself never runs policy.
    problems: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "value": self.value,
            "set_by": _origin_dict(self.origins[-1]) if self.origins else None,
            "overrode": [_origin_dict(o) for o in reversed(self.origins[:-1])],
            "violates": list(self.problems),
        }


def _origin_dict(origin: Origin) -> dict[str, Any]:
    return {"location": str(origin.location), "layer": origin.layer, "value": origin.value, "reset": origin.reset}


def explain(model: Model, tenant: str, env: str, key: str | None = None) -> list[Explanation]:
    """Resolved settings of ``tenant`` in ``env`` (optionally only under ``key``)."""
    if tenant not in model.tenants:
        raise UsageError(f"unknown tenant '{tenant}'" + _hint(tenant, model.tenants))
    d = model.deployment(tenant, env)
    if d is None:
        envs = ", ".join(model.tenants[tenant].environments)
        raise UsageError(f"tenant '{tenant}' is not deployed to '{env}' (its environments: {envs})")
    values = d.settings.model_dump()
    # Provenance also remembers what layers said about services this tenant does not run.
    keys = sorted(k for k in d.provenance if _under(k, key) and _resolved(values, k))
    if key and not keys:
        raise UsageError(f"no setting '{key}' for {tenant} in {env}" + _hint(key, d.provenance))
    return [Explanation(k, lookup(values, tuple(k.split("."))), d.provenance[k]) for k in keys]


def _resolved(values: dict[str, Any], dotted: str) -> bool:
    """True when ``dotted`` is a path of the resolved settings (its value may be None)."""
    node: Any = values
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    return True


def _under(name: str, key: str | None) -> bool:
    return key is None or name == key or name.startswith(key + ".")


def _hint(word: str, options: Any) -> str:
    close = difflib.get_close_matches(word, list(options), n=3)
    return f"; did you mean {', '.join(close)}?" if close else ""


def format_text(explanations: list[Explanation], tenant: str, env: str, tier: str) -> str:
    lines = [f"{tenant} in {env} (tier {tier})", ""]
    for item in explanations:
        lines.append(f"{item.key} = {json.dumps(item.value)}")
        if item.origins:
            last = item.origins[-1]
            verb = "reset by" if last.reset else "set by"
            lines.append(f"    {verb:<9}{last.location}  [{last.layer}]")
            for older in reversed(item.origins[:-1]):
                lines.append(f"    overrode {older.location}  [{older.layer}] {json.dumps(older.value)}")
        for problem in item.problems:
            lines.append(f"    VIOLATES {problem}")
    return "\n".join(lines) + "\n"
