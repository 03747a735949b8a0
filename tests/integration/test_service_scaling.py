"""Scaling a Service out and in, through its spec and through the scale subresource."""

from __future__ import annotations

from support.ecs_api import Ecs, KubectlRunner
from support.services import Services, is_balanced, zone_counts


def test_scale_out_and_in_through_spec_and_scale_subresource(
    ecs: Ecs, kubectl: KubectlRunner
) -> None:
    services = Services(ecs)
    ecs.create_task_definition("web")
    ecs.wait_accepted("web")
    services.create("web", "web", desiredCount=0)
    services.wait_steady("web", 0)
    steps = [("spec", 6), ("spec", 2), ("scale", 6), ("scale", 0), ("spec", 0)]
    for how, count in steps:
        if how == "spec":
            services.update("web", desiredCount=count)
        else:
            result = kubectl("scale", "-n", ecs.namespace, "ecssvc/web", f"--replicas={count}")
            assert result.returncode == 0, result.stderr
        status = services.wait_steady("web", count)
        assert status["runningCount"] == count
        assert status["pendingCount"] == 0
        counts = zone_counts(services.tasks("web"))
        assert is_balanced(counts), counts
        assert sum(counts.values()) == count
    messages = services.messages("web")
    assert "(service web) has reached a steady state." in messages
    assert any(m.startswith("(service web) has started 6 tasks:") for m in messages)
    assert any(m.startswith("(service web) has stopped 4 running tasks:") for m in messages)
    # Scaling never starts a deployment.
    assert len(services.status("web")["deployments"]) == 1
