"""`companyos smoke` (the post-deploy check of the deploy workflow): which readiness URLs it
probes, and how it retries before reporting what still fails."""

from __future__ import annotations

from generator.model import naming
from generator.ops import smoke
from helpers.repo import REPO


def test_smoke_lists_the_readiness_url_of_every_public_service(sample, companyos):
    result = companyos("smoke", "--env", "dev", "--service", "all", "--list", cwd=REPO)
    assert result.code == 0, result.err
    expected = [
        f"https://{naming.hostname(s.name, d.name, d.environment)}{s.probes.readiness.path}"
        for d in sample.model.in_environment("dev")
        if d.settings.network.public_ingress
        for s in d.services
        if s.ingress.enabled and s.probes
    ]
    assert result.out.split() == expected and expected
    only_api = companyos("smoke", "--env", "dev", "--service", "api", "--list", cwd=REPO).out.split()
    assert only_api and all(url.startswith("https://api.") for url in only_api)
    assert companyos("smoke", "--env", "dev", "--service", "nope", cwd=REPO).code == 2


def test_smoke_retries_then_reports_what_still_fails():
    items = [smoke.Check("acme", "api", "https://a/ready"), smoke.Check("hooli", "api", "https://b/ready")]
    calls: list[str] = []

    def check(url: str) -> str | None:
        calls.append(url)
        return "HTTP 503" if url == "https://b/ready" or len(calls) < 2 else None

    failing = smoke.run(items, attempts=3, delay=0, check=check, sleep=lambda _: None)
    assert [(c.tenant, reason) for c, reason in failing] == [("hooli", "HTTP 503")]
    assert calls.count("https://b/ready") == 3 and calls.count("https://a/ready") == 2
