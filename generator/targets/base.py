"""The contract every output kind implements.

A target is a module with a ``NAME`` and a ``render(model, templates)`` function that
returns :class:`RenderedFile` records. Targets are pure: they read the resolved model and
the pre-loaded templates, never the file system or the environment. Adding an output kind
is one module here plus one folder in ``templates/`` and a line in ``targets/__init__``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from generator.targets.contracts import Contract

if TYPE_CHECKING:
    from generator.formats.templating import Templates
    from generator.model.resolve import Model


@dataclass(frozen=True)
class RenderedFile:
    """One generated file before the header is added."""

    #: Repository-relative POSIX path (``rendered/...`` or ``.github/workflows/...``).
    path: str
    text: str
    #: Catalog files and templates this file was made from (header + manifest).
    sources: tuple[str, ...]
    #: Comment leader for the header, or None for formats without comments (JSON).
    comment: str | None = "#"
    tenant: str | None = None
    environment: str | None = None
    #: Terraform root directory (``rendered/terraform/<env>/<root>``) when relevant.
    root: str | None = None
    #: What this file's objects give to, and need from, the rest of the render (targets/contracts.py).
    provides: tuple[Contract, ...] = ()
    consumes: tuple[Contract, ...] = ()


class Target(Protocol):
    NAME: str

    def render(self, model: Model, templates: Templates) -> Iterable[RenderedFile]: ...
