"""Services on the sandbox, for the service integration tests and the resilience scenarios.

- `service(name, definition, **spec)`: a Service manifest.
- `Services`: the Services and Tasks of one namespace through the API, with deadlines. Every
  request is retried while the sandbox injects API faults (an injected fault fails before the
  request touches the store, so a retry is always safe), so the same client serves R2.
- `TaskWatch`: every Task event of a namespace, streamed into a local view; a check runs on the
  view after *each* event (the invariants of a rollout hold at every instant, not only at the
  instants a poll happens to look).
- Task predicates (`is_live`, `is_serving`, `zone_counts`, …) and node faults (`lose_node`,
  `restore_node`, `cordon`, `uncordon`).
"""

from __future__ import annotations

import math
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import requests

from support.ecs_api import GROUP, MERGE_PATCH, VERSION, Body, Ecs, KubectlRunner, condition
from support.helpers import ClusterTarget, wait_for, watch_lines

SERVICE_LABEL = f"{GROUP}/service"
TASK_LABEL = f"{GROUP}/task"
NODE_STATE_ANNOTATION = "sandbox.ecs.operator.dev/node-state"
KWOK_NODE_LABEL = "kwok.x-k8s.io/node"
EXIT_ANNOTATION = "sandbox.ecs.operator.dev/exit"
UNHEALTHY_ANNOTATION = "sandbox.ecs.operator.dev/unhealthy"
ZONES = ("zone-a", "zone-b", "zone-c")
NODES = tuple(f"node-{zone}-{n}" for zone in ZONES for n in (1, 2))
# Statuses an injected fault answers with; the request never reached the store.
RETRIED_STATUSES = frozenset({409, 429, 500, 503, 504})
INJECTED = "injected fault"
RETRY_ATTEMPTS = 50
WATCH_SECONDS = 5


def service(name: str, definition: str, **spec: Any) -> Body:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "Service",
        "metadata": {"name": name},
        "spec": {"taskDefinition": definition, **spec},
    }


def deployment_configuration(minimum: int, maximum: int, **extra: Any) -> Body:
    return {"minimumHealthyPercent": minimum, "maximumPercent": maximum, **extra}


# --- task predicates ---------------------------------------------------------------------


def task_status(task: Body) -> Body:
    status: Body = task.get("status") or {}
    return status


def is_stopped(task: Body) -> bool:
    return task_status(task).get("lastStatus") == "STOPPED"


def is_live(task: Body) -> bool:
    """Wanted running and not STOPPED: what maximumPercent bounds."""
    wanted = "STOPPED" not in (
        task["spec"].get("desiredStatus"),
        task_status(task).get("desiredStatus"),
    )
    return wanted and not is_stopped(task)


def is_serving(task: Body) -> bool:
    """Live, RUNNING and not UNHEALTHY: what minimumHealthyPercent bounds."""
    status = task_status(task)
    return (
        is_live(task)
        and status.get("lastStatus") == "RUNNING"
        and status.get("healthStatus") != "UNHEALTHY"
    )


def revision_of(task: Body) -> str:
    return str(task_status(task).get("taskDefinitionArn") or task["spec"]["taskDefinition"])


def describe_tasks(tasks: Iterable[Body]) -> str:
    """One line per task, oldest first: what a failed count needs to be understood."""
    lines = []
    for task in sorted(tasks, key=lambda t: t["metadata"].get("creationTimestamp") or ""):
        status = task_status(task)
        annotations = task["metadata"].get("annotations") or {}
        ordinal = annotations.get(f"{GROUP}/launch-ordinal")
        lines.append(
            f"{task['metadata'].get('creationTimestamp')} {task['metadata']['name']} "
            f"{task['spec'].get('startedBy')}#{ordinal} {revision_of(task)} "
            f"{status.get('lastStatus')} {status.get('stopCode') or ''} "
            f"{status.get('stoppedReason') or ''}"
        )
    return "\n".join(lines)


def node_of(task: Body) -> str | None:
    status = task_status(task)
    node = status.get("nodeName") or task["metadata"].get("annotations", {}).get(
        f"{GROUP}/placed-node"
    )
    return str(node) if node else None


def zone_counts(tasks: Iterable[Body]) -> Counter[str]:
    """Live tasks per zone, every sandbox zone listed (with 0)."""
    counts: Counter[str] = Counter(dict.fromkeys(ZONES, 0))
    for task in tasks:
        if is_live(task):
            counts[str(task_status(task).get("availabilityZone"))] += 1
    return counts


def is_balanced(counts: Counter[str], zones: Iterable[str] = ZONES) -> bool:
    values = [counts[zone] for zone in zones]
    return max(values) - min(values) <= 1


def deployment_bounds(desired: int, minimum: int, maximum: int) -> tuple[int, int]:
    """(most live tasks, fewest serving tasks) ECS allows: floor(D*max/100), ceil(D*min/100)."""
    return desired * maximum // 100, math.ceil(desired * minimum / 100)


# --- the client --------------------------------------------------------------------------


class Services:
    """Services and their Tasks in `ecs.namespace`, through the API, retried across faults."""

    def __init__(self, ecs: Ecs) -> None:
        self.ecs = ecs
        self.target = ecs.target
        self.http = ecs.target.http
        self.namespace = ecs.namespace

    def request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        """The response, once it is neither an injected fault nor a real server's "retry after"
        (a restarted kube-apiserver answers 429 while its storage initialises)."""
        for _ in range(RETRY_ATTEMPTS):
            response = self.http.request(method, path, **kwargs)
            retry_after = response.status_code == 429 and "retryAfterSeconds" in response.text
            injected = response.status_code in RETRIED_STATUSES and INJECTED in response.text
            if not (retry_after or injected):
                return response
            time.sleep(0.2 if retry_after else 0.02)
        raise AssertionError(f"{method} {path}: still failing after {RETRY_ATTEMPTS} attempts")

    def json(self, method: str, path: str, expected: Iterable[int], **kwargs: Any) -> Body:
        response = self.request(method, path, **kwargs)
        assert response.status_code in set(expected), f"{method} {path}: {response.text}"
        body: Body = response.json()
        return body

    # writes

    def create(self, name: str, definition: str, **spec: Any) -> Body:
        return self.create_body(service(name, definition, **spec))

    def create_body(self, body: Body) -> Body:
        plural = {"Service": "services", "Task": "tasks", "TaskDefinition": "taskdefinitions"}
        return self.json("POST", self.ecs.path(plural[body["kind"]]), (201,), json=body)

    def update(self, name: str, **spec: Any) -> Body:
        """UpdateService: merge `spec` into the Service's spec."""
        return self.patch("services", name, {"spec": spec})

    def patch(self, plural: str, name: str, patch: Body, group: str = GROUP) -> Body:
        version = "v1" if group == "" else VERSION
        return self.json(
            "PATCH",
            self.ecs.path(plural, name, group, version),
            (200,),
            json=patch,
            headers=MERGE_PATCH,
        )

    def update_task_definition(self, family: str, spec: Body) -> None:
        """Edit a TaskDefinition's spec (registers a new revision)."""
        self.patch("taskdefinitions", family, {"spec": spec})

    # reads

    def get(self, name: str) -> Body:
        return self.json("GET", self.ecs.path("services", name), (200,))

    def status(self, name: str) -> Body:
        status: Body = self.get(name).get("status") or {}
        return status

    def tasks(self, name: str) -> list[Body]:
        """Every Task object of the service (STOPPED ones too)."""
        params = {"labelSelector": f"{SERVICE_LABEL}={name}"}
        items: list[Body] = self.json("GET", self.ecs.path("tasks"), (200,), params=params)["items"]
        return items

    def all(self, plural: str, group: str = GROUP) -> list[Body]:
        version = "v1" if group == "" else VERSION
        items: list[Body] = self.json("GET", self.ecs.path(plural, "", group, version), (200,))[
            "items"
        ]
        return items

    def live(self, name: str) -> list[Body]:
        return [task for task in self.tasks(name) if is_live(task)]

    def messages(self, name: str) -> list[str]:
        """The service's ECS events, newest first."""
        return [event["message"] for event in self.status(name).get("events") or ()]

    def kube_events(self, name: str) -> list[Body]:
        return [
            event
            for event in self.all("events", group="")
            if event.get("involvedObject", {}).get("name") == name
            and event.get("involvedObject", {}).get("kind") == "Service"
        ]

    def primary(self, name: str) -> Body:
        deployments = self.status(name).get("deployments") or [{}]
        primary: Body = deployments[0]
        return primary

    # waiting

    def wait(
        self,
        predicate: Callable[[], Any],
        what: str,
        name: str,
        timeout: float = 20,
    ) -> Any:
        """`predicate()` once truthy; the failure shows the service and its tasks."""

        def describe() -> str:
            status = self.status(name)
            tasks = [
                (
                    t["metadata"]["name"],
                    revision_of(t),
                    task_status(t).get("lastStatus"),
                    t["spec"].get("desiredStatus"),
                    node_of(t),
                )
                for t in self.tasks(name)
            ]
            shown = {k: v for k, v in status.items() if k not in ("events", "scheduler")}
            return f"{shown}\nevents: {self.messages(name)[:8]}\ntasks: {tasks}"

        return self.ecs.wait(predicate, f"service {name}: {what}", describe, timeout)

    def steady(self, name: str, desired: int, revision: str | None = None) -> Body | None:
        """The status when the service runs `desired` tasks (of `revision`), nothing else is
        live, its only deployment is COMPLETED and the status is current; else None."""
        service = self.get(name)
        status: Body = service.get("status") or {}
        deployments = status.get("deployments") or []
        live = self.live(name)
        done = (
            status.get("observedGeneration") == service["metadata"]["generation"]
            and status.get("runningCount") == desired
            and status.get("desiredCount") == desired
            and len(deployments) == 1
            and deployments[0].get("rolloutState") == "COMPLETED"
            and len(live) == desired
            and all(task_status(t).get("lastStatus") == "RUNNING" for t in live)
            and (revision is None or all(revision_of(t) == revision for t in live))
        )
        return status if done else None

    def wait_steady(
        self, name: str, desired: int, revision: str | None = None, timeout: float = 20
    ) -> Body:
        result: Body = self.wait(
            lambda: self.steady(name, desired, revision),
            f"steady at {desired} ({revision})",
            name,
            timeout,
        )
        return result


def degraded(status: Body) -> Body:
    return condition(status, "Degraded")


# --- watching tasks ------------------------------------------------------------------------


Check = Callable[[dict[str, Body]], str | None]


class TaskWatch:
    """Every Task event of `namespace` applied to `tasks` (name -> object); `check(tasks)` runs
    after each event and what it returns (a description of a violation) is kept in
    `violations`. Use as a context manager; the view starts from a LIST."""

    def __init__(
        self, services: Services, check: Check | None = None, *, relist_on_expiry: bool = False
    ) -> None:
        self.services = services
        self.check = check
        # A resume answered 410 Expired: relist and check the listed view (what happened
        # between the last event and the list is not seen), instead of failing the test.
        self.relist_on_expiry = relist_on_expiry
        self.relists = 0
        self.tasks: dict[str, Body] = {}
        self.violations: list[str] = []
        self.events = 0
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="task-watch", daemon=True)
        self._lock = threading.Lock()
        self._version = ""

    def __enter__(self) -> TaskWatch:
        self._list(check=False)
        self._thread.start()
        return self

    def _list(self, *, check: bool = True) -> None:
        listed = self.services.json("GET", self.services.ecs.path("tasks"), (200,))
        with self._lock:
            self.tasks = {item["metadata"]["name"]: item for item in listed["items"]}
            self._version = listed["metadata"]["resourceVersion"]
            if check and self.check is not None:
                found = self.check(self.tasks)
                if found is not None:
                    self.violations.append(found)

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(WATCH_SECONDS + 5)

    def snapshot(self) -> dict[str, Body]:
        with self._lock:
            return dict(self.tasks)

    def _run(self) -> None:
        params = {"watch": "1", "allowWatchBookmarks": "true", "timeoutSeconds": WATCH_SECONDS}
        while not self._stop.is_set():
            try:
                with self.services.http.get(
                    self.services.ecs.path("tasks"),
                    params={**params, "resourceVersion": self._version},
                    stream=True,
                    timeout=WATCH_SECONDS + 10,
                ) as response:
                    for event in watch_lines(response):
                        self._apply(event)
                        if self._stop.is_set():
                            return
            except requests.RequestException as error:  # the stream broke: resume
                self.errors.append(repr(error))

    def _apply(self, event: Body) -> None:
        kind, obj = event["type"], event["object"]
        if kind == "ERROR":
            if self.relist_on_expiry and obj.get("code") == 410:
                self.relists += 1
                self._list()
                return
            self.errors.append(str(obj))
            self._stop.set()  # 410: the view would have a gap; the test fails on errors
            return
        self._version = obj["metadata"]["resourceVersion"]
        if kind == "BOOKMARK":
            return
        with self._lock:
            if kind == "DELETED":
                self.tasks.pop(obj["metadata"]["name"], None)
            else:
                self.tasks[obj["metadata"]["name"]] = obj
            self.events += 1
            if self.check is not None:
                found = self.check(self.tasks)
                if found is not None:
                    self.violations.append(found)

    def assert_clean(self) -> None:
        assert not [e for e in self.errors if "410" in e or "Expired" in e], self.errors
        assert self.events > 0, "the watch saw no event"
        assert not self.violations, "\n".join(self.violations[:10])


def bounds_check(
    service_name: str,
    desired: Callable[[], int],
    minimum: int,
    maximum: int,
    *,
    serving_floor: bool = True,
) -> Check:
    """A TaskWatch check: the service's live tasks never exceed floor(D*max/100) and (with
    `serving_floor`) its serving tasks never drop below ceil(D*min/100)."""

    def check(tasks: dict[str, Body]) -> str | None:
        mine = [
            t
            for t in tasks.values()
            if t["metadata"].get("labels", {}).get(SERVICE_LABEL) == (service_name)
        ]
        count = desired()
        most, fewest = deployment_bounds(count, minimum, maximum)
        live = sum(1 for t in mine if is_live(t))
        serving = sum(1 for t in mine if is_serving(t))
        if live > most:
            return f"{live} live tasks > {most} (D={count}, max={maximum}%)"
        if serving_floor and serving < fewest:
            return f"{serving} serving tasks < {fewest} (D={count}, min={minimum}%)"
        return None

    return check


# --- nodes ----------------------------------------------------------------------------------


def node_ready(target: ClusterTarget, node: str) -> bool:
    conditions = target.http.get(f"/api/v1/nodes/{node}").json()["status"]["conditions"]
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)


def set_node_state(target: ClusterTarget, node: str, state: str | None) -> None:
    """Lose (`lost`) or restore (None) a node. The sandbox reads the annotation; on the real
    control plane the node also leaves kwok's label selector, so its Lease really stops being
    renewed and kube-controller-manager marks it Unknown and taints it (and back)."""
    metadata: Body = {"annotations": {NODE_STATE_ANNOTATION: state}}
    if not target.is_sandbox:
        metadata["labels"] = {KWOK_NODE_LABEL: None if state == "lost" else "fake"}
    response = target.http.patch(
        f"/api/v1/nodes/{node}", json={"metadata": metadata}, headers=MERGE_PATCH
    )
    assert response.ok, response.text


def lose_node(target: ClusterTarget, node: str, timeout: float = 15) -> None:
    """Stop the node's heartbeat and kubelet; returns once it is NotReady."""
    set_node_state(target, node, "lost")
    wait_for(
        lambda: not node_ready(target, node),
        timeout * target.slowness,
        message=f"{node} is still Ready",
    )


def restore_node(target: ClusterTarget, node: str, timeout: float = 15) -> None:
    set_node_state(target, node, None)
    wait_for(
        lambda: node_ready(target, node),
        timeout * target.slowness,
        message=f"{node} is not Ready again",
    )


@contextmanager
def nodes_lost(target: ClusterTarget, *nodes: str) -> Iterator[None]:
    """The nodes are lost inside the block, and Ready again after it (even on failure)."""
    try:
        for node in nodes:
            set_node_state(target, node, "lost")
        for node in nodes:
            wait_for(
                lambda n=node: not node_ready(target, n),
                15 * target.slowness,
                message=f"{node} still Ready",
            )
        yield
    finally:
        for node in nodes:
            restore_node(target, node)


@contextmanager
def cordoned(kubectl: KubectlRunner, target: ClusterTarget, node: str) -> Iterator[None]:
    """`kubectl cordon` inside the block, `kubectl uncordon` after it (even on failure)."""
    result = kubectl("cordon", node)
    assert result.returncode == 0, result.stderr
    try:
        yield
    finally:
        result = kubectl("uncordon", node)
        assert result.returncode == 0, result.stderr
        wait_for(
            lambda: (
                not target.http.get(f"/api/v1/nodes/{node}").json()["spec"].get("unschedulable")
            ),
            10,
            message=f"{node} is still cordoned",
        )
