"""Sandbox-only: API fault injection and request counters (for resilience tests and benches)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ecs_sandbox.runtime import Sandbox
from ecs_sandbox.server import Faults
from support.helpers import ClusterTarget, watch_lines

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
    faults.update({"error_rate": 0.5, "codes": [500, 503], "seed": 1})
    codes = [
        sandbox_target.http.get(f"/api/v1/namespaces/{namespace}/configmaps").status_code
        for _ in range(200)
    ]
    failed = [code for code in codes if code != 200]
    assert set(failed) == {500, 503}
    assert 50 < len(failed) < 150


def test_the_default_mix_is_what_real_servers_answer_and_conflicts_hit_writes_only(
    faults: Faults, sandbox_target: ClusterTarget, namespace: str
) -> None:
    assert Faults().codes == (500, 503, 429)
    realistic = Faults.realistic(seed=3)
    assert realistic.error_rate == 0.05 and realistic.codes == (500, 503, 429)
    assert realistic.watch_drop_interval and realistic.expire_rate > 0
    faults.update({"error_rate": 1.0, "codes": [409, 500]})
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    reads = {sandbox_target.http.get(path).status_code for _ in range(30)}
    assert reads == {500}  # never a 409 on a LIST
    writes = {
        sandbox_target.http.post(path, json={"metadata": {"generateName": "w-"}}).status_code
        for _ in range(30)
    }
    assert writes == {409, 500}
    faults.update({"codes": [409]})
    assert sandbox_target.http.get(path).status_code == 200  # no read can fail with a conflict


def test_faults_can_aim_at_verbs_and_resources_watches_included(
    faults: Faults, sandbox_target: ClusterTarget, namespace: str
) -> None:
    http = sandbox_target.http
    configmaps = f"/api/v1/namespaces/{namespace}/configmaps"
    assert http.post(configmaps, json={"metadata": {"name": "cm"}}).status_code == 201
    faults.update({"error_rate": 1.0, "codes": [403], "verbs": ["list", "watch"]})
    faults.update({"resources": ["configmaps"]})
    assert http.get(configmaps).status_code == 403
    watched = http.get(configmaps, params={"watch": "true"}, stream=True)
    assert watched.status_code == 403
    assert watched.json()["reason"] == "Forbidden"
    assert http.get(f"{configmaps}/cm").status_code == 200  # a get is not a list
    assert http.get(f"/api/v1/namespaces/{namespace}/secrets").status_code == 200
    bad = http.put("/sandbox/faults", json={"verbs": ["fetch"]})
    assert bad.status_code == 400 and "verbs" in bad.json()["message"]


def test_a_lost_create_response_leaves_the_object_created(
    faults: Faults, sandbox_target: ClusterTarget, namespace: str
) -> None:
    http = sandbox_target.http
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    faults.update({"lost_create_rate": 1.0})
    response = http.post(path, json={"metadata": {"name": "lost"}, "data": {"a": "1"}})
    assert response.status_code == 504
    assert response.json()["reason"] == "Timeout"
    assert http.get(f"{path}/lost").json()["data"] == {"a": "1"}
    retried = http.post(path, json={"metadata": {"name": "lost"}, "data": {"a": "1"}})
    assert retried.status_code == 409  # the retry finds it: AlreadyExists
    assert retried.json()["reason"] == "AlreadyExists"
    dry_run = http.post(path, params={"dryRun": "All"}, json={"metadata": {"name": "dry"}})
    assert dry_run.status_code == 201  # nothing committed, nothing lost


def test_expire_rate_answers_that_share_of_resumed_watches_410(
    faults: Faults, sandbox_target: ClusterTarget, namespace: str
) -> None:
    faults.update({"expire_rate": 1.0})
    path = f"/api/v1/namespaces/{namespace}/secrets"  # empty: a fresh watch lists nothing
    rv = sandbox_target.http.get(path).json()["metadata"]["resourceVersion"]
    resumed = sandbox_target.http.get(
        path, params={"watch": "true", "resourceVersion": rv}, stream=True
    )
    assert [e["object"]["code"] for e in watch_lines(resumed)] == [410]
    faults.update({"watch_drop_interval": 0.3})  # a fresh watch is never expired
    fresh = sandbox_target.http.get(path, params={"watch": "true"}, stream=True)
    assert list(watch_lines(fresh)) == []


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
