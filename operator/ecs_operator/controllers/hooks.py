"""The calls of AWS_LAMBDA lifecycle hooks for the Service controller (``core.lifecycle_hooks``
decides which runs are due and what a reply means).

There is no Lambda on Kubernetes: a hook's ``hookTargetArn`` is a URL, and a call POSTs ECS's
invocation payload to it as JSON, bounded by ``CALL_TIMEOUT_SECONDS``. A 2xx answer's JSON body
is the reply; what has none (unreachable, too slow, not 2xx, not JSON) is a reply with the
problem, which the core takes as a Lambda function error. Nothing here raises or waits for a
callBackDelay: the core schedules the next call as a requeue.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Sequence

import aiohttp

from ecs_operator.core.lifecycle_hooks import HookCall, HookReply

logger = logging.getLogger(__name__)

CALL_TIMEOUT_SECONDS = 10.0
# What of a failed answer's body is kept in the reason: enough to say what went wrong.
BODY_EXCERPT = 200


def _not_json(constant: str) -> None:
    """NaN and Infinity, which Python's json reads but JSON (and the status) has not."""
    raise ValueError(f"{constant} is not JSON")


class HookCaller:
    """POSTs hook payloads; one HTTP session for every Service."""

    def __init__(self, timeout_seconds: float = CALL_TIMEOUT_SECONDS) -> None:
        self.timeout = timeout_seconds
        self._session: aiohttp.ClientSession | None = None

    async def call_all(self, calls: Sequence[HookCall]) -> dict[str, HookReply]:
        """Each call's reply by hookId; the calls of one stage run in parallel."""
        if not calls:
            return {}
        replies = await asyncio.gather(*(self._call(call) for call in calls))
        return {call.hook_id: reply for call, reply in zip(calls, replies, strict=True)}

    async def _call(self, call: HookCall) -> HookReply:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout))
        try:
            async with self._session.post(call.url, json=call.payload) as response:
                body = await response.text()
                if not 200 <= response.status < 300:
                    excerpt = body[:BODY_EXCERPT].strip()
                    problem = f"it answered HTTP {response.status}" + (
                        f": {excerpt}" if excerpt else ""
                    )
                else:
                    return HookReply(answer=json.loads(body, parse_constant=_not_json))
        except TimeoutError:
            problem = f"no answer within {self.timeout:g} seconds"
        except aiohttp.ClientError as error:
            problem = f"it cannot be reached: {error or type(error).__name__}"
        except ValueError:  # the 2xx body is not JSON (UnicodeDecodeError is one too)
            problem = "its answer is not JSON"
        logger.warning(
            "lifecycle hook %s: the call of %s failed: %s", call.hook_id, call.url, problem
        )
        return HookReply(error=problem)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
