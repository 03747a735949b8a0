"""The hostile corpus (`hostile_corpus.py`, 100+ specs over the four kinds): every spec is refused
at admission with its field named, or admitted and reported with a condition and an event. None is
silent; no status or event text carries a raw control character; and afterwards the operator is
alive, has no traceback loop, writes nothing while nothing changes, and idles.

The whole corpus is sent at once, in one namespace (admission refusals are cheap; the admitted
specs are handled by the operator concurrently), then each spec's outcome is checked on its own.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from ecs_sandbox.runtime import SandboxThread
from support.ecs_api import Ecs, OperatorProcess, condition, task_definition
from support.helpers import ClusterTarget, run_kubectl, wait_for
from support.hostile_corpus import CORPUS, GOOD, PLURALS, Case

# The module fixture runs the whole corpus inside the first test's time budget.
pytestmark = pytest.mark.timeout(400)
MAX_TRACEBACKS = 5
CRDS = Path(__file__).resolve().parents[2] / "crds"
REPORT_TIMEOUT = 120.0
QUIET_WINDOW = 5.0
# A hot loop writes many times a second; a converged namespace writes (almost) nothing.
MAX_QUIET_WRITES = 10
# Generous for a shared, loaded machine: a hot loop keeps a whole core busy.
MAX_IDLE_CPU = 0.5
RAW_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
WRITES = ("create", "update", "patch", "delete", "deletecollection")


@dataclass
class Outcome:
    status_code: int | None = None  # of the create
    message: str = ""  # the admission error, or the reported condition's message
    reported: bool = False
    events: tuple[str, ...] = ()


@dataclass
class CorpusRun:
    outcomes: dict[str, Outcome]
    namespace: str
    quiet_writes: int
    idle_cpu: float
    tracebacks: int
    alive: bool
    figures: Counter[str]


def _create(target: ClusterTarget, namespace: str, case: Case) -> tuple[int, str]:
    path = f"/apis/{case.body['apiVersion']}/namespaces/{namespace}/{PLURALS[case.kind]}"
    response = target.http.post(
        path,
        data=json.dumps(case.body),
        headers={"Content-Type": "application/json"},
        params={"fieldValidation": "Strict"},
    )
    try:
        message = str(response.json().get("message", ""))
    except ValueError:
        message = response.text
    return response.status_code, message


def _listed(target: ClusterTarget, namespace: str) -> dict[tuple[str, str], dict]:
    found = {}
    for kind, plural in PLURALS.items():
        response = target.http.get(
            f"/apis/ecs.operator.dev/v1alpha1/namespaces/{namespace}/{plural}"
        )
        assert response.ok, response.text
        for item in response.json()["items"]:
            found[(kind, item["metadata"]["name"])] = item
    return found


def _events(target: ClusterTarget, namespace: str) -> dict[tuple[str, str], list[str]]:
    response = target.http.get(f"/api/v1/namespaces/{namespace}/events")
    assert response.ok, response.text
    found: dict[tuple[str, str], list[str]] = {}
    for event in response.json()["items"]:
        involved = event.get("involvedObject") or {}
        key = (str(involved.get("kind")), str(involved.get("name")))
        found.setdefault(key, []).append(str(event.get("message", "")))
    return found


def _check_reported(case: Case, obj: dict | None, events: list[str]) -> Outcome | None:
    """The outcome once the condition and an event say what `case.reported` expects."""
    expected = case.reported
    assert expected is not None
    if obj is None:
        return None
    found = condition(obj.get("status") or {}, expected.condition)
    if found.get("status") != expected.status or expected.text not in found.get("message", ""):
        return None
    if not any(expected.event in message for message in events):
        return None
    return Outcome(201, found.get("message", ""), True, tuple(events))


def _writes(sandbox_thread: SandboxThread) -> int:
    counts = sandbox_thread.call(lambda: dict(sandbox_thread.sandbox.counters.counts))
    return sum(n for (verb, _), n in counts.items() if verb in WRITES)


def _cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@pytest.fixture(scope="module")
def corpus_run(
    operator: OperatorProcess, sandbox_target: ClusterTarget, sandbox_thread: SandboxThread
) -> Iterator[CorpusRun]:
    if not operator.alive or operator.allow_privileged:
        operator.restart()
    namespace = sandbox_target.create_namespace()
    ecs = Ecs(sandbox_target, namespace, lambda: operator.tail(30))
    tracebacks_before = operator.log().count("Traceback")
    try:
        ecs.create(task_definition(GOOD))
        ecs.wait_accepted(GOOD)
        outcomes = {case.id: Outcome(*_create(sandbox_target, namespace, case)) for case in CORPUS}
        pending = {c.id: c for c in CORPUS if outcomes[c.id].status_code == 201 and c.reported}

        def all_reported() -> bool:
            objects = _listed(sandbox_target, namespace)
            events = _events(sandbox_target, namespace)
            for case_id, case in list(pending.items()):
                key = (case.kind, case.name)
                outcome = _check_reported(case, objects.get(key), events.get(key, []))
                if outcome is not None:
                    outcomes[case_id] = outcome
                    del pending[case_id]
            return not pending

        # On time-out the per-spec tests say which specs stayed silent, and what they show.
        with contextlib.suppress(AssertionError):
            wait_for(all_reported, REPORT_TIMEOUT, interval=0.5)
        assert operator.process is not None
        writes, cpu = _writes(sandbox_thread), _cpu_seconds(operator.process.pid)
        time.sleep(QUIET_WINDOW)  # the measurement window itself, not a wait for a state
        quiet_writes = _writes(sandbox_thread) - writes
        idle_cpu = (_cpu_seconds(operator.process.pid) - cpu) / QUIET_WINDOW
        figures: Counter[str] = Counter()
        for case in CORPUS:
            outcome = outcomes[case.id]
            if outcome.status_code in (400, 422):
                figures["refused"] += 1
            elif outcome.reported:
                figures["reported"] += 1
            else:
                figures["silent"] += 1
        yield CorpusRun(
            outcomes,
            namespace,
            quiet_writes,
            idle_cpu,
            operator.log().count("Traceback") - tracebacks_before,
            operator.alive,
            figures,
        )
    finally:
        sandbox_target.delete_namespace(namespace)


def test_the_corpus_is_large_and_its_ids_unique() -> None:
    assert len(CORPUS) >= 100
    assert len({case.id for case in CORPUS}) == len(CORPUS)
    assert len({(case.kind, case.name) for case in CORPUS}) == len(CORPUS)
    assert all((case.refused is None) != (case.reported is None) for case in CORPUS)


@pytest.mark.parametrize("case", CORPUS, ids=[case.id for case in CORPUS])
def test_hostile_spec_is_refused_or_reported(corpus_run: CorpusRun, case: Case) -> None:
    outcome = corpus_run.outcomes[case.id]
    if case.refused is not None:
        assert outcome.status_code in (400, 422), f"admitted ({outcome.status_code})"
        assert case.refused in outcome.message, outcome.message
        return
    assert outcome.status_code == 201, f"refused at admission: {outcome.message}"
    assert outcome.reported, f"silent: no {case.reported} within {REPORT_TIMEOUT} s"


def test_no_raw_control_characters_in_status_or_events(
    corpus_run: CorpusRun, sandbox_target: ClusterTarget
) -> None:
    for key, obj in _listed(sandbox_target, corpus_run.namespace).items():
        shown = json.dumps(obj.get("status") or {}, ensure_ascii=False)
        assert not RAW_CONTROL.search(shown), (key, shown)
    for key, messages in _events(sandbox_target, corpus_run.namespace).items():
        for message in messages:
            assert not RAW_CONTROL.search(message), (key, message)


def test_nothing_is_silent_and_the_operator_idles(
    corpus_run: CorpusRun, operator: OperatorProcess
) -> None:
    figures = corpus_run.figures
    print(
        f"\nhostile corpus: {len(CORPUS)} specs, {figures['refused']} refused at admission, "
        f"{figures['reported']} reported, {figures['silent']} silent; afterwards "
        f"{corpus_run.quiet_writes} API writes and {corpus_run.idle_cpu:.1%} of a core over "
        f"{QUIET_WINDOW:.0f} s, {corpus_run.tracebacks} tracebacks"
    )
    assert figures["silent"] == 0
    assert corpus_run.alive
    assert corpus_run.tracebacks <= MAX_TRACEBACKS, operator.tail()
    assert corpus_run.quiet_writes <= MAX_QUIET_WRITES
    assert corpus_run.idle_cpu < MAX_IDLE_CPU


def test_the_api_server_refuses_them_naming_the_field(
    cluster: ClusterTarget, cluster_namespace: str, tmp_path: Path
) -> None:
    """The admission half of the corpus on `cluster`: the sandbox, and a real kube-apiserver
    when ECS_OPERATOR_TEST_KUBECONFIG names one (where the sandbox and it disagree, the real one
    is right)."""
    applied = run_kubectl(cluster.kubeconfig, tmp_path, "apply", "-f", str(CRDS))
    assert applied.returncode == 0, applied.stderr

    def served() -> bool:
        response = cluster.http.get("/apis/ecs.operator.dev/v1alpha1")
        names = {r["name"] for r in response.json().get("resources", [])} if response.ok else set()
        return set(PLURALS.values()) <= names

    wait_for(served, 30, message="the ECS CRDs are not served")
    wrong = {}
    for case in CORPUS:
        if case.refused is None:
            continue
        status_code, message = _create(cluster, cluster_namespace, case)
        if status_code not in (400, 422) or case.refused not in message:
            wrong[case.id] = (status_code, message[:300])
    assert wrong == {}
