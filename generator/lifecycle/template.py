"""The tenant template (``templates/tenant/``, rendered by copier) and its answers file."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from generator.errors import UsageError
from generator.lifecycle.request import TEMPLATE_DIR, answers_path, tenant_path

#: Lines copier writes around an unresolved three-way merge (conflict="inline").
CONFLICT_MARKERS = (b"<<<<<<< before updating", b">>>>>>> after updating")


ANSWERS_HEADER = (
    "# Answers of templates/tenant/ for this tenant: `companyos update-tenants` reads them\n"
    "# to merge template changes into the tenant file. Generated; do not edit by hand.\n"
)


@dataclass(frozen=True)
class Rendered:
    tenant_text: bytes
    answers: dict[str, Any]


def render_template(template: Path, name: str, data: dict[str, Any], *, interactive: bool) -> Rendered:
    """Run copier into a temporary folder and return the tenant file and the answers.

    Non-interactive runs take every missing answer from copier.yml's defaults; interactive
    runs prompt (with copier.yml's help texts and validators) for what ``data`` lacks.
    Nothing outside the temporary folder is touched; ``unsafe=False`` refuses templates
    with tasks or extensions.
    """
    from copier import run_copy
    from copier.errors import CopierError

    with tempfile.TemporaryDirectory(prefix="companyos-tenant-") as tmp:
        dst = Path(tmp) / "out"
        try:
            run_copy(
                str(template),
                dst,
                data=data,
                defaults=not interactive,
                unsafe=False,
                skip_tasks=True,
                quiet=True,
                overwrite=True,
                cleanup_on_error=True,
            )
        except KeyboardInterrupt:
            raise
        except (CopierError, ValueError) as exc:
            raise UsageError(f"the tenant template refused the answers: {exc}") from exc
        tenant_file = dst / tenant_path(name)
        answers_file = dst / answers_path(name)
        if not tenant_file.is_file() or not answers_file.is_file():
            raise UsageError(f"{TEMPLATE_DIR} did not produce {tenant_path(name)} and {answers_path(name)}")
        answers = yaml.safe_load(answers_file.read_text(encoding="utf-8")) or {}
        return Rendered(tenant_file.read_bytes(), {k: v for k, v in answers.items() if not k.startswith("_")})


def answers_text(answers: dict[str, Any], commit: str | None, src_path: str = TEMPLATE_DIR) -> bytes:
    """The answers file: template version first, then the answers, sorted; deterministic."""
    data: dict[str, Any] = {}
    if commit:
        data["_commit"] = commit
    data["_src_path"] = src_path
    data.update(sorted((k, v) for k, v in answers.items() if not k.startswith("_")))
    return (ANSWERS_HEADER + yaml.safe_dump(data, sort_keys=False, default_flow_style=False, width=4096)).encode("utf-8")


def read_answers(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise UsageError(f"{path.name} is not a YAML mapping of answers")
    return data
