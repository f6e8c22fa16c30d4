"""The IRSA roles of the platform add-ons, for the shared root's ``addons.tf``.

One role per add-on with a service account, made with the same module as the tenants'
roles (trust: ``StringEquals`` on ``system:serviceaccount:<namespace>:<sa>`` and ``aud``),
its policy the add-on's statements with the placeholders filled for the environment
(``{zone_id}`` becomes a reference to the shared root's zone: every string here is HCL).

A resource ``arn:aws:iam::*:role/<pattern>`` is not granted as written: it names the
tenants' secret-reader roles (each in the account holding that tenant's secrets) that trust
this add-on's role, and becomes exactly the environment's reader roles matching the pattern,
account-scoped (a statement left with none is dropped). That is how the External Secrets
Operator may assume each tenant's reader and nothing else; the pools' readers (one per pool,
common.PoolReader) are listed by ARN, since pools come and go with tiers, not onboardings.

An add-on's ``buckets`` become this root's S3 buckets, its role's statements name exactly them.
"""

from __future__ import annotations

from fnmatch import fnmatchcase
from typing import Any

from generator.catalog import spec
from generator.formats.templating import hcl_value
from generator.model import addons as model_addons
from generator.model.resolve import Model
from generator.targets import common

TEMPLATE = "terraform/shared/addons.tf.j2"
FILENAME = "addons.tf"
#: The environment's zone, declared in templates/terraform/shared/main.tf.j2.
ZONE_ID = "aws_route53_zone.env.zone_id"
#: A role ARN in any account: a pattern over the tenants' secret-reader roles.
ANY_ACCOUNT_ROLE = "arn:aws:iam::*:role/"
#: The shared root's per-tenant records (templates/terraform/_isolation.tf.j2 reads tenants/*.json).
TENANT_RECORDS = "local.tenant_records"
#: The KMS key of the add-on buckets (templates/terraform/shared/addons.tf.j2).
BUCKET_KEY = "module.kms_addon_buckets.key_arn"


def hcl_template(text: str) -> str:
    """An HCL string for ``text`` in which ``{zone_id}`` interpolates the zone resource."""
    parts = text.split("{zone_id}")
    return '"' + ("${" + ZONE_ID + "}").join(hcl_value(p)[1:-1] for p in parts) + '"'


def roles(model: Model, env: spec.Environment) -> list[dict[str, Any]]:
    known = model_addons.placeholders(model.platform, env)
    store = common.secret_store_addon(model, env.name)  # once per environment, not per tenant
    readers = [arns for d in model.in_environment(env.name) if (arns := common.secret_reader_arns(model, d, store)) is not None]
    pools = common.pool_readers(model, env)
    readers += [(r.principal, r.role_arn) for r in pools]
    by_principal: dict[str, list[str]] = {}  # one pass over the fleet's readers, not one per add-on
    for principal, role_arn in readers:
        by_principal.setdefault(principal, []).append(role_arn)
    out = []
    for addon in model_addons.in_environment(model.catalog, env.name):
        if addon.service_account is None:
            continue
        arn = model_addons.role_arn(env.accounts.shared_services, model.platform, env.name, addon.name)
        mine = sorted(by_principal.get(arn, ()))
        pool_arns = sorted(r.role_arn for r in pools if r.principal == arn)
        statements = []
        assumes: set[str] = set()
        for st in addon.iam_policy:
            resources = _resources(st, known, mine)
            if resources:
                statements.append(_statement(st, known, resources, _hcl_resources(st, known, arn, pool_arns)))
                if "sts:AssumeRole" in st.actions:
                    assumes.update(resources)
        assumes &= set(mine)  # a set: `in mine` (a list of every reader) made this quadratic in tenants
        buckets = [_bucket(model, env, addon, b) for b in addon.buckets]
        statements += _bucket_statements(env, buckets)
        out.append(
            {
                "buckets": buckets,
                "addon": addon.name,
                "module": f"irsa_addon_{addon.name.replace('-', '_')}",
                "role": model_addons.role_name(model.platform, env.name, addon.name),
                "subject": model_addons.subject(addon),
                "source": model.source("addon", addon.name),
                "statements": statements,
                # The reader roles this role may assume (the contract check pairs them).
                "assumes": sorted(assumes),
                # ... of which the pools' (listed by ARN in addons.tf, which declares them).
                "pool_assumes": sorted(assumes & set(pool_arns)),
            }
        )
    return out


def _resources(st: spec.IamStatement, known: dict[str, str], readers: list[str]) -> list[str]:
    """The statement's resources filled; an any-account role pattern becomes the readers it matches."""
    out: list[str] = []
    for text in (model_addons.fill(r, known) for r in st.resources):
        if text.startswith(ANY_ACCOUNT_ROLE):
            out += [arn for arn in readers if fnmatchcase(arn, text) and arn not in out]
        else:
            out.append(text)
    return out


def _hcl_resources(st: spec.IamStatement, known: dict[str, str], principal: str, pools: list[str]) -> str:
    """The statement's resources as HCL. A reader-role pattern becomes a for expression over
    the shared root's per-tenant files (``tenants/<name>.json``, :data:`TENANT_RECORDS`), not
    a list of ARNs: adding a tenant adds its file and leaves ``addons.tf`` as it was; the
    pools' readers it matches (``pools``) are listed by ARN."""
    fixed, parts = [], []
    for text in (model_addons.fill(r, known) for r in st.resources):
        if text.startswith(ANY_ACCOUNT_ROLE):
            fixed += [hcl_value(arn) for arn in pools if fnmatchcase(arn, text) and hcl_value(arn) not in fixed]
            parts.append(
                f"[for t in values({TENANT_RECORDS}) : t.secret_reader.role"
                f' if t.secret_reader.principal == {hcl_value(principal)} && can(regex("{_glob_regex(text)}", t.secret_reader.role))]'
            )
        else:
            fixed.append(hcl_template(text))
    if fixed:
        parts.insert(0, "[" + ", ".join(fixed) + "]")
    return parts[0] if len(parts) == 1 else "distinct(concat(" + ", ".join(parts) + "))"


def _glob_regex(pattern: str) -> str:
    """An fnmatch pattern as an anchored RE2 regex inside an HCL string (backslashes doubled)."""
    out = []
    for ch in pattern:
        if ch == "*":
            out.append(".*")
        elif ch == "?":
            out.append(".")
        elif ch.isalnum() or ch in "-_:/@=,":
            out.append(ch)
        else:
            out.append("\\\\" + ch)
    return "^" + "".join(out) + "$"


def _statement(st: spec.IamStatement, known: dict[str, str], resources: list[str], hcl_resources: str | None = None) -> dict[str, Any]:
    return {
        "key": st.sid[0].lower() + st.sid[1:],
        "sid": hcl_value(st.sid),
        "actions": hcl_value(list(st.actions)),
        "resources": hcl_resources or "[" + ", ".join(hcl_template(r) for r in resources) + "]",
        "conditions": [
            {
                "test": hcl_value(c.test),
                "variable": hcl_value(c.variable),
                "vals": "[" + ", ".join(hcl_template(model_addons.fill(v, known)) for v in c.values) + "]",
            }
            for c in st.conditions
        ],
    }


def _bucket(model: Model, env: spec.Environment, addon: spec.Addon, b: spec.AddonBucket) -> dict[str, Any]:
    return {
        "module": f"bucket_{addon.name.replace('-', '_')}_{b.name}",
        "name": model_addons.bucket_name(model.platform, env, addon.name, b.name),
        "expire_after_days": b.expire_after_days,
        "glacier_after_days": b.glacier_after_days,
    }


def buckets(roles_: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every add-on bucket of the root, for the template's bucket blocks."""
    return [b for role in roles_ for b in role["buckets"]]


def _bucket_statements(env: spec.Environment, chosen: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Least privilege over exactly these buckets: no s3:* and no other bucket."""
    if not chosen:
        return []
    arns = [f"arn:aws:s3:::{b['name']}" for b in chosen]
    via = {
        "test": hcl_value("StringEquals"),
        "variable": hcl_value("kms:ViaService"),
        "vals": hcl_value([f"s3.{env.aws.region}.amazonaws.com"]),
    }
    return [
        {
            "key": "listBuckets",
            "sid": hcl_value("ListBuckets"),
            "actions": hcl_value(["s3:ListBucket"]),
            "resources": hcl_value(arns),
            "conditions": [],
        },
        {
            "key": "objects",
            "sid": hcl_value("Objects"),
            # Tempo's documented minimal policy adds the object tagging calls (Loki makes none).
            "actions": hcl_value(["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:GetObjectTagging", "s3:PutObjectTagging"]),
            "resources": hcl_value([f"{a}/*" for a in arns]),
            "conditions": [],
        },
        {
            "key": "bucketKey",
            "sid": hcl_value("BucketKey"),
            "actions": hcl_value(["kms:Decrypt", "kms:GenerateDataKey"]),
            "resources": f"[{BUCKET_KEY}]",
            "conditions": [via],
        },
    ]
