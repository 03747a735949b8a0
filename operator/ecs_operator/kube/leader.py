"""One operator acts at a time: a coordination.k8s.io/v1 Lease, as client-go's leaderelection.

Every operator takes the Lease `ecs-operator` before it reconciles anything. With
`--leader-elect` several replicas wait for it (`acquire`) and the holder keeps it (`hold`); the
others keep their watch caches warm and take over once the holder has not renewed for
`lease_seconds` (judged by the time *this* replica last saw the Lease change, not by the
holder's clock, so clock skew between nodes cannot cause two leaders). Without it, an operator
that finds the Lease held by a live holder refuses to start (`claim`): two replicas without
leader election never act together.

Fencing: a holder that was paused (SIGSTOP, a long GC, a frozen VM) may wake after a standby
took over. Before any write after a pause longer than the renew deadline, `ensure_leading`
renews the Lease first; if it is no longer ours the write is refused and the operator exits.

Every Lease write carries the resourceVersion it read, so two candidates racing for an expired
Lease cannot both win.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ecs_operator.kube.client import LEASES, KubeClient, KubeError

logger = logging.getLogger(__name__)

BOOT_ID = Path("/proc/sys/kernel/random/boot_id")
RELEASE_TIMEOUT_SECONDS = 5.0


class LeadershipLostError(KubeError):
    """A write refused because this operator no longer holds the Lease."""

    def __init__(self, identity: str) -> None:
        super().__init__(409, "LeadershipLostError", f"{identity} no longer holds the Lease")


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _boot_id() -> str:
    try:
        return BOOT_ID.read_text().strip().replace("-", "")[:8]
    except OSError:
        return "noboot"


def local_identity() -> str:
    """`HOST_PID_BOOT`: unique among live processes, and telling a process on this very host
    (same hostname and boot) whether the holder it sees is still alive."""
    return f"{socket.gethostname()}_{os.getpid()}_{_boot_id()}"


def _dead_here(holder: str) -> bool:
    """Whether `holder` names a process of this host and boot that no longer exists (an
    operator killed and started again on the same machine or in the same Pod)."""
    host, _, rest = holder.partition("_")
    pid, _, boot = rest.partition("_")
    if host != socket.gethostname() or boot != _boot_id() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


class LeaderElection:
    def __init__(
        self,
        kube: KubeClient,
        namespace: str,
        name: str,
        identity: str,
        *,
        lease_seconds: float = 15.0,
        renew_seconds: float = 10.0,
        retry_seconds: float = 2.0,
    ) -> None:
        self.kube = kube
        self.namespace = namespace
        self.name = name
        self.identity = identity
        self.lease_seconds = lease_seconds
        self.renew_seconds = renew_seconds
        self.retry_seconds = retry_seconds
        self._observed: tuple[str, str] | None = None  # (holder, renewTime) last seen
        self._observed_at = 0.0
        self._renewed_at: float | None = None  # monotonic time of our last renewal's read
        self._lost = False
        # Renewals (the heartbeat's and the write fence's) one at a time: two at once read the
        # same resourceVersion, and the loser's 409 would look like another holder's write.
        self._renewing: asyncio.Lock | None = None

    async def acquire(self) -> None:
        """Return once this replica holds the Lease."""
        # Polling is the protocol: the Lease lives in the API, nothing in-process to wait on.
        while not await self._try_acquire_or_renew():  # noqa: ASYNC110
            await asyncio.sleep(self.retry_seconds)
        logger.info(
            "leader election: %s now leads (lease %s/%s)", self.identity, self.namespace, self.name
        )

    async def claim(self) -> str | None:
        """Take the Lease unless another holder is live: None once ours, else the live holder.
        A holder that released it, that is a dead process of this host, or that has not renewed
        for `lease_seconds` is replaced; one that renews meanwhile is live."""
        first: tuple[str, str] | None = None
        while True:
            if await self._try_acquire_or_renew(dead_here_expired=True):
                logger.info(
                    "single operator: %s holds the lease %s/%s",
                    self.identity,
                    self.namespace,
                    self.name,
                )
                return None
            first = first or self._observed
            if self._observed is not None and self._observed != first:
                return self._observed[0]  # it renewed while we watched: alive
            await asyncio.sleep(self.retry_seconds)

    async def hold(self) -> None:
        """Renew the Lease; return (leadership lost) once renewals are refused past the renew
        deadline (another holder, or the Lease changed under us), or a fenced write found it
        lost. While the API cannot be reached the operator stays: it cannot write meanwhile,
        and the fence renews (or finds the Lease lost) before its first write afterwards."""
        deadline = time.monotonic() + self.renew_seconds
        pause = self.retry_seconds
        while not self._lost:
            await asyncio.sleep(pause)
            # After a failure, try again soon: a renewal has until the deadline to succeed.
            pause = min(self.retry_seconds, self.lease_seconds / 15)
            try:
                async with self._renewal():
                    renewed = await self._try_acquire_or_renew()
            except KubeError as error:
                logger.warning("leader election: renewal failed: %s", error)
                continue
            if renewed:
                deadline = time.monotonic() + self.renew_seconds
                pause = self.retry_seconds
            elif time.monotonic() > deadline:
                break
        self._lost = True
        logger.error("leader election: %s lost the lease", self.identity)

    async def ensure_leading(self) -> None:
        """The fence before every write: nothing to do while renewals are fresh; after a pause
        longer than the renew deadline, renew first (a standby cannot have taken over a Lease
        we can still renew); raise `LeadershipLostError` when the Lease is no longer ours."""
        if self._fresh():
            return
        async with self._renewal():  # many writes waking at once: one check
            if self._fresh():
                return
            if not self._lost and not await self._try_acquire_or_renew():
                self._lost = True
            if self._lost:
                logger.error("leader election: %s lost the lease; write refused", self.identity)
                raise LeadershipLostError(self.identity)

    def _renewal(self) -> asyncio.Lock:
        if self._renewing is None:
            self._renewing = asyncio.Lock()
        return self._renewing

    def _fresh(self) -> bool:
        return (
            not self._lost
            and self._renewed_at is not None
            and time.monotonic() - self._renewed_at <= self.renew_seconds
        )

    async def release(self) -> None:
        """On a clean stop, give the Lease up so a successor need not wait it out. Best effort
        and bounded, as client-go's ReleaseOnCancel: with the API unreachable, the Lease simply
        expires, and a stop must never wait on it (SIGTERM, then SIGKILL at the grace period)."""
        if self._renewed_at is None or self._lost:
            return
        try:
            async with asyncio.timeout(RELEASE_TIMEOUT_SECONDS):
                await self._release()
        except (KubeError, TimeoutError) as error:
            logger.warning("leader election: release failed: %s", error or "timed out")
        self._renewed_at = None

    async def _release(self) -> None:
        lease = await self.kube.get(LEASES, self.namespace, self.name)
        spec = (lease or {}).get("spec") or {}
        if lease is None or spec.get("holderIdentity") != self.identity:
            return
        patch = {
            "metadata": {"resourceVersion": lease["metadata"]["resourceVersion"]},
            "spec": {"holderIdentity": None, "leaseDurationSeconds": 1, "renewTime": _now()},
        }
        await self.kube.patch(LEASES, self.namespace, self.name, patch)

    async def _try_acquire_or_renew(self, *, dead_here_expired: bool = False) -> bool:
        started = time.monotonic()
        lease = await self.kube.get(LEASES, self.namespace, self.name)
        now = _now()
        if lease is None:
            try:
                await self.kube.create(LEASES, self.namespace, self._lease(now, now, 0))
            except KubeError as error:
                if error.conflict:
                    return False  # another replica created it first
                raise
            self._renewed_at = started
            return True
        spec = lease.get("spec") or {}
        holder = str(spec.get("holderIdentity") or "")
        observed = (holder, str(spec.get("renewTime") or ""))
        if observed != self._observed:
            self._observed, self._observed_at = observed, time.monotonic()
        expired = time.monotonic() - self._observed_at > float(
            spec.get("leaseDurationSeconds") or self.lease_seconds
        ) or (dead_here_expired and _dead_here(holder))
        if holder and holder != self.identity and not expired:
            return False
        transitions = int(spec.get("leaseTransitions") or 0)
        acquired = spec.get("acquireTime") or now
        if holder != self.identity:
            transitions, acquired = transitions + 1, now
        patch: dict[str, Any] = {
            "metadata": {"resourceVersion": lease["metadata"]["resourceVersion"]},
            "spec": self._lease(acquired, now, transitions)["spec"],
        }
        try:
            await self.kube.patch(LEASES, self.namespace, self.name, patch)
        except KubeError as error:
            if error.conflict:
                return False  # someone else wrote it since we read it
            raise
        self._renewed_at = started
        return True

    def _lease(self, acquired: str, renewed: str, transitions: int) -> dict[str, Any]:
        return {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {"name": self.name, "namespace": self.namespace},
            "spec": {
                "holderIdentity": self.identity,
                "leaseDurationSeconds": int(self.lease_seconds),
                "acquireTime": acquired,
                "renewTime": renewed,
                "leaseTransitions": transitions,
            },
        }
