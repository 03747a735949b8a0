"""controllers.alarms: the alarms file, and reading alarms over HTTP from a server that answers
as Prometheus's /api/v1/query does (its rule is core.alarms'); what cannot be read is a problem
text, never an exception."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from ecs_operator.controllers.alarms import AlarmReader, load_alarms_file
from ecs_operator.core.alarms import AlarmDefinition
from support.prometheus import free_port

DEFINITIONS = [AlarmDefinition("errors", "app_errors"), AlarmDefinition("broken", "rate(")]


@pytest.fixture
async def prometheus() -> AsyncIterator[tuple[str, list[str]]]:
    """A stand-in answering like Prometheus: app_errors is 1, "rate(" is a parse error; it
    records the queries it gets."""
    asked: list[str] = []

    async def query(request: web.Request) -> web.Response:
        expression = request.query["query"]
        asked.append(expression)
        if expression == "app_errors":
            answer: dict[str, Any] = {
                "status": "success",
                "data": {"resultType": "vector", "result": [{"metric": {}, "value": [1, "1"]}]},
            }
            return web.json_response(answer)
        error = {"status": "error", "errorType": "bad_data", "error": "parse error"}
        return web.json_response(error, status=400)

    app = web.Application()
    app.router.add_get("/api/v1/query", query)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    yield f"http://127.0.0.1:{port}", asked
    await runner.cleanup()


async def test_readings_problems_and_the_cache(prometheus: tuple[str, list[str]]) -> None:
    url, asked = prometheus
    reader = AlarmReader(url, DEFINITIONS, interval_seconds=60, bake_seconds=10)
    try:
        readings = await reader.read(["errors", "broken", "missing"])
        assert readings.in_alarm == {"errors": True}
        assert readings.problems == {
            "broken": "Prometheus answered bad_data: parse error",
            "missing": "no such alarm in the operator's --alarms-file",
        }
        assert (readings.interval_seconds, readings.bake_seconds) == (60, 10)
        await reader.read(["errors"])
        assert asked.count("app_errors") == 1  # read again within half an interval: cached
    finally:
        await reader.close()


async def test_an_unreachable_or_missing_prometheus_is_a_problem() -> None:
    reader = AlarmReader(f"http://127.0.0.1:{free_port()}", DEFINITIONS, 1, 0)
    try:
        readings = await reader.read(["errors"])
        assert readings.in_alarm == {}
        assert "cannot be reached" in readings.problems["errors"]
    finally:
        await reader.close()
    nowhere = AlarmReader(None, DEFINITIONS, 1, 0)
    assert (await nowhere.read(["errors"])).problems == {
        "errors": "the operator has no --prometheus-url"
    }


def test_the_alarms_file_errors_name_the_file_and_field(tmp_path: Path) -> None:
    path = tmp_path / "alarms.yaml"
    path.write_text("alarms:\n  - name: errors\n    query: app_errors > 0\n")
    assert load_alarms_file(str(path)) == (AlarmDefinition("errors", "app_errors > 0"),)
    path.write_text("alarms:\n  - name: errors\n")
    with pytest.raises(ValueError, match=rf"--alarms-file {path}: alarms\[0\]\.query"):
        load_alarms_file(str(path))
    with pytest.raises(ValueError, match="--alarms-file /nonexistent"):
        load_alarms_file("/nonexistent/alarms.yaml")
