"""Production and test LoadBalancers of a Service's ``loadBalancers[]`` entries
(``advancedConfiguration.alternateTargetGroupArn``, ecs-deployments.md §5).

An entry with an alternate names two LoadBalancers: ``loadBalancerName`` (or
``targetGroupArn``) and the alternate. One carries production traffic, the other test
traffic: during a BLUE_GREEN, LINEAR or CANARY deployment the new (green) tasks register in
the test one from TEST_TRAFFIC_SHIFT on (``core.load_balancing``), and never the old (blue)
ones. When the deployment completes the two swap, as ECS's target groups do: the one that
listed green carries production, the other takes the next deployment's test traffic. Which
is which is recorded in ``status.resolvedConfiguration.loadBalancers`` (absent: as the spec
names them), and every reader of a Service's load balancers sees the entries *resolved*:
``loadBalancerName`` the production LoadBalancer, the alternate the test one.
"""

from collections.abc import Sequence

from ecs_operator.core import names
from ecs_operator.models.service import (
    ResolvedConfiguration,
    ResolvedLoadBalancer,
    ServiceLoadBalancer,
    ServiceStatus,
)


def _roles(
    entry: ServiceLoadBalancer, recorded: Sequence[ResolvedLoadBalancer]
) -> tuple[str, str] | None:
    """(production, test) LoadBalancer of ``entry``; None without an alternate."""
    test = names.alternate_load_balancer_of(entry)
    if test is None:
        return None
    production = names.load_balancer_of(entry)
    for roles in recorded:
        if {roles.load_balancer_name, roles.alternate_load_balancer_name} == {
            production,
            test,
        } and (roles.container_name, roles.container_port) == (
            entry.container_name,
            entry.container_port,
        ):
            return roles.load_balancer_name, roles.alternate_load_balancer_name
    return production, test


def _recorded(status: ServiceStatus | None) -> list[ResolvedLoadBalancer]:
    resolved = status.resolved_configuration if status else None
    return list((resolved.load_balancers if resolved else None) or ())


def resolved_entries(
    entries: Sequence[ServiceLoadBalancer], status: ServiceStatus | None
) -> list[ServiceLoadBalancer]:
    """``entries`` with the roles of ``status``: an entry whose LoadBalancers swapped names the
    production one as ``loadBalancerName`` and the test one as its alternate."""
    recorded = _recorded(status)
    resolved = []
    for entry in entries:
        roles = _roles(entry, recorded)
        if roles is None or roles[0] == names.load_balancer_of(entry):
            resolved.append(entry)
            continue
        advanced = entry.advanced_configuration
        assert advanced is not None  # an entry with roles has an alternate
        resolved.append(
            entry.model_copy(
                update={
                    "load_balancer_name": roles[0],
                    "target_group_arn": None,
                    "advanced_configuration": advanced.model_copy(
                        update={"alternate_target_group_arn": roles[1]}
                    ),
                }
            )
        )
    return resolved


def alternates(entries: Sequence[ServiceLoadBalancer]) -> set[str]:
    """The test LoadBalancers of resolved ``entries``."""
    return {n for e in entries if (n := names.alternate_load_balancer_of(e)) is not None}


def recorded_roles(
    entries: Sequence[ServiceLoadBalancer], previous: ServiceStatus | None, swap: bool
) -> ResolvedConfiguration | None:
    """``status.resolvedConfiguration`` for the Service's (spec) ``entries``: each entry with an
    alternate keeps its recorded roles, swapped when ``swap`` (a BLUE_GREEN, LINEAR or CANARY
    deployment just completed); None when no entry has an alternate."""
    recorded = _recorded(previous)
    found = []
    for entry in entries:
        roles = _roles(entry, recorded)
        if roles is None:
            continue
        production, test = (roles[1], roles[0]) if swap else roles
        found.append(
            ResolvedLoadBalancer(
                load_balancer_name=production,
                alternate_load_balancer_name=test,
                container_name=entry.container_name,
                container_port=entry.container_port,
            )
        )
    return ResolvedConfiguration(load_balancers=found) if found else None
