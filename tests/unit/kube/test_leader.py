"""The Lease: a single operator's claim, and the fence a leader passes before every write."""

from __future__ import annotations

import asyncio
import copy
import os
import subprocess
import sys
from typing import Any

import pytest

from ecs_operator.kube import leader as leader_module
from ecs_operator.kube.client import KubeClient, KubeError
from ecs_operator.kube.leader import LeaderElection, LeadershipLostError, local_identity


class FakeLeases:
    """One Lease with resourceVersion compare-and-swap, as the API server keeps it."""

    def __init__(self) -> None:
        self.lease: dict[str, Any] | None = None
        self.version = 0
        self.writes = 0

    async def get(self, _resource: Any, _namespace: str, _name: str) -> dict[str, Any] | None:
        return copy.deepcopy(self.lease)

    async def create(self, _resource: Any, _namespace: str, body: dict[str, Any]) -> Any:
        if self.lease is not None:
            raise KubeError(409, "AlreadyExists", "exists")
        self.writes += 1
        self.version += 1
        self.lease = copy.deepcopy(body)
        self.lease["metadata"]["resourceVersion"] = str(self.version)
        return copy.deepcopy(self.lease)

    async def patch(self, _resource: Any, _namespace: str, _name: str, patch: Any) -> Any:
        assert self.lease is not None
        if patch["metadata"]["resourceVersion"] != self.lease["metadata"]["resourceVersion"]:
            raise KubeError(409, "Conflict", "modified")
        self.writes += 1
        self.version += 1
        for key, value in patch["spec"].items():
            if value is None:
                self.lease["spec"].pop(key, None)
            else:
                self.lease["spec"][key] = value
        self.lease["metadata"]["resourceVersion"] = str(self.version)
        return copy.deepcopy(self.lease)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    clock = Clock()
    monkeypatch.setattr(leader_module.time, "monotonic", clock)
    return clock


def election(leases: FakeLeases, identity: str) -> LeaderElection:
    kube: Any = leases
    return LeaderElection(
        kube, "ns", "ecs-operator", identity, lease_seconds=15, renew_seconds=10, retry_seconds=0
    )


async def test_a_fresh_leader_writes_without_touching_the_lease(clock: Clock) -> None:
    leases = FakeLeases()
    a = election(leases, "a")
    assert await a.claim() is None
    writes = leases.writes
    clock.now += 9
    await a.ensure_leading()
    assert leases.writes == writes


async def test_after_a_pause_a_leader_renews_before_writing_if_still_the_holder(
    clock: Clock,
) -> None:
    leases = FakeLeases()
    a = election(leases, "a")
    assert await a.claim() is None
    clock.now += 60  # paused far past the lease, but nobody took over
    await a.ensure_leading()
    assert leases.lease is not None and leases.lease["spec"]["holderIdentity"] == "a"
    assert leases.writes == 2  # the claim, then the renewal before the write


async def test_after_a_pause_a_leader_whose_lease_was_taken_refuses_every_write(
    clock: Clock,
) -> None:
    leases = FakeLeases()
    a, b = election(leases, "a"), election(leases, "b")
    await a.acquire()
    assert not await b._try_acquire_or_renew()  # b sees a's Lease for the first time
    clock.now += 16  # a is paused; b has seen no renewal for a whole lease
    await b.acquire()
    with pytest.raises(LeadershipLostError):
        await a.ensure_leading()
    clock.now -= 100  # even once "fresh" again by the clock, a stays fenced
    with pytest.raises(LeadershipLostError):
        await a.ensure_leading()
    assert leases.lease is not None and leases.lease["spec"]["holderIdentity"] == "b"
    await a.hold()  # returns at once: leadership is lost


async def test_a_claim_is_refused_while_another_holder_renews(
    clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    leases = FakeLeases()
    a, b = election(leases, "a"), election(leases, "b")
    assert await a.claim() is None

    sleeps = 0

    async def a_renews(_seconds: float) -> None:
        nonlocal sleeps
        sleeps += 1
        clock.now += 2
        assert await a._try_acquire_or_renew()

    monkeypatch.setattr(leader_module.asyncio, "sleep", a_renews)
    assert await b.claim() == "a"
    assert sleeps == 1


async def test_a_claim_takes_a_lease_whose_holder_stopped_renewing(
    clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    leases = FakeLeases()
    assert await election(leases, "gone").claim() is None

    async def time_passes(_seconds: float) -> None:
        clock.now += 5

    monkeypatch.setattr(leader_module.asyncio, "sleep", time_passes)
    assert await election(leases, "b").claim() is None
    assert leases.lease is not None and leases.lease["spec"]["holderIdentity"] == "b"


@pytest.fixture
def dead_pid() -> str:
    """The pid of a process of this host that has exited."""
    return subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()


async def test_a_released_lease_or_a_dead_process_of_this_host_is_taken_at_once(
    clock: Clock, dead_pid: str
) -> None:
    leases = FakeLeases()
    a = election(leases, "a")
    assert await a.claim() is None
    await a.release()
    assert leases.lease is not None and "holderIdentity" not in leases.lease["spec"]
    assert await election(leases, "b").claim() is None

    # A holder named after a process of this host that has exited.
    host_identity = local_identity().split("_")
    gone = "_".join([host_identity[0], dead_pid, host_identity[2]])
    leases = FakeLeases()
    assert await election(leases, gone).claim() is None
    assert await election(leases, local_identity()).claim() is None
    assert leases.lease is not None and leases.lease["spec"]["holderIdentity"] == local_identity()


async def test_a_live_process_of_this_host_is_not_taken_for_dead(
    clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    leases = FakeLeases()
    alive = local_identity().replace(f"_{os.getpid()}_", f"_{os.getppid()}_")
    assert await election(leases, alive).claim() is None

    async def holder_renews(_seconds: float) -> None:
        clock.now += 2
        lease = leases.lease
        assert lease is not None
        lease["spec"]["renewTime"] = str(clock.now)

    monkeypatch.setattr(leader_module.asyncio, "sleep", holder_renews)
    assert await election(leases, local_identity()).claim() == alive


async def test_the_fence_runs_before_every_write_of_the_client() -> None:
    calls: list[str] = []

    async def fence() -> None:
        calls.append("fence")
        raise LeadershipLostError("a")

    client = KubeClient.__new__(KubeClient)
    client.fence = fence
    client.writes = 0
    with pytest.raises(LeadershipLostError):
        await client.request("POST", "/api/v1/namespaces/x/pods", body={})
    assert calls == ["fence"] and client.writes == 0


async def test_an_unreachable_api_does_not_end_leadership_but_fences_writes(
    clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    leases = FakeLeases()
    a = election(leases, "a")
    assert await a.claim() is None
    outage = KubeError(503, "ServiceUnavailable", "connection refused")
    real_get = leases.get
    down = True

    async def get(*args: Any) -> Any:
        if down:
            raise outage
        return await real_get(*args)

    monkeypatch.setattr(leases, "get", get)
    clock.now += 60
    with pytest.raises(KubeError) as refused:
        await a.ensure_leading()  # stale and unreachable: the write does not go out
    assert refused.value is outage

    rounds = 0

    async def time_passes(_seconds: float) -> None:
        nonlocal rounds, down
        rounds += 1
        clock.now += 5
        down = rounds < 10  # 45 s more of outage, then the API answers again
        if rounds == 12:
            raise asyncio.CancelledError  # enough: hold() was still holding

    monkeypatch.setattr(leader_module.asyncio, "sleep", time_passes)
    with pytest.raises(asyncio.CancelledError):
        await a.hold()
    await a.ensure_leading()  # renewed after the outage: still the holder, writes go out
    assert leases.lease is not None and leases.lease["spec"]["holderIdentity"] == "a"


async def test_a_refused_renewal_is_retried_soon_and_leadership_kept(
    clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    leases = FakeLeases()
    kube: Any = leases
    single = LeaderElection(
        kube, "ns", "ecs-operator", "a", lease_seconds=15, renew_seconds=10, retry_seconds=5
    )
    assert await single.claim() is None
    real_patch = leases.patch
    refusals = 1

    async def patch(*args: Any) -> Any:
        nonlocal refusals
        if refusals:
            refusals -= 1
            raise KubeError(409, "Conflict", "injected")
        return await real_patch(*args)

    monkeypatch.setattr(leases, "patch", patch)
    pauses: list[float] = []

    async def time_passes(seconds: float) -> None:
        pauses.append(seconds)
        clock.now += seconds
        if len(pauses) == 4:
            raise asyncio.CancelledError

    monkeypatch.setattr(leader_module.asyncio, "sleep", time_passes)
    with pytest.raises(asyncio.CancelledError):
        await single.hold()
    assert pauses == [5, 1, 5, 5]  # the refused renewal is tried again after 1 s, not 5
    await single.ensure_leading()


async def test_a_release_the_api_cannot_answer_gives_up_at_once_or_within_its_bound(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A stop (SIGTERM) never waits on an unreachable API: the Lease simply expires. (On the
    real clock: the bound is the event loop's.)"""
    leases = FakeLeases()
    a = election(leases, "a")
    assert await a.claim() is None

    async def refused(*_args: Any) -> Any:
        raise KubeError(503, "ServiceUnavailable", "connection refused")

    monkeypatch.setattr(leases, "get", refused)
    await a.release()  # logged, not raised (Kopf would retry the cleanup for ever)

    b = election(FakeLeases(), "b")
    assert await b.claim() is None
    hung = asyncio.Event()

    async def hangs(*_args: Any) -> Any:
        await hung.wait()

    monkeypatch.setattr(b.kube, "get", hangs)
    monkeypatch.setattr(leader_module, "RELEASE_TIMEOUT_SECONDS", 0.01)
    await b.release()
