"""Plant changes in a scratch catalog: round-trip YAML edits that keep comments and layout."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML


def edit_yaml(path: Path, change: Callable[[Any], None]) -> None:
    """Load ``path`` round-trip (comments kept), let ``change`` mutate it, write it back."""
    yaml = YAML(typ="rt")
    data = yaml.load(path.read_text(encoding="utf-8"))
    change(data)
    with path.open("w", encoding="utf-8") as fh:
        yaml.dump(data, fh)


def new_owner(root: Path, tenant: str, owner: str) -> None:
    """Give ``tenant`` another ``owner`` (its tags change in every environment's roots): its
    catalog file's ``owner:`` line, replaced as text."""
    path = root / "tenants" / f"{tenant}.yaml"
    text = path.read_text(encoding="utf-8")
    line = next(line for line in text.splitlines() if line.startswith("owner:"))
    path.write_text(text.replace(line, f"owner: {owner}"), encoding="utf-8")


def write_tenant(root: Path, name: str, services: str = "web", tier: str = "standard", envs: str = "dev", extra: str = "") -> Path:
    """A new tenant file with these services, tier and environments (YAML flow lists as text)."""
    path = root / "tenants" / f"{name}.yaml"
    path.write_text(
        f"name: {name}\ntier: {tier}\nowner: team@example.com\ncost_center: CC-4242\n"
        f"environments: [{envs}]\nservices: [{services}]\n{extra}",
        encoding="utf-8",
    )
    return path


def override(repo: Path, tenant: str, env: str | None, change: dict[str, Any]) -> Path:
    """Deep-merge ``change`` into a tenant's settings (or its override for ``env``)."""
    path = repo / f"tenants/{tenant}.yaml"

    def apply(data: Any) -> None:
        node = data.setdefault("settings", {}) if env is None else data.setdefault("overrides", {}).setdefault(env, {})
        _merge(node, change)

    edit_yaml(path, apply)
    return path


def drop_guardrails(repo: Path, tier: str = "regulated") -> None:
    """Delete a tier's guardrails: the organisation rules must hold on their own."""
    edit_yaml(repo / f"catalog/tiers/{tier}.yaml", lambda d: d.__setitem__("guardrails", {}))


def _merge(node: Any, change: dict[str, Any]) -> None:
    for key, value in change.items():
        if isinstance(value, dict):
            if key not in node or node[key] is None:
                node[key] = {}
            _merge(node[key], value)
        else:
            node[key] = value
