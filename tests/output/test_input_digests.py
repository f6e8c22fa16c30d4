"""The unit input digests (``units.digests``) are of the bytes the model was built from: a
file saved again while ``companyos`` runs must not be recorded as rendered when it was not."""

from __future__ import annotations

from pathlib import Path

from generator import pipeline
from generator.catalog.load import read_catalog
from generator.output import units
from tests.helpers.repo import copy_repo


def test_a_file_saved_after_the_read_keeps_the_digest_of_what_was_read(tmp_path: Path) -> None:
    root = copy_repo(tmp_path / "repo")
    model = pipeline.resolve_only(root, parses="none")
    before = units.digests(root, model, code="pinned")
    tenant = root / "tenants" / "acme.yaml"
    tenant.write_text(tenant.read_text().replace("\nowner:", "\n# saved again meanwhile\nowner:"))
    template = next((root / "templates").rglob("*.j2"))
    template.write_text(template.read_text() + "{# saved again meanwhile #}\n")
    assert units.digests(root, model, code="pinned") == before  # the bytes the model holds
    again = units.digests(root, pipeline.resolve_only(root, parses="none"), code="pinned")
    assert again.tenants["acme"] != before.tenants["acme"] and again.context != before.context  # as now read


def test_a_file_the_model_does_not_read_counts_as_it_is_now(tmp_path: Path) -> None:
    """New-tenant answers are not catalog files: their bytes on disk are the input."""
    root = copy_repo(tmp_path / "repo")
    model = pipeline.resolve_only(root, parses="none")
    before = units.digests(root, model, code="pinned")
    answers = root / "tenants" / ".copier-answers" / "acme.yml"
    answers.parent.mkdir(parents=True, exist_ok=True)
    answers.write_text("tier: standard\n")
    after = units.digests(root, model, code="pinned")
    assert after.tenants["acme"] != before.tenants["acme"]
    assert after.context == before.context and {k: v for k, v in after.tenants.items() if k != "acme"} == {
        k: v for k, v in before.tenants.items() if k != "acme"
    }


def test_templates_are_read_as_text_mode_reads_them(tmp_path: Path) -> None:
    """Line ends as Python's text mode gives them (CRLF and a lone CR become LF), as before
    the loader kept each template's bytes for its digest."""
    root = copy_repo(tmp_path / "repo")
    template = next((root / "templates").rglob("*.j2"))
    template.write_bytes(b"line one\r\nline two\rline three\n\xc3\xa9\r\n")
    catalog, errors = read_catalog(root)
    assert not errors
    rel = template.relative_to(root / "templates").as_posix()
    assert catalog.templates[rel] == template.read_text(encoding="utf-8")
