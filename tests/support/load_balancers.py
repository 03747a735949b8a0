"""LoadBalancers on the sandbox, for the load-balancer integration tests.

- `load_balancer(name, **spec)`, `web_definition(family, **container)`: manifests. The default
  LoadBalancer checks health as fast as ELBv2 allows (5 s interval, thresholds 2) and drains for
  DEREGISTRATION_DELAY seconds; the task's container `web` declares WEB_PORT.
- `LoadBalancers`: the LoadBalancers, their Kubernetes Service and EndpointSlices in one
  namespace (through `support.services.Services`, so requests are retried across faults).
- `ClusterWatch`: watches several kinds of one namespace at once and keeps every event; since the
  sandbox has one global resourceVersion, `replay()` applies them in resourceVersion order (the
  order the API server committed them, which separate streams do not preserve) and runs a check
  after *each* event.
- `EndpointInvariants`: the R5 check run on every event (see its docstring).
- `create_staged_service` (with `blue_green`, `pause_hook`), `deploy_web_revision`: a staged
  (BLUE_GREEN, LINEAR, CANARY) deployment's starting point, blue steady and serving, and the
  next revision to deploy.
"""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import requests

from support.ecs_api import GROUP, VERSION, Body, container, shell, task_definition
from support.helpers import watch_lines
from support.services import SERVICE_LABEL, Services

LB_NAME = "web-lb"
WEB_CONTAINER = "web"
WEB_PORT = 8080
LISTENER_PORT = 80
DEREGISTRATION_DELAY = 3
FAST_HEALTH_CHECK: Body = {
    "intervalSeconds": 5,
    "timeoutSeconds": 2,
    "healthyThresholdCount": 2,
    "unhealthyThresholdCount": 2,
}
SERVICE_NAME_LABEL = "kubernetes.io/service-name"
SLICE_MANAGED_BY_LABEL = "endpointslice.kubernetes.io/managed-by"
STOPPED_STATES = frozenset({"STOPPING", "DEPROVISIONING", "STOPPED"})
# Task states in which a healthy target may still be listed: RUNNING, and DEACTIVATING, which the
# Task controller may write in the instant between the stop decision and the deregistration.
SERVING_STATES = frozenset({"RUNNING", "DEACTIVATING"})
WATCH_SECONDS = 5


def load_balancer(name: str = LB_NAME, **spec: Any) -> Body:
    body: Body = {
        "listeners": [{"port": LISTENER_PORT}],
        "deregistrationDelaySeconds": DEREGISTRATION_DELAY,
        "healthCheck": dict(FAST_HEALTH_CHECK),
    }
    body.update(spec)
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "LoadBalancer",
        "metadata": {"name": name},
        "spec": body,
    }


def web_definition(family: str, **fields: Any) -> Body:
    """A TaskDefinition whose container `web` declares WEB_PORT and runs until stopped."""
    web = container(
        WEB_CONTAINER,
        shell("while true; do sleep 5; done"),
        portMappings=[{"containerPort": WEB_PORT}],
        **fields,
    )
    return task_definition(family, web)


def lb_entry(
    name: str = LB_NAME, container_name: str = WEB_CONTAINER, port: int = WEB_PORT
) -> Body:
    return {"loadBalancerName": name, "containerName": container_name, "containerPort": port}


def endpoint_listed(endpoint: Body) -> bool:
    """Ready or serving: the endpoint takes traffic."""
    conditions = endpoint.get("conditions") or {}
    return bool(conditions.get("ready") or conditions.get("serving"))


def parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


# --- the client ----------------------------------------------------------------------------


class LoadBalancers:
    """The LoadBalancers of `services.namespace` and the data path the operator keeps."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self.ecs = services.ecs

    def create(self, body: Body) -> Body:
        return self.services.json("POST", self.ecs.path("loadbalancers"), (201,), json=body)

    def delete(self, name: str = LB_NAME) -> None:
        self.services.json("DELETE", self.ecs.path("loadbalancers", name), (200, 202))

    def get(self, name: str = LB_NAME) -> Body | None:
        response = self.services.request("GET", self.ecs.path("loadbalancers", name))
        if response.status_code == 404:
            return None
        assert response.ok, response.text
        found: Body = response.json()
        return found

    def status(self, name: str = LB_NAME) -> Body:
        status: Body = (self.get(name) or {}).get("status") or {}
        return status

    def targets(self, name: str = LB_NAME) -> list[Body]:
        targets: list[Body] = self.status(name).get("targets") or []
        return targets

    def kubernetes_service(self, name: str = LB_NAME) -> Body | None:
        response = self.services.request("GET", self.ecs.path("services", name, group=""))
        if response.status_code == 404:
            return None
        assert response.ok, response.text
        found: Body = response.json()
        return found

    def slices(self, name: str = LB_NAME) -> list[Body]:
        path = self.ecs.path("endpointslices", group="discovery.k8s.io", version="v1")
        params = {"labelSelector": f"{SERVICE_NAME_LABEL}={name}"}
        items: list[Body] = self.services.json("GET", path, (200,), params=params)["items"]
        return items

    def listed_endpoints(self, name: str = LB_NAME) -> dict[str, str]:
        """Pod name -> IP of every ready or serving endpoint of the LoadBalancer's Service."""
        return {
            endpoint["targetRef"]["name"]: endpoint["addresses"][0]
            for piece in self.slices(name)
            for endpoint in piece.get("endpoints") or ()
            if endpoint_listed(endpoint)
        }

    def running_pod_ips(self, service: str) -> dict[str, str]:
        """Pod name -> IP of the service's RUNNING tasks."""
        running = {
            t["metadata"]["name"]
            for t in self.services.tasks(service)
            if (t.get("status") or {}).get("lastStatus") == "RUNNING"
            and t["spec"].get("desiredStatus", "RUNNING") == "RUNNING"
        }
        pods = self.services.all("pods", group="")
        return {
            p["metadata"]["name"]: p["status"]["podIP"]
            for p in pods
            if p["metadata"]["name"] in running and (p.get("status") or {}).get("podIP")
        }

    def serving_all_running(self, service: str, count: int, name: str = LB_NAME) -> Body | None:
        """The LoadBalancer's status when exactly the service's `count` RUNNING tasks are
        listed (by Pod IP) and healthy, and no other target remains; else None."""
        status = self.status(name)
        running = self.running_pod_ips(service)
        targets = status.get("targets") or []
        done = (
            len(running) == count
            and self.listed_endpoints(name) == running
            and status.get("healthyCount") == count
            and len(targets) == count
        )
        return status if done else None

    def event_counts(self, service: str) -> Counter[str]:
        """message -> times recorded, of the Kubernetes Events on the ECS Service (the
        recorder aggregates repeats into one Event with a count)."""
        counts: Counter[str] = Counter()
        for event in self.services.kube_events(service):
            counts[event["message"]] += int(event.get("count") or 1)
        return counts


# --- a staged deployment's starting point ----------------------------------------------------


def blue_green(*hooks: Body) -> Body:
    """A BLUE_GREEN deploymentConfiguration that bakes 0 minutes, with `hooks` as its
    lifecycleHooks (none named when there are none)."""
    configuration: Body = {"strategy": "BLUE_GREEN", "bakeTimeInMinutes": 0}
    if hooks:
        configuration["lifecycleHooks"] = list(hooks)
    return configuration


def pause_hook(minutes: int = 60, action: str = "ROLLBACK") -> Body:
    """A PAUSE lifecycle hook at POST_SCALE_UP: it holds the deployment until answered, or
    until `minutes` pass and `action` applies."""
    return {
        "targetType": "PAUSE",
        "lifecycleStages": ["POST_SCALE_UP"],
        "timeoutConfiguration": {"timeoutInMinutes": minutes, "action": action},
    }


def create_staged_service(
    lbs: LoadBalancers,
    name: str,
    family: str,
    desired: int,
    configuration: Body,
    timeout: float,
    **spec: Any,
) -> Body:
    """The LoadBalancer LB_NAME, TaskDefinition `family` (`web_definition`) and Service `name`
    behind it with `configuration` as its deploymentConfiguration (and `spec`'s other fields);
    its status once its first deployment is steady at `desired` tasks of `family`:1 (blue), all
    of them listed."""
    services = lbs.services
    lbs.create(load_balancer())
    services.create_body(web_definition(family))
    services.ecs.wait_accepted(family)
    services.create(
        name,
        family,
        desiredCount=desired,
        loadBalancers=[lb_entry()],
        deploymentConfiguration=configuration,
        **spec,
    )
    status = services.wait_steady(name, desired, f"{family}:1", timeout)
    services.ecs.wait(
        lambda: len(lbs.listed_endpoints()) == desired,
        "blue serving",
        lambda: lbs.listed_endpoints(),
        timeout,
    )
    return status


def deploy_web_revision(services: Services, family: str, value: str) -> None:
    """Register the next revision of `web_definition(family)`, its environment variable V set
    to `value`: a Service running the family deploys it."""
    spec = web_definition(family, environment=[{"name": "V", "value": value}])["spec"]
    services.update_task_definition(family, spec)


# --- watching several kinds at once ----------------------------------------------------------


@dataclass(order=True)
class WatchEvent:
    resource_version: int
    kind: str = field(compare=False)
    type: str = field(compare=False)
    object: Body = field(compare=False)


class ClusterWatch:
    """Every event of the given kinds (kind -> collection path) of one namespace, from a LIST
    taken when entering. Use as a context manager; `replay(check)` afterwards.

    Leaving takes a fence, the cluster's resourceVersion at that moment, and each kind's watch
    runs on until it is past the fence (an event or bookmark beyond it, or a stream that ended
    after the fence was taken); `replay` stops at the fence. Every kind's history is then
    complete up to the same point: streams stopped one by one would each miss a different
    tail, and a task's last change missed while a later slice was kept reads as a violation."""

    def __init__(self, services: Services, paths: dict[str, str]) -> None:
        self.services = services
        self.paths = paths
        self.initial: dict[str, dict[str, Body]] = {}
        self.events: list[WatchEvent] = []
        self.errors: list[str] = []
        self.fence: int | None = None
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []

    def __enter__(self) -> ClusterWatch:
        for kind, path in self.paths.items():
            listed = self.services.json("GET", path, (200,))
            self.initial[kind] = {item["metadata"]["name"]: item for item in listed["items"]}
            thread = threading.Thread(
                target=self._run,
                args=(kind, path, listed["metadata"]["resourceVersion"]),
                name=f"watch-{kind}",
                daemon=True,
            )
            self._threads.append(thread)
            thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        # A LIST is a consistent read: its resourceVersion is the cluster's at this moment.
        path = next(iter(self.paths.values()))
        listed = self.services.json("GET", path, (200,), params={"limit": "1"})
        self.fence = int(listed["metadata"]["resourceVersion"])
        for thread in self._threads:
            thread.join(WATCH_SECONDS + 15)
        self.errors += [
            f"{t.name}: still running at the end" for t in self._threads if t.is_alive()
        ]

    def _run(self, kind: str, path: str, version: str) -> None:
        params = {"watch": "1", "allowWatchBookmarks": "true", "timeoutSeconds": WATCH_SECONDS}
        while True:
            fenced = self.fence is not None  # a stream opened after the fence reaches past it
            try:
                with self.services.http.get(
                    path,
                    params={**params, "resourceVersion": version},
                    stream=True,
                    timeout=WATCH_SECONDS + 10,
                ) as response:
                    for event in watch_lines(response):
                        if event["type"] == "ERROR":
                            self.errors.append(f"{kind}: {event['object']}")
                            return  # 410: the history would have a gap; the test fails
                        version = event["object"]["metadata"]["resourceVersion"]
                        if event["type"] != "BOOKMARK":
                            with self._lock:
                                self.events.append(
                                    WatchEvent(int(version), kind, event["type"], event["object"])
                                )
                        if self.fence is not None and int(version) > self.fence:
                            return
                if fenced:
                    return
            except requests.RequestException as error:  # the stream broke: resume
                self.errors.append(f"{kind}: {error!r}")
            except Exception as error:  # a broken event: the history has a gap
                self.errors.append(f"{kind}: fatal {error!r}")
                return

    def seen(self, kind: str) -> int:
        with self._lock:
            return sum(1 for e in self.events if e.kind == kind)

    def replay(self, check: EndpointInvariants) -> list[str]:
        """Apply every event up to the fence in resourceVersion order to a view of the
        namespace, running `check` after each; the violations it reported."""
        gaps = [e for e in self.errors if "410" in e or "Expired" in e or "fatal" in e]
        assert not gaps and not [e for e in self.errors if "still running" in e], self.errors
        view = {kind: dict(objects) for kind, objects in self.initial.items()}
        with self._lock:
            ordered = sorted(
                e for e in self.events if self.fence is None or e.resource_version <= self.fence
            )
        for event in ordered:
            objects = view[event.kind]
            name = event.object["metadata"]["name"]
            if event.type == "DELETED":
                objects.pop(name, None)
            else:
                objects[name] = event.object
            check.after(event, view)
        return check.violations


def namespace_paths(services: Services) -> dict[str, str]:
    """The kinds `EndpointInvariants` reads, as collection paths of the namespace."""
    ecs = services.ecs
    return {
        "tasks": ecs.path("tasks"),
        "pods": ecs.path("pods", group=""),
        "endpointslices": ecs.path("endpointslices", group="discovery.k8s.io", version="v1"),
        "loadbalancers": ecs.path("loadbalancers"),
    }


@dataclass
class EndpointInvariants:
    """R5 at every committed change, for the LoadBalancer `lb` and the Service `service`:

    1. an endpoint listed ready or serving always has its Pod, not terminating, and its task is
       RUNNING (or DEACTIVATING, the instant its deregistration begins), never STOPPING/STOPPED;
    2. an endpoint becomes ready only while the task's Pod reports the registered container
       ready (a target is listed only once healthy);
    3. a Pod of a task that was ever listed is stopped only after its target drained: the
       LoadBalancer showed it `draining`, and then the Pod's stop came at least `delay` seconds
       after `drainingSince` (timestamps are whole seconds). The operator stops a Pod by
       setting its `activeDeadlineSeconds` (the Pod stays, terminated, for its logs): its
       containers' `finishedAt` is then no earlier; or by deleting it: the deletion was
       requested (deletionTimestamp minus deletionGracePeriodSeconds) no earlier.

    It also records what the scenario went through (`listed`, `draining_since`), so a test can
    assert that the interesting transitions did happen.
    """

    lb: str
    service: str
    delay: int
    container_name: str = WEB_CONTAINER
    violations: list[str] = field(default_factory=list)
    listed: set[str] = field(default_factory=set)
    """Every Pod ever listed ready."""
    draining_since: dict[str, datetime] = field(default_factory=dict)
    stopped_pods: set[str] = field(default_factory=set)
    """Every listed Pod stopped (its deadline set, or deleted)."""
    history: dict[str, list[str]] = field(default_factory=dict)
    """Per task: its lastStatus and target states, with the rv of each change (for the report
    of a violation)."""
    _ready_now: set[str] = field(default_factory=set)
    _awaiting_finish: dict[str, datetime] = field(default_factory=dict)
    """Pods stopped by their deadline whose container has not reported its end yet: the
    earliest time it may end."""

    def after(self, event: WatchEvent, view: dict[str, dict[str, Body]]) -> None:
        self._record(event)
        if event.kind == "loadbalancers" and event.object["metadata"]["name"] == self.lb:
            for target in (event.object.get("status") or {}).get("targets") or ():
                since = target.get("drainingSince")
                if target.get("state") == "draining" and since:
                    self.draining_since.setdefault(target["task"], parse_time(since))
        if event.kind == "pods":
            self._check_pod_stop(event)
        ready_now = self._listed_pods(view)
        for pod_name in sorted(ready_now):
            self._check_listed(event, pod_name, view, newly=pod_name not in self._ready_now)
        self._ready_now = ready_now
        self.listed |= ready_now

    def _record(self, event: WatchEvent) -> None:
        def note(task: str, what: str) -> None:
            changes = self.history.setdefault(task, [])
            if not changes or changes[-1].split(" ", 1)[1] != what:
                changes.append(f"{event.resource_version} {what}")

        if event.kind == "tasks":
            last = (event.object.get("status") or {}).get("lastStatus")
            note(event.object["metadata"]["name"], f"task {event.type} {last}")
        elif event.kind == "loadbalancers" and event.object["metadata"]["name"] == self.lb:
            for target in (event.object.get("status") or {}).get("targets") or ():
                note(target["task"], f"target {target.get('state')}")
        elif event.kind == "endpointslices":
            for endpoint in event.object.get("endpoints") or ():
                name = endpoint["targetRef"]["name"]
                note(name, f"endpoint {'listed' if endpoint_listed(endpoint) else 'unlisted'}")

    def _violation(self, where: str, pod_name: str, what: str) -> None:
        seen = ", ".join(self.history.get(pod_name, [])[-8:])
        self.violations.append(f"{where}: {pod_name} {what} (history: {seen})")

    def _listed_pods(self, view: dict[str, dict[str, Body]]) -> set[str]:
        return {
            endpoint["targetRef"]["name"]
            for piece in view["endpointslices"].values()
            if (piece["metadata"].get("labels") or {}).get(SERVICE_NAME_LABEL) == self.lb
            for endpoint in piece.get("endpoints") or ()
            if endpoint_listed(endpoint)
        }

    def _check_listed(
        self, event: WatchEvent, pod_name: str, view: dict[str, dict[str, Body]], *, newly: bool
    ) -> None:
        where = f"rv {event.resource_version} ({event.type} {event.kind})"
        pod = view["pods"].get(pod_name)
        task = view["tasks"].get(pod_name)
        last = ((task or {}).get("status") or {}).get("lastStatus")
        if pod is None:
            self._violation(where, pod_name, "listed but its Pod is gone")
        elif pod["metadata"].get("deletionTimestamp"):
            self._violation(where, pod_name, "listed but its Pod is terminating")
        elif (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
            self._violation(where, pod_name, "listed but its Pod has terminated")
        elif (pod.get("spec") or {}).get("activeDeadlineSeconds") is not None:
            self._violation(where, pod_name, "listed but its Pod is being stopped (its deadline)")
        if last not in SERVING_STATES:
            self._violation(where, pod_name, f"listed while its task is {last}")
        if newly and not self._container_ready(pod):
            self._violation(where, pod_name, "listed before its container is ready")

    def _container_ready(self, pod: Body | None) -> bool:
        statuses = ((pod or {}).get("status") or {}).get("containerStatuses") or ()
        return any(s.get("name") == self.container_name and s.get("ready") for s in statuses)

    def _check_pod_stop(self, event: WatchEvent) -> None:
        pod = event.object
        name = pod["metadata"]["name"]
        where = f"rv {event.resource_version}"
        if name in self._awaiting_finish:
            self._check_finished(where, pod, self._awaiting_finish)
        labels = pod["metadata"].get("labels") or {}
        deleting = pod["metadata"].get("deletionTimestamp") or event.type == "DELETED"
        deadline = (pod.get("spec") or {}).get("activeDeadlineSeconds") is not None
        if not (deleting or deadline) or name in self.stopped_pods or name not in self.listed:
            return
        if labels.get(SERVICE_LABEL) != self.service:
            return
        self.stopped_pods.add(name)
        since = self.draining_since.get(name)
        if since is None:
            self.violations.append(f"{where}: Pod {name} stopped but its target never drained")
            return
        earliest = since.replace(microsecond=0) + timedelta(seconds=self.delay)
        if deadline and not deleting:
            self._awaiting_finish[name] = earliest
            self._check_finished(where, pod, self._awaiting_finish)
            return
        stamp = pod["metadata"].get("deletionTimestamp")
        if stamp is None:
            self.violations.append(f"{where}: Pod {name} deleted without a graceful deletion")
            return
        # deletionTimestamp is when the grace period ends: the request came that much earlier.
        grace = timedelta(seconds=int(pod["metadata"].get("deletionGracePeriodSeconds") or 0))
        requested = parse_time(stamp) - grace
        if requested < earliest:
            self.violations.append(
                f"{where}: Pod {name} deletion requested at {requested}, before drainingSince "
                f"{since} + {self.delay} s"
            )

    def _check_finished(self, where: str, pod: Body, awaiting: dict[str, datetime]) -> None:
        """The container a deadline stopped ended no earlier than ``awaiting[name]``."""
        name = pod["metadata"]["name"]
        statuses = (pod.get("status") or {}).get("containerStatuses") or ()
        ended = [
            s["state"]["terminated"]["finishedAt"]
            for s in statuses
            if s.get("name") == self.container_name
            and ((s.get("state") or {}).get("terminated") or {}).get("finishedAt")
        ]
        if not ended:
            return
        earliest = awaiting.pop(name)
        if parse_time(ended[0]) < earliest:
            self.violations.append(
                f"{where}: Pod {name} stopped at {ended[0]}, before its target drained ({earliest})"
            )


def assert_clean(watch: ClusterWatch, check: EndpointInvariants) -> None:
    violations = watch.replay(check)
    assert watch.events, "the watch saw no event"
    assert not violations, "\n".join(violations[:10])


def counted(messages: Counter[str], prefix: str, suffix: str) -> int:
    """The sum of N over the messages `PREFIX N SUFFIX`, each as often as it was recorded
    (ECS batches (de)registrations as it finds them)."""
    total = 0
    for message, times in messages.items():
        if message.startswith(prefix) and message.endswith(suffix):
            number = message[len(prefix) : len(message) - len(suffix)].strip()
            total += int(number) * times if number.isdigit() else 0
    return total
