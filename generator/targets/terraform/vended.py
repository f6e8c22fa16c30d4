"""Vended account ids in Terraform roots: read from the organization root, never typed.

A dedicated tenant without ``accounts.<env>`` gets its account from ``rendered/terraform/org``
(``tenant-<name>.tf``); AWS assigns the id at apply. The model stands in a marker for it
(``naming.vended_account``); this module turns each marker in a root's ``.tf`` files into a
local read from the org root's output (``terraform_remote_state "org"``) and adds that read
as ``org_accounts.tf``, so a tenant root needs no literal id and the plan shows the real one.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Iterator

from generator.formats.templating import hcl_value
from generator.model import naming
from generator.model import organization as orgmodel
from generator.model.resolve import Model
from generator.targets.base import RenderedFile
from generator.targets.terraform.hcl import format_hcl

FILENAME = "org_accounts.tf"
ORG_STATE_KEY = f"{orgmodel.ORG_ROOT}/terraform.tfstate"


def output(tenant: str) -> str:
    """The org root output mapping environment to the tenant's account id."""
    return f"tenant_{orgmodel.slug(tenant)}_account_ids"


def local_name(tenant: str, env: str) -> str:
    return f"account_{orgmodel.slug(tenant, env)}"


def _replace(text: str, found: set[tuple[str, str]]) -> str:
    """Markers in strings become ``${local.account_…}``; in comments, words (no id to show)."""
    lines = []
    for line in text.split("\n"):
        comment = line.lstrip().startswith("#")

        def sub(m: re.Match[str], comment: bool = comment) -> str:
            found.add((m.group(1), m.group(2)))
            if comment:
                return f"(vended: {orgmodel.ORG_ROOT} output {output(m.group(1))}.{m.group(2)})"
            return "${local." + local_name(m.group(1), m.group(2)) + "}"

        lines.append(naming.VENDED_ACCOUNT.sub(sub, line))
    return "\n".join(lines)


def resolve(model: Model, files: Iterable[RenderedFile]) -> Iterator[RenderedFile]:
    """``files`` of one root with every vended id read from the org root (plus the read)."""
    found: set[tuple[str, str]] = set()
    last: RenderedFile | None = None
    for f in files:
        if f.path.endswith(".tf") and naming.VENDED_ACCOUNT.search(f.text):
            f = dataclasses.replace(f, text=_replace(f.text, found))
        last = f
        yield f
    if not found or last is None or last.root is None:
        return
    yield RenderedFile(
        path=f"{last.root}/{FILENAME}",
        text=format_hcl(_text(model, found)),
        sources=(model.source("platform", "platform"), *sorted({model.source("tenant", t) for t, _ in found})),
        tenant=last.tenant,
        environment=last.environment,
        root=last.root,
    )


def _text(model: Model, found: set[tuple[str, str]]) -> str:
    state = model.platform.terraform_state
    config = {
        "bucket": state.bucket,
        "key": ORG_STATE_KEY,
        "region": state.region,
        "assume_role": {"role_arn": naming.account_role_arn(state.account, model.platform)},
    }
    lines = [
        "# Ids of the accounts rendered/terraform/org vends for this root: AWS assigns them when the",
        "# org root applies (it runs first in the terraform workflow), so no file holds a literal id.",
        'data "terraform_remote_state" "org" {',
        '  backend = "s3"',
        f"  config = {hcl_value(config)}",
        "}",
        "",
        "locals {",
    ]
    for tenant, env in sorted(found):
        lines.append(f'  {local_name(tenant, env)} = data.terraform_remote_state.org.outputs.{output(tenant)}["{env}"]')
    lines.append("}")
    return "\n".join(lines) + "\n"
