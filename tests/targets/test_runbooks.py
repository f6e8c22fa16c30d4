"""Runbooks rendered from the catalog (issue 15): real account ids, regions and hosts; the
failover plan the workflow reads at run time; the incident issue form's checklist."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]


def test_prod_runbooks_name_the_real_accounts_regions_and_rpo(sample):
    files = sample.result.files
    prod = next(e for e in sample.model.environments if e.name == "prod")
    failover = files["rendered/runbooks/prod/failover.md"].decode()
    assert prod.accounts.shared_services in failover and prod.aws.dr_region in failover
    assert f"RPO {prod.rpo_minutes} min, RTO {prod.rto_minutes} min" in failover
    assert "rendered/runbooks/dev/failover.md" not in files and "rendered/runbooks/dev/restore.md" in files
    assert prod.accounts.dr_verify in files["rendered/runbooks/prod/restore.md"].decode()


def test_failover_plan_lists_every_prod_database_and_the_workflow_lists_no_tenant(sample):
    plan = json.loads(sample.result.files["rendered/runbooks/prod/failover-plan.json"])
    assert {d["owner"] for d in plan["databases"]} >= {"pool-standard", "acme"}
    workflow = sample.result.files[".github/workflows/failover.yml"].decode()
    tenants = {json.loads(d)["tenant"] for p, d in sample.result.files.items() if p.startswith("rendered/runbooks/prod/failover/")}
    assert tenants == {d.name for d in sample.model.in_environment("prod") if not d.account_pending}
    assert not any(f"'{t}'" in workflow or f'"{t}"' in workflow for t in tenants)
    assert "tenant" not in json.dumps(plan), "the environment's plan names no tenant: onboarding edits no shared file"
    assert yaml.safe_load(workflow)["jobs"]["failover"]["environment"] == "${{ inputs.environment }}"


def test_incident_form_has_the_comms_checklist():
    form = yaml.safe_load((REPO / ".github/ISSUE_TEMPLATE/incident.yml").read_text())
    assert {"name", "description", "body"} <= set(form)
    ids = {item.get("id") for item in form["body"]}
    assert {"severity", "commander", "scribe", "channel", "comms"} <= ids
    labels = " ".join(o["label"] for item in form["body"] if item.get("id") == "comms" for o in item["attributes"]["options"])
    for words in ("on-call", "Hourly updates", "Status page", "72 hours"):
        assert words in labels


def test_environment_runbooks_name_no_tenant_and_each_tenant_has_its_page(sample):
    """Onboarding adds rendered/runbooks/<env>/tenants/<t>.md and edits no shared runbook (issue 19)."""
    files = sample.result.files
    for d in sample.model.deployments:
        if d.account_pending:
            continue
        page = files[f"rendered/runbooks/{d.env}/tenants/{d.name}.md"].decode()
        assert d.namespace in page and f"/{d.env}/{d.name}`" in page
        # a dedicated tenant owns data (its row in the owners' tables, like a pool's): pooled ones appear nowhere
        shared = ("secret-rotation",) if d.dedicated else ("key-rotation", "secret-rotation", "failover")
        for name in (n for n in shared if f"rendered/runbooks/{d.env}/{n}.md" in files):
            text = files[f"rendered/runbooks/{d.env}/{name}.md"].decode()
            assert d.namespace not in text and f"/{d.env}/{d.name}`" not in text, (d.env, name, d.name)
