"""The git proof of an unchanged output tree (``output.committed``): a committed, verified
tree is answered by git's index instead of one ``lstat`` per file, and every way the tree
can change behind git's back -- or git's view of it can differ from its bytes -- drops the
proof and goes back to the stat walk, which finds what changed."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import git
import pytest

from generator import pipeline
from generator.output import checkcache, committed, since_proof
from helpers.catalog_edit import edit_yaml
from helpers.gitrepo import commit_all, private_copy, rendered_and_committed

EDITED = "rendered/helm/dev/globex/api.yaml"


@pytest.fixture(scope="module")
def committed_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sample rendered and committed once for the module."""
    return rendered_and_committed(tmp_path_factory.mktemp("committed") / "repo", "rendered")


@pytest.fixture
def committed_repo(committed_template: Path, tmp_path: Path) -> Path:
    """A copy of :func:`committed_template` whose index git has refreshed (a copy has new
    inodes and ctimes, as after any checkout)."""
    root = private_copy(committed_template, tmp_path / "repo")
    git.Repo(root).git.update_index("-q", "--refresh", with_exceptions=False)
    return root


@pytest.fixture
def proven_repo(committed_repo, companyos, monkeypatch):
    """The committed sample checked until git's key is recorded: the first check proves the
    copy clean by content, the second by stat and asks git, so the next may be git's."""
    settled(monkeypatch)
    repo = committed_repo
    for _ in range(2):
        assert companyos("check", cwd=repo).code == 0
    assert isinstance(checkcache._read(repo).get("git"), str), "the committed, clean tree was not proven by git"
    return repo


def settled(monkeypatch, folders: bool = True) -> None:
    """Files written a moment ago count as settled for the stat record (not this module's
    subject); with ``folders``, wait until the folders and git's index are older than
    :data:`committed.RACY_NS`, as the proof requires (its timing is what is tested)."""
    monkeypatch.setattr(checkcache, "RACY_NS", 0)
    if folders:
        time.sleep(committed.RACY_NS / 1e9 + 0.1)


def spy(monkeypatch) -> dict[str, list[object]]:
    """Record what the git proof answered, whether the stat walk ran, and every render."""
    seen: dict[str, list[object]] = {"git": [], "walk": [], "render": []}
    real_unchanged, real_walk = committed.unchanged, checkcache._walk_stats
    real_build, real_incremental = pipeline.build, pipeline.build_incremental

    def unchanged(*args, **kwargs):
        answer = real_unchanged(*args, **kwargs)
        seen["git"].append(answer)
        return answer

    monkeypatch.setattr(committed, "unchanged", unchanged)
    monkeypatch.setattr(checkcache, "_walk_stats", lambda root: seen["walk"].append(1) or real_walk(root))
    monkeypatch.setattr(pipeline, "build", lambda *a, **k: seen["render"].append(1) or real_build(*a, **k))
    monkeypatch.setattr(pipeline, "build_incremental", lambda *a, **k: seen["render"].append(1) or real_incremental(*a, **k))
    return seen


def test_a_committed_clean_tree_is_answered_by_git_without_the_stat_walk(proven_repo, companyos, monkeypatch):
    seen = spy(monkeypatch)
    assert companyos("check", cwd=proven_repo).code == 0
    result = companyos("render", cwd=proven_repo)
    assert result.code == 0 and "nothing rendered" in result.out
    assert seen == {"git": [True, True], "walk": [], "render": []}


def _same_size_edit(root: Path, rel: str = EDITED) -> None:
    """Change a file's bytes, keeping its size and mtime (only ctime and git's hash can tell)."""
    path = root / rel
    before = path.stat()
    data = bytearray(path.read_bytes())
    data[-2] = ord("x") if data[-2] != ord("x") else ord("y")
    path.write_bytes(bytes(data))
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))


def _stray(root: Path) -> None:
    (root / "rendered/helm/dev/globex/stray.yaml").write_text("a: 1\n")  # untracked: git diff-files never sees it


def _stray_temporary(root: Path) -> None:
    (root / "rendered/helm/dev/globex/api.yaml.companyos-tmp").write_text("a: 1\n")  # git-ignored as well


def _deleted(root: Path) -> None:
    (root / EDITED).unlink()


def _edited_and_staged(root: Path) -> None:
    (root / EDITED).write_text("edited: true\n")
    git.Repo(root).git.add(EDITED)  # git's index rewritten, != HEAD (the proven copy is not)


def _edited_and_committed(root: Path) -> None:
    (root / EDITED).write_text("edited: true\n")
    commit_all(root, "hand edit")  # HEAD and its tree id of rendered/ move, git's index is rewritten


def _edited_behind_assume_unchanged(root: Path) -> None:
    """git's live index told not to look at the file, then the file edited: only the proven
    copy, which has no such flag, still shows git the edit."""
    git.Repo(root).git.update_index("--assume-unchanged", EDITED)
    (root / EDITED).write_text("edited: true\n")


def _edited_workflow(root: Path) -> None:
    workflow = next(p for p in sorted((root / ".github/workflows").iterdir()) if p.suffix == ".yml")
    workflow.write_text(workflow.read_text() + "# edited\n")


@pytest.mark.parametrize(
    "change",
    [
        _same_size_edit,
        _stray,
        _stray_temporary,
        _deleted,
        _edited_and_staged,
        _edited_and_committed,
        _edited_behind_assume_unchanged,
        _edited_workflow,
    ],
)
def test_any_change_to_the_outputs_drops_the_proof_and_check_finds_it(proven_repo, companyos, monkeypatch, change):
    """Staged or committed too: git is asked about the proven index copy, which lists the file."""
    change(proven_repo)
    seen = spy(monkeypatch)
    assert companyos("check", cwd=proven_repo).code == 1
    assert seen["git"] == [False] and seen["render"], seen


@pytest.mark.parametrize("hand_edit", [False, True], ids=["nothing else changed", "another tenant's file edited"])
def test_edits_of_a_proven_tree_vouch_for_the_other_tenants_through_git(proven_repo, companyos, monkeypatch, hand_edit):
    """One-tenant edits of a committed, proven tree, one after another: each time ``git
    diff-files`` lists what changed since HEAD (the edited tenant's files, once written), and
    every other unit is vouched for without one of its files being ``lstat``-ed. A hand edit
    of another tenant's file (same size, mtime restored) is listed: that unit is not vouched
    for (by stat, or here, a copied tree with no stat sums, not at all), and the render puts
    the committed bytes back."""
    committed_bytes = (proven_repo / EDITED).read_bytes()
    answers: list[frozenset[str] | None] = []
    real_later = committed.changed_later

    def later(*args):
        finish = real_later(*args)
        return lambda: answers.append(finish()) or answers[-1]

    monkeypatch.setattr(committed, "changed_later", later)
    stat_sums: list[str] = []  # the units stat'ed (a unit's members start with its manifest)
    real_sum = checkcache._lstat_sum

    def summed(root, paths):
        paths = list(paths)
        stat_sums.append(paths[0])
        return real_sum(root, paths)

    monkeypatch.setattr(checkcache, "_lstat_sum", summed)
    for owner in ("platform-b@example.com", "platform-c@example.com"):
        answers.clear()
        stat_sums.clear()
        edit_yaml(proven_repo / "tenants/hooli.yaml", lambda data, owner=owner: data.update(owner=owner))
        if hand_edit:
            _same_size_edit(proven_repo)
        assert companyos("render", cwd=proven_repo).code == 0
        assert len(answers) == 1 and answers[0] is not None, "git's proof of HEAD's outputs did not hold"
        assert (EDITED in answers[0]) == hand_edit
        # only the edited tenant's unit, written by the last render, is asked by stat (is it still the verified fleet's?)
        assert set(stat_sums) <= {"rendered/.companyos-units/tenant-hooli.json"} or hand_edit, stat_sums
        assert (proven_repo / EDITED).read_bytes() == committed_bytes
        assert pipeline.check(proven_repo, full=True)[1].clean
    assert any(p.startswith("rendered/") and "hooli" in p for p in answers[0]), "the first render's files were not listed"
    commit_all(proven_repo, "the edit")  # git's index rewritten and HEAD moved: the proven copy and commit stay
    edit_yaml(proven_repo / "tenants/hooli.yaml", lambda data: data.update(owner="platform-d@example.com"))
    answers.clear()
    assert companyos("render", cwd=proven_repo).code == 0
    assert len(answers) == 1 and answers[0] is not None and (EDITED in answers[0]) == hand_edit, answers
    assert pipeline.check(proven_repo, full=True)[1].clean


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(lambda r: (r / ".gitattributes").write_text("*.yaml text eol=crlf\n"), id="eol attribute"),
        pytest.param(lambda r: git.Repo(r).git.config("core.autocrlf", "true"), id="autocrlf"),
    ],
)
def test_an_attribute_or_config_change_drops_the_proof_but_not_the_clean_answer(proven_repo, companyos, monkeypatch, change):
    """A new eol rule could make a later checkout differ from the verified bytes: git's proof
    is not asked (its key's settings changed); the stat walk still proves these very files unchanged."""
    change(proven_repo)
    for _ in range(2):
        seen = spy(monkeypatch)
        assert companyos("check", cwd=proven_repo).code == 0
        assert seen["git"] == [] and seen["walk"] and not seen["render"]


@pytest.mark.parametrize(
    "setup",
    [
        pytest.param(lambda r: (r / ".gitattributes").write_text("*.tf text eol=crlf\n"), id="eol attribute"),
        pytest.param(lambda r: (r / ".gitattributes").write_text("rendered/** filter=custom\n"), id="filter attribute"),
        pytest.param(lambda r: git.Repo(r).git.config("core.autocrlf", "input"), id="autocrlf"),
        pytest.param(lambda r: git.Repo(r).git.update_index("--assume-unchanged", EDITED), id="assume-unchanged"),
        pytest.param(lambda r: git.Repo(r).git.update_index("--skip-worktree", EDITED), id="skip-worktree"),
        pytest.param(lambda r: git.Repo(r).git.config("core.trustctime", "false"), id="trustctime off"),
        pytest.param(lambda r: git.Repo(r).git.config("core.checkStat", "minimal"), id="checkStat minimal"),
        pytest.param(None, id="control: nothing set, proven"),
    ],
)
def test_git_is_not_trusted_where_its_view_can_differ_from_the_bytes(committed_repo, companyos, monkeypatch, setup):
    repo = committed_repo
    if setup is not None:
        setup(repo)
    settled(monkeypatch)
    for _ in range(2):
        assert companyos("check", cwd=repo).code == 0
    proof = checkcache._read(repo).get("git")
    assert proof is None if setup is not None else isinstance(proof, str)


def test_folders_changed_a_moment_ago_are_not_recorded_yet(committed_repo, companyos, monkeypatch):
    """A folder whose stat is within a timestamp tick of now could gain a file without its
    stat changing: no proof, and the next run tries again (not held back as "tried")."""
    settled(monkeypatch, folders=False)
    repo = committed_repo
    for _ in range(2):
        assert companyos("check", cwd=repo).code == 0
    record = checkcache._read(repo)
    assert record.get("git") is None and record.get("git_tried") is None
    settled(monkeypatch)  # a tick later
    assert companyos("check", cwd=repo).code == 0
    assert isinstance(checkcache._read(repo).get("git"), str)


def test_the_no_op_that_settles_a_writes_files_records_git_s_proof_in_the_same_run(committed_repo, companyos, monkeypatch):
    """Files written a moment before the record are kept by content. The first no-op after
    they settled records them by stat and, in the same run and the same walk, lets git prove
    the tree: one slow run after a render, not two."""
    repo = committed_repo
    assert companyos("check", cwd=repo).code == 0  # the copy's files are a moment old: kept by content
    assert checkcache._read(repo).get("racy"), "no file was racy: this test would prove nothing"
    time.sleep(committed.RACY_NS / 1e9 + 0.1)
    seen = spy(monkeypatch)
    assert companyos("check", cwd=repo).code == 0
    record = checkcache._read(repo)
    assert not record.get("racy") and isinstance(record.get("git"), str) and seen["walk"], (seen, record.get("git"))
    seen = spy(monkeypatch)
    assert companyos("check", cwd=repo).code == 0
    assert seen["git"] == [True] and seen["walk"] == [], seen


def test_a_tree_git_cannot_prove_is_tried_once_per_index_and_head(committed_repo, companyos, monkeypatch):
    """A tree git cannot prove by stat: the first no-op asks git, the next ones do not pay for it again."""
    settled(monkeypatch)
    repo = committed_repo
    calls: list[int] = []
    real = committed.record
    monkeypatch.setattr(committed, "record", lambda *a, **k: calls.append(1) or real(*a, **k))
    (repo / EDITED).write_text((repo / EDITED).read_text())  # same bytes, new stat: git cannot tell by stat
    for _ in range(3):
        assert companyos("render", cwd=repo).code == 0
    assert len(calls) == 1
    assert checkcache._read(repo).get("git") is None


def test_no_repository_means_no_proof(repo, companyos):
    assert companyos("render", cwd=repo).code == 0
    assert companyos("check", cwd=repo).code == 0
    assert checkcache._read(repo).get("git") is None


@pytest.mark.parametrize(
    "outputs",
    [
        pytest.param(lambda paths: paths, id="control: exactly the outputs, proven"),
        pytest.param(lambda paths: [p for p in paths if p != EDITED], id="git tracks a file under rendered/ that is not an output"),
        pytest.param(lambda paths: [*paths, "rendered/helm/dev/globex/late.yaml"], id="an output git does not track"),
        pytest.param(lambda paths: [*paths, "rendered/helm/dev/globex/caf\u00e9.yaml"], id="a path that is not ASCII"),
    ],
)
def test_git_proves_only_exactly_the_verified_outputs(committed_repo, monkeypatch, outputs):
    """The record compares git's index, streamed in its byte order, with the sorted outputs
    (no set of either): one path more or fewer on either side is no proof, and so is a path
    whose str order need not be git's byte order."""
    settled(monkeypatch)
    paths = sorted(pipeline.build(committed_repo).result.files)
    attempt = committed.record(committed_repo, committed_repo / checkcache.CACHE_DIR, outputs(paths))
    assert (attempt.key is not None) == (outputs(paths) == paths)


# --- a tree edited since git's proof (output/since_proof.py) -------------------------------

HOOLI_API = "rendered/helm/dev/hooli/api.yaml"
HOOLI_WEB = "rendered/helm/dev/hooli/web.yaml"
#: A file the owner edit changes (the alarm subscriptions name the owner).
HOOLI_ALARMS = "rendered/terraform/dev/tenant-hooli/alarms.tf"


def _edited_since_proof(root: Path, companyos, **change: object) -> None:
    """One tenant's catalog file edited and rendered on a proven tree (not committed)."""
    edit_yaml(root / "tenants/hooli.yaml", lambda data: data.update(change or {"owner": "platform-b@example.com"}))
    result = companyos("render", cwd=root)
    assert result.code == 0 and "nothing rendered" not in result.out, result.out


def answers(monkeypatch) -> list[bool]:
    """What :func:`since_proof.clean_since_proof` answered, in turn."""
    seen: list[bool] = []
    real = since_proof.clean_since_proof

    def asked(*args):
        seen.append(real(*args))
        return seen[-1]

    monkeypatch.setattr(since_proof, "clean_since_proof", asked)
    return seen


def test_a_tree_edited_since_the_proof_is_answered_without_the_walk(proven_repo, companyos, monkeypatch):
    """After a one-tenant edit the tree is no longer HEAD's: git lists the edited tenant's
    files, only the folders it wrote in changed, and its unit's files are read and hashed;
    no other file is stat'ed (the walk does not run) and nothing renders."""
    _edited_since_proof(proven_repo, companyos)
    seen, said = spy(monkeypatch), answers(monkeypatch)
    read: list[str] = []
    real_regular = since_proof._regular
    monkeypatch.setattr(since_proof, "_regular", lambda root, rel: read.append(rel) or real_regular(root, rel))
    assert companyos("check", cwd=proven_repo).code == 0
    result = companyos("render", cwd=proven_repo)
    assert result.code == 0 and "nothing rendered" in result.out
    assert said == [True, True] and seen["walk"] == [] and seen["render"] == [], (said, seen)
    assert read and all("hooli" in rel for rel in read), read  # only the edited unit's files (and its manifest)


def test_an_edit_undone_is_answered_through_the_proven_commits_bytes(proven_repo, companyos, monkeypatch):
    """The edit rendered, then undone and rendered again: every unit is the proven commit's
    again, but git lists the rewritten files (the proven index copy is never refreshed). Each
    holds that commit's blob, so no walk; one of them then edited (same size, mtime restored)
    is found."""
    original = (proven_repo / "tenants/hooli.yaml").read_bytes()
    _edited_since_proof(proven_repo, companyos)
    (proven_repo / "tenants/hooli.yaml").write_bytes(original)
    assert companyos("render", cwd=proven_repo).code == 0
    assert git.Repo(proven_repo).git.diff_files("--name-only", "--", HOOLI_ALARMS), "git does not list the rewritten file"
    seen, said = spy(monkeypatch), answers(monkeypatch)
    assert companyos("check", cwd=proven_repo).code == 0
    assert said == [True] and seen["walk"] == [] and seen["render"] == [], (said, seen)
    _same_size_edit(proven_repo, HOOLI_ALARMS)
    said.clear()
    assert companyos("check", cwd=proven_repo).code == 1
    assert said == [False]


def test_a_rewritten_index_leaves_the_committed_proof_standing(proven_repo, companyos, monkeypatch):
    """git rewrote its index (`update-index --really-refresh`, as a `git status` does): git is
    asked about the proven copy, not the live index, so the proof still answers; a same-size
    edit (mtime restored) after the rewrite is found."""
    git.Repo(proven_repo).git.update_index("-q", "--really-refresh")
    seen = spy(monkeypatch)
    assert companyos("check", cwd=proven_repo).code == 0
    assert seen["git"] == [True] and seen["walk"] == [] and not seen["render"], seen
    _same_size_edit(proven_repo)
    seen = spy(monkeypatch)
    assert companyos("check", cwd=proven_repo).code == 1
    assert seen["git"] == [False], seen


def test_an_edit_committed_since_the_proof_is_answered_without_the_walk(proven_repo, companyos, monkeypatch):
    """The everyday loop: a one-tenant edit rendered, `git status`, committed. git's index is
    rewritten and HEAD moves, but the proven copy and commit stay: git lists the edited
    tenant's files against them, the edited unit's bytes are hashed, no walk runs. A hand edit
    of another tenant's file after the commit is found."""
    _edited_since_proof(proven_repo, companyos)
    git.Repo(proven_repo).git.update_index("-q", "--really-refresh")
    commit_all(proven_repo, "the edit")
    seen, said = spy(monkeypatch), answers(monkeypatch)
    assert companyos("check", cwd=proven_repo).code == 0
    result = companyos("render", cwd=proven_repo)
    assert result.code == 0 and "nothing rendered" in result.out
    # (the committed proof is not asked: the render that wrote the edit dropped its key, not its base)
    assert seen["git"] == [] and said == [True, True] and seen["walk"] == [] and seen["render"] == [], (seen, said)
    _same_size_edit(proven_repo)
    said.clear()
    assert companyos("check", cwd=proven_repo).code == 1
    assert said == [False]


@pytest.mark.parametrize(
    "rewrite",
    [
        pytest.param(lambda copy, live: copy.write_bytes(copy.read_bytes()), id="rewritten with its own bytes"),
        pytest.param(lambda copy, live: shutil.copyfile(live, copy), id="replaced by git's live index"),
        pytest.param(lambda copy, live: copy.unlink(), id="removed"),
    ],
)
def test_a_proven_index_copy_written_since_is_no_proof(proven_repo, companyos, monkeypatch, rewrite):
    """The copy's identity is part of the key: any write to it (which could change the stat
    data git compares with) drops the proof; the walk answers, and the tree is still clean."""
    rewrite(proven_repo / checkcache.CACHE_DIR / committed.PROOF_INDEX, proven_repo / ".git/index")
    seen = spy(monkeypatch)
    assert companyos("check", cwd=proven_repo).code == 0
    assert seen["git"] == [] and seen["walk"] and not seen["render"], seen


def _other_tenants_file(root: Path) -> None:
    _same_size_edit(root)  # globex's: git lists it, and it is no edited unit's


def _edited_tenants_file(root: Path) -> None:
    _same_size_edit(root, HOOLI_API)  # the edited unit's: git lists it anyway; its bytes differ from its manifest's


def _heads_bytes(root: Path, rel: str) -> bytes:
    data: bytes = git.Repo(root).git.cat_file("blob", f"HEAD:{rel}", stdout_as_string=False, strip_newline_in_stdout=False)
    return data


def _edited_tenants_file_back_to_heads_bytes(root: Path) -> None:
    assert b"platform-b@example.com" in (root / HOOLI_ALARMS).read_bytes()  # the edit changed it
    (root / HOOLI_ALARMS).write_bytes(_heads_bytes(root, HOOLI_ALARMS))  # git's index untouched: the edited unit's sha256 differs


def _edited_tenants_file_checked_out(root: Path) -> None:
    git.Repo(root).git.checkout("--", HOOLI_ALARMS)  # HEAD's bytes again, and git's index rewritten


def _stray_in_new_folder(root: Path) -> None:
    (root / "rendered/helm/dev/hooli/extra").mkdir()
    (root / "rendered/helm/dev/hooli/extra/stray.yaml").write_text("a: 1\n")


def _stray_link(root: Path) -> None:
    (root / "rendered/helm/dev/globex/link.yaml").symlink_to("api.yaml")


def _folder_made_a_link(root: Path) -> None:
    """An untouched tenant's folder moved aside, a link in its place (its files read the same)."""
    folder = root / "rendered/helm/dev/globex"
    folder.rename(root / "globex-elsewhere")
    folder.symlink_to(root / "globex-elsewhere")


@pytest.mark.parametrize(
    "change",
    [
        _other_tenants_file,
        _edited_tenants_file,
        _edited_tenants_file_back_to_heads_bytes,
        _edited_tenants_file_checked_out,
        _stray,
        _stray_temporary,
        _stray_in_new_folder,
        _stray_link,
        _folder_made_a_link,
        _deleted,
        _edited_workflow,
        _edited_and_staged,
        _edited_and_committed,
    ],
)
def test_any_change_after_an_edit_since_the_proof_is_found(proven_repo, companyos, monkeypatch, change):
    """Every way the tree can differ from the record after the edit is no answer from git's
    proof: the walk (or the render) decides, and check finds the difference."""
    _edited_since_proof(proven_repo, companyos)
    change(proven_repo)
    said = answers(monkeypatch)
    assert companyos("check", cwd=proven_repo).code == 1
    assert said == [False], said


def test_a_file_the_edit_removed_is_found_when_it_is_back_with_heads_bytes(proven_repo, companyos, monkeypatch):
    """The edit drops a service: its files are pruned, and the edited unit's HEAD manifest
    lists them as gone. One written back with HEAD's bytes is stale: found."""
    _edited_since_proof(proven_repo, companyos, services=["api", "worker"])
    assert not (proven_repo / HOOLI_WEB).exists()
    said = answers(monkeypatch)
    assert companyos("check", cwd=proven_repo).code == 0 and said == [True]
    (proven_repo / HOOLI_WEB).write_bytes(_heads_bytes(proven_repo, HOOLI_WEB))  # git's index untouched
    said.clear()
    found = companyos("check", cwd=proven_repo)
    assert found.code == 1 and HOOLI_WEB in found.out + found.err, found.out
    assert said == [False]


def test_a_tenant_removed_since_the_proof_is_answered_and_its_files_must_be_gone(proven_repo, companyos, monkeypatch):
    """`remove-tenant` prunes globex's files; the no-op after it is answered through git's
    proof (globex's HEAD manifest lists what must be gone). One of its files written back
    with HEAD's bytes is stale: found."""
    assert companyos("remove-tenant", "globex", cwd=proven_repo).code == 0
    assert companyos("render", cwd=proven_repo).code == 0
    assert not (proven_repo / EDITED).exists()
    seen, said = spy(monkeypatch), answers(monkeypatch)
    assert companyos("check", cwd=proven_repo).code == 0
    assert said == [True] and seen["walk"] == [] and seen["render"] == [], (said, seen)
    (proven_repo / EDITED).parent.mkdir(parents=True)  # its folder was pruned with it
    (proven_repo / EDITED).write_bytes(_heads_bytes(proven_repo, EDITED))
    said.clear()
    found = companyos("check", cwd=proven_repo)
    assert found.code == 1 and EDITED in found.out + found.err, found.out
    assert said == [False]
