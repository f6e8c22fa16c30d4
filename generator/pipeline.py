"""The library API the CLI and the tests share: load -> resolve -> render, and the tree ops."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from generator import tree
from generator.load import find_root, load_catalog
from generator.model import Model, resolve
from generator.render import RenderResult, render


@dataclass(frozen=True)
class Build:
    root: Path
    model: Model
    result: RenderResult


def build(root: Path | None = None) -> Build:
    """Load, resolve and render the catalog at ``root`` (default: found from the cwd)."""
    root = find_root(root or Path.cwd())
    model = resolve(load_catalog(root))
    return Build(root, model, render(model))


def render_to_disk(root: Path | None = None) -> tuple[Build, tree.WriteReport]:
    built = build(root)
    return built, tree.write(built.result, built.root)


def check(root: Path | None = None) -> tuple[Build, tree.TreeStatus]:
    built = build(root)
    return built, tree.status(built.result, built.root)
