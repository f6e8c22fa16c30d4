"""The workflows target: structure, security rules and catalog-driven content of the
rendered .github/workflows/*.yml, parsed with PyYAML (a different parser than jinja wrote)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from generator import vendor
from generator.model import naming
from generator.targets import workflows as target
from helpers.catalog_edit import edit_yaml
from helpers.repo import REPO, snapshot

PINS = json.loads(vendor.action_pins().read_text(encoding="utf-8"))
USES = re.compile(r"^(?P<action>[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*)@(?P<sha>[0-9a-f]{40}) # (?P<tag>\S+)$")


@pytest.fixture(scope="session")
def texts(sample) -> dict[str, str]:
    return {p: b.decode("utf-8") for p, b in sample.result.files.items() if p.startswith(".github/workflows/")}


@pytest.fixture(scope="session")
def docs(texts) -> dict[str, dict[str, Any]]:
    return {p: yaml.safe_load(t) for p, t in texts.items()}


def jobs(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return doc["jobs"]


def steps(docs: dict[str, dict[str, Any]]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, doc in docs.items():
        for job_id, job in jobs(doc).items():
            for step in job.get("steps", []):
                yield path, job_id, step


def on(doc: dict[str, Any]) -> dict[str, Any]:
    # PyYAML (YAML 1.1) reads the key `on` as the boolean True.
    return doc.get("on", doc.get(True))


def test_every_workflow_is_rendered_and_tracked(sample, texts):
    # Plus the release workflows of built services and promote.yml (tests/targets/test_release_workflows.py).
    extra = {naming.workflow_path(f"release-{n}") for n, s in sample.model.services.items() if s.build is not None}
    extra |= {naming.workflow_path("promote")} if extra else set()
    assert set(texts) == {naming.workflow_path(w.name) for w in target.WORKFLOWS} | extra
    for path in texts:
        entry = sample.result.entry(path)
        assert entry["target"] == "workflows"
        assert "catalog/platform.yaml" in entry["sources"]


def test_top_level_permissions_are_empty_and_every_job_declares_its_own(docs):
    for path, doc in docs.items():
        assert doc["permissions"] == {}, path
        for job_id, job in jobs(doc).items():
            assert isinstance(job.get("permissions"), dict) and job["permissions"], (path, job_id)
            assert set(job["permissions"].values()) <= {"read", "write"}
            assert "write-all" not in str(job["permissions"])


def test_only_jobs_that_talk_to_aws_get_an_oidc_token(docs):
    for path, doc in docs.items():
        for job_id, job in jobs(doc).items():
            # the terraform batch script (targets/workflows.py) and the drift job's batch loop assume
            # each root's role by OIDC themselves, one account after another
            uses_aws = any(
                "configure-aws-credentials" in s.get("uses", "")
                or target.BATCH_SCRIPT in s.get("run", "")
                or "assume-role-with-web-identity" in s.get("run", "")
                for s in job.get("steps", [])
            )
            assert (job["permissions"].get("id-token") == "write") == uses_aws, (path, job_id)


def test_every_action_is_pinned_to_the_real_sha_of_the_recorded_tag(texts):
    seen = set()
    for path, text in texts.items():
        for line in text.splitlines():
            stripped = line.strip().removeprefix("- ")
            if not stripped.startswith("uses:"):
                continue
            value = stripped.removeprefix("uses:").strip()
            match = USES.match(value)
            assert match, f"{path}: not pinned by full SHA with a tag comment: {value}"
            pin = PINS.get(match["action"])
            assert pin is not None, f"{path}: {match['action']} is not in github-actions-pins.json"
            assert (match["sha"], match["tag"]) == (pin["sha"], pin["tag"]), f"{path}: {value}"
            seen.add(match["action"])
    assert {"actions/checkout", "aws-actions/configure-aws-credentials", "hashicorp/setup-terraform"} <= seen


def test_catalog_pins_match_the_upstream_record(sample):
    for action, pin in sample.model.platform.ci.actions.items():
        assert PINS[action]["sha"] == pin.sha and PINS[action]["tag"] == pin.tag, action


def test_steps_pass_only_inputs_the_action_declares_and_all_required_ones(docs):
    for path, job_id, step in steps(docs):
        if "uses" not in step:
            continue
        action = step["uses"].split("@", 1)[0]
        declared = PINS[action]["inputs"]
        given = set(step.get("with", {}))
        unknown = given - set(declared)
        assert not unknown, f"{path} {job_id}: {action} has no inputs {sorted(unknown)}"
        deprecated = {name for name in given if declared[name].get("deprecated")}
        assert not deprecated, f"{path} {job_id}: deprecated inputs {deprecated}"
        missing = {name for name, spec in declared.items() if spec["required"] and spec["default"] is None} - given
        assert not missing, f"{path} {job_id}: {action} needs {sorted(missing)}"


def test_checkouts_never_persist_credentials(docs):
    count = 0
    for path, job_id, step in steps(docs):
        if step.get("uses", "").startswith("actions/checkout@"):
            count += 1
            assert step["with"]["persist-credentials"] is False, (path, job_id)
    assert count >= 10


def test_no_expression_is_expanded_inside_run(docs):
    for path, job_id, step in steps(docs):
        assert "${{" not in step.get("run", ""), f"{path} {job_id} {step.get('name')}: pass values through env:"
        if "script" in step.get("with", {}):
            assert "${{" not in step["with"]["script"], f"{path} {job_id}: github-script must read process.env"


def test_jobs_have_timeouts_and_a_pinned_runner(sample, docs):
    for path, doc in docs.items():
        for job_id, job in jobs(doc).items():
            assert job["runs-on"] == sample.model.platform.ci.runner
            assert 0 < job["timeout-minutes"] <= 180, (path, job_id)


# --- the workflows' content follows the catalog ---------------------------------------


def test_render_check_runs_check_validators_lint_cost_and_the_summary(docs):
    doc = docs[".github/workflows/render-check.yml"]
    paths = on(doc)["pull_request"]["paths"]
    for folder in ("catalog", "tenants", "environments", "templates", "generator"):
        assert f"{folder}/**" in paths
    runs = [s.get("run", "") for s in jobs(doc)["render-check"]["steps"]]
    joined = "\n".join(runs)
    for command in (
        "make install-test",
        ".venv/bin/companyos check",
        'companyos cost --base "$BASE_SHA"',
        "check-jsonschema --builtin-schema vendor.github-workflows",
        'companyos affected --base "$BASE_SHA" --format markdown >> "$GITHUB_STEP_SUMMARY"',
    ):
        assert command in joined
    # A plain `check` trusts the unit manifests in the checkout: a pull request is checked
    # against its base commit, a push to main renders everything (docs/incremental.md).
    steps = jobs(doc)["render-check"]["steps"]
    checks = [s for s in steps if ".venv/bin/companyos check" in s.get("run", "")]
    assert all('--base "$BASE_SHA"' in s["run"] or s["run"].endswith("check --full") for s in checks), checks
    by_event = {("pull_request" in s["if"]): s["run"] for s in checks}
    # the pull request's commit, read from git's objects (the checkout is that commit)
    assert 'args=(--base "$BASE_SHA" --committed)' in by_event[True] and by_event[False] == ".venv/bin/companyos check --full"
    assert "github.event_name == 'push'" in next(s["if"] for s in checks if "--full" in s["run"])
    assert on(doc)["push"]["branches"] == ["main"]


def test_render_check_proves_isolation_in_one_job_per_environment(sample, docs):
    """The analyzer is the slowest check at scale (a python-hcl2 parse per root): one job per
    environment runs ``isolation --env``, and lint leaves it out rather than run it again."""
    doc = docs[".github/workflows/render-check.yml"]
    envs = [e.name for e in sample.model.environments]
    isolation_jobs = {name: job for name, job in jobs(doc).items() if name.startswith("isolation-")}
    assert sorted(isolation_jobs) == sorted(f"isolation-{env}" for env in envs)
    for env in envs:
        job = isolation_jobs[f"isolation-{env}"]
        assert job["env"] == {"ENVIRONMENT": env, "BRANCH": "main"} and job["permissions"] == {"contents": "read", "actions": "read"}
        steps = job["steps"]
        assert [s["run"] for s in steps if "companyos" in s.get("run", "")] == ['.venv/bin/companyos isolation --env "$ENVIRONMENT"']
        # the parses come only from an artifact of the branch's last passed push run (a pull
        # request can neither write one there nor choose the run), and only a push keeps them
        found = next(s for s in steps if s.get("id") == "parsed")
        for flag in ("--workflow render-check.yml", '--branch "$BRANCH"', "--event push", "--status success", "--limit 1"):
            assert flag in found["run"], flag
        download = next(s for s in steps if s.get("uses", "").startswith("actions/download-artifact@"))
        assert download["with"]["run-id"] == "${{ steps.parsed.outputs.run }}" and download["continue-on-error"] is True
        assert download["with"]["name"] == f"isolation-parses-{env}" and download["with"]["path"] == ".companyos-cache/rendered-parses"
        upload = next(s for s in steps if s.get("uses", "").startswith("actions/upload-artifact@"))
        assert upload["if"] == "${{ github.event_name == 'push' }}" and upload["with"]["name"] == f"isolation-parses-{env}"
        assert upload["with"]["include-hidden-files"] is True
        order = [steps.index(x) for x in (found, download, next(s for s in steps if "companyos isolation" in s.get("run", "")), upload)]
        assert order == sorted(order)
    assert jobs(doc)["render-check"]["permissions"] == {"contents": "read"}
    assert not any("companyos isolation" in s.get("run", "") for s in jobs(doc)["render-check"]["steps"])


def test_render_check_lints_what_changed_as_a_matrix_of_batches(docs):
    """Lint reads the commit from git's objects: a pull request's since its base, a push's since
    the branch's last commit whose render-check passed (pushes only: a pull request's run may be
    on a branch named like it), every output file without one; the units in play cut into jobs
    by ``lint --format matrix``, each job ``lint --batch K/N`` (docs/guardrails.md)."""
    doc = docs[".github/workflows/render-check.yml"]
    plan, lint = jobs(doc)["lint-plan"], jobs(doc)["lint"]
    assert plan["permissions"] == {"contents": "read", "actions": "read"} and lint["permissions"] == {"contents": "read"}
    base = next(s for s in plan["steps"] if s.get("id") == "base")
    assert base["env"]["PR_BASE"] == "${{ github.event.pull_request.base.sha }}" and base["env"]["BRANCH"] == "main"
    for flag in ("--workflow render-check.yml", '--branch "$BRANCH"', "--event push", "--status success", "--limit 1"):
        assert flag in base["run"], flag
    assert 'git cat-file -e "$sha^{commit}"' in base["run"]  # a base not in the clone: everything is linted
    matrix = next(s for s in plan["steps"] if s.get("id") == "plan")
    assert matrix["env"] == {"BASE": "${{ steps.base.outputs.sha }}"}
    assert 'scope=(--base "$BASE"); else scope=(--committed)' in matrix["run"]
    assert '.venv/bin/companyos lint "${scope[@]}" --format matrix --units-per-job 200 --max-jobs 256' in matrix["run"]
    assert plan["outputs"] == {"base": "${{ steps.base.outputs.sha }}", "matrix": "${{ steps.plan.outputs.matrix }}"}
    assert lint["needs"] == ["lint-plan"] and lint["strategy"]["fail-fast"] is False
    assert lint["strategy"]["matrix"] == {"include": "${{ fromJSON(needs.lint-plan.outputs.matrix).include }}"}
    (run,) = [s for s in lint["steps"] if "companyos lint" in s.get("run", "")]
    assert run["env"] == {"BASE": "${{ needs.lint-plan.outputs.base }}", "BATCH": "${{ matrix.batch }}"}
    # the same cut as the plan's (a batch of another N is refused)
    assert '.venv/bin/companyos lint --checkov "${scope[@]}" --batch "$BATCH" --units-per-job 200 --max-jobs 256' in run["run"]
    assert any(s.get("run") == "make install-test" for s in lint["steps"])


def test_terraform_plans_affected_roots_and_applies_in_promotion_order(sample, docs):
    """Layers and batches in detail: tests/targets/test_workflow_matrix.py."""
    doc = docs[".github/workflows/terraform.yml"]
    envs = [e.name for e in sample.model.environments]
    affected = jobs(doc)["affected"]
    layers = ("shared", "pool", "tenant")
    n = target.TENANT_SHARDS
    # the tenant layer is split into N matrices (shards), every other layer is one
    parts = {x: [f"_{k}_of_{n}" for k in range(1, n + 1)] if x == "tenant" else [""] for x in ("org", *layers)}
    assert set(affected["outputs"]) == {
        *(f"plan_{x}{p}" for x in ("org", *layers) for p in parts[x]),
        "apply_org",
        *(f"{e}_{x}{p}" for e in envs for x in layers for p in parts[x]),
    }
    assert "fetch-depth" in affected["steps"][0]["with"]
    artifacts = set()
    for layer in ("org", *layers):
        for part in parts[layer]:
            plan = jobs(doc)[f"plan-{layer}{part.replace('_', '-')}"]
            assert plan["strategy"]["matrix"]["include"] == f"${{{{ fromJSON(needs.affected.outputs.plan_{layer}{part}).include }}}}"
            shard = f" '' {part[1:].replace('_of_', '/')}" if part else ""
            assert any(s.get("run", "") == f'bash {target.BATCH_SCRIPT} plan {layer} "$BATCH"{shard}' for s in plan["steps"])
            upload = next(s for s in plan["steps"] if s.get("uses", "").startswith("actions/upload-artifact@"))
            assert upload["with"]["path"] == "plans/"
            artifacts.add(upload["with"]["name"])
    assert len(artifacts) == 3 + n  # no two plan jobs upload under one name
    script = sample.result.files[target.BATCH_SCRIPT].decode()
    for needle in ("terraform fmt -check", "terraform init", "terraform validate", "-out=tfplan", "conftest", "terraform apply"):
        assert needle in script, needle
    previous = ["apply-org"]
    for env in sample.model.environments:
        for layer in layers:
            step = []
            for part in parts[layer]:
                job_id = f"apply-{env.name}-{layer}{part.replace('_', '-')}"
                job = jobs(doc)[job_id]
                assert job["environment"] == env.name
                assert job["needs"] == ["affected", *previous]  # every job of the step before
                assert f"needs.affected.outputs.{env.name}_{layer}{part}" in job["strategy"]["matrix"]["include"]
                # the shards of a layer share its parallelism
                assert job["strategy"]["max-parallel"] == max(1, target.APPLY_PARALLEL // len(parts[layer]))
                gate = [s for s in job["steps"] if "window-open" in s.get("run", "")]
                assert bool(gate) == (env.change_window is not None), env.name
                if gate:
                    assert gate[0]["run"].endswith(f"--env {env.name}")
                shard = f" {part[1:].replace('_of_', '/')}" if part else ""
                assert any(s.get("run", "") == f'bash {target.BATCH_SCRIPT} apply {layer} "$BATCH" {env.name}{shard}' for s in job["steps"])
                step.append(job_id)
            previous = step


def test_drift_runs_every_root_nightly_and_files_issues(sample, docs):
    doc = docs[".github/workflows/drift.yml"]
    assert on(doc)["schedule"] == [{"cron": sample.model.platform.ci.drift_schedule}]
    drift = jobs(doc)[f"drift-1-of-{target.DRIFT_SHARDS}"]
    assert drift["permissions"]["issues"] == "write"
    plan = next(s for s in drift["steps"] if s.get("id") == "plan")
    assert "-detailed-exitcode" in plan["run"]
    script = next(s for s in drift["steps"] if "github-script" in s.get("uses", ""))["with"]["script"]
    assert "code === '2'" in script and "issues.create" in script and "issues.update" in script


def test_migrations_watch_each_services_migration_folder(sample, docs):
    doc = docs[".github/workflows/migrations.yml"]
    with_migrations = {n: s for n, s in sample.model.services.items() if s.migrations}
    assert on(doc)["pull_request"]["paths"] == [f"{s.migrations.path}/**" for s in with_migrations.values()]
    for name, svc in with_migrations.items():
        job = jobs(doc)[f"dry-run-{name}"]
        assert job["services"]["postgres"]["image"].startswith("postgres:")
        runs = [s["run"] for s in job["steps"] if "run" in s]
        assert any(r.endswith(" ".join([*svc.migrations.command, *svc.migrations.dry_run_args])) for r in runs)
        assert f"'{name}'" in job["if"]


def test_deploy_is_dispatched_with_env_and_service_and_gates_the_change_window(sample, docs):
    doc = docs[".github/workflows/deploy.yml"]
    inputs = on(doc)["workflow_dispatch"]["inputs"]
    assert inputs["env"]["options"] == [e.name for e in sample.model.environments]
    assert inputs["service"]["options"] == ["all", *sorted(sample.model.services)]
    for env in sample.model.environments:
        job = jobs(doc)[f"deploy-{env.name}"]
        runs = [s.get("run", "") for s in job["steps"]]
        gated = [i for i, r in enumerate(runs) if "window-open" in r]
        sync = next(i for i, r in enumerate(runs) if "applications.argoproj.io" in r)
        assert bool(gated) == (env.change_window is not None)
        if gated:
            assert gated[0] < sync
        assert any(f"companyos smoke --env {env.name}" in r for r in runs)
        assert naming.cluster_name(sample.model.platform, env.name) in "\n".join(runs)


def test_previews_use_a_pr_namespace_and_tear_down_on_close(sample, docs):
    doc = docs[".github/workflows/previews.yml"]
    assert set(on(doc)["pull_request"]["types"]) >= {"opened", "synchronize", "closed"}
    deploy, teardown = jobs(doc)["deploy"], jobs(doc)["teardown"]
    assert deploy["env"]["NAMESPACE"] == "pr-${{ github.event.pull_request.number }}"
    assert "closed" in teardown["if"] and "!= 'closed'" in deploy["if"]
    assert any("kubectl delete namespace" in s.get("run", "") for s in teardown["steps"])
    for name in sample.model.services:
        values = yaml.safe_load(sample.result.files[target.preview_values_path(name)])
        assert values["deployment"]["env"]["DATA_MODE"] == {"value": "synthetic"}
        assert values["externalSecret"]["enabled"] is False and values["ingress"]["enabled"] is False
        assert "annotations" not in values["rbac"]["serviceAccount"]  # no IAM role in previews


def test_restore_drill_restores_every_prod_database_into_dr_verify(sample, docs, companyos):
    doc = docs[".github/workflows/restore-drill.yml"]
    ci = sample.model.platform.ci
    assert on(doc)["schedule"] == [{"cron": ci.restore_drill_schedule}]
    restore = jobs(doc)["restore"]
    prod = sample.model.environments[-1]
    oidc = next(s for s in restore["steps"] if "configure-aws-credentials" in s.get("uses", ""))
    assert f"::{prod.accounts.dr_verify}:" in oidc["with"]["role-to-assume"]
    assert restore["strategy"]["matrix"]["include"] == "${{ fromJSON(needs.targets.outputs.matrix).include }}"
    # the databases are read at run time: every batch of `companyos restore-targets`
    matrix = json.loads(companyos("restore-targets", cwd=REPO).out)
    rows = [companyos("restore-targets", "--batch", e["batch"], cwd=REPO).out.splitlines() for e in matrix["include"]]
    owners = {line.split("\t")[0] for batch in rows for line in batch}
    with_db = [d for d in sample.model.in_environment(prod.name) if any(s.uses_database for s in d.services)]
    assert owners == {d.name if d.dedicated else naming.pool_root(d.tier.name) for d in with_db}
    assert any("delete-db-instance" in s.get("run", "") and s.get("if") for s in restore["steps"])
    script = next(s for s in jobs(doc)["evidence"]["steps"] if "github-script" in s.get("uses", ""))["with"]["script"]
    assert "ops/backup-verification/" in script


def test_chaos_drill_runs_monthly_in_dev_and_stage(sample, docs, companyos):
    doc = docs[".github/workflows/chaos-drill.yml"]
    ci = sample.model.platform.ci
    assert on(doc)["schedule"] == [{"cron": ci.chaos_drill_schedule}]
    assert [j for j in jobs(doc) if j.startswith("chaos-")] == [f"chaos-{e}" for e in ci.chaos_environments]
    for env in ci.chaos_environments:
        job = jobs(doc)[f"chaos-{env}"]
        assert job["env"]["ENVIRONMENT"] == env
        assert any("companyos list-tenants" in s.get("run", "") for s in job["steps"])
        assert any("companyos smoke" in s.get("run", "") for s in job["steps"])
        # what the job reads at run time: every namespace of the environment
        listed = companyos("list-tenants", "--env", env, "--format", "tsv", cwd=REPO).out.splitlines()
        assert [line.split("\t")[0] for line in listed] == sorted({d.namespace for d in sample.model.in_environment(env)})


#: Free (non-choice) dispatch inputs a workflow needs, and why. Failover and failback take one
#: tenant's name: a `choice` would list the fleet in the workflow (every onboarding PR would
#: edit it); the name reaches the scripts only through `env:` and every step checks it.
FREE_INPUTS = {
    ".github/workflows/failover.yml": {"tenant"},
    ".github/workflows/failback.yml": {"tenant"},
}


def test_no_workflow_takes_dispatch_inputs_except_deploy(docs):
    # Inputs are an injection surface (and checkov CKV_GHA_7); only the one-command deploy needs
    # free ones, and failover/failback a tenant name. A `choice` (the environment of failover,
    # failback, drills) is not: GitHub refuses a dispatch whose value is not one of the rendered options.
    for path, doc in docs.items():
        dispatch = on(doc).get("workflow_dispatch") if isinstance(on(doc), dict) else None
        if dispatch and path not in (".github/workflows/deploy.yml", ".github/workflows/promote.yml"):
            free = {name for name, spec in (dispatch.get("inputs") or {}).items() if spec.get("type") != "choice"}
            assert free <= FREE_INPUTS.get(path, set()), (path, free)


@pytest.mark.parametrize("path", sorted(FREE_INPUTS))
def test_a_free_input_reaches_the_scripts_only_through_env_and_is_checked(docs, path):
    doc = docs[path]
    for name in FREE_INPUTS[path]:
        expression = "${{ inputs." + name + " }}"
        for job in doc["jobs"].values():
            assert all(expression not in (step.get("run") or "") for step in job["steps"]), (path, name)
            uses = [k for k, v in (job.get("env") or {}).items() if v == expression]
            assert uses, (path, name)
            variable = "$" + uses[0]
            reading = [step for step in job["steps"] if variable in (step.get("run") or "")]
            assert reading, (path, name)
            for step in reading:  # every step that reads it checks it against the name pattern first
                run = step["run"]
                check = f'[[ "{variable}" =~ $pattern ]]'
                assert check in run, (path, step.get("name"))
                first_use = min(i for i in (run.find(f"/{variable}"), run.find(f'"{variable}"')) if i >= 0)
                assert run.index(check) <= first_use or run[:first_use].rstrip().endswith(("[ -n", "[ -z")), (path, step.get("name"))


# --- bad input and ownership of .github/workflows --------------------------------------


def test_expression_in_a_catalog_value_is_a_located_error(repo, companyos):
    before = snapshot(repo)
    edit_yaml(repo / "catalog/services/api.yaml", lambda d: d["migrations"]["command"].append("${{ github.event.issue.title }}"))
    result = companyos("render", cwd=repo)
    assert result.code == 2
    assert re.search(r"catalog/services/api\.yaml:\d+:\d+: '\$\{\{' is not allowed here", result.err), result.err
    after = snapshot(repo)
    after.pop("catalog/services/api.yaml"), before.pop("catalog/services/api.yaml")
    assert after == before


def test_an_unpinned_action_is_a_located_error(repo, companyos):
    edit_yaml(repo / "catalog/platform.yaml", lambda d: d["ci"]["actions"].pop("hashicorp/setup-terraform"))
    result = companyos("render", cwd=repo)
    assert result.code == 2
    assert re.search(r"catalog/platform\.yaml:\d+:\d+: .*hashicorp/setup-terraform; pin it under ci.actions", result.err), result.err


def test_a_short_sha_pin_is_rejected(repo, companyos):
    edit_yaml(repo / "catalog/platform.yaml", lambda d: d["ci"]["actions"]["actions/checkout"].__setitem__("sha", "3d3c42e"))
    result = companyos("render", cwd=repo)
    assert result.code == 2 and "catalog/platform.yaml:" in result.err and "sha" in result.err


def test_hand_written_workflows_survive_render_and_prune(repo, companyos):
    custom = repo / ".github/workflows/custom.yml"
    custom.parent.mkdir(parents=True, exist_ok=True)
    custom.write_text("name: custom\non: push\njobs: {}\n", encoding="utf-8")
    assert companyos("render", cwd=repo).code == 0
    # Dropping the only service with migrations makes migrations.yml stale: it is pruned,
    # the hand-written workflow is not.
    edit_yaml(repo / "catalog/services/api.yaml", lambda d: d.pop("migrations"))
    result = companyos("render", cwd=repo)
    assert result.code == 0, result.err
    assert "pruned .github/workflows/migrations.yml" in result.out
    assert not (repo / ".github/workflows/migrations.yml").exists()
    assert custom.read_text(encoding="utf-8") == "name: custom\non: push\njobs: {}\n"
    assert (repo / ".github/workflows/deploy.yml").is_file()
    assert companyos("check", cwd=repo).code == 0


def test_changing_a_pin_rewrites_every_workflow_that_uses_it(repo, companyos):
    new_sha = "0" * 40
    edit_yaml(repo / "catalog/platform.yaml", lambda d: d["ci"]["actions"]["actions/checkout"].__setitem__("sha", new_sha))
    assert companyos("render", cwd=repo).code == 0
    for path in (repo / ".github/workflows").glob("*.yml"):
        text = path.read_text(encoding="utf-8")
        assert "actions/checkout@3d3c42e" not in text
    assert f"actions/checkout@{new_sha} # v7.0.1" in (repo / ".github/workflows/render-check.yml").read_text(encoding="utf-8")


def test_workflow_values_are_shell_quoted(tmp_path: Path, repo, companyos):
    edit_yaml(repo / "catalog/services/api.yaml", lambda d: d["migrations"]["dry_run_args"].append("--label=a b; rm -rf /"))
    assert companyos("render", cwd=repo).code == 0, "a hostile argument is data, not an error"
    text = (repo / ".github/workflows/migrations.yml").read_text(encoding="utf-8")
    assert "'--label=a b; rm -rf /'" in text


def test_big_matrices_are_split_into_jobs_github_accepts(docs):
    assert target.shards(target.MAX_MATRIX) == [{"job": "", "out": "", "arg": ""}]
    split = target.shards(2 * target.MAX_MATRIX + 1)
    assert [s["arg"] for s in split] == [" --shard 1/3", " --shard 2/3", " --shard 3/3"]
    assert target.MAX_MATRIX <= 256  # GitHub's limit of jobs per matrix
    # Drift and Terraform batch at run time (tests/targets/test_workflow_matrix.py).
    assert f"drift-1-of-{target.DRIFT_SHARDS}" in jobs(docs[".github/workflows/drift.yml"])
    assert target.MAX_JOBS == 256 and f"plan-tenant-1-of-{target.TENANT_SHARDS}" in jobs(docs[".github/workflows/terraform.yml"])
