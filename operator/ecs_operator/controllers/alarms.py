"""Deployment alarms read from Prometheus for the Service controller (``core.alarms`` decides).

Each alarm of the install (``--alarms-file``) is a PromQL query sent to ``--prometheus-url``'s
HTTP API (``GET /api/v1/query``). A reading is reused for half the evaluation interval, so
however many Services watch an alarm and however often they reconcile, Prometheus sees at most
two queries per alarm and interval. What cannot be read (an alarm the file does not define, no
``--prometheus-url``, Prometheus unreachable, slow or answering an error) becomes a problem
text for ``core.alarms``, which reports it; nothing here raises.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from pathlib import Path

import aiohttp
import yaml

from ecs_operator.core.alarms import AlarmDefinition, AlarmReadings, in_alarm, parse_alarms

logger = logging.getLogger(__name__)

QUERY_TIMEOUT_SECONDS = 5.0


def load_alarms_file(path: str) -> tuple[AlarmDefinition, ...]:
    """The alarms of ``path``; ``ValueError`` naming the file and the field when it is not
    one."""
    try:
        document = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as error:
        raise ValueError(f"--alarms-file {path}: {error}") from None
    return tuple(parse_alarms(document, f"--alarms-file {path}"))


class AlarmReader:
    """Reads the alarms a Service names, with a short-lived cache of each alarm's reading."""

    def __init__(
        self,
        prometheus_url: str | None,
        definitions: Sequence[AlarmDefinition],
        interval_seconds: float,
        bake_seconds: float,
    ) -> None:
        self.url = prometheus_url.rstrip("/") + "/api/v1/query" if prometheus_url else None
        self.queries = {d.name: d.query for d in definitions}
        self.interval = interval_seconds
        self.bake = bake_seconds
        # alarm -> (monotonic time read, in ALARM, or why it could not be read)
        self._readings: dict[str, tuple[float, bool | str]] = {}
        self._session: aiohttp.ClientSession | None = None

    async def read(self, names: Sequence[str]) -> AlarmReadings:
        firing: dict[str, bool] = {}
        problems: dict[str, str] = {}
        if names:
            results = await asyncio.gather(*(self._reading(name) for name in names))
            for name, result in zip(names, results, strict=True):
                if isinstance(result, bool):
                    firing[name] = result
                else:
                    problems[name] = result
        return AlarmReadings(firing, problems, self.interval, self.bake)

    async def _reading(self, name: str) -> bool | str:
        query = self.queries.get(name)
        if query is None:
            return "no such alarm in the operator's --alarms-file"
        if self.url is None:
            return "the operator has no --prometheus-url"
        cached = self._readings.get(name)
        now = time.monotonic()
        if cached is not None and now - cached[0] < self.interval / 2:
            return cached[1]
        result = await self._query(name, query)
        self._readings[name] = (time.monotonic(), result)
        return result

    async def _query(self, name: str, query: str) -> bool | str:
        assert self.url is not None
        if self._session is None:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=QUERY_TIMEOUT_SECONDS)
            )
        try:
            async with self._session.get(self.url, params={"query": query}) as response:
                answer = await response.json(content_type=None)
            if not isinstance(answer, dict):
                return f"Prometheus answered HTTP {response.status} without a JSON object"
            return in_alarm(answer)
        except (aiohttp.ClientError, TimeoutError) as error:
            problem = f"Prometheus at {self.url} cannot be reached: {error or type(error).__name__}"
        except ValueError as error:  # a body that is not JSON, or not a query answer
            problem = str(error) or f"Prometheus at {self.url} did not answer a query"
        logger.warning("deployment alarm %s: %s", name, problem)
        return problem

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
