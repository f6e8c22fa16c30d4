"""Failover, failback, region drill, prod chaos and the restore drill (issue 15).

The failover and failback steps that change what runs are executed for real in a scratch copy
(``git`` replaced by a recorder): the catalog edit plus the render is the commit that scales
the standby. The restore drill's integrity SQL runs against a real PostgreSQL: the recorder's
manifest matches an intact copy and a changed row is caught. Schedules come from the catalog;
no workflow lists a tenant. actionlint and zizmor cover these files in test_workflows_tools.py.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import hcl2
import pytest
import yaml
from hcl2 import SerializationOptions

from helpers.catalog_edit import edit_yaml
from helpers.step_runner import effective_shell, shell_command

NEW = ("failover", "failback", "region-drill", "chaos-fis")
PIN = re.compile(r"uses: [\w./-]+@[0-9a-f]{40} # ")


def _workflow(sample, name: str) -> dict:
    return yaml.safe_load(sample.result.files[f".github/workflows/{name}.yml"])


def test_drill_and_chaos_schedules_come_from_the_catalog(sample):
    prod = next(e for e in sample.model.environments if e.name == "prod")
    assert prod.disaster_recovery is not None
    drill, chaos = _workflow(sample, "region-drill"), _workflow(sample, "chaos-fis")
    assert [c["cron"] for c in drill[True]["schedule"]] == [prod.disaster_recovery.region_drill_schedule]
    assert [c["cron"] for c in chaos[True]["schedule"]] == [prod.disaster_recovery.chaos_schedule]
    job = drill["jobs"]["drill-prod"]
    assert prod.disaster_recovery.region_drill_schedule in job["if"] and job["env"]["DOCUMENT"] == "companyos-prod-region-failover-drill"
    steps = " ".join(s.get("name", "") for s in chaos["jobs"]["fis-prod"]["steps"])
    assert "companyos-prod-shared-pod-termination" in steps and "companyos-prod-shared-instance-termination" in steps


def test_new_workflows_are_least_privilege_pinned_and_list_no_tenant(sample):
    tenants = {d.name for d in sample.model.deployments}
    for name in (*NEW, "restore-drill"):
        text = sample.result.files[f".github/workflows/{name}.yml"].decode()
        doc = yaml.safe_load(text)
        assert doc["permissions"] == {}, name
        for job in doc["jobs"].values():
            assert set(job["permissions"]) <= {"contents", "id-token"}, (name, job["permissions"])
        uses = [line.strip() for line in text.splitlines() if line.strip().startswith(("uses:", "- uses:"))]
        assert all(PIN.search(u) for u in uses), (name, uses)
        assert not any(re.search(rf"\b{re.escape(t)}\b", text) for t in tenants), name
    for name in ("failover", "failback"):
        job = next(iter(_workflow(sample, name)["jobs"].values()))
        assert job["environment"] == "${{ inputs.environment }}"
        assert job["permissions"] == {"contents": "write", "id-token": "write"}


def _step(sample, workflow: str, starts: str) -> str:
    """The script of ``workflow``'s step named ``starts...``, which the runners below run as
    ``bash -eo pipefail``: the shell the workflow gives that step (``helpers.step_runner``)."""
    doc = _workflow(sample, workflow)
    job = next(iter(doc["jobs"].values()))
    step = next(s for s in job["steps"] if s.get("name", "").startswith(starts))
    assert shell_command(effective_shell(doc, job, step))[:-1] == ["bash", "--noprofile", "--norc", "-eo", "pipefail"], step
    return str(step["run"])


def _run_step(repo: Path, script: str, tmp_path: Path) -> list[str]:
    """Run a workflow step's script like GitHub does (bash -eo pipefail) in ``repo``, with the
    project's venv at .venv and ``git`` recording its arguments instead of pushing."""
    (repo / ".venv").symlink_to(Path(sys.executable).parent.parent)
    shim = tmp_path / "bin"
    shim.mkdir()
    log = tmp_path / "git.log"
    (shim / "git").write_text(f'#!/bin/sh\necho "$*" >> {log}\n')
    (shim / "git").chmod(0o755)
    env = {**os.environ, "PATH": f"{shim}:{os.environ['PATH']}", "ENVIRONMENT": "prod", "BRANCH": "main"}
    env |= {"GH_TOKEN": "token", "GITHUB_REPOSITORY": "companyos/platform-gitops"}
    proc = subprocess.run(
        ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", script], cwd=repo, env=env, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return log.read_text().splitlines()


def _standby_values(repo: Path, env: str = "prod") -> dict[str, dict]:
    """tenant -> the values its standby Applications get last (rendered/helm/<env>/standby/<tenant>.yaml)."""
    return {p.stem: yaml.safe_load(p.read_text()) for p in sorted((repo / f"rendered/helm/{env}/standby").glob("*.yaml"))}


PROD_TENANTS = {"acme", "globex", "hooli", "initech", "umbrella"}
ZERO = {"deployment": {"replicas": 0}, "autoscaling": {"enabled": False}, "pdb": {"enabled": False}}


def test_failover_step_commits_the_flag_and_the_render_that_scales_the_standby(sample, repo, tmp_path):
    assert _standby_values(repo) == dict.fromkeys(PROD_TENANTS, ZERO)
    script = _step(sample, "failover", "Scale the standby Applications up")
    calls = _run_step(repo, script, tmp_path)
    assert yaml.safe_load((repo / "environments/prod.yaml").read_text())["disaster_recovery"]["active"] is True
    assert _standby_values(repo) == {t: {} for t in PROD_TENANTS}  # one file per tenant, every one active
    assert not (repo / "rendered/helm/prod/standby.yaml").exists()
    assert "standing by" not in (repo / "rendered/argocd/prod/standby/standby.yaml").read_text()
    assert "add environments rendered" in calls and "commit -m failover: serve prod from its DR region" in calls
    assert calls[-1] == "push https://x-access-token:token@github.com/companyos/platform-gitops.git HEAD:main"


def test_failback_step_commits_the_standby_back_to_zero(sample, repo, tmp_path):
    edit_yaml(repo / "environments/prod.yaml", lambda d: d["disaster_recovery"].__setitem__("active", True))
    script = _step(sample, "failback", "Scale the standby Applications back to zero")
    calls = _run_step(repo, script, tmp_path)
    assert yaml.safe_load((repo / "environments/prod.yaml").read_text())["disaster_recovery"]["active"] is False
    assert _standby_values(repo) == dict.fromkeys(PROD_TENANTS, ZERO)
    assert "commit -m failback: serve prod from its primary region again" in calls


def test_failover_repoints_only_the_host_of_each_database_secret(sample):
    """The jq the failover runs on each secret value, run for real: host replaced, the rest kept."""
    script = _step(sample, "failover", "Promote the replicas")
    program = re.search(r"jq -c --arg h \"\$host\" '([^']+)'", script)
    assert program, script
    value = '{"engine":"postgres","host":"old.eu-west-1.rds.amazonaws.com","port":"5432","dbname":"app","username":"u","reader_hosts":"r1","sslmode":"require"}'
    out = subprocess.run(
        ["jq", "-c", "--arg", "h", "new.eu-central-1.rds.amazonaws.com", program.group(1)], input=value, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    got = yaml.safe_load(out.stdout)
    assert got == {**yaml.safe_load(value), "host": "new.eu-central-1.rds.amazonaws.com", "reader_hosts": ""}
    assert "stop-replication-to-replica" in script and "put-secret-value" in script


def test_restore_drill_restores_from_the_dr_verify_vault_and_writes_one_file_per_run(sample):
    doc = _workflow(sample, "restore-drill")
    restore = doc["jobs"]["restore"]
    steps = {s.get("name", ""): s for s in restore["steps"]}
    start = next(s for n, s in steps.items() if n.startswith("Restore the latest dr-verify copy"))
    assert start["env"]["VAULT"] == "companyos-prod-dr-verify" and "start-restore-job" in start["run"]
    assert "describe-db-snapshots" not in yaml.safe_dump(doc)
    checks = next(s for n, s in steps.items() if n.startswith("Integrity checks"))["run"]
    for key in ("row_counts_match", "checksums_match", "smoke", "within_rto", "copy_within_a_day", "manifest_recorded"):
        assert key in checks
    script = next(s for s in doc["jobs"]["evidence"]["steps"] if "github-script" in s.get("uses", ""))["with"]["script"]
    assert "ops/backup-verification/${stamp}.json" in script and script.count("createOrUpdateFileContents") == 1


# --- the integrity SQL on a real PostgreSQL -----------------------------------------------------


@pytest.fixture
def postgres():
    """A throw-away PostgreSQL server on a Unix socket; yields a psql runner invoked like the
    restore drill invokes it (``-q -At``: the output must be the JSON alone)."""
    initdb = shutil.which("initdb")
    if initdb is None:
        pytest.skip("PostgreSQL server binaries are not installed")
    base = Path(tempfile.mkdtemp(prefix="companyos-pg-"))  # not under pytest's 0700 root
    data, sock = base / "pg", base / "sock"
    sock.mkdir()
    as_user: list[str] = []
    if os.geteuid() == 0:  # initdb refuses root
        for p in (base, sock):
            shutil.chown(p, "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
    subprocess.run([*as_user, initdb, "-D", str(data), "-A", "trust", "-U", "app"], check=True, capture_output=True)
    start = [*as_user, "pg_ctl", "-D", str(data), "-l", str(base / "log"), "-o", f"-k {sock} -c listen_addresses=''", "-w", "start"]
    subprocess.run(start, check=True, capture_output=True)

    def psql(*args: str, stdin: str | None = None) -> str:
        proc = subprocess.run(
            ["psql", "-q", "-h", str(sock), "-U", "app", "-d", "postgres", "-v", "ON_ERROR_STOP=1", "-At", *args],
            input=stdin,
            capture_output=True,
            text=True,
        )
        assert proc.returncode == 0, proc.stderr
        return proc.stdout

    psql.host = str(sock)  # type: ignore[attr-defined]  # for a client run like the verifier's (PGHOST)
    try:
        yield psql
    finally:
        subprocess.run([*as_user, "pg_ctl", "-D", str(data), "-w", "stop"], capture_output=True)
        shutil.rmtree(base, ignore_errors=True)


def test_integrity_manifest_matches_an_intact_copy_and_catches_a_changed_row(sample, postgres):
    record = sample.result.files["rendered/ci/integrity-record.sql"].decode()
    check = sample.result.files["rendered/ci/restore-integrity.sql"].decode()
    postgres(
        stdin="CREATE TABLE orders (id int PRIMARY KEY, total numeric); INSERT INTO orders SELECT g, g * 1.5 FROM generate_series(1, 500) g;"
        "CREATE SCHEMA billing; CREATE TABLE billing.invoices (id int, note text); INSERT INTO billing.invoices VALUES (1, 'a'), (2, NULL);"
    )
    postgres(stdin=record)
    intact = json.loads(postgres(stdin=check))["tables"]
    assert {t["table"] for t in intact} == {"public.orders", "billing.invoices"}
    assert all(t["recorded_rows"] == t["restored_rows"] and t["recorded_checksum"] == t["restored_checksum"] for t in intact)
    assert next(t for t in intact if t["table"] == "public.orders")["recorded_rows"] == 500

    postgres(stdin="UPDATE orders SET total = 0 WHERE id = 7;")  # same count, different data
    changed = {t["table"]: t for t in json.loads(postgres(stdin=check))["tables"]}
    orders = changed["public.orders"]
    assert orders["recorded_rows"] == orders["restored_rows"] and orders["recorded_checksum"] != orders["restored_checksum"]
    assert changed["billing.invoices"]["recorded_checksum"] == changed["billing.invoices"]["restored_checksum"]
    postgres(stdin="DELETE FROM billing.invoices WHERE id = 2;")
    lost = {t["table"]: t for t in json.loads(postgres(stdin=check))["tables"]}
    assert lost["billing.invoices"]["restored_rows"] == 1 != lost["billing.invoices"]["recorded_rows"]


def _verifier(sample) -> tuple[str, dict[str, str]]:
    """The verifier container's shell and environment, from the rendered task definition."""
    text = sample.result.files["rendered/terraform/prod/shared/dr.tf"].decode()
    doc = hcl2.loads(text, serialization_options=SerializationOptions(strip_string_quotes=True, with_comments=False))
    (task,) = [b["verifier"] for item in doc["resource"] for t, b in item.items() if t == "aws_ecs_task_definition"]
    definitions = task["container_definitions"]
    command = re.search(r'command = \["sh", "-c", "((?:[^"\\]|\\.)*)"\]', definitions)
    assert command is not None, definitions[:400]
    env = dict(re.findall(r'\{name = "(\w+)", value = "((?:[^"\\]|\\.)*)"\}', definitions))
    return json.loads(f'"{command.group(1)}"'), {k: json.loads(f'"{v}"') for k, v in env.items()}


def _read_back(sample, log: str, tmp_path: Path) -> dict:
    """The workflow's own read-back line (the verifier's log stream -> the integrity JSON)."""
    step = next(s for s in _workflow(sample, "restore-drill")["jobs"]["restore"]["steps"] if s.get("name", "").startswith("Integrity"))
    (line,) = [x.strip() for x in step["run"].splitlines() if "s/^$INTEGRITY_MARK //p" in x]
    (tmp_path / "drill").mkdir(exist_ok=True)
    (tmp_path / "drill/x.verifier.log").write_text(log)
    env = {"PATH": os.environ["PATH"], "INTEGRITY_MARK": step["env"]["INTEGRITY_MARK"], "owner": "x"}
    subprocess.run(["bash", "-eo", "pipefail", "-c", line], cwd=tmp_path, env=env, check=True)
    return json.loads((tmp_path / "drill/x.integrity.json").read_text())


def test_the_verifier_task_checks_a_copy_and_the_workflow_reads_its_json_back(sample, postgres, tmp_path):
    command, env = _verifier(sample)
    assert env["PGSSLMODE"] == "require" and "psql" in command
    # enough tables that the JSON spans several log events (chunks joined in order)
    postgres(
        stdin="".join(f"CREATE TABLE t{i:03d} (id int, note text); INSERT INTO t{i:03d} VALUES (1, 'a'), ({i}, 'b');" for i in range(120))
    )
    postgres(stdin=sample.result.files["rendered/ci/integrity-record.sql"].decode())
    # the task's environment, and the run's overrides (PGHOST, PGUSER; trust auth: no password here)
    run_env = {**env, "PATH": os.environ["PATH"], "PGHOST": postgres.host, "PGUSER": "app", "PGDATABASE": "postgres"}
    proc = subprocess.run(["sh", "-c", command], env=run_env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()  # one log event each
    assert sum(x.startswith("companyos-integrity ") for x in lines) > 1 and max(map(len, lines)) < 16 * 1024
    assert "companyos-smoke 1" in lines
    tables = _read_back(sample, proc.stdout, tmp_path)["tables"]
    assert len(tables) == 120 and all(t["recorded_checksum"] == t["restored_checksum"] for t in tables)

    # a copy without the manifest: the container exits non-zero, the smoke answer is still there
    postgres(stdin="DROP SCHEMA companyos_integrity CASCADE;")
    failed = subprocess.run(["sh", "-c", command], env=run_env, capture_output=True, text=True)
    assert failed.returncode != 0 and "companyos-smoke 1" in failed.stdout.splitlines()


# --- the steps that talk to AWS, DNS and the hosts, run with recording shims -------------------

AWS_SHIM = r"""#!/usr/bin/env bash
# records its arguments; answers just enough for the failover/failback steps to proceed
echo "$*" >> "$SHIM_LOG/aws.log"
case "$1 $2" in
  "sts assume-role") echo '{"Credentials": {"AccessKeyId": "AK", "SecretAccessKey": "SK", "SessionToken": "ST"}}' ;;
  "route53 list-health-checks") cat "$SHIM_LOG/health-checks.json" ;;
  "rds describe-db-instances")
    case "$*" in *Endpoint.Address*) echo "promoted.example.rds.amazonaws.com" ;; *) echo "arn:aws:rds:x:1:db:src" ;; esac ;;
  "secretsmanager get-secret-value") echo '{"host": "old", "reader_hosts": "r", "port": "5432"}' ;;
esac
"""

DIG_SHIM = r"""#!/usr/bin/env bash
echo "$*" >> "$SHIM_LOG/dig.log"
echo "${DIG_ANSWER}.example."
"""

CURL_SHIM = r"""#!/usr/bin/env bash
echo "$*" >> "$SHIM_LOG/curl.log"
"""


def _tenant_plans(repo: Path, env: str = "prod") -> dict[str, dict]:
    return {p.stem: json.loads(p.read_text()) for p in sorted((repo / f"rendered/runbooks/{env}/failover").glob("*.json"))}


def _run_shimmed(repo: Path, script: str, tmp_path: Path, **env: str) -> tuple[subprocess.CompletedProcess[str], dict[str, list[str]]]:
    """Run a step like ``_run_step``, with ``aws``, ``dig``, ``curl`` and ``git`` recording their
    arguments (per tool) and answering what the steps read back; returns the process too."""
    shim, logs = tmp_path / "shim", tmp_path / "logs"
    shim.mkdir(exist_ok=True)
    logs.mkdir(exist_ok=True)
    if not (repo / ".venv").exists():
        (repo / ".venv").symlink_to(Path(sys.executable).parent.parent)
    hosts = [h["host"] for plan in _tenant_plans(repo).values() for h in plan["hosts"]]
    checks = {"HealthChecks": [{"Id": f"hc-{h}", "HealthCheckConfig": {"FullyQualifiedDomainName": h}} for h in hosts]}
    (logs / "health-checks.json").write_text(json.dumps(checks))
    for name, text in {"aws": AWS_SHIM, "dig": DIG_SHIM, "curl": CURL_SHIM, "git": f'#!/bin/sh\necho "$*" >> {logs}/git.log\n'}.items():
        (shim / name).write_text(text)
        (shim / name).chmod(0o755)
    (tmp_path / "runner").mkdir(exist_ok=True)
    base = {"ENVIRONMENT": "prod", "BRANCH": "main", "GH_TOKEN": "token", "GITHUB_REPOSITORY": "companyos/platform-gitops"}
    base |= {"SHIM_LOG": str(logs), "RUNNER_TEMP": str(tmp_path / "runner"), "DIG_ANSWER": "origin-dr.x", "TENANT": ""}
    base |= {"GITHUB_STEP_SUMMARY": str(tmp_path / "summary.md"), "GITHUB_OUTPUT": str(tmp_path / "output")}
    full = {**os.environ, "PATH": f"{shim}:{os.environ['PATH']}", **base, **env}
    proc = subprocess.run(
        ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", script], cwd=repo, env=full, capture_output=True, text=True
    )
    calls = {p.stem: p.read_text().splitlines() for p in logs.glob("*.log")}
    return proc, {k: calls.get(k, []) for k in ("aws", "dig", "curl", "git")}


def _health_urls(repo: Path, tenants: set[str] | None = None) -> list[str]:
    return sorted(
        f"https://{h['host']}{h['path']}"
        for t, plan in _tenant_plans(repo).items()
        if tenants is None or t in tenants
        for h in plan["hosts"]
    )


def _curled(calls: dict[str, list[str]]) -> list[str]:
    return sorted(c.split()[-1] for c in calls["curl"])


@pytest.mark.parametrize("workflow", ["failover", "failback"])
def test_smoke_tests_request_every_public_hosts_health_url_from_the_tenant_files(sample, repo, tmp_path, workflow):
    """The hosts moved from failover-plan.json to failover/<tenant>.json: the smoke step reads them there."""
    assert "hosts" not in json.loads((repo / "rendered/runbooks/prod/failover-plan.json").read_text())
    proc, calls = _run_shimmed(repo, _step(sample, workflow, "Smoke tests"), tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert _curled(calls) == _health_urls(repo) and len(_health_urls(repo)) == 8
    assert all(c.startswith("--fail ") for c in calls["curl"])


def test_failback_restores_and_confirms_every_hosts_health_check_from_the_tenant_files(sample, repo, tmp_path):
    hosts = sorted(h["host"] for plan in _tenant_plans(repo).values() for h in plan["hosts"])
    proc, calls = _run_shimmed(repo, _step(sample, "failback", "Restore the health checks"), tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    updates = [c for c in calls["aws"] if c.startswith("route53 update-health-check")]
    assert sorted(updates) == sorted(f"route53 update-health-check --health-check-id hc-{h} --no-inverted" for h in hosts)
    proc, calls = _run_shimmed(repo, _step(sample, "failback", "Confirm Route53 answers from the primary"), tmp_path, DIG_ANSWER="origin.x")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    failovers = sorted(h["failover"] for plan in _tenant_plans(repo).values() for h in plan["hosts"])
    assert sorted(calls["dig"]) == sorted(f"+short CNAME {n}" for n in failovers)


# --- per-tenant failover and failback -----------------------------------------------------------

FAILOVER_STEPS = (
    "Read the plan",
    "Promote the replicas",
    "Scale the standby Applications up",
    "Flip Route53",
    "Confirm Route53",
    "Smoke tests",
    "Timings against the RTO",
)
FAILBACK_STEPS = (
    "Read the plan",
    "Replicate each promoted database back",
    "Scale the standby Applications back to zero",
    "Restore the health checks",
    "Confirm Route53 answers from the primary",
    "Smoke tests",
    "Timings against the RTO",
)


def _run_all(sample, repo: Path, tmp_path: Path, workflow: str, steps: tuple[str, ...], **env: str) -> dict[str, list[str]]:
    """Every changing step of ``workflow`` in order, like the job (each must succeed); the
    recorded calls of all of them."""
    (tmp_path / "summary.md").write_text("")
    for name in steps:
        proc, calls = _run_shimmed(repo, _step(sample, workflow, name), tmp_path, STARTED="0", **env)
        assert proc.returncode == 0, (name, proc.stdout + proc.stderr)
    return calls  # the logs accumulate over the steps


def _promoted(calls: dict[str, list[str]]) -> list[str]:
    return sorted(c.split("--db-instance-identifier ")[1].split()[0] for c in calls["aws"] if c.startswith("rds promote-read-replica"))


def _secrets_written(calls: dict[str, list[str]]) -> list[str]:
    return sorted(c.split("--secret-id ")[1].split()[0] for c in calls["aws"] if c.startswith("secretsmanager put-secret-value"))


def _checks_updated(calls: dict[str, list[str]], flag: str) -> list[str]:
    out = [c.split("--health-check-id hc-")[1].split()[0] for c in calls["aws"] if c.startswith("route53 update-health-check")]
    assert all(c.endswith(flag) for c in calls["aws"] if c.startswith("route53 update-health-check")), calls["aws"]
    return sorted(out)


def _all(repo: Path, key: str, tenants: set[str] | None = None) -> list[str]:
    plans = _tenant_plans(repo)
    if key == "secrets":
        return sorted(n for t, p in plans.items() if tenants is None or t in tenants for s in p["secrets"] for n in s["names"])
    return sorted(h[key] for t, p in plans.items() if tenants is None or t in tenants for h in p["hosts"])


def test_the_tenant_input_reaches_the_scripts_through_env_only(sample):
    for workflow in ("failover", "failback"):
        doc = _workflow(sample, workflow)
        assert doc[True]["workflow_dispatch"]["inputs"]["tenant"] == {
            "description": doc[True]["workflow_dispatch"]["inputs"]["tenant"]["description"],
            "type": "string",
            "required": False,
            "default": "",
        }
        job = next(iter(doc["jobs"].values()))
        assert job["env"]["TENANT"] == "${{ inputs.tenant }}"
        assert all("inputs." not in s.get("run", "") for s in job["steps"]), workflow


def test_environment_wide_failover_promotes_every_database_and_flips_every_host(sample, repo, tmp_path):
    calls = _run_all(sample, repo, tmp_path, "failover", FAILOVER_STEPS)
    plan = json.loads((repo / "rendered/runbooks/prod/failover-plan.json").read_text())
    assert _promoted(calls) == sorted(db["replica"] for db in plan["databases"]) and len(plan["databases"]) == 3
    assert _secrets_written(calls) == _all(repo, "secrets")
    assert _checks_updated(calls, "--inverted") == _all(repo, "host")
    assert sorted(c.split()[-1] for c in calls["dig"]) == _all(repo, "failover")
    assert _curled(calls) == _health_urls(repo)
    assert "commit -m failover: serve prod from its DR region" in calls["git"]
    assert "### Failover of prod: " in (tmp_path / "summary.md").read_text()


def test_failover_of_one_tenant_touches_only_its_database_secrets_hosts_and_standby(sample, repo, tmp_path):
    calls = _run_all(sample, repo, tmp_path, "failover", FAILOVER_STEPS, TENANT="acme")
    assert _promoted(calls) == ["companyos-prod-acme-dr"]
    assert (
        _secrets_written(calls)
        == _all(repo, "secrets", {"acme"})
        == ["companyos/prod/acme/api/database", "companyos/prod/acme/worker/database"]
    )
    assert all(c.split("--role-arn ")[1].split()[0].startswith("arn:aws:iam::410000000101:") for c in calls["aws"] if "assume-role" in c)
    assert (
        _checks_updated(calls, "--inverted") == _all(repo, "host", {"acme"}) == ["api.acme.companyos.example", "web.acme.companyos.example"]
    )
    assert sorted(c.split()[-1] for c in calls["dig"]) == _all(repo, "failover", {"acme"})
    assert _curled(calls) == _health_urls(repo, {"acme"})
    # the commit: acme in active_tenants, its standby values empty, everyone else still at zero
    dr = yaml.safe_load((repo / "environments/prod.yaml").read_text())["disaster_recovery"]
    assert dr["active_tenants"] == ["acme"] and not dr.get("active", False)
    assert _standby_values(repo) == {**dict.fromkeys(PROD_TENANTS, ZERO), "acme": {}}
    assert json.loads((repo / "rendered/runbooks/prod/failover/acme.json").read_text())["failed_over"] == "tenant"
    assert "commit -m failover: serve acme in prod from its DR region" in calls["git"]
    assert "### Failover of acme in prod: " in (tmp_path / "summary.md").read_text()

    # and back: only acme's database replicated back, its secrets, its checks; acme leaves the list
    for log in (tmp_path / "logs").glob("*.log"):
        log.unlink()
    back = _run_all(sample, repo, tmp_path, "failback", FAILBACK_STEPS, TENANT="acme", DIG_ANSWER="origin.x")
    replicas = [c for c in back["aws"] if c.startswith("rds create-db-instance-read-replica")]
    assert len(replicas) == 1 and "--source-db-instance-identifier arn:aws:rds:x:1:db:src" in replicas[0]
    assert "--db-instance-identifier companyos-prod-acme-fb" in replicas[0]
    assert _secrets_written(back) == _all(repo, "secrets", {"acme"})
    assert _checks_updated(back, "--no-inverted") == _all(repo, "host", {"acme"})
    assert _curled(back) == _health_urls(repo, {"acme"})
    assert "active_tenants" not in yaml.safe_load((repo / "environments/prod.yaml").read_text())["disaster_recovery"]
    assert _standby_values(repo) == dict.fromkeys(PROD_TENANTS, ZERO)
    assert "commit -m failback: serve acme in prod from its primary region again" in back["git"]
    assert "### Failback of acme in prod: " in (tmp_path / "summary.md").read_text()


@pytest.mark.parametrize("workflow", ["failover", "failback"])
@pytest.mark.parametrize(
    ("tenant", "message"),
    [
        ("globex", "globex's database is the shared pool pool-standard: failing it over moves every tenant of the pool"),
        ("nope", "no tenant nope in prod with a standby (rendered/runbooks/prod/failover/nope.json)"),
        ("../prod/failover-plan", "the tenant input is not a tenant name"),
        ("acme; curl evil", "the tenant input is not a tenant name"),
    ],
)
def test_a_pooled_unknown_or_malformed_tenant_is_refused_by_every_step(sample, repo, tmp_path, workflow, tenant, message):
    steps = FAILOVER_STEPS if workflow == "failover" else FAILBACK_STEPS
    env_before = (repo / "environments/prod.yaml").read_text()
    for name in steps[:-1]:  # the timing step (always()) only reports
        proc, calls = _run_shimmed(repo, _step(sample, workflow, name), tmp_path, TENANT=tenant)
        assert proc.returncode != 0 and f"::error::{message}" in proc.stdout, (name, proc.stdout, proc.stderr)
        assert calls["aws"] == calls["curl"] == calls["git"] == [], name
    assert (repo / "environments/prod.yaml").read_text() == env_before


def test_failback_of_a_tenant_that_was_not_failed_over_alone_is_refused(sample, repo, tmp_path):
    proc, _ = _run_shimmed(repo, _step(sample, "failback", "Read the plan"), tmp_path, TENANT="umbrella")
    assert proc.returncode != 0 and "umbrella is not failed over alone in prod (failed_over: null)" in proc.stdout
