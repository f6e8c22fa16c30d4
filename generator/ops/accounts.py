"""``companyos record-accounts``: record the ids AWS gave the accounts the org root vended.

A vended account's id exists only once ``rendered/terraform/org`` is applied. Terraform roots
read it from the org state meanwhile, but Helm IRSA annotations, SecretStores, the shared
root's tenant records and runbooks need it as text, so it is a record fed back from
``terraform output -json`` (like ``record-pod-groups``) into the tenant's own file
(``vended_accounts``: one file per tenant, so parallel records do not conflict). Until it is
recorded the tenant's Kubernetes side is held (docs/governance.md).
"""

from __future__ import annotations

import io
import json
import re
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap
from ruamel.yaml.scalarstring import DoubleQuotedScalarString

from generator.catalog.load import load_catalog
from generator.errors import UsageError
from generator.model import organization as orgmodel
from generator.output.atomic import write_atomic

ACCOUNT_ID = re.compile(r"^[0-9]{12}$")
FIELD = "vended_accounts"


def output_name(tenant: str) -> str:
    """The org root output mapping environment to the tenant's account id (tenant-<name>.tf)."""
    return f"tenant_{orgmodel.slug(tenant)}_account_ids"


def parse_outputs(text: str) -> dict[str, dict[str, str]]:
    """Output name -> (env -> id) from the org root's ``terraform output -json``; anything
    that is not a map of 12-digit ids is a usage error, never a guess."""
    try:
        data: Any = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(f"not JSON from `terraform output -json`: {exc}") from None
    if not isinstance(data, dict):
        raise UsageError("expected the org root's `terraform output -json` (an object of outputs)")
    found: dict[str, dict[str, str]] = {}
    bad: list[str] = []
    for name, out in data.items():
        if not (isinstance(name, str) and name.startswith("tenant_") and name.endswith("_account_ids")):
            continue
        value = out.get("value") if isinstance(out, dict) else None
        if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
            raise UsageError(f"output {name} is not a map of environment to account id")
        bad += [f"{name}.{k}={v}" for k, v in value.items() if not ACCOUNT_ID.match(v)]
        found[name] = dict(value)
    if bad:
        raise UsageError(f"not AWS account ids (12 digits): {', '.join(sorted(bad))}")
    return found


def record_accounts(root: Path, outputs: str, *, write: bool = True) -> list[str]:
    """Record every vended account id the org root's ``outputs`` hold in its tenant's file and
    drop ids of environments the tenant no longer has (or now adopts); one line per change, and
    one per vended account the outputs lack (still held)."""
    found = parse_outputs(outputs)
    catalog = load_catalog(root)
    lines: list[str] = []
    for name, entry in sorted(catalog.tenants.items()):
        tenant = entry.spec
        tier = catalog.tiers.get(tenant.tier)
        dedicated = tier is not None and tier.spec.isolation == "dedicated"
        vended = [e for e in tenant.environments if dedicated and e not in tenant.accounts]
        ids = found.get(output_name(name), {})
        wanted = {e: ids[e] for e in vended if e in ids}
        recorded = dict(tenant.vended_accounts)
        lines += [f"{name}/{e}: account {i}" for e, i in sorted(wanted.items()) if recorded.get(e) != i]
        lines += [f"{name}/{e}: released {i}" for e, i in sorted(recorded.items()) if e not in vended]
        lines += [
            f"{name}/{e}: still held (not in the org root's outputs: apply it first)" for e in vended if e not in ids and e not in recorded
        ]
        kept = {e: i for e, i in recorded.items() if e in vended and e not in wanted}
        new = dict(sorted({**kept, **wanted}.items()))
        if new != recorded and write:
            path = root / entry.path
            write_atomic(path, _edited(path.read_text(encoding="utf-8"), new))
    return lines


def _edited(text: str, ids: dict[str, str]) -> str:
    """Set the tenant file's ``vended_accounts`` to ``ids`` (quoted), comments and order kept."""
    yaml = YAML(typ="rt")
    yaml.preserve_quotes = True
    yaml.width = 4096
    yaml.indent(mapping=2, sequence=4, offset=2)
    data = yaml.load(text)
    if ids:
        data[FIELD] = CommentedMap({e: DoubleQuotedScalarString(i) for e, i in ids.items()})
    elif FIELD in data:
        del data[FIELD]
    out = io.StringIO()
    yaml.dump(data, out)
    return out.getvalue()
