"""Lists and watches: selectors, pagination, resume, bookmarks, timeouts and 410."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from support.helpers import ClusterTarget, wait_for, watch_lines

MERGE = {"Content-Type": "application/merge-patch+json"}


def configmaps(namespace: str) -> str:
    return f"/api/v1/namespaces/{namespace}/configmaps"


def make(
    cluster: ClusterTarget, namespace: str, name: str, labels: dict[str, str]
) -> dict[str, Any]:
    body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "labels": labels}}
    response = cluster.http.post(configmaps(namespace), json=body)
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


# kube-controller-manager publishes this unlabelled ConfigMap in every namespace (so does the
# sandbox's simulated one): selectors that match unlabelled objects list it too.
ROOT_CA = "kube-root-ca.crt"


@pytest.fixture
def labelled(cluster: ClusterTarget, cluster_namespace: str) -> str:
    make(cluster, cluster_namespace, "a", {"app": "web", "tier": "front", "version": "1"})
    make(cluster, cluster_namespace, "b", {"app": "web", "tier": "back"})
    make(cluster, cluster_namespace, "c", {"app": "db"})
    make(cluster, cluster_namespace, "d", {})
    wait_for(
        lambda: cluster.http.get(f"{configmaps(cluster_namespace)}/{ROOT_CA}").ok,
        30,
        message=f"{ROOT_CA} was never published in {cluster_namespace}",
    )
    return cluster_namespace


def names(cluster: ClusterTarget, namespace: str, **params: str) -> list[str]:
    response = cluster.http.get(configmaps(namespace), params=params)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["kind"] == "ConfigMapList"
    assert body["apiVersion"] == "v1"
    return sorted(item["metadata"]["name"] for item in body["items"])


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        ("app=web", ["a", "b"]),
        ("app==web", ["a", "b"]),
        ("app!=web", ["c", "d", ROOT_CA]),
        ("app in (web,db)", ["a", "b", "c"]),
        ("app notin (web)", ["c", "d", ROOT_CA]),
        ("tier", ["a", "b"]),
        ("!tier", ["c", "d", ROOT_CA]),
        ("app=web,tier=back", ["b"]),
        ("app=web,!version", ["b"]),
        ("app=nothing", []),
    ],
)
def test_label_selectors(
    cluster: ClusterTarget, labelled: str, selector: str, expected: list[str]
) -> None:
    assert names(cluster, labelled, labelSelector=selector) == expected


def test_field_selectors(cluster: ClusterTarget, labelled: str) -> None:
    assert names(cluster, labelled, fieldSelector="metadata.name=b") == ["b"]
    assert names(cluster, labelled, fieldSelector="metadata.name!=b") == ["a", "c", "d", ROOT_CA]
    assert names(cluster, labelled, fieldSelector=f"metadata.namespace={labelled}") == [
        "a",
        "b",
        "c",
        "d",
        ROOT_CA,
    ]


def test_bad_selectors_are_400(cluster: ClusterTarget, labelled: str) -> None:
    for params in ({"labelSelector": "app in web"}, {"fieldSelector": "spec.nothing=1"}):
        response = cluster.http.get(configmaps(labelled), params=params)
        assert response.status_code == 400, params
        assert response.json()["reason"] == "BadRequest"


def test_limit_and_continue(cluster: ClusterTarget, labelled: str) -> None:
    seen: list[str] = []
    params = {"limit": "3"}
    pages = 0
    while True:
        page = cluster.http.get(configmaps(labelled), params=params).json()
        pages += 1
        assert len(page["items"]) <= 3
        seen.extend(item["metadata"]["name"] for item in page["items"])
        token = page["metadata"].get("continue")
        if not token:
            break
        params = {"limit": "3", "continue": token}
    assert sorted(seen) == ["a", "b", "c", "d", ROOT_CA]
    assert pages == 2


def test_bad_continue_token_is_400(cluster: ClusterTarget, labelled: str) -> None:
    response = cluster.http.get(configmaps(labelled), params={"limit": "1", "continue": "garbage"})
    assert response.status_code in (400, 410)
    assert response.json()["kind"] == "Status"


class Watcher:
    """A watch request read in a background thread."""

    def __init__(self, cluster: ClusterTarget, path: str, **params: str) -> None:
        self.events: list[dict[str, Any]] = []
        self.closed = threading.Event()
        self.response = cluster.http.get(path, params={"watch": "true", **params}, stream=True)
        assert self.response.status_code == 200, self.response.text
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        try:
            for event in watch_lines(self.response):
                self.events.append(event)
        except Exception:
            pass
        finally:
            self.closed.set()

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e["type"] == kind]

    def names(self, kind: str) -> list[str]:
        return [e["object"]["metadata"]["name"] for e in self.of(kind)]

    def stop(self) -> None:
        # Shut the socket down first: a reader blocked in recv() would otherwise hold
        # `close()` until the next byte arrives.
        connection = getattr(self.response.raw, "connection", None)
        sock = getattr(connection, "sock", None)
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        self.response.close()
        self.thread.join(5)


@pytest.fixture
def watcher_factory() -> Iterator[Any]:
    started: list[Watcher] = []

    def start(cluster: ClusterTarget, path: str, **params: str) -> Watcher:
        watcher = Watcher(cluster, path, **params)
        started.append(watcher)
        return watcher

    yield start
    for watcher in started:
        watcher.stop()


def test_watch_initial_and_live_events(
    cluster: ClusterTarget, labelled: str, watcher_factory: Any
) -> None:
    watcher = watcher_factory(cluster, configmaps(labelled), labelSelector="app=web")
    wait_for(lambda: sorted(watcher.names("ADDED")) == ["a", "b"], 10)
    cluster.http.patch(f"{configmaps(labelled)}/a", json={"data": {"k": "v"}}, headers=MERGE)
    wait_for(lambda: watcher.names("MODIFIED") == ["a"], 10)
    # Leaving the selector is seen as DELETED, entering it as ADDED.
    cluster.http.patch(
        f"{configmaps(labelled)}/b", json={"metadata": {"labels": {"app": "x"}}}, headers=MERGE
    )
    wait_for(lambda: watcher.names("DELETED") == ["b"], 10)
    cluster.http.patch(
        f"{configmaps(labelled)}/c", json={"metadata": {"labels": {"app": "web"}}}, headers=MERGE
    )
    wait_for(lambda: sorted(watcher.names("ADDED")) == ["a", "b", "c"], 10)
    cluster.http.delete(f"{configmaps(labelled)}/a")
    wait_for(lambda: watcher.names("DELETED") == ["b", "a"], 10)


def test_watch_resumes_from_resource_version(
    cluster: ClusterTarget, cluster_namespace: str, watcher_factory: Any
) -> None:
    make(cluster, cluster_namespace, "before", {})
    rv = cluster.http.get(configmaps(cluster_namespace)).json()["metadata"]["resourceVersion"]
    make(cluster, cluster_namespace, "after1", {})
    make(cluster, cluster_namespace, "after2", {})
    watcher = watcher_factory(cluster, configmaps(cluster_namespace), resourceVersion=rv)
    wait_for(lambda: watcher.names("ADDED") == ["after1", "after2"], 10)
    rvs = [int(e["object"]["metadata"]["resourceVersion"]) for e in watcher.events]
    assert rvs == sorted(rvs)
    assert all(r > int(rv) for r in rvs)


def test_watch_of_one_object_by_field_selector(
    cluster: ClusterTarget, labelled: str, watcher_factory: Any
) -> None:
    watcher = watcher_factory(cluster, configmaps(labelled), fieldSelector="metadata.name=c")
    wait_for(lambda: watcher.names("ADDED") == ["c"], 10)
    cluster.http.delete(f"{configmaps(labelled)}/d")
    cluster.http.delete(f"{configmaps(labelled)}/c")
    wait_for(lambda: watcher.names("DELETED") == ["c"], 10)
    assert "d" not in watcher.names("DELETED")


def test_watch_timeout_seconds_closes_the_stream(
    cluster: ClusterTarget, cluster_namespace: str
) -> None:
    started = time.monotonic()
    response = cluster.http.get(
        configmaps(cluster_namespace), params={"watch": "1", "timeoutSeconds": "1"}, stream=True
    )
    list(watch_lines(response))  # returns only when the server ends the stream
    assert time.monotonic() - started < 30


@pytest.mark.sandbox_only
def test_bookmarks_carry_the_resource_version(
    cluster: ClusterTarget, cluster_namespace: str, watcher_factory: Any
) -> None:
    if not cluster.is_sandbox:
        pytest.skip("sandbox-only: a real server sends bookmarks about once a minute")
    created = make(cluster, cluster_namespace, "bm", {})
    watcher = watcher_factory(cluster, configmaps(cluster_namespace), allowWatchBookmarks="true")
    bookmark = wait_for(lambda: watcher.of("BOOKMARK"), 10)[0]["object"]
    assert bookmark["kind"] == "ConfigMap"
    assert bookmark["apiVersion"] == "v1"
    assert int(bookmark["metadata"]["resourceVersion"]) >= int(
        created["metadata"]["resourceVersion"]
    )
    assert set(bookmark) == {"kind", "apiVersion", "metadata"}


@pytest.mark.sandbox_only
def test_too_old_resource_version_is_an_error_event_410(
    cluster: ClusterTarget, cluster_namespace: str
) -> None:
    if not cluster.is_sandbox:
        pytest.skip("sandbox-only: needs the event window overrun on demand")
    sandbox = cluster.sandbox.sandbox
    rt = sandbox.registry.get("coordination.k8s.io", "v1", "leases")
    lease = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": {"name": "churn"}}
    first = cluster.sandbox.call(sandbox.store.create, rt, cluster_namespace, lease)
    old_rv = first["metadata"]["resourceVersion"]

    def churn() -> None:
        for n in range(sandbox.store.watch_window + 5):
            sandbox.store.patch(
                rt,
                cluster_namespace,
                "churn",
                {"spec": {"leaseDurationSeconds": n + 1}},
                "application/merge-patch+json",
            )

    cluster.sandbox.call(churn, timeout=120)
    response = cluster.http.get(
        f"/apis/coordination.k8s.io/v1/namespaces/{cluster_namespace}/leases",
        params={"watch": "true", "resourceVersion": old_rv},
        stream=True,
    )
    assert response.status_code == 200
    events = list(watch_lines(response))
    assert len(events) == 1
    assert events[0]["type"] == "ERROR"
    status = events[0]["object"]
    assert status["kind"] == "Status"
    assert status["code"] == 410
    assert status["reason"] in ("Expired", "Gone")


def test_list_resource_version_then_watch_sees_only_newer(
    cluster: ClusterTarget, labelled: str, watcher_factory: Any
) -> None:
    listed = cluster.http.get(configmaps(labelled)).json()
    rv = listed["metadata"]["resourceVersion"]
    watcher = watcher_factory(cluster, configmaps(labelled), resourceVersion=rv)
    make(cluster, labelled, "e", {})
    wait_for(lambda: watcher.names("ADDED") == ["e"], 10)
