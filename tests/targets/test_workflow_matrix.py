"""CI at scale: batched matrices within GitHub's limits, plans and applies in dependency
order (org -> shared -> pool -> tenant), and workflows that read the fleet at run time.

GitHub runs at most 256 jobs per matrix and keeps at most 1 MB per job output; the rendered
workflows are parsed as YAML, the matrices are computed by the real CLI on a scratch git
repository with a planted change, and the drills and terraform workflows are linted.
"""

from __future__ import annotations

import itertools
import json
import re

import pytest
import yaml

from generator.errors import UsageError
from generator.ops import affected, fleet, lint_scope
from generator.targets.workflows import DRIFT_SHARDS, TENANT_SHARDS
from helpers.catalog_edit import edit_yaml
from helpers.gitrepo import commit_all
from helpers.repo import REPO, copy_repo
from helpers.workflow_linters import actionlint, zizmor

GITHUB_MAX_JOBS = 256
GITHUB_MAX_OUTPUT = 1024 * 1024
WORKFLOWS = ("terraform", "chaos-drill", "restore-drill", "drift")


def fake_roots(n: int) -> list[affected.Root]:
    return [
        affected.Root(
            f"rendered/terraform/prod/tenant-t{i:05}", "prod", f"tenant-t{i:05}", f"prod-tenant-t{i:05}", "1" * 12, "arn", "eu-west-1"
        )
        for i in range(n)
    ]


@pytest.mark.parametrize("count", [0, 1, 255, 256, 257, 1000, 30_000])
def test_batches_cover_every_root_once_in_order_within_256_jobs(count):
    roots = fake_roots(count)
    matrix = json.loads(affected.batch_matrix(roots))
    assert matrix["count"] == count
    assert matrix["jobs"] == len(matrix["include"]) == min(count, GITHUB_MAX_JOBS)
    picked = [r for entry in matrix["include"] for r in affected.select_batch(roots, entry["batch"])]
    assert picked == roots  # every root exactly once, order kept
    sizes = [entry["size"] for entry in matrix["include"]]
    assert not sizes or max(sizes) - min(sizes) <= 1  # several roots per job only when needed
    assert all(entry["name"] == entry["batch"].replace("/", "-of-") for entry in matrix["include"])
    # 13 outputs of this size fit GitHub's 1 MB per job many times over
    assert 13 * len(affected.batch_matrix(roots)) < GITHUB_MAX_OUTPUT // 4


def test_a_stale_or_malformed_batch_is_refused():
    roots = fake_roots(600)
    with pytest.raises(Exception, match="there are 256 batches, not 3"):
        affected.select_batch(roots, "1/3")
    with pytest.raises(Exception, match="expected K/N"):
        affected.select_batch(roots, "0/256")
    with pytest.raises(Exception, match="at least 1"):
        fleet.cut(roots, 0)


@pytest.mark.parametrize("spec", ["0/2", "3/2", "2", "a/b", "1/0", "-1/2"])
def test_one_parser_refuses_a_malformed_part_for_every_option(spec):
    """``--batch`` (roots, lint) and ``--shard`` read K/N through ``fleet.part``."""
    for option in ("--batch", "--shard"):
        with pytest.raises(UsageError, match=f"^{option} '{re.escape(spec)}': expected K/N"):
            fleet.part(spec, option)
    with pytest.raises(UsageError, match="--shard"):
        affected.select_shard(fake_roots(4), spec)
    with pytest.raises(UsageError, match="--batch"):
        lint_scope.Batch.parse(spec)
    assert fleet.part("2/3", "--batch") == (2, 3)


def workflow(sample, name: str) -> dict:
    return yaml.safe_load(sample.result.files[f".github/workflows/{name}.yml"])


def test_terraform_plans_and_applies_layer_by_layer(sample):
    jobs = workflow(sample, "terraform")["jobs"]
    assert jobs["plan-org"]["needs"] == ["affected"]
    assert jobs["plan-shared"]["needs"] == ["affected", "plan-org"]
    assert jobs["plan-pool"]["needs"] == ["affected", "plan-shared"]
    shards = [f"-{k}-of-{TENANT_SHARDS}" for k in range(1, TENANT_SHARDS + 1)]
    assert all(jobs[f"plan-tenant{s}"]["needs"] == ["affected", "plan-pool"] for s in shards)
    steps = [["apply-org"]] + [
        [f"apply-{env}-{layer}{s}" for s in (shards if layer == "tenant" else [""])]
        for env in ("dev", "stage", "prod")
        for layer in ("shared", "pool", "tenant")
    ]
    for previous, step in itertools.pairwise(steps):
        for job in step:
            assert jobs[job]["needs"] == ["affected", *previous]
            # a skipped (empty) shard or layer must not skip the rest of the chain
            assert "!failure() && !cancelled()" in jobs[job]["if"]
    assert jobs["apply-prod-shared"]["environment"] == "prod"
    for name, job in jobs.items():
        matrix = job.get("strategy", {}).get("matrix")
        if matrix is not None:  # every matrix is read at run time, never listed in the file
            assert isinstance(matrix["include"], str) and matrix["include"].startswith("${{ fromJSON(needs."), name
    steps = jobs["affected"]["steps"]
    assert any("companyos batches" in s.get("run", "") and "--github-output" in s.get("run", "") for s in steps)


def test_no_workflow_lists_a_tenant(sample):
    tenants = sorted(sample.model.tenants)
    for name in WORKFLOWS:
        text = sample.result.files[f".github/workflows/{name}.yml"].decode()
        assert not [t for t in tenants if t in text], name
        entry = sample.result.entry(f".github/workflows/{name}.yml")
        assert not [s for s in entry["sources"] if s.startswith("tenants/")], name
    chaos = workflow(sample, "chaos-drill")["jobs"]
    assert chaos["chaos-stage"]["needs"] == ["tenants", "chaos-dev"]  # one environment at a time
    restore = workflow(sample, "restore-drill")["jobs"]
    assert restore["restore"]["strategy"]["matrix"]["include"] == "${{ fromJSON(needs.targets.outputs.matrix).include }}"


def test_batch_outputs_for_a_real_change_follow_the_layers(tmp_path, companyos):
    repo = copy_repo(tmp_path / "repo")
    assert companyos("render", cwd=repo).code == 0  # the base holds this code's render
    base = commit_all(repo, "base")
    # a dev-wide setting reaches the shared, pool and tenant roots of dev, nothing else
    edit_yaml(repo / "environments/dev.yaml", lambda d: d["settings"]["logs"].__setitem__("retention_days", 30))
    assert companyos("render", cwd=repo).code == 0
    result = companyos("batches", "--base", base, "--github-output", cwd=repo)
    assert result.code == 0, result.err
    outputs = dict(line.split("=", 1) for line in result.out.splitlines())
    assert len(result.out.encode()) < 8 * 1024
    matrices = {k: json.loads(v) for k, v in outputs.items()}
    tenant_shards = {f"{name}_{k}_of_{TENANT_SHARDS}" for name in ("plan_tenant", "dev_tenant") for k in range(1, TENANT_SHARDS + 1)}
    assert {k for k, m in matrices.items() if m["count"]} - tenant_shards == {"plan_shared", "plan_pool", "dev_shared", "dev_pool"}
    # every affected tenant root is in exactly one shard of each
    for name in ("plan_tenant", "dev_tenant"):
        counts = [matrices[f"{name}_{k}_of_{TENANT_SHARDS}"]["count"] for k in range(1, TENANT_SHARDS + 1)]
        assert sum(counts) >= 1 and max(counts) - min(counts) <= 1, counts
    assert all(m["jobs"] <= GITHUB_MAX_JOBS for m in matrices.values())
    # one job may take several roots: --max-jobs 1 puts every tenant root of dev in one batch
    one = companyos("batches", "--base", base, "--env", "dev", "--layer", "tenant", "--max-jobs", "1", cwd=repo)
    assert json.loads(one.out)["jobs"] == 1
    rows = companyos("batches", "--base", base, "--env", "dev", "--layer", "tenant", "--max-jobs", "1", "--batch", "1/1", cwd=repo)
    lines = [line.split("\t") for line in rows.out.splitlines()]
    assert len(lines) == json.loads(one.out)["count"] >= 1
    assert all(root.startswith("rendered/terraform/dev/tenant-") and role.startswith("arn:aws:iam::") for root, _id, role, _r in lines)
    # --shard S/M: the roots of one shard, as the workflow's sharded jobs ask for them
    shard_rows = []
    for k in range(1, TENANT_SHARDS + 1):
        part = companyos(
            "batches",
            "--base",
            base,
            "--env",
            "dev",
            "--layer",
            "tenant",
            "--shard",
            f"{k}/{TENANT_SHARDS}",
            "--max-jobs",
            "1",
            "--batch",
            "1/1",
            cwd=repo,
        )
        assert part.code == 0, part.err
        shard_rows += part.out.splitlines()
    assert sorted(shard_rows) == sorted(rows.out.splitlines())
    shared = companyos("batches", "--base", base, "--layer", "shared", "--batch", "1/1", cwd=repo)
    assert shared.out.split("\t")[0] == "rendered/terraform/dev/shared"


def test_drift_reads_every_root_at_run_time_in_batches(sample, companyos):
    """One drift matrix job per batch of `companyos roots`, in a fixed number of shards (each a
    matrix of at most 256 jobs): the same whatever the fleet's size."""
    jobs = workflow(sample, "drift")["jobs"]
    n = DRIFT_SHARDS
    assert set(jobs) == {"roots", *(f"drift-{k}-of-{n}" for k in range(1, n + 1))}
    for k in range(1, n + 1):
        job = jobs[f"drift-{k}-of-{n}"]
        assert job["strategy"]["matrix"]["include"] == f"${{{{ fromJSON(needs.roots.outputs.matrix_{k}_of_{n}).include }}}}"
        assert f"companyos roots --shard {k}/{n} --format matrix --max-jobs 256" in jobs["roots"]["steps"][-1]["run"]
        plan = next(s for s in job["steps"] if s.get("id") == "plan")
        assert f'companyos roots --shard {k}/{n} --max-jobs 256 --batch "$BATCH"' in plan["run"] and "-detailed-exitcode" in plan["run"]
        assert job["concurrency"]["group"].startswith(f"drift-{k}-of-{n}-")
    every = [line.split("  ")[0] for line in companyos("roots", cwd=REPO).out.splitlines()]
    matrix = json.loads(companyos("roots", "--format", "matrix", "--max-jobs", "4", cwd=REPO).out)
    assert matrix["jobs"] == 4 and matrix["count"] == len(every) > 4
    picked = []
    for entry in matrix["include"]:
        rows = companyos("roots", "--max-jobs", "4", "--batch", entry["batch"], cwd=REPO).out.splitlines()
        assert len(rows) == entry["size"]
        picked += [row.split("\t")[0] for row in rows]
    assert picked == every  # every root exactly once, in order
    stale = companyos("roots", "--max-jobs", "4", "--batch", "1/5", cwd=REPO)
    assert stale.code == 2 and "there are 4 batches, not 5" in stale.err
    shards = [companyos("roots", "--shard", f"{k}/{n}", cwd=REPO).out.splitlines() for k in range(1, n + 1)]
    assert sorted(line.split("  ")[0] for part in shards for line in part) == sorted(every)  # each root in one shard


def test_drills_read_their_targets_at_run_time(companyos):
    tenants = companyos("list-tenants", "--env", "prod", "--format", "tsv", cwd=REPO)
    assert tenants.code == 0, tenants.err
    rows = [line.split("\t") for line in tenants.out.splitlines()]
    assert [ns for ns, _ in rows] == ["tenant-acme", "tenant-globex", "tenant-hooli", "tenant-initech", "tenant-umbrella"]
    assert {cluster for _, cluster in rows} == {"companyos-prod"}
    matrix = json.loads(companyos("restore-targets", "--max-jobs", "2", cwd=REPO).out)
    assert matrix["jobs"] == 2 and sum(e["size"] for e in matrix["include"]) == matrix["count"] >= 2
    batch = companyos("restore-targets", "--max-jobs", "2", "--batch", "1/2", cwd=REPO)
    assert all(len(line.split("\t")) == 5 for line in batch.out.splitlines())


@pytest.mark.slow
@pytest.mark.parametrize("name", WORKFLOWS)
def test_batched_workflows_pass_actionlint_and_zizmor(sample, tmp_path, name):
    path = tmp_path / ".github" / "workflows" / f"{name}.yml"
    path.parent.mkdir(parents=True)
    path.write_bytes(sample.result.files[f".github/workflows/{name}.yml"])
    assert actionlint([path], tmp_path) == []
    assert zizmor(path.parent, "medium") == []
