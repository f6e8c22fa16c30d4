"""Release and promote workflows (targets/release.py through the workflows target): one
release workflow per built service with the supply-chain steps in order, least privilege per
job, real pins; actionlint and zizmor pass on them; bad input is refused."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from generator import pipeline, vendor
from generator.model import naming
from helpers.catalog_edit import edit_yaml
from helpers.workflow_linters import actionlint, zizmor

PINS = json.loads(vendor.action_pins().read_text(encoding="utf-8"))


def on(doc: dict[str, Any]) -> dict[str, Any]:
    return doc.get("on", doc.get(True))


@pytest.fixture(scope="module")
def releases(sample) -> dict[str, dict[str, Any]]:
    return {
        name: yaml.safe_load(sample.result.files[naming.workflow_path(f"release-{name}")].decode())
        for name, svc in sample.model.services.items()
        if svc.build is not None
    }


@pytest.fixture(scope="module")
def promote(sample) -> dict[str, Any]:
    return yaml.safe_load(sample.result.files[naming.workflow_path("promote")].decode())


def uses(job: dict[str, Any]) -> list[str]:
    return [s["uses"].split("@", 1)[0] for s in job["steps"] if "uses" in s]


def test_one_release_workflow_per_built_service(sample, releases):
    assert set(releases) == {n for n, s in sample.model.services.items() if s.build is not None} == {"api", "web", "worker"}
    for name, doc in releases.items():
        assert doc["permissions"] == {}
        build = sample.model.services[name].build
        assert on(doc)["pull_request"]["paths"] == [f"{build.context}/**"]


def test_pipeline_stages_and_their_order(sample, releases):
    doc = releases["api"]
    jobs = doc["jobs"]
    assert "hadolint/hadolint-action" in uses(jobs["lint"])
    assert jobs["lint"]["steps"][-1]["with"]["dockerfile"] == "services/api/Dockerfile"
    tests = [s for s in jobs["test"]["steps"] if s.get("name", "").startswith("Test: ")]
    assert [s["run"] for s in tests] == ["make test", "make integration-test"]
    assert all(s["working-directory"] == "services/api" for s in tests)
    assert uses(jobs["codeql"]) == ["actions/checkout", "github/codeql-action/init", "github/codeql-action/analyze"]
    assert jobs["codeql"]["strategy"]["matrix"]["language"] == ["go"]
    assert "actions/dependency-review-action" in uses(jobs["dependency-review"])
    assert jobs["dependency-review"]["if"] == "github.event_name == 'pull_request'"
    publish = jobs["publish"]
    assert set(publish["needs"]) == {"lint", "test", "codeql"}
    order = uses(publish)
    assert (
        order.index("aws-actions/configure-aws-credentials")
        < order.index("docker/build-push-action")
        < order.index("sigstore/cosign-installer")
    )
    build = next(s for s in publish["steps"] if s.get("id") == "build")["with"]
    assert build["push"] is True and build["sbom"] is True and build["provenance"] == "mode=max"
    dev = sample.model.environments[0]
    assert build["tags"].startswith(naming.ecr_repository_url(dev, sample.model.services["api"].image.repository) + ":")
    for label in ("org.opencontainers.image.source", "org.opencontainers.image.revision", "org.opencontainers.image.title"):
        assert label in build["labels"]
    runs = "\n".join(s.get("run", "") for s in publish["steps"])
    assert 'cosign sign --yes "$IMAGE@$DIGEST"' in runs
    assert "cosign attest --yes --type spdxjson --predicate sbom.spdx.json" in runs
    record = jobs["record"]
    assert record["needs"] == ["publish"]
    assert '--to dev --digest "$DIGEST"' in record["steps"][-1]["run"]


def test_least_privilege_id_token_only_where_aws_or_signing_happens(releases, promote):
    for doc in [*releases.values(), promote]:
        for job_id, job in doc["jobs"].items():
            perms = job["permissions"]
            signs_or_aws = any(u in ("aws-actions/configure-aws-credentials", "sigstore/cosign-installer") for u in uses(job))
            assert (perms.get("id-token") == "write") == signs_or_aws, job_id
            writes = {k for k, v in perms.items() if v == "write"}
            # pushes and pull requests go through the bot app's token, never GITHUB_TOKEN
            assert writes <= {"id-token", "security-events"}, job_id


APP_TOKEN = "${{ steps.app-token.outputs.token }}"


def pull_request_problems(doc: dict[str, Any]) -> list[str]:
    """Why a job that pushes or opens a pull request would not trigger render-check (GitHub
    starts no workflow run for events caused by GITHUB_TOKEN), or holds write scopes it no
    longer needs; empty when every such job uses the bot app's installation token."""
    problems = []
    for job_id, job in doc["jobs"].items():
        steps = job["steps"]
        openers = [i for i, s in enumerate(steps) if "gh pr create" in s.get("run", "") or "git push" in s.get("run", "")]
        if not openers:
            continue
        perms = job.get("permissions", {})
        for scope in ("contents", "pull-requests"):
            if perms.get(scope) == "write":
                problems.append(f"{job_id}: GITHUB_TOKEN keeps {scope}: write")
        if "github.token" in json.dumps(job) or "secrets.GITHUB_TOKEN" in json.dumps(job):
            problems.append(f"{job_id}: uses GITHUB_TOKEN")
        minted = [i for i, s in enumerate(steps) if s.get("uses", "").split("@", 1)[0] == "actions/create-github-app-token"]
        if len(minted) != 1 or steps[minted[0]].get("id") != "app-token" or minted[0] > openers[0]:
            problems.append(f"{job_id}: no app token minted before the pull request")
            continue
        given = steps[minted[0]]["with"]
        if (
            given.get("client-id") != "${{ secrets.COMPANYOS_BOT_CLIENT_ID }}"
            or given.get("private-key") != "${{ secrets.COMPANYOS_BOT_PRIVATE_KEY }}"
        ):
            problems.append(f"{job_id}: the app token is not the CompanyOS bot's")
        scopes = {k: v for k, v in given.items() if k.startswith("permission-")}
        if scopes != {"permission-contents": "write", "permission-pull-requests": "write"}:
            problems.append(f"{job_id}: the app token is not narrowed to contents and pull requests: {scopes}")
        for i in openers:
            if steps[i].get("env", {}).get("GH_TOKEN") != APP_TOKEN:
                problems.append(f"{job_id}: step {steps[i].get('name')} does not run with the app token")
    return problems


def test_every_job_opening_a_pull_request_uses_the_bot_app_token(releases, promote):
    docs = {**{f"release-{n}": d for n, d in releases.items()}, "promote": promote}
    openers = [
        f"{name}/{job_id}"
        for name, doc in docs.items()
        for job_id, job in doc["jobs"].items()
        if any("gh pr create" in s.get("run", "") for s in job["steps"])
    ]
    assert sorted(openers) == sorted(
        [f"release-{n}/record" for n in releases] + [f"promote/{k}" for k in promote["jobs"] if k.startswith("pr-")]
    )
    assert len(openers) == len(releases) + 2
    for name, doc in docs.items():
        assert pull_request_problems(doc) == [], name


def test_the_pull_request_check_catches_github_token_and_spare_write_scopes(releases):
    doc = copy.deepcopy(releases["api"])
    record = doc["jobs"]["record"]
    record["permissions"]["pull-requests"] = "write"
    record["steps"][-1]["env"]["GH_TOKEN"] = "${{ github.token }}"
    found = pull_request_problems(doc)
    assert "record: GITHUB_TOKEN keeps pull-requests: write" in found
    assert "record: uses GITHUB_TOKEN" in found
    assert any("does not run with the app token" in p for p in found)
    doc = copy.deepcopy(releases["api"])
    doc["jobs"]["record"]["steps"] = [s for s in doc["jobs"]["record"]["steps"] if s.get("id") != "app-token"]
    assert pull_request_problems(doc) == ["record: no app token minted before the pull request"]
    doc = copy.deepcopy(releases["api"])
    next(s for s in doc["jobs"]["record"]["steps"] if s.get("id") == "app-token")["with"]["permission-administration"] = "write"
    assert "not narrowed" in " ".join(pull_request_problems(doc))


def test_every_action_is_pinned_to_the_vendored_sha(releases, promote):
    for doc in [*releases.values(), promote]:
        for job in doc["jobs"].values():
            for step in job["steps"]:
                if "uses" not in step:
                    continue
                action, sha = step["uses"].split("@", 1)
                assert PINS[action]["sha"] == sha, action
                unknown = set(step.get("with", {})) - set(PINS[action]["inputs"])
                assert not unknown, (action, unknown)


def test_promote_walks_the_chain_and_gates_on_smoke_slo_and_window(sample, promote):
    envs = sample.model.environments
    targets = [e for e in envs if e.promotion.after]
    assert on(promote)["workflow_dispatch"]["inputs"]["to"]["options"] == [e.name for e in targets]
    for env in targets:
        gate = promote["jobs"][f"gate-{env.name}"]
        runs = "\n".join(s.get("run", "") for s in gate["steps"])
        assert f"companyos smoke --env {env.promotion.after}" in runs
        assert 'ALERTS{alertstate="firing",severity="page"' in runs
        copy = promote["jobs"][f"copy-{env.name}"]
        assert copy["environment"] == env.name
        copy_runs = "\n".join(s.get("run", "") for s in copy["steps"])
        assert ("window-open --env " + env.name in copy_runs) == (env.change_window is not None)
        assert "cosign verify" in copy_runs and "cosign copy" in copy_runs
        pr = promote["jobs"][f"pr-{env.name}"]
        assert pr["needs"] == [f"copy-{env.name}"]
        opened = pr["steps"][-1]["run"]
        assert f"source={env.promotion.after} target={env.name}\n" in opened
        assert 'companyos promote "$SERVICE" --to "$target"' in opened


@pytest.mark.slow
def test_actionlint_and_zizmor_pass(sample, tmp_path):
    folder = tmp_path / ".github" / "workflows"
    folder.mkdir(parents=True)
    for path, data in sample.result.files.items():
        if path.startswith(".github/workflows/release-") or path == ".github/workflows/promote.yml":
            (folder / Path(path).name).write_bytes(data)
    files = sorted(folder.glob("*.yml"))
    assert len(files) == 4
    assert actionlint(files, tmp_path) == []
    assert zizmor(folder) == []
    # zizmor does find things: the same file with an action pinned by tag is reported.
    bad = folder / "release-api.yml"
    text = bad.read_text()
    bad.write_text(re.sub(r"uses: hadolint/hadolint-action@[0-9a-f]{40}", "uses: hadolint/hadolint-action@v3", text))
    assert "unpinned-uses" in {f["ident"] for f in zizmor(folder)}


def test_a_service_without_build_gets_no_release_workflow(repo):
    edit_yaml(repo / "catalog/services/worker.yaml", lambda d: d.pop("build"))
    built = pipeline.build(repo)
    assert naming.workflow_path("release-worker") not in built.result.files
    assert naming.workflow_path("release-api") in built.result.files
    options = on(yaml.safe_load(built.result.files[naming.workflow_path("promote")].decode()))["workflow_dispatch"]["inputs"]["service"][
        "options"
    ]
    assert options == ["api", "web"]
    assert "companyos/worker" not in built.result.files["rendered/terraform/dev/shared/registry.tf"].decode()


def test_a_bad_digest_in_the_catalog_is_a_located_error(repo, companyos):
    edit_yaml(repo / "catalog/services/api.yaml", lambda d: d["image"]["releases"]["stage"].update(digest="sha256:1234"))
    before = (repo / "rendered").stat().st_mtime_ns
    result = companyos("render", cwd=repo)
    assert result.code == 2
    assert "catalog/services/api.yaml:" in result.err and "is not an image digest" in result.err
    assert (repo / "rendered").stat().st_mtime_ns == before
