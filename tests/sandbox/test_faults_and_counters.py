"""Sandbox-only: API fault injection and request counters (for resilience tests and benches)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ecs_operator.sandbox.runtime import Sandbox
from ecs_operator.sandbox.server import Faults
from helpers import ClusterTarget, watch_lines

pytestmark = pytest.mark.sandbox_only


@pytest.fixture
def faults(sandbox: Sandbox) -> Iterator[Faults]:
    yield sandbox.faults
    sandbox.faults.update(Faults().to_dict())


def test_error_rate_injects_the_chosen_codes(
    faults: Faults, sandbox_target: ClusterTarget, namespace: str
) -> None:
    faults.update({"error_rate": 1.0, "codes": [429], "seed": 7})
    response = sandbox_target.http.get(f"/api/v1/namespaces/{namespace}/configmaps")
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "1"
    status = response.json()
    assert status["reason"] == "TooManyRequests"
    assert status["details"]["retryAfterSeconds"] == 1
    # Discovery and health stay up, so clients can still find their way.
    assert sandbox_target.http.get("/api/v1").status_code == 200
    assert sandbox_target.http.get("/healthz").status_code == 200


def test_error_rate_is_a_share_of_requests(
    faults: Faults, sandbox_target: ClusterTarget, namespace: str
) -> None:
    faults.update({"error_rate": 0.5, "codes": [500, 409], "seed": 1})
    codes = [
        sandbox_target.http.get(f"/api/v1/namespaces/{namespace}/configmaps").status_code
        for _ in range(200)
    ]
    failed = [code for code in codes if code != 200]
    assert set(failed) == {500, 409}
    assert 50 < len(failed) < 150


def test_faults_endpoint(faults: Faults, sandbox_target: ClusterTarget) -> None:
    response = sandbox_target.http.put("/sandbox/faults", json={"watch_drop_interval": 0.5})
    assert response.status_code == 200, response.text
    assert sandbox_target.http.get("/sandbox/faults").json()["watch_drop_interval"] == 0.5
    assert faults.watch_drop_interval == 0.5
    bad = sandbox_target.http.put("/sandbox/faults", json={"error_rate": 3})
    assert bad.status_code == 400
    assert "error_rate" in bad.json()["message"]
    assert faults.error_rate == 0.0


def test_watch_drop_closes_open_watches(
    faults: Faults, sandbox_target: ClusterTarget, namespace: str
) -> None:
    faults.update({"watch_drop_interval": 0.3})
    response = sandbox_target.http.get(
        f"/api/v1/namespaces/{namespace}/secrets", params={"watch": "true"}, stream=True
    )
    assert list(watch_lines(response)) == []  # ends on its own, well before any timeout


def test_expire_on_resume_answers_410(
    faults: Faults, sandbox_target: ClusterTarget, namespace: str
) -> None:
    faults.update({"expire_on_resume": True})
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    rv = sandbox_target.http.get(path).json()["metadata"]["resourceVersion"]
    response = sandbox_target.http.get(
        path, params={"watch": "true", "resourceVersion": rv}, stream=True
    )
    events = list(watch_lines(response))
    assert [e["type"] for e in events] == ["ERROR"]
    assert events[0]["object"]["code"] == 410


def test_counters_count_requests_per_verb_and_resource(
    sandbox: Sandbox, sandbox_target: ClusterTarget, namespace: str
) -> None:
    before = sandbox.counters.get("create", "configmaps")
    writes_before = sandbox.counters.writes
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    sandbox_target.http.post(path, json={"metadata": {"name": "counted"}})
    sandbox_target.http.patch(
        f"{path}/counted",
        json={"data": {"a": "b"}},
        headers={"Content-Type": "application/merge-patch+json"},
    )
    assert sandbox.counters.get("create", "configmaps") == before + 1
    assert sandbox.counters.writes >= writes_before + 2
    exported = sandbox_target.http.get("/sandbox/counters").json()
    assert exported["counts"]["patch"]["configmaps"] >= 1
    assert exported["writes"] >= 2
