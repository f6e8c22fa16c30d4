"""The IRSA roles of the platform add-ons, for the shared root's ``addons.tf``.

One role per add-on with a service account, made with the same module as the tenants'
roles (trust: ``StringEquals`` on ``system:serviceaccount:<namespace>:<sa>`` and ``aud``),
its policy the add-on's statements with the placeholders filled for the environment.
``{zone_id}`` becomes a reference to the shared root's own zone, so it is an HCL
expression, not a literal: every string here is already HCL.

A resource ``arn:aws:iam::*:role/<pattern>`` is not granted as written: it names the
tenants' secret-reader roles (each in the account holding that tenant's secrets) that trust
this add-on's role, and becomes exactly the environment's reader roles matching the pattern,
account-scoped (a statement left with none is dropped). That is how the External Secrets
Operator may assume each tenant's reader and nothing else.
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


def hcl_template(text: str) -> str:
    """An HCL string for ``text`` in which ``{zone_id}`` interpolates the zone resource."""
    parts = text.split("{zone_id}")
    return '"' + ("${" + ZONE_ID + "}").join(hcl_value(p)[1:-1] for p in parts) + '"'


def roles(model: Model, env: spec.Environment) -> list[dict[str, Any]]:
    known = model_addons.placeholders(model.platform, env)
    readers = [r for d in model.in_environment(env.name) if (r := common.secret_reader(model, d)) is not None]
    out = []
    for addon in model_addons.in_environment(model.catalog, env.name):
        if addon.service_account is None:
            continue
        arn = model_addons.role_arn(env.accounts.shared_services, model.platform, env.name, addon.name)
        mine = sorted(r.role_arn for r in readers if r.principal == arn)
        statements = []
        assumes: set[str] = set()
        for st in addon.iam_policy:
            resources = _resources(st, known, mine)
            if resources:
                statements.append(_statement(st, known, resources))
                if "sts:AssumeRole" in st.actions:
                    assumes.update(r for r in resources if r in mine)
        out.append(
            {
                "addon": addon.name,
                "module": f"irsa_addon_{addon.name.replace('-', '_')}",
                "role": model_addons.role_name(model.platform, env.name, addon.name),
                "subject": model_addons.subject(addon),
                "source": model.source("addon", addon.name),
                "statements": statements,
                # The reader roles this role may assume (the contract check pairs them).
                "assumes": sorted(assumes),
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


def _statement(st: spec.IamStatement, known: dict[str, str], resources: list[str]) -> dict[str, Any]:
    return {
        "key": st.sid[0].lower() + st.sid[1:],
        "sid": hcl_value(st.sid),
        "actions": hcl_value(list(st.actions)),
        "resources": "[" + ", ".join(hcl_template(r) for r in resources) + "]",
        "conditions": [
            {
                "test": hcl_value(c.test),
                "variable": hcl_value(c.variable),
                "vals": "[" + ", ".join(hcl_template(model_addons.fill(v, known)) for v in c.values) + "]",
            }
            for c in st.conditions
        ],
    }
