"""Admission policy per tier: ``rendered/argocd/<env>/platform/admission.yaml``.

Kyverno ClusterPolicies (the add-on ``catalog/addons/kyverno.yaml``) over tenant namespaces
(those labelled ``companyos.io/tenant``): images of built services verified against the
release workflow's cosign keyless identity with an SBOM attestation; no privileged
containers, host namespaces or hostPath; CPU and memory limits; the tenant labels; and for
regulated tiers the restricted profile with images by digest. Exceptions only from
``catalog/waivers.yaml`` ``admission:`` as PolicyExceptions in the tenant's namespace, with
their expiry and approver as annotations (an expired one fails the policy check). The policy
table is ``model/admission.py``. Patterns only (no JMESPath), so tests can evaluate them.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from generator.catalog import spec
from generator.formats import emit
from generator.formats.templating import Templates
from generator.model import admission, naming
from generator.model.resolve import Model
from generator.targets.base import RenderedFile

NAME = "admission"
PER_ENVIRONMENT = True
API = "kyverno.io/v1"
EXCEPTION_API = "kyverno.io/v2"
TENANT_LABEL = "companyos.io/tenant"
TIER_LABEL = "companyos.io/tier"
REQUIRED_LABELS = ("companyos.io/tenant", "companyos.io/tier", "companyos.io/environment")
#: Kyverno's sync wave: after the add-on (its CRDs) and before any tenant workload.
WAVE = "-2"


def path(env: str) -> str:
    return f"rendered/argocd/{env}/platform/admission.yaml"


def render(model: Model, templates: Templates) -> Iterator[RenderedFile]:
    regulated = sorted(t.name for t in model.tiers.values() if t.regulated)
    for env in model.environments:
        docs = policies(model, env, regulated) + exceptions(model, env)
        header = f"# Admission policies of {env.name} (Kyverno): signed images, no privileged or host access, limits, tenant labels;\n"
        header += f"# regulated tiers ({', '.join(regulated) or 'none'}) also get the restricted profile. Exceptions: catalog/waivers.yaml admission.\n"
        text = header + "".join("---\n" + emit.to_yaml(doc).rstrip("\n") + "\n" for doc in docs)
        sources = [
            model.source("platform", "platform"),
            model.source("environment", env.name),
            *sorted(model.source("tier", t) for t in model.tiers),
            *sorted(model.source("service", s) for s, svc in model.services.items() if svc.build is not None),
        ]
        if model.catalog.single("waivers") is not None:
            sources.append(model.source("waivers", "waivers"))
        yield RenderedFile(path=path(env.name), text=text, sources=tuple(sorted(set(sources))), environment=env.name)


def _meta(name: str, policy: admission.AdmissionPolicy) -> dict[str, Any]:
    return {
        "name": name,
        "labels": {"app.kubernetes.io/managed-by": "companyos", "companyos.io/policy-rule": policy.rule},
        "annotations": {
            "argocd.argoproj.io/sync-wave": WAVE,
            "policies.kyverno.io/title": name,
            "policies.kyverno.io/description": policy.description,
        },
    }


def _match(regulated: list[str] | None = None) -> dict[str, Any]:
    expressions: list[dict[str, Any]] = [{"key": TENANT_LABEL, "operator": "Exists"}]
    if regulated is not None:
        expressions.append({"key": TIER_LABEL, "operator": "In", "values": regulated})
    return {"any": [{"resources": {"kinds": ["Pod"], "namespaceSelector": {"matchExpressions": expressions}}}]}


def _policy(name: str, rules: list[dict[str, Any]]) -> dict[str, Any]:
    policy = admission.BY_NAME[name]
    return {
        "apiVersion": API,
        "kind": "ClusterPolicy",
        "metadata": _meta(name, policy),
        "spec": {"validationFailureAction": "Enforce", "background": True, "rules": rules},
    }


def _validate(rule: str, message: str, pattern: dict[str, Any], regulated: list[str] | None = None) -> dict[str, Any]:
    return {"name": rule, "match": _match(regulated), "validate": {"message": message, "pattern": pattern}}


def _containers(pattern: dict[str, Any]) -> dict[str, Any]:
    """``pattern`` for every container, init container and ephemeral container."""
    return {"spec": {"containers": [pattern], "=(initContainers)": [pattern], "=(ephemeralContainers)": [pattern]}}


def signed_images(model: Model, env: spec.Environment) -> list[str]:
    """Image references (globs) the signature policy covers: this environment's ECR copies."""
    repos = sorted(naming.ecr_repository_url(env, svc.image.repository) for svc in model.services.values() if svc.build is not None)
    return [f"{repo}{sep}*" for repo in repos for sep in (":", "@")]


def policies(model: Model, env: spec.Environment, regulated: list[str]) -> list[dict[str, Any]]:
    docs = []
    images = signed_images(model, env)
    if images:
        keyless = {
            "subjectRegExp": naming.release_identity_pattern(model.platform),
            "issuer": naming.GITHUB_OIDC_ISSUER,
            "rekor": {"url": "https://rekor.sigstore.dev"},
        }
        attestor = {"entries": [{"keyless": keyless}]}
        docs.append(
            _policy(
                "verify-image-signatures",
                [
                    {
                        "name": "release-signature-and-sbom",
                        "match": _match(),
                        "verifyImages": [
                            {
                                "imageReferences": images,
                                "failureAction": "Enforce",
                                "mutateDigest": False,
                                "verifyDigest": True,
                                "required": True,
                                "attestors": [attestor],
                                "attestations": [{"type": "https://spdx.dev/Document", "attestors": [attestor]}],
                            }
                        ],
                    }
                ],
            )
        )
    docs.append(
        _policy(
            "disallow-privileged",
            [
                _validate(
                    "no-privileged-containers",
                    "Privileged containers and privilege escalation are not allowed in tenant namespaces.",
                    _containers({"=(securityContext)": {"=(privileged)": False, "=(allowPrivilegeEscalation)": False}}),
                )
            ],
        )
    )
    docs.append(
        _policy(
            "disallow-host-namespaces",
            [
                _validate(
                    "no-host-namespaces",
                    "Host network, PID and IPC namespaces are not allowed in tenant namespaces.",
                    {"spec": {"=(hostNetwork)": False, "=(hostPID)": False, "=(hostIPC)": False}},
                ),
                _validate(
                    "no-host-path",
                    "hostPath volumes are not allowed in tenant namespaces.",
                    {"spec": {"=(volumes)": [{"X(hostPath)": "null"}]}},
                ),
            ],
        )
    )
    docs.append(
        _policy(
            "require-resource-limits",
            [
                _validate(
                    "cpu-and-memory-limits",
                    "Every container must set CPU and memory requests and limits.",
                    {
                        "spec": {
                            "containers": [
                                {"resources": {"requests": {"cpu": "?*", "memory": "?*"}, "limits": {"cpu": "?*", "memory": "?*"}}}
                            ]
                        }
                    },
                )
            ],
        )
    )
    docs.append(
        _policy(
            "require-tenant-labels",
            [
                _validate(
                    "tenant-labels",
                    f"Pods in tenant namespaces must carry the labels {', '.join(REQUIRED_LABELS)}.",
                    {"metadata": {"labels": {label: "?*" for label in REQUIRED_LABELS}}},
                )
            ],
        )
    )
    if regulated:
        docs.append(
            _policy(
                "regulated-restricted",
                [
                    _validate(
                        "restricted-profile",
                        "Regulated tenants run non-root with a read-only root filesystem and every capability dropped.",
                        {
                            "spec": {
                                "containers": [
                                    {
                                        "securityContext": {
                                            "runAsNonRoot": True,
                                            "readOnlyRootFilesystem": True,
                                            "allowPrivilegeEscalation": False,
                                            "capabilities": {"drop": ["ALL"]},
                                        }
                                    }
                                ]
                            }
                        },
                        regulated,
                    ),
                    _validate(
                        "images-by-digest",
                        "Regulated tenants run images by digest (image@sha256:...).",
                        _containers({"image": "*@sha256:*"}),
                        regulated,
                    ),
                ],
            )
        )
    docs.append(namespace_policy(model))
    return docs


def namespace_policy(model: Model) -> dict[str, Any]:
    """CO046: the gap the tenant's own RBAC cannot close (docs/isolation.md, "Admission"). A
    namespace created by anyone but Argo CD's controller would have no quota, NetworkPolicies
    or pod security group; a tenant-labelled one must carry every platform label. ``background``
    is off: a rule on the requester has no requester to judge in a background scan."""
    doc = _policy(
        "restrict-namespaces",
        [
            {
                "name": "namespaces-only-from-argocd",
                "match": {"any": [{"resources": {"kinds": ["Namespace"], "operations": ["CREATE"]}}]},
                "exclude": {"any": [{"subjects": [dict(s) for s in namespace_creators(model)]}]},
                "validate": {
                    "message": "Namespaces come from the platform's Argo CD Applications (rendered/argocd/<env>/namespaces/), never by hand.",
                    "deny": {},
                },
            },
            {
                "name": "tenant-namespace-labels",
                "match": {
                    "any": [
                        {
                            "resources": {
                                "kinds": ["Namespace"],
                                "operations": ["CREATE", "UPDATE"],
                                "selector": {"matchExpressions": [{"key": TENANT_LABEL, "operator": "Exists"}]},
                            }
                        }
                    ]
                },
                "validate": {
                    "message": "A tenant namespace carries the platform's labels and the restricted pod security profile.",
                    "pattern": {"metadata": {"labels": {**{label: "?*" for label in REQUIRED_LABELS}, **NAMESPACE_LABELS}}},
                },
            },
        ],
    )
    doc["spec"]["background"] = False
    return doc


#: Labels every tenant Namespace carries besides REQUIRED_LABELS (targets/argocd/namespaces.py).
NAMESPACE_LABELS = {"app.kubernetes.io/managed-by": emit.GENERATOR, "pod-security.kubernetes.io/enforce": "restricted"}
#: The Argo CD chart's application controller service account (it syncs every Namespace).
ARGOCD_CONTROLLER = "argocd-application-controller"


def namespace_creators(model: Model) -> tuple[dict[str, str], ...]:
    """Who may create a Namespace: Argo CD's controller, and EKS's add-on manager (managed
    add-ons such as amazon-cloudwatch create their own namespace)."""
    return (
        {"kind": "ServiceAccount", "name": ARGOCD_CONTROLLER, "namespace": model.platform.argocd_namespace},
        {"kind": "User", "name": "eks:addon-manager"},
    )


def exceptions(model: Model, env: spec.Environment) -> list[dict[str, Any]]:
    out = []
    for i, (waiver, _where) in enumerate(admission.waivers(model.catalog)):
        if waiver.environment not in (None, env.name) or waiver.tenant not in model.tenants:
            continue
        if env.name not in model.tenants[waiver.tenant].environments:
            continue
        rules = [r["name"] for r in _rules_of(model, env, waiver.policy)]
        if not rules:
            continue
        out.append(
            {
                "apiVersion": EXCEPTION_API,
                "kind": "PolicyException",
                "metadata": {
                    "name": f"waiver-{i + 1}-{waiver.policy}",
                    "namespace": naming.namespace(waiver.tenant),
                    "labels": {"app.kubernetes.io/managed-by": "companyos", TENANT_LABEL: waiver.tenant},
                    "annotations": {
                        "argocd.argoproj.io/sync-wave": WAVE,
                        "companyos.io/expires": waiver.expires,
                        "companyos.io/approver": waiver.approver,
                        "companyos.io/reason": waiver.reason,
                    },
                },
                "spec": {
                    "exceptions": [{"policyName": waiver.policy, "ruleNames": rules}],
                    "match": {"any": [{"resources": {"kinds": ["Pod"], "namespaces": [naming.namespace(waiver.tenant)]}}]},
                },
            }
        )
    return out


def _rules_of(model: Model, env: spec.Environment, policy: str) -> list[dict[str, Any]]:
    regulated = sorted(t.name for t in model.tiers.values() if t.regulated)
    for doc in policies(model, env, regulated):
        if doc["metadata"]["name"] == policy:
            rules: list[dict[str, Any]] = doc["spec"]["rules"]
            return rules
    return []
