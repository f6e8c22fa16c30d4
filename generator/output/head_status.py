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

from collections.abc import Mapping

from generator.catalog.snapshot import Baseline, HeadProof, git_blob_digest
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
    kept = base.blob_ids([p for p in fresh if p not in changes])  # HEAD's blob ids there are the base's
    for rel in fresh:
        change = changes.get(rel)
        if change is None:  # HEAD holds the base's bytes here, or (like the base) nothing
            blob = kept.get(rel)
            if blob is None:
                st.missing.append(rel)
            elif blob == git_blob_digest(files[rel]):
                st.unchanged += 1
            else:
                st.changed.append(rel)
        elif change.new_mode == 0:
            st.missing.append(rel)
        elif change.new_mode in _REGULAR and bytes.fromhex(change.new_sha) == git_blob_digest(files[rel]):
            st.unchanged += 1
        else:
            st.changed.append(rel)
    st.stale = _stale(result, base, todo, proof)
    listed = set(st.stale)
    for rel, change in changes.items():  # what the pull request added that nothing renders
        if change.new_mode == 0 or rel in files or rel in listed:
            continue
        if rel.endswith(TMP_SUFFIX):
            st.leftover.append(rel)
        elif rel.split("/", 1)[0] in OWNED_DIRS:
            st.unmanaged.append(rel)
    st.unmanaged.sort()
    st.leftover.sort()
    return st


def _stale(result: RenderResult, base: Baseline, todo: units.Plan, proof: HeadProof) -> list[str]:
    """The paths HEAD kept from the base that no unit renders now: those the base's units not
    reused list (a reused unit lists the same files on both sides), and those units'
    manifests themselves (a removed tenant's)."""
    reused = {units.unit_path(f"tenant/{name}") for name in todo.reused}
    manifests = [p for p in base.unit_manifests() if p not in reused]
    listed = manifests_files({p: _base_manifest(base, todo.parsed, p) for p in manifests})
    gone = {rel for rel, change in proof.changes.items() if change.new_mode == 0}
    return sorted(rel for rel in listed if rel not in result.files and rel not in gone)


def _base_manifest(base: Baseline, parsed: Mapping[str, bytes | None], path: str) -> bytes | None:
    """The base's bytes of unit manifest ``path``: as the plan read them, else from the base."""
    data = parsed.get(path)
    return data if data is not None else base.file(path)
