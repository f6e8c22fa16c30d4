"""Consumer limits that grow with the fleet (output/limits.py): the Terraform roots of a layer,
batched over GitHub's 256 matrix jobs, within each job's timeout; and the names and label
values an ApplicationSet generates from the per-tenant element files (no rendered object
shows those Applications, so only this check sees them)."""

from __future__ import annotations

import json

from generator import pipeline
from generator.output import limits
from generator.targets.workflows import TENANT_SHARDS

WORKFLOW = ".github/workflows/terraform.yml"
DRIFT = ".github/workflows/drift.yml"
#: The tenant layer plans and applies as TENANT_SHARDS matrices; each takes every N-th root.
N = TENANT_SHARDS
PLAN_TENANT = f"plan-tenant-1-of-{N}"
APPLY_PROD_TENANT = f"apply-prod-tenant-1-of-{N}"


def _sources(sample: pipeline.Build) -> dict[str, list[str]]:
    return {p: e["sources"] for p, e in sample.result.manifest["files"].items()}


def test_the_terraform_workflows_batched_jobs_and_their_timeouts_are_read_from_the_workflow(sample: pipeline.Build) -> None:
    facts = limits.facts(WORKFLOW, sample.result.files[WORKFLOW])
    assert facts is not None
    batched = dict(facts.batched)
    assert batched[PLAN_TENANT] > 0 and batched[APPLY_PROD_TENANT] > 0 and "affected" not in batched
    assert limits.check(sample.model, {WORKFLOW: sample.result.files[WORKFLOW]}, _sources(sample), ()) == []


def _with_roots(sample: pipeline.Build, env: str, count: int) -> dict[str, list[str]]:
    sources = _sources(sample)
    for i in range(count):
        sources[f"rendered/terraform/{env}/tenant-x{i}/main.tf"] = ["catalog/platform.yaml", "tenants/umbrella.yaml"]
    return sources


def test_a_tenant_layer_too_big_for_the_apply_jobs_timeout_fails_at_the_tenant_that_grows_it(sample: pipeline.Build) -> None:
    facts = limits.facts(WORKFLOW, sample.result.files[WORKFLOW])
    assert facts is not None
    timeout = dict(facts.batched)[APPLY_PROD_TENANT]
    fits = N * limits.MAX_MATRIX_JOBS * (timeout // limits.MINUTES_PER_ROOT["apply"])  # N shards of 256 jobs
    existing = sum(1 for p in _sources(sample) if p.startswith("rendered/terraform/prod/tenant-") and p.endswith("/main.tf"))
    assert limits.judge(sample.model, [facts], _with_roots(sample, "prod", fits - existing), ()) == []
    errors = limits.judge(sample.model, [facts], _with_roots(sample, "prod", fits - existing + 1), ())
    messages = [e.message for e in errors]
    assert len(errors) == 1, messages  # one error for the layer, not one per shard
    assert (
        f"job {APPLY_PROD_TENANT} would apply {-(-(fits + 1) // N)} tenant roots (every {N}th of the layer's {fits + 1}) as" in messages[0]
    )
    assert f"the job may run {timeout}" in messages[0]
    assert errors[0].location == sample.model.catalog.tenants["umbrella"].locate("name")


def test_the_plan_layer_counts_every_environment(sample: pipeline.Build) -> None:
    facts = limits.facts(WORKFLOW, sample.result.files[WORKFLOW])
    assert facts is not None
    timeout = dict(facts.batched)[PLAN_TENANT]
    fits = N * limits.MAX_MATRIX_JOBS * (timeout // limits.MINUTES_PER_ROOT["plan"])
    sources = _with_roots(sample, "dev", fits // 2)
    sources.update({k: v for k, v in _with_roots(sample, "stage", fits // 2).items() if "tenant-x" in k})
    messages = [e.message for e in limits.judge(sample.model, [facts], sources, ())]
    existing = sum(1 for p in _sources(sample) if p.startswith("rendered/terraform/") and "/tenant-" in p and p.endswith("/main.tf"))
    plan = [m for m in messages if f"job {PLAN_TENANT} would plan" in m]
    assert len(plan) == 1 and f"of the layer's {existing + 2 * (fits // 2)})" in plan[0], messages
    # Each environment's apply job counts only its own roots.
    assert not [m for m in messages if APPLY_PROD_TENANT in m]


def test_a_generated_application_name_over_63_characters_is_an_error_at_its_tenant(sample: pipeline.Build) -> None:
    path = next(p for p in sample.result.files if p.startswith("rendered/argocd/prod/cells/") and p.endswith("/acme.json"))
    elements = json.loads(sample.result.files[path])
    assert limits.facts(path, sample.result.files[path]) == limits.Facts(path)
    elements[0]["name"] = "prod-acme-" + "s" * 60
    planted = limits.facts(path, json.dumps(elements).encode())
    assert planted is not None
    errors = limits.judge(sample.model, [planted], _sources(sample), sample.result.declared)
    assert [e.message for e in errors] == [
        f"{path}: generated Application {elements[0]['name']}: name '{elements[0]['name']}' is 70 characters; at most 63"
    ]
    assert errors[0].location == sample.model.catalog.tenants["acme"].locate("name", key=True)
    elements[0]["name"], elements[0]["namespace"] = "prod-acme-api", "t" * 64
    planted = limits.facts(path, json.dumps(elements).encode())
    assert planted is not None and "namespace" in planted.breaches[0][2]


def test_ten_thousand_tenants_in_three_environments_fit_the_sharded_jobs(sample: pipeline.Build) -> None:
    """Issue 19's fleet: 10,000 tenant roots per environment plan (30,000 over all) and apply
    within the jobs' timeouts once the tenant layer runs as N matrices; one matrix could not."""
    facts = limits.facts(WORKFLOW, sample.result.files[WORKFLOW])
    assert facts is not None
    sources = _sources(sample)
    for env in ("dev", "stage", "prod"):
        sources.update({k: v for k, v in _with_roots(sample, env, 10_000).items() if "tenant-x" in k})
    drift = limits.facts(DRIFT, sample.result.files[DRIFT])
    assert drift is not None and any(job.startswith("drift-1-of-") for job, _ in drift.batched)
    assert limits.judge(sample.model, [facts, drift], sources, ()) == []
    one_matrix = limits.MAX_MATRIX_JOBS * (dict(facts.batched)[PLAN_TENANT] // limits.MINUTES_PER_ROOT["plan"])
    assert one_matrix < 30_000  # what the shards are for


def test_a_fleet_too_big_for_the_nightly_drift_plan_is_refused(sample: pipeline.Build) -> None:
    drift = limits.facts(DRIFT, sample.result.files[DRIFT])
    assert drift is not None
    job, timeout = next((j, t) for j, t in drift.batched if j.startswith("drift-1-of-"))
    shards = int(job.rsplit("-", 1)[1])
    fits = shards * limits.MAX_MATRIX_JOBS * (timeout // limits.MINUTES_PER_ROOT["plan"])
    existing = sum(1 for p in _sources(sample) if limits._ROOT.match(p))
    assert limits.judge(sample.model, [drift], _with_roots(sample, "prod", fits - existing), ()) == []
    messages = [e.message for e in limits.judge(sample.model, [drift], _with_roots(sample, "prod", fits - existing + 1), ())]
    assert len(messages) == 1 and f"job {job} would plan" in messages[0] and f"of all {fits + 1})" in messages[0], messages
