"""``companyos promote``: copies the previous environment's release by digest into the catalog
and re-renders all-or-nothing; refuses skips, closed windows, bad digests and services that
cannot be built, with nothing written."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml

from generator import pipeline
from generator.errors import CatalogErrors, UsageError
from generator.lifecycle import promote as lifecycle_promote
from generator.ops import promote as ops_promote
from helpers.catalog_edit import edit_yaml

NEW = "sha256:" + "b" * 64
#: Monday 2026-03-02 10:00 in Dublin: inside prod's window (08:00 Mon-Thu for 8h).
OPEN = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
#: Saturday: outside it.
CLOSED = datetime(2026, 3, 7, 10, 0, tzinfo=UTC)


def releases(repo: Path, service: str = "api") -> dict[str, dict[str, str]]:
    return yaml.safe_load((repo / f"catalog/services/{service}.yaml").read_text())["image"]["releases"]


def snapshot(repo: Path) -> dict[str, bytes]:
    return {str(p.relative_to(repo)): p.read_bytes() for p in sorted(repo.rglob("*")) if p.is_file() and ".git" not in p.parts}


def test_build_then_promote_walks_the_chain_and_renders_the_digest(repo):
    lifecycle_promote.promote(repo, "api", "dev", digest=NEW, tag="1.15.0")
    assert releases(repo)["dev"] == {"tag": "1.15.0", "digest": NEW}
    assert releases(repo)["stage"]["digest"] != NEW
    text = (repo / "catalog/services/api.yaml").read_text()
    assert "# What each environment runs, by digest" in text  # comments kept
    values = yaml.safe_load((repo / "rendered/helm/dev/acme/api.yaml").read_text())
    assert values["deployment"]["image"]["digest"] == NEW
    assert values["deployment"]["image"]["tag"] == "1.15.0"

    result = lifecycle_promote.promote(repo, "api", "stage")
    assert result.promotion.source_env == "dev"
    assert releases(repo)["stage"] == {"tag": "1.15.0", "digest": NEW}
    assert releases(repo)["prod"]["digest"] != NEW
    built = pipeline.build(repo)
    assert built.model.deployment("acme", "stage").image_digest("api") == NEW

    lifecycle_promote.promote(repo, "api", "prod", now=OPEN)
    assert releases(repo)["prod"] == {"tag": "1.15.0", "digest": NEW}
    again = lifecycle_promote.promote(repo, "api", "prod", now=OPEN)
    assert again.promotion.unchanged and again.files == []


def test_skipping_an_environment_is_a_located_error_and_writes_nothing(repo, companyos):
    before = snapshot(repo)
    result = companyos("promote", "api", "--to", "prod", "--from", "dev", cwd=repo)
    assert result.code == 2
    assert re.search(r"environments/prod\.yaml:\d+:\d+: prod is promoted from stage .* would skip stage", result.err)
    assert snapshot(repo) == before


def test_a_catalog_that_skips_an_environment_is_refused(repo, companyos):
    edit_yaml(repo / "catalog/services/web.yaml", lambda d: d["image"]["releases"].pop("stage"))
    result = companyos("check", cwd=repo)
    assert result.code == 2
    assert re.search(r"catalog/services/web\.yaml:\d+:\d+: prod runs a release of 'web' but stage.*cannot skip stage", result.err)


def test_prod_needs_its_change_window(repo):
    before = snapshot(repo)
    lifecycle_promote.promote(repo, "api", "dev", digest=NEW, tag="1.15.0")
    lifecycle_promote.promote(repo, "api", "stage")
    middle = snapshot(repo)
    with pytest.raises(UsageError, match="change window is closed"):
        lifecycle_promote.promote(repo, "api", "prod", now=CLOSED)
    assert snapshot(repo) == middle != before


@pytest.mark.parametrize("digest", ["sha256:abc", "sha512:" + "a" * 64, "sha256:" + "A" * 64, "b" * 64])
def test_a_bad_digest_is_refused(repo, companyos, digest):
    before = snapshot(repo)
    result = companyos("promote", "api", "--to", "dev", "--digest", digest, "--tag", "1.0.0", cwd=repo)
    assert result.code == 2
    assert "is not an image digest" in result.err
    assert snapshot(repo) == before


def test_a_service_without_build_cannot_be_released(repo, companyos):
    edit_yaml(repo / "catalog/services/worker.yaml", lambda d: d.pop("build"))
    before = snapshot(repo)
    result = companyos("promote", "worker", "--to", "dev", "--digest", NEW, "--tag", "2.0.0", cwd=repo)
    assert result.code == 2
    assert re.search(r"catalog/services/worker\.yaml:\d+:\d+: service 'worker' names no source folder", result.err)
    assert snapshot(repo) == before


def test_dry_run_reports_the_copy_the_workflow_makes(repo, companyos):
    result = companyos("promote", "api", "--to", "stage", "--dry-run", "--format", "json", cwd=repo)
    assert result.code == 0, result.err
    plan = yaml.safe_load(result.out)
    dev = releases(repo)["dev"]
    assert plan["source_image"].startswith("200000000001.dkr.ecr.eu-west-1.amazonaws.com/companyos/api:")
    assert plan["source_image"].endswith("@" + dev["digest"])
    assert plan["target_repository"] == "300000000001.dkr.ecr.eu-west-1.amazonaws.com/companyos/api"


def test_first_environment_needs_a_digest_and_later_ones_refuse_one(repo):
    with pytest.raises(UsageError, match="first environment"):
        ops_promote.plan(repo, "api", "dev")
    with pytest.raises(UsageError, match="takes dev's release"):
        ops_promote.plan(repo, "api", "stage", digest=NEW, tag="x")


def test_a_failing_render_restores_the_catalog(repo):
    edit_yaml(repo / "catalog/services/api.yaml", lambda d: d["build"].update(context="services/api"))
    (repo / "environments/stage.yaml").write_text((repo / "environments/stage.yaml").read_text() + "bogus_key: 1\n")
    before = snapshot(repo)
    with pytest.raises(CatalogErrors):
        lifecycle_promote.promote(repo, "api", "dev", digest=NEW, tag="1.15.0")
    assert snapshot(repo) == before
