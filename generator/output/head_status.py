"""``check --base REF --committed``: a render compared with HEAD's commit, from git's objects.

CI checks out the pull request's commit afresh. Proving that the files on disk are that
commit's (a walk of 230,000 folders and a ``git diff HEAD`` that stats 800,000 files: ~4 s
of CPU at 10,000 tenants x 3) proves what the commit says already, so the commit is checked
instead. ``git diff-tree`` between the base and HEAD lists every output path that differs;
every other output file of HEAD is the base's, which the base's own check verified against
its unit manifests when it was merged. A reused unit (inputs and manifest the base's, no
file it lists changed: ``Baseline.vouch``) thus holds its recorded bytes at HEAD, and every
file rendered this run is compared with HEAD's by blob id. A path HEAD has that no unit
renders is stale (the base listed it) or unmanaged (the pull request added it). Nothing
under the output folders is read from the working tree. The argument: docs/incremental.md.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from generator.catalog.snapshot import Baseline, git_blob_digest
from generator.git import TreeChange
from generator.output import units
from generator.output.ondisk import TreeFiles
from generator.output.render import RenderResult
from generator.output.tree import OWNED_DIRS, TMP_SUFFIX, TreeStatus, manifests_files

#: A regular file's git mode (executable or not): anything else at a rendered path (a link,
#: a submodule) is never a file we generate.
_REGULAR = (0o100644, 0o100755)


def status(result: RenderResult, base: Baseline, todo: units.Plan) -> TreeStatus:
    """How HEAD's output differs from ``result`` (see the module docstring)."""
    proof = base.require_head()
    changes = proof.changes
    files = result.files
    fresh = sorted(files.held if isinstance(files, TreeFiles) else files.keys())
    st = TreeStatus(unchanged=len(files) - len(fresh))  # the reused units' files and manifests
    listed = _listed(base, todo)
    # a path HEAD did not change holds the base's bytes: the sha256 the base's unit listed for
    # it (its check verified them), else (listed by no unit: a file the base did not render)
    # asked of git. Naming each path to `git ls-tree` cost ~0.25 s at 10,000 x 3
    unlisted = base.blob_ids([p for p in fresh if p not in changes and p not in listed])
    for rel in fresh:
        same = _holds(files[rel], changes.get(rel), listed.get(rel), unlisted.get(rel))
        if same is None:
            st.missing.append(rel)
        elif same:
            st.unchanged += 1
        else:
            st.changed.append(rel)
    gone = {rel for rel, change in changes.items() if change.new_mode == 0}
    st.stale = sorted(rel for rel in listed if rel not in files and rel not in gone)
    stale = set(st.stale)
    for rel, change in changes.items():  # what the pull request added that nothing renders
        if change.new_mode == 0 or rel in files or rel in stale:
            continue
        if rel.endswith(TMP_SUFFIX):
            st.leftover.append(rel)
        elif rel.split("/", 1)[0] in OWNED_DIRS:
            st.unmanaged.append(rel)
    st.unmanaged.sort()
    st.leftover.sort()
    return st


def _holds(data: bytes, change: TreeChange | None, entry: Mapping[str, Any] | None, blob: bytes | None) -> bool | None:
    """Whether HEAD holds ``data`` at a path (None: it has no file there), from what git says
    HEAD changed there (``change``), else the base's unit's ``entry`` for it, else the base's
    ``blob`` id. A link or submodule is never a file we generate."""
    if change is not None:
        if change.new_mode == 0:
            return None
        return change.new_mode in _REGULAR and bytes.fromhex(change.new_sha) == git_blob_digest(data)
    if entry is not None:
        return bool(entry.get("sha256") == hashlib.sha256(data).hexdigest())
    return None if blob is None else blob == git_blob_digest(data)


def _listed(base: Baseline, todo: units.Plan) -> dict[str, dict[str, Any]]:
    """What the base's units this run does not reuse list (path -> entry, sha256 included),
    their manifests too: a reused unit lists the same files on both sides, so only these can
    hold a path no unit renders now (a removed tenant's files and manifest: stale)."""
    reused = {units.unit_path(f"tenant/{name}") for name in todo.reused}
    manifests = [p for p in base.unit_manifests() if p not in reused]
    return manifests_files({p: _base_manifest(base, todo.parsed, p) for p in manifests})


def _base_manifest(base: Baseline, parsed: Mapping[str, bytes | None], path: str) -> bytes | None:
    """The base's bytes of unit manifest ``path``: as the plan read them, else from the base."""
    data = parsed.get(path)
    return data if data is not None else base.file(path)
