"""Elastic capacity levers that would break something else (CO030-CO034).

Scaling to zero, queue-depth scaling and spot capacity save money only when the service can
take them: a PodDisruptionBudget that keeps one pod cannot be met at zero replicas, a KEDA
trigger on another service's queue scales on work this service never does (and its role
cannot read that queue), and a tier may keep its tenants off interruptible capacity.
"""

from __future__ import annotations

from collections.abc import Iterator

from generator.model import quantities
from generator.model.resolve import Model
from generator.policy.core import Violation, blame, rule


@rule("CO030", "scale-to-zero-pdb", "A service whose PodDisruptionBudget keeps one replica (replicas > 1) cannot scale to zero.")
def scale_to_zero_pdb(model: Model) -> Iterator[Violation]:
    for d in model.deployments:
        for name, svc in ((s.name, d.settings.services[s.name]) for s in d.services):
            if svc.autoscaling.scale_to_zero and svc.replicas > 1:
                path = f"services.{name}.autoscaling.scale_to_zero"
                yield Violation(
                    "CO030",
                    blame(d, path, model.source("service", name)),
                    f"{path} = true for tenant '{d.name}' in {d.env}, but services.{name}.replicas = {svc.replicas} gives it a "
                    "PodDisruptionBudget with minAvailable 1, which zero replicas can never meet; set replicas to 1 or drop scale_to_zero",
                    d.name,
                    d.env,
                    path,
                )


@rule("CO031", "keda-own-queue", "A service scales (KEDA) only on the depth of a queue it owns (its `queues`).")
def keda_own_queue(model: Model) -> Iterator[Violation]:
    for d in model.deployments:
        for svc in d.services:
            queue = d.settings.services[svc.name].autoscaling.queue
            if queue is not None and queue not in svc.queues:
                path = f"services.{svc.name}.autoscaling.queue"
                owned = ", ".join(svc.queues) or "none"
                yield Violation(
                    "CO031",
                    blame(d, path, model.source("service", svc.name)),
                    f"{path} = {queue!r} for tenant '{d.name}' in {d.env}, but service '{svc.name}' does not own that queue "
                    f"(its queues: {owned}); KEDA would scale it on another service's work and its role may not read that queue",
                    d.name,
                    d.env,
                    path,
                )


@rule("CO032", "spot-allowed", "Spot capacity only where the tenant's tier allows it (spot_allowed).")
def spot_allowed(model: Model) -> Iterator[Violation]:
    for d in model.deployments:
        if d.tier.spot_allowed:
            continue
        for name, svc in ((s.name, d.settings.services[s.name]) for s in d.services):
            if svc.capacity == "spot":
                path = f"services.{name}.capacity"
                yield Violation(
                    "CO032",
                    blame(d, path, model.source("tier", d.tier.name)),
                    f"{path} = \"spot\" for tenant '{d.name}' in {d.env}, but tier '{d.tier.name}' forbids spot capacity "
                    "(spot_allowed: false); use on-demand",
                    d.name,
                    d.env,
                    path,
                )


@rule("CO033", "scale-to-zero-signal", "Scaling to zero needs a queue to wake on: CPU and memory of zero pods say nothing.")
def scale_to_zero_signal(model: Model) -> Iterator[Violation]:
    for d in model.deployments:
        for name, svc in ((s.name, d.settings.services[s.name]) for s in d.services):
            if svc.autoscaling.scale_to_zero and svc.autoscaling.queue is None:
                path = f"services.{name}.autoscaling.scale_to_zero"
                yield Violation(
                    "CO033",
                    blame(d, path, model.source("service", name)),
                    f"{path} = true for tenant '{d.name}' in {d.env}, but services.{name}.autoscaling.queue is not set: "
                    "with no pods there is no CPU or memory to measure, so nothing would ever scale it back up",
                    d.name,
                    d.env,
                    path,
                )


@rule("CO034", "node-budget", "The tenants' namespace quotas fit in the environment's NodePool budget (node_limits).")
def node_budget(model: Model) -> Iterator[Violation]:
    for env in model.environments:
        cores, gib = quantities.quota_totals(model.in_environment(env.name))
        budget = env.node_limits
        if cores <= budget.cpu and gib <= budget.memory_gib:
            continue
        entry = model.catalog.environments[env.name]
        where = entry.locate("node_limits", key=True) if "node_limits" in env.model_fields_set else entry.locate("name")
        yield Violation(
            "CO034",
            where,
            f"the tenants' namespace quotas in {env.name} add up to {cores:g} cores and {gib:g} GiB, more than node_limits "
            f"({budget.cpu} cores, {budget.memory_gib} GiB): Karpenter would stop adding nodes before the quotas are reached; "
            "raise node_limits or add a cell",
            None,
            env.name,
            None,
        )
