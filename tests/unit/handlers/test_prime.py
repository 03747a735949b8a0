"""Priming the caches: a failed LIST is retried after seconds of back-off until served (never
Kopf's minute for a failed start-up handler), and what a LIST no longer has is dropped."""

from __future__ import annotations

import asyncio
from typing import Any, cast

from ecs_operator.handlers.context import OperatorContext, OperatorOptions
from ecs_operator.handlers.watches import PRIME_MAX_BACKOFF, prime
from ecs_operator.kube.client import KubeClient, KubeError, Resource


def pod(name: str, rv: int) -> dict[str, Any]:
    return {"metadata": {"namespace": "ns", "name": name, "uid": name, "resourceVersion": str(rv)}}


class FlakyLists:
    """Fails the first `failures` LISTs of pods with each code in turn, then serves them."""

    def __init__(self, codes: list[int]) -> None:
        self.codes = codes
        self.pod_lists = 0

    async def list_with_version(
        self, resource: Resource, namespace: str | None, *, label_selector: str = ""
    ) -> tuple[list[dict[str, Any]], str]:
        if resource.plural != "pods":
            return [], "10"
        self.pod_lists += 1
        if self.codes:
            code = self.codes.pop(0)
            raise KubeError(code, "Injected", f"injected {code}")
        return [pod("listed", 9)], "10"


def test_a_failed_priming_list_is_retried_within_seconds() -> None:
    lists = FlakyLists([409, 500, 403, 404, 500, 500])
    context = OperatorContext(OperatorOptions(), cast(KubeClient, lists))
    context.pods.observe("ADDED", pod("deleted-meanwhile", 3))
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    asyncio.run(prime(context, sleep=sleep))
    assert lists.pod_lists == 7
    assert slept == [0.5, 1.0, 2.0, 4.0, PRIME_MAX_BACKOFF, PRIME_MAX_BACKOFF]
    assert [body["metadata"]["name"] for body in context.pods.values()] == ["listed"]
