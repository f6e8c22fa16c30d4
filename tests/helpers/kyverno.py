"""A small evaluator of Kyverno validate patterns (the subset targets/admission.py writes):
plain keys must exist and match, ``=(key)`` matches only when present, ``X(key)`` must be
absent, a one-element list pattern applies to every element, strings are wildcards (``?*``
non-empty, ``*`` anything), booleans and numbers compare equal. Enough to run each rendered
policy against real pods; verifyImages (cosign) cannot be evaluated offline."""

from __future__ import annotations

from fnmatch import fnmatchcase
from typing import Any


def matches(pattern: Any, value: Any) -> bool:
    if isinstance(pattern, dict):
        if not isinstance(value, dict):
            return False
        for key, sub in pattern.items():
            if key.startswith("=(") and key.endswith(")"):
                name = key[2:-1]
                if name in value and not matches(sub, value[name]):
                    return False
            elif key.startswith("X(") and key.endswith(")"):
                if key[2:-1] in value:
                    return False
            elif key not in value or not matches(sub, value[key]):
                return False
        return True
    if isinstance(pattern, list):
        if not isinstance(value, list):
            return False
        return all(any(matches(p, item) for p in pattern) for item in value) if len(pattern) == 1 else value == pattern
    if isinstance(pattern, bool):
        return value is pattern
    if isinstance(pattern, str):
        if isinstance(value, (dict, list)) or value is None or isinstance(value, bool):
            return False
        text = str(value)
        if pattern == "?*":
            return text != ""
        return fnmatchcase(text, pattern)
    return bool(pattern == value)


def pod_of(manifest: dict[str, Any]) -> dict[str, Any]:
    """A Pod, or the pod template of a workload (Kyverno's autogen applies pod rules to it)."""
    if manifest["kind"] == "Pod":
        return manifest
    spec = manifest["spec"]
    template = spec["jobTemplate"]["spec"]["template"] if manifest["kind"] == "CronJob" else spec["template"]
    return {"metadata": template.get("metadata", {}), "spec": template["spec"]}


def violations(policy: dict[str, Any], pod: dict[str, Any], tier: str) -> list[str]:
    """Names of ``policy``'s validate rules the pod breaks (its namespace is in ``tier``)."""
    out = []
    for rule in policy["spec"]["rules"]:
        if "validate" not in rule or "Pod" not in rule["match"]["any"][0]["resources"]["kinds"]:
            continue
        selector = rule["match"]["any"][0]["resources"]["namespaceSelector"]["matchExpressions"]
        tiers = next((e["values"] for e in selector if e["key"] == "companyos.io/tier"), None)
        if tiers is not None and tier not in tiers:
            continue
        if not matches(rule["validate"]["pattern"], pod):
            out.append(rule["name"])
    return out


def _subject_matches(subject: dict[str, Any], user: str) -> bool:
    if subject["kind"] == "ServiceAccount":
        return user == f"system:serviceaccount:{subject['namespace']}:{subject['name']}"
    return bool(subject["kind"] == "User" and user == subject["name"])


def _selected(selector: dict[str, Any] | None, labels: dict[str, str]) -> bool:
    for e in (selector or {}).get("matchExpressions", []):
        present = e["key"] in labels
        if (e["operator"] == "Exists" and not present) or (e["operator"] == "DoesNotExist" and present):
            return False
        if e["operator"] == "In" and labels.get(e["key"]) not in e["values"]:
            return False
    return all(labels.get(k) == v for k, v in (selector or {}).get("matchLabels", {}).items())


def request_refusals(policy: dict[str, Any], obj: dict[str, Any], operation: str, user: str) -> list[str]:
    """Names of ``policy``'s validate rules that refuse an admission request: ``operation``
    (CREATE/UPDATE) of ``obj`` by ``user`` (``system:serviceaccount:<ns>:<name>`` or a user
    name). Understands match/exclude by kind, operation, label selector and subject, and
    ``deny: {}`` (refuse whatever matched)."""
    out = []
    labels = obj.get("metadata", {}).get("labels", {})
    for rule in policy["spec"]["rules"]:
        if "validate" not in rule:
            continue
        matched = any(
            obj["kind"] in r["resources"]["kinds"]
            and operation in r["resources"].get("operations", [operation])
            and _selected(r["resources"].get("selector"), labels)
            for r in rule["match"]["any"]
        )
        excluded = any(any(_subject_matches(s, user) for s in r.get("subjects", [])) for r in rule.get("exclude", {}).get("any", []))
        if not matched or excluded:
            continue
        validate = rule["validate"]
        if "deny" in validate:
            assert validate["deny"] == {}, "only unconditional deny is understood"
            out.append(rule["name"])
        elif not matches(validate["pattern"], obj):
            out.append(rule["name"])
    return out
