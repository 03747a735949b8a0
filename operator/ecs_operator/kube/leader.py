"""Leader election on a coordination.k8s.io/v1 Lease, as client-go's leaderelection does.

Several replicas may run; only the holder of the Lease reconciles. The others keep their watch
caches warm and take over once the holder has not renewed for `lease_seconds` (judged by the
time *this* replica last saw the Lease change, not by the holder's clock, so clock skew between
nodes cannot cause two leaders). Every write carries the resourceVersion it read, so two
candidates racing for an expired Lease cannot both win.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import UTC, datetime
from typing import Any

from ecs_operator.kube.client import LEASES, KubeClient, KubeError

logger = logging.getLogger(__name__)


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


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

    async def acquire(self) -> None:
        """Return once this replica holds the Lease."""
        # Polling is the protocol: the Lease lives in the API, nothing in-process to wait on.
        while not await self._try_acquire_or_renew():  # noqa: ASYNC110
            await asyncio.sleep(self.retry_seconds)
        logger.info(
            "leader election: %s now leads (lease %s/%s)", self.identity, self.namespace, self.name
        )

    async def hold(self) -> None:
        """Renew the Lease until a renewal deadline passes; then return (leadership lost)."""
        deadline = time.monotonic() + self.renew_seconds
        while True:
            await asyncio.sleep(self.retry_seconds)
            try:
                renewed = await self._try_acquire_or_renew()
            except KubeError as error:
                logger.warning("leader election: renewal failed: %s", error)
                renewed = False
            if renewed:
                deadline = time.monotonic() + self.renew_seconds
            elif time.monotonic() > deadline:
                logger.error("leader election: %s lost the lease", self.identity)
                return

    async def _try_acquire_or_renew(self) -> bool:
        lease = await self.kube.get(LEASES, self.namespace, self.name)
        now = _now()
        if lease is None:
            try:
                await self.kube.create(LEASES, self.namespace, self._lease(now, now, 0))
            except KubeError as error:
                if error.conflict:
                    return False  # another replica created it first
                raise
            return True
        spec = lease.get("spec") or {}
        holder = str(spec.get("holderIdentity") or "")
        observed = (holder, str(spec.get("renewTime") or ""))
        if observed != self._observed:
            self._observed, self._observed_at = observed, time.monotonic()
        expired = time.monotonic() - self._observed_at > float(
            spec.get("leaseDurationSeconds") or self.lease_seconds
        )
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
