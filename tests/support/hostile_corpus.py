"""The hostile corpus: specs a hostile tenant (or a careless generator) would send, with the outcome
each must get. Every spec is either refused at admission (`refused`: the 400/422 message names the
field) or admitted and reported (`reported`: a condition, and an event about the object).

Kinds covered: unbounded names and strings, integers beyond int32/int64, negative counts, wrong
types, deep nesting, regular-expression bombs and RE2-incompatible patterns, control characters and
unicode, task definitions over ECS's 64 KiB. `test_hostile_corpus.py` runs them all at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from support.ecs_api import GROUP, VERSION, container, task, task_definition
from support.load_balancers import load_balancer
from support.services import service

Body = dict[str, Any]

INT32_MAX = 2**31 - 1
INT64_MAX = 2**63 - 1
ESC = "\x1b"
ANSI = f"{ESC}[31;1mred{ESC}[0m{ESC}]0;pwned\x07"
BIDI = "\u202eevil\u202c"
# Fails only after trying every way to split the rest of the name: exponential in a backtracking
# engine for a node name starting with "no" (the sandbox's are node-zone-a-1 ...).
REGEX_BOMB = "no(.*.*.*)*Z"
GOOD = "good"  # a valid TaskDefinition the corpus creates first


@dataclass(frozen=True)
class Reported:
    """Admitted, then reported: condition `condition` has `status`, its message contains `text`,
    and an event about the object contains `event`."""

    condition: str
    status: str
    text: str = ""
    event: str = ""


@dataclass(frozen=True)
class Case:
    id: str
    body: Body
    refused: str | None = None  # the field the admission error names
    reported: Reported | None = None

    @property
    def kind(self) -> str:
        return str(self.body["kind"])

    @property
    def name(self) -> str:
        return str(self.body["metadata"]["name"])


def _td(name: str, *containers: Body, **spec: Any) -> Body:
    return task_definition(name, *containers, **spec)


def _td_nofamily(name: str, *containers: Body, **spec: Any) -> Body:
    body = task_definition(name, *containers, **spec)
    del body["spec"]["family"]
    return body


def _c(**fields: Any) -> Body:
    return container(**fields)


def _tk(name: str, definition: str = GOOD, **spec: Any) -> Body:
    return task(name, definition, **spec)


def _svc(name: str, **spec: Any) -> Body:
    return service(name, GOOD, **{"desiredCount": 1, **spec})


def _lb(name: str, **spec: Any) -> Body:
    return load_balancer(name, **spec)


def _member_of(expression: str) -> list[Body]:
    return [{"type": "memberOf", "expression": expression}]


def _nested(depth: int) -> Any:
    value: Any = "leaf"
    for _ in range(depth):
        value = {"a": value}
    return value


def _big_environment(containers: int, variables: int, size: int) -> list[Body]:
    """Containers whose environments together pass ECS's 64 KiB, each text well within bounds."""
    return [
        _c(
            name=f"c{n}",
            environment=[{"name": f"V{v}", "value": "x" * size} for v in range(variables)],
        )
        for n in range(containers)
    ]


def _refused(id: str, body: Body, field: str) -> Case:
    return Case(id, body, refused=field)


def _td_invalid(id: str, body: Body, text: str) -> Case:
    return Case(id, body, reported=Reported("Accepted", "False", text, text))


def _td_registered(id: str, body: Body) -> Case:
    return Case(id, body, reported=Reported("Accepted", "True", "registered", "registered"))


def _task_failed(id: str, body: Body, text: str) -> Case:
    return Case(id, body, reported=Reported("Stopped", "True", text, text))


def _service_degraded(id: str, body: Body, text: str) -> Case:
    return Case(id, body, reported=Reported("Degraded", "True", text, text))


CDEF = "spec.containerDefinitions[0]"
LONG_FAMILY = "f" * 245
LONG_NAMES = "td-long-names"

TASK_DEFINITIONS: list[Case] = [
    # names that become other objects' names
    _refused("td name 246", _td_nofamily("f" * 246), "metadata.name"),
    _refused("td name 254", _td_nofamily("f" * 254), "metadata.name"),
    _refused("td name 10000", _td_nofamily("f" * 10_000), "metadata.name"),
    _refused("td uppercase name", _td_nofamily("Web"), "metadata.name"),
    _refused("td name with escape", _td_nofamily(f"web{ESC}x"), "metadata.name"),
    _refused("td family 246", _td("g" * 246), "spec.family"),
    _td_registered("td family 245 (longest)", _td(LONG_FAMILY)),
    # containers
    _refused("container name 256", _td("td-cname", _c(name="c" * 256)), f"{CDEF}.name"),
    _refused("container name escape", _td("td-cname-esc", _c(name=f"a{ESC}b")), f"{CDEF}.name"),
    _refused("container name unicode", _td("td-cname-uni", _c(name="容器")), f"{CDEF}.name"),
    _refused("no containers", _td("td-empty", containerDefinitions=[]), "containerDefinitions"),
    _refused(
        "11 containers",
        _td("td-11", *(_c(name=f"c{n}") for n in range(11))),
        "spec.containerDefinitions",
    ),
    _refused(
        "containers not a list",
        _td("td-notlist", containerDefinitions={"name": "app"}),
        "spec.containerDefinitions",
    ),
    _refused("container is a number", _td("td-number", containerDefinitions=[42]), CDEF),
    _refused("image 5000", _td("td-image", _c(image="i" * 5000)), f"{CDEF}.image"),
    # integers
    _refused("memory int64 max", _td("td-mem64", _c(memory=INT64_MAX)), f"{CDEF}.memory"),
    _refused("memory 2^53", _td("td-mem53", _c(memory=2**53)), f"{CDEF}.memory"),
    _refused("memory negative", _td("td-memneg", _c(memory=-1)), f"{CDEF}.memory"),
    _refused("memory float", _td("td-memfloat", _c(memory=64.5)), f"{CDEF}.memory"),
    _refused("memory string", _td("td-memstr", _c(memory="64")), f"{CDEF}.memory"),
    _refused("cpu 10^15", _td("td-cpu", _c(cpu=10**15)), f"{CDEF}.cpu"),
    _refused("stopTimeout 10^9", _td("td-stop", _c(stopTimeout=10**9)), f"{CDEF}.stopTimeout"),
    _refused(
        "ulimit hardLimit int64 max",
        _td("td-ulimit", _c(ulimits=[{"name": "nofile", "softLimit": 1, "hardLimit": INT64_MAX}])),
        "hardLimit",
    ),
    _refused(
        "ulimit softLimit above hardLimit",
        _td("td-ulimit2", _c(ulimits=[{"name": "nofile", "softLimit": 9, "hardLimit": 1}])),
        "softLimit",
    ),
    _refused(
        "maxSwap int64",
        _td("td-swap", _c(linuxParameters={"maxSwap": INT64_MAX})),
        "maxSwap",
    ),
    _refused(
        "tmpfs 10^15 MiB",
        _td("td-tmpfs", _c(linuxParameters={"tmpfs": [{"containerPath": "/t", "size": 10**15}]})),
        "size",
    ),
    _refused(
        "ignoredExitCodes beyond int32",
        _td("td-exit", _c(restartPolicy={"enabled": True, "ignoredExitCodes": [2**40]})),
        "ignoredExitCodes",
    ),
    _refused(
        "healthCheck interval 10^12",
        _td("td-hc", _c(healthCheck={"command": ["CMD", "true"], "interval": 10**12})),
        "interval",
    ),
    _refused(
        "healthCheck retries negative",
        _td("td-hc2", _c(healthCheck={"command": ["CMD", "true"], "retries": -1})),
        "retries",
    ),
    _refused(
        "healthCheck 257 arguments",
        _td("td-hc3", _c(healthCheck={"command": ["CMD", *["x"] * 256]})),
        "healthCheck.command",
    ),
    _refused(
        "healthCheck not CMD",
        _td("td-hc4", _c(healthCheck={"command": ["SHELL", "true"]})),
        "healthCheck.command",
    ),
    _refused(
        "port negative", _td("td-port", _c(portMappings=[{"containerPort": -1}])), "containerPort"
    ),
    _refused(
        "hostPort 70000",
        _td("td-port2", _c(portMappings=[{"containerPort": 80, "hostPort": 70000}])),
        "hostPort",
    ),
    _refused(
        "51 port mappings",
        _td("td-ports", _c(portMappings=[{"containerPort": p} for p in range(1, 52)])),
        "portMappings",
    ),
    _refused(
        "ephemeral storage 10^6 GiB",
        _td("td-eph", ephemeralStorage={"sizeInGiB": 10**6}),
        "sizeInGiB",
    ),
    # unbounded lists and strings
    _refused(
        "1025 variables",
        _td("td-env", _c(environment=[{"name": f"V{n}", "value": "v"} for n in range(1025)])),
        "environment",
    ),
    _refused(
        "variable of 70000 characters",
        _td("td-env2", _c(environment=[{"name": "V", "value": "x" * 70_000}])),
        "value",
    ),
    _refused("1025 arguments", _td("td-cmd", _c(command=["x"] * 1025)), f"{CDEF}.command"),
    _refused(
        "argument of 70000 characters",
        _td("td-cmd2", _c(command=["x" * 70_000])),
        f"{CDEF}.command",
    ),
    _refused(
        "1025 docker labels",
        _td("td-labels", _c(dockerLabels={f"l{n}": "v" for n in range(1025)})),
        "dockerLabels",
    ),
    _refused(
        "65 added capabilities",
        _td("td-caps", _c(linuxParameters={"capabilities": {"add": ["NET_ADMIN"] * 65}})),
        "capabilities.add",
    ),
    _refused(
        "mount path 5000",
        _td(
            "td-mount",
            _c(mountPoints=[{"sourceVolume": "v", "containerPath": "/" + "p" * 5000}]),
            volumes=[{"name": "v"}],
        ),
        "containerPath",
    ),
    _refused(
        "51 volumes", _td("td-vols", volumes=[{"name": f"v{n}"} for n in range(51)]), "volumes"
    ),
    _refused(
        "duplicate volumes", _td("td-vols2", volumes=[{"name": "v"}, {"name": "v"}]), "volumes"
    ),
    _refused("51 tags", _td("td-tags", tags=[{"key": f"k{n}"} for n in range(51)]), "spec.tags"),
    _refused("tag aws:", _td("td-tag-aws", tags=[{"key": "AWS:x"}]), "tags[0].key"),
    _refused("tag value 257", _td("td-tag-val", tags=[{"key": "k", "value": "v" * 257}]), "value"),
    _refused(
        "secret name 2000",
        _td("td-secret", _c(secrets=[{"name": "n" * 2000, "valueFrom": "s"}])),
        "secrets[0].name",
    ),
    # wrong types and enums
    _refused("essential as text", _td("td-ess", _c(essential="yes")), f"{CDEF}.essential"),
    _refused("networkMode weird", _td("td-net", networkMode="weird"), "spec.networkMode"),
    _refused(
        "requiresCompatibilities MARS",
        _td("td-compat", requiresCompatibilities=["MARS"]),
        "requiresCompatibilities",
    ),
    _refused("task cpu lots", _td("td-tcpu", cpu="lots"), "spec.cpu"),
    _refused(
        "dependsOn condition",
        _td("td-dep", _c(dependsOn=[{"containerName": "app", "condition": "SOMETIMES"}])),
        "condition",
    ),
    _refused(
        "log driver evil",
        _td("td-log", _c(logConfiguration={"logDriver": "evil"})),
        "logDriver",
    ),
    _refused("spec is text", {**_td("td-spec-text"), "spec": "containers please"}, "spec"),
    _refused("unknown field", _td("td-unknown", _c(privilegedMode=True)), "privilegedMode"),
    _refused(
        "nesting 200 deep",
        _td("td-deep", _c(dockerLabels={"deep": _nested(200)})),
        "dockerLabels",
    ),
    # placement expressions
    _refused(
        "td expression 2001",
        _td("td-expr", placementConstraints=_member_of("a" * 2001)),
        "expression",
    ),
    _refused(
        "td expression 985 parentheses",
        _td(
            "td-expr2",
            placementConstraints=_member_of("(" * 985 + "agentConnected == true" + ")" * 985),
        ),
        "expression",
    ),
    _refused(
        "td distinctInstance",
        _td("td-distinct", placementConstraints=[{"type": "distinctInstance"}]),
        "placementConstraints",
    ),
    # what only the operator can judge: a condition and an event
    _td_invalid(
        "64 KiB task definition",
        _td("td-64k", *_big_environment(containers=10, variables=10, size=700)),
        "ECS allows a task definition of at most 65536 bytes",
    ),
    _td_invalid("task memory 99999999GB", _td("td-tmem", memory="99999999GB"), "spec.memory"),
    _td_invalid(
        "container memory above the task's",
        _td("td-tmem2", _c(memory=4096), memory="1GB"),
        f"{CDEF}.memory",
    ),
    _td_invalid(
        "dependsOn cycle",
        _td(
            "td-cycle",
            _c(name="a", dependsOn=[{"containerName": "b", "condition": "START"}]),
            _c(name="b", dependsOn=[{"containerName": "a", "condition": "START"}]),
        ),
        "cycle",
    ),
    _td_invalid("privileged", _td("td-priv", _c(privileged=True)), f"{CDEF}.privileged"),
    _td_invalid(
        "hostPath /",
        _td("td-hostpath", volumes=[{"name": "root", "host": {"sourcePath": "/"}}]),
        "spec.volumes[0].host.sourcePath",
    ),
    _td_invalid("pidMode host", _td("td-pid", pidMode="host"), "spec.pidMode"),
    _td_invalid(
        "secret reference with escapes",
        _td("td-secret-esc", _c(secrets=[{"name": "T", "valueFrom": f"a/b{ESC}[2J/c"}])),
        "valueFrom",
    ),
    # valid but nasty: registered, texts kept as data
    _td_registered(
        "unicode and control characters in values",
        _td(
            "td-unicode",
            _c(
                environment=[
                    {"name": "GREETING", "value": "你好, мир, 🚀"},
                    {"name": "ANSI", "value": ANSI},
                    {"name": "BIDI", "value": BIDI},
                ],
                dockerLabels={"note": f"line1\nline2{ESC}[K"},
            ),
            tags=[{"key": "团队", "value": BIDI}],
        ),
    ),
    _td_registered(
        "regex bomb in a task definition's constraint",
        _td("td-bomb", placementConstraints=_member_of(f"ec2InstanceId !~ {REGEX_BOMB}")),
    ),
    _td_invalid(
        "task role of 300 characters",
        _td("td-role", taskRoleArn="arn:aws:iam::123456789012:role/" + "r" * 300),
        "spec.taskRoleArn",
    ),
    _td_registered(
        "longest container and volume names",
        _td(
            LONG_NAMES,
            _c(
                name="C_" * 127 + "c",
                mountPoints=[{"sourceVolume": "V_" * 127 + "v", "containerPath": "/data"}],
            ),
            volumes=[{"name": "V_" * 127 + "v"}],
        ),
    ),
    _td_registered(
        "just under 64 KiB",
        _td("td-63k", *_big_environment(containers=10, variables=9, size=600)),
    ),
]

TASKS: list[Case] = [
    _refused("task name 254", _tk("t" * 254), "metadata.name"),
    _refused(
        "ttl int64 max",
        _tk("ttl-int64", ttlSecondsAfterStopped=INT64_MAX),
        "ttlSecondsAfterStopped",
    ),
    _refused(
        "ttl int32 max + 1",
        _tk("ttl-int32", ttlSecondsAfterStopped=INT32_MAX + 1),
        "ttlSecondsAfterStopped",
    ),
    _refused("ttl negative", _tk("ttl-neg", ttlSecondsAfterStopped=-1), "ttlSecondsAfterStopped"),
    _refused(
        "ttl as text", _tk("ttl-text", ttlSecondsAfterStopped="forever"), "ttlSecondsAfterStopped"
    ),
    _refused("taskDefinition 600", _tk("td-ref-long", "w" * 600), "spec.taskDefinition"),
    _refused("taskDefinition revision 0", _tk("td-ref-zero", "web:0"), "spec.taskDefinition"),
    _refused(
        "taskDefinition revision 8 digits", _tk("td-ref-8", "web:12345678"), "spec.taskDefinition"
    ),
    _refused(
        "taskDefinition with escapes", _tk("td-ref-esc", f"web{ESC}[2J"), "spec.taskDefinition"
    ),
    _refused("taskDefinition missing", task("td-ref-none", GOOD) | {"spec": {}}, "taskDefinition"),
    _refused("group 256", _tk("group-long", group="g" * 256), "spec.group"),
    _refused("startedBy with spaces", _tk("started-by", startedBy="a b"), "spec.startedBy"),
    _refused(
        "desiredStatus lower case", _tk("status-lc", desiredStatus="stopped"), "desiredStatus"
    ),
    _refused(
        "stoppedReason 256",
        _tk("reason-long", desiredStatus="STOPPED", stoppedReason="r" * 256),
        "spec.stoppedReason",
    ),
    _refused(
        "stoppedReason while RUNNING", _tk("reason-running", stoppedReason="x"), "stoppedReason"
    ),
    _refused(
        "11 placement constraints",
        _tk("pc-11", placementConstraints=[{"type": "distinctInstance"}] * 11),
        "placementConstraints",
    ),
    _refused(
        "6 placement strategies",
        _tk("ps-6", placementStrategy=[{"type": "random"}] * 6),
        "placementStrategy",
    ),
    _refused(
        "strategy field 200",
        _tk("ps-field", placementStrategy=[{"type": "spread", "field": "attribute:" + "a" * 190}]),
        "field",
    ),
    _refused(
        "task expression 2001",
        _tk("expr-long", placementConstraints=_member_of("a" * 2001)),
        "expression",
    ),
    _refused(
        "task expression 985 parentheses",
        _tk(
            "expr-parens",
            placementConstraints=_member_of("(" * 985 + "agentConnected == true" + ")" * 985),
        ),
        "expression",
    ),
    _refused(
        "11 container overrides",
        _tk("ov-11", overrides={"containerOverrides": [{"name": f"c{n}"} for n in range(11)]}),
        "containerOverrides",
    ),
    _refused(
        "override cpu 10^12",
        _tk("ov-cpu", overrides={"containerOverrides": [{"name": "app", "cpu": 10**12}]}),
        "cpu",
    ),
    _refused(
        "override memory negative",
        _tk("ov-mem", overrides={"containerOverrides": [{"name": "app", "memory": -5}]}),
        "memory",
    ),
    _refused("task tag aws:", _tk("tag-aws", tags=[{"key": "aws:x"}]), "tags[0].key"),
    _refused(
        "task with loadBalancers",
        _tk("lbs", loadBalancers=[{"containerName": "app", "containerPort": 80}]),
        "loadBalancers",
    ),
    _refused(
        "enableExecuteCommand as text",
        _tk("exec-text", enableExecuteCommand="yes"),
        "enableExecuteCommand",
    ),
    _refused("launchType MOON", _tk("launch", launchType="MOON"), "launchType"),
    _refused(
        "17 subnets",
        _tk(
            "subnets",
            networkConfiguration={"awsvpcConfiguration": {"subnets": ["s"] * 17}},
        ),
        "subnets",
    ),
    _refused(
        "subnet id of 2000",
        _tk(
            "subnet-long",
            networkConfiguration={"awsvpcConfiguration": {"subnets": ["s" * 2000]}},
        ),
        "subnets",
    ),
    # what only the operator can judge: STOPPED TaskFailedToStart with the reason, and an event
    _task_failed(
        "regex bomb no node matches",
        _tk("bomb", placementConstraints=_member_of(f"ec2InstanceId =~ {REGEX_BOMB}")),
        "MemberOf placement constraint unsatisfied",
    ),
    _task_failed(
        "backreference",
        _tk("backref", placementConstraints=_member_of("ec2InstanceId =~ (a)\\1")),
        "backreferences and lookaround are not supported",
    ),
    _task_failed(
        "lookahead",
        _tk("lookahead", placementConstraints=_member_of("ec2InstanceId =~ (?=node).*")),
        "backreferences and lookaround are not supported",
    ),
    _task_failed(
        "lookbehind",
        _tk("lookbehind", placementConstraints=_member_of("ec2InstanceId =~ .*(?<!x)")),
        "backreferences and lookaround are not supported",
    ),
    _task_failed(
        "40 nested not",
        _tk("not-40", placementConstraints=_member_of("not " * 40 + "agentConnected == true")),
        "nested deeper than 32 levels",
    ),
    _task_failed(
        "500 nested !",
        _tk("bang-500", placementConstraints=_member_of("!" * 500 + "agentConnected == true")),
        "nested deeper than 32 levels",
    ),
    _task_failed(
        "malformed expression",
        _tk("expr-bad", placementConstraints=_member_of("attribute:x ~~ y")),
        "placementConstraints[0].expression",
    ),
    _task_failed(
        "regex syntax error",
        _tk("regex-bad", placementConstraints=_member_of("ec2InstanceId =~ '(unclosed'")),
        "missing )",
    ),
    _task_failed("unknown task definition", _tk("unknown-td", "nothing-here"), "nothing-here"),
    _task_failed(
        "overrides over 8192 characters",
        _tk(
            "ov-big",
            overrides={"containerOverrides": [{"name": "app", "command": ["x" * 9000]}]},
        ),
        "spec.overrides: 9054 characters of JSON; ECS allows at most 8192",
    ),
    _task_failed(
        "override cpu 999 vCPU (a pattern the CRD admits)",
        _tk("ov-vcpu", overrides={"cpu": "999 vCPU"}),
        "ClientException: spec.overrides.cpu",
    ),
    _task_failed(
        "override memory 99999999GB",
        _tk("ov-gb", overrides={"memory": "99999999GB"}),
        "ClientException: spec.overrides.memory",
    ),
    _task_failed(
        "override of an unknown container",
        _tk("ov-ghost", overrides={"containerOverrides": [{"name": "ghost"}]}),
        "ghost",
    ),
    _task_failed(
        "ANSI escapes in stoppedReason",
        _tk("reason-ansi", desiredStatus="STOPPED", stoppedReason=f"bye {ANSI}"),
        "bye \\x1b[31;1mred\\x1b[0m\\x1b]0;pwned\\x07",
    ),
    _task_failed(
        "bidi override in stoppedReason",
        _tk("reason-bidi", desiredStatus="STOPPED", stoppedReason=f"ok {BIDI} txt.exe"),
        "ok \\u202eevil\\u202c txt.exe",
    ),
    _task_failed(
        "newlines in stoppedReason",
        _tk("reason-lines", desiredStatus="STOPPED", stoppedReason="a\nINFO fake log line\r\n"),
        "a\\x0aINFO fake log line\\x0d\\x0a",
    ),
    _task_failed(
        "ttl int32 max",
        _tk("ttl-max", desiredStatus="STOPPED", ttlSecondsAfterStopped=INT32_MAX),
        "Task stopped by user",
    ),
    # valid but nasty: it runs
    Case(
        "unicode group",
        _tk("group-unicode", group="团队:🚀"),
        reported=Reported("Ready", "True", "", ""),
    ),
    Case(
        "negated regex bomb places",
        _tk("bomb-negated", placementConstraints=_member_of(f"ec2InstanceId !~ {REGEX_BOMB}")),
        reported=Reported("Ready", "True", "", ""),
    ),
    Case(
        "Kubernetes names derived from the longest ECS names",
        _tk("long-names", LONG_NAMES),
        reported=Reported("Ready", "True", "", ""),
    ),
    Case(
        "task name 253",
        _tk("t" * 253),
        reported=Reported("Ready", "True", "", ""),
    ),
]

SERVICES: list[Case] = [
    _refused("service name 201", _svc("s" * 201), "metadata.name"),
    _refused("service name 254", _svc("s" * 254), "metadata.name"),
    _refused("desiredCount int64", _svc("dc-int64", desiredCount=INT64_MAX), "desiredCount"),
    _refused("desiredCount 2^53", _svc("dc-big", desiredCount=2**53), "desiredCount"),
    _refused("desiredCount negative", _svc("dc-neg", desiredCount=-1), "desiredCount"),
    _refused("desiredCount as text", _svc("dc-text", desiredCount="3"), "desiredCount"),
    _refused("desiredCount float", _svc("dc-float", desiredCount=1.5), "desiredCount"),
    _refused(
        "maximumPercent beyond int32",
        _svc("max-pct", deploymentConfiguration={"maximumPercent": 2**31}),
        "maximumPercent",
    ),
    _refused(
        "grace period 2^40",
        _svc("grace", healthCheckGracePeriodSeconds=2**40),
        "healthCheckGracePeriodSeconds",
    ),
    _refused(
        "service expression 2001",
        _svc("svc-expr", placementConstraints=_member_of("a" * 2001)),
        "expression",
    ),
    _refused(
        "service expression 985 parentheses",
        _svc(
            "svc-parens",
            placementConstraints=_member_of("(" * 985 + "agentConnected == true" + ")" * 985),
        ),
        "expression",
    ),
    _refused(
        "6 load balancers",
        _svc(
            "svc-lbs",
            loadBalancers=[
                {"loadBalancerName": f"lb{n}", "containerName": "app", "containerPort": 80}
                for n in range(6)
            ],
        ),
        "loadBalancers",
    ),
    _refused(
        "loadBalancerName 300",
        _svc(
            "svc-lbname",
            loadBalancers=[
                {"loadBalancerName": "l" * 300, "containerName": "app", "containerPort": 80}
            ],
        ),
        "loadBalancerName",
    ),
    _refused(
        "loadBalancerName with escapes",
        _svc(
            "svc-lbname-esc",
            loadBalancers=[
                {"loadBalancerName": f"lb{ESC}", "containerName": "app", "containerPort": 80}
            ],
        ),
        "loadBalancerName",
    ),
    _refused(
        "forceNewDeployment 300",
        _svc("svc-force", forceNewDeployment="f" * 300),
        "forceNewDeployment",
    ),
    _refused(
        "service 51 tags", _svc("svc-tags", tags=[{"key": f"k{n}"} for n in range(51)]), "tags"
    ),
    _refused(
        "service strategy field 200",
        _svc(
            "svc-field", placementStrategy=[{"type": "spread", "field": "attribute:" + "a" * 190}]
        ),
        "field",
    ),
    _refused(
        "DAEMON with desiredCount",
        _svc("svc-daemon", schedulingStrategy="DAEMON"),
        "desiredCount",
    ),
    _refused("unknown service field", _svc("svc-unknown", desiredCont=3), "desiredCont"),
    _service_degraded(
        "service lookbehind",
        _svc("svc-lookbehind", placementConstraints=_member_of("ec2InstanceId =~ (?<=n)ode.*")),
        "backreferences and lookaround are not supported",
    ),
    _service_degraded(
        "service 40 nested not",
        _svc(
            "svc-not-40",
            placementConstraints=_member_of("not " * 40 + "agentConnected == true"),
        ),
        "nested deeper than 32 levels",
    ),
    _service_degraded(
        "service unknown task definition",
        service("svc-unknown-td", "nothing-here", desiredCount=1),
        "nothing-here",
    ),
    # valid but nasty: it runs, and its tasks' names fit
    Case(
        "service name 200 (longest)",
        _svc("s" * 200),
        reported=Reported("Ready", "True", "", "has reached a steady state"),
    ),
    Case(
        "service negated regex bomb",
        _svc("svc-bomb", placementConstraints=_member_of(f"ec2InstanceId !~ {REGEX_BOMB}")),
        reported=Reported("Ready", "True", "", "has reached a steady state"),
    ),
]

LOAD_BALANCERS: list[Case] = [
    _refused("lb name 64", _lb("l" * 64), "metadata.name"),
    _refused("lb name uppercase", _lb("Front"), "metadata.name"),
    _refused("lb name starts with a digit", _lb("1front"), "metadata.name"),
    _refused("listener port 0", _lb("lb-port0", listeners=[{"port": 0}]), "port"),
    _refused("listener port 2^53", _lb("lb-port-big", listeners=[{"port": 2**53}]), "port"),
    _refused(
        "11 listeners",
        _lb("lb-listeners", listeners=[{"port": p} for p in range(1, 12)]),
        "listeners",
    ),
    _refused("no listeners", _lb("lb-nolisteners", listeners=[]), "listeners"),
    _refused(
        "duplicate listener ports",
        _lb("lb-dup", listeners=[{"port": 80}, {"port": 80}]),
        "listeners",
    ),
    _refused(
        "listener name 60",
        _lb("lb-lname", listeners=[{"port": 80, "name": "n" * 60}]),
        "name",
    ),
    _refused(
        "listener protocol SCTP",
        _lb("lb-proto", listeners=[{"port": 80, "protocol": "SCTP"}]),
        "protocol",
    ),
    _refused(
        "health check timeout above interval",
        _lb("lb-hc", healthCheck={"intervalSeconds": 5, "timeoutSeconds": 10}),
        "timeoutSeconds",
    ),
    _refused(
        "health check path without slash",
        _lb("lb-path", healthCheck={"path": "health"}),
        "path",
    ),
    _refused(
        "health check path 2000",
        _lb("lb-path-long", healthCheck={"path": "/" + "p" * 2000}),
        "path",
    ),
    _refused(
        "health check port 70000",
        _lb("lb-hcport", healthCheck={"port": 70000}),
        "port",
    ),
    _refused(
        "matcher not codes",
        _lb("lb-matcher", healthCheck={"matcher": {"httpCode": "abc"}}),
        "httpCode",
    ),
    _refused(
        "deregistration delay 2^40",
        _lb("lb-delay", deregistrationDelaySeconds=2**40),
        "deregistrationDelaySeconds",
    ),
    _refused("type ExternalName", _lb("lb-type", type="ExternalName"), "type"),
    _refused("lb spec is a list", {**_lb("lb-list"), "spec": [1, 2]}, "spec"),
]

CORPUS: list[Case] = [*TASK_DEFINITIONS, *TASKS, *SERVICES, *LOAD_BALANCERS]

PLURALS = {
    "TaskDefinition": "taskdefinitions",
    "Task": "tasks",
    "Service": "services",
    "LoadBalancer": "loadbalancers",
}
API_VERSION = f"{GROUP}/{VERSION}"
