"""A real Kubernetes control plane as local processes (what `kwokctl --runtime binary` runs).

    python tools/cluster.py up      start etcd, kube-apiserver, kube-controller-manager,
                                    kube-scheduler and kwok on 127.0.0.1 (free ports), create
                                    3 zones x 2 nodes like the sandbox's, write
                                    .cluster/kubeconfig, return once every node is Ready
    python tools/cluster.py down    stop every process and remove the state
    python tools/cluster.py run     up, then wait in the foreground until Ctrl-C, then down
    python tools/cluster.py restart-apiserver   stop and start kube-apiserver (resilience tests)

The binaries come from tools/build_cluster.sh (built once, cached by version outside git).
Standard library only, plus the `openssl` command for the certificates. Logs of every component
are under .cluster/. Nodes are kwok nodes: kwok renews their Leases and moves their pods through
kwok's default stages plus the fault stages of tools/kwok_fault_stages.yaml.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

TOOLS = Path(__file__).resolve().parent
REPO = TOOLS.parent
STATE = Path(os.environ.get("ECS_OPERATOR_CLUSTER_DIR", REPO / ".cluster"))
KWOK_STAGE_FILES = (
    "node/fast/node-initialize.yaml",
    "node/heartbeat-with-lease/node-heartbeat-with-lease.yaml",
    "pod/fast/pod-ready.yaml",
    "pod/fast/pod-complete.yaml",
    "pod/fast/pod-delete.yaml",
)
KWOK_MODULE = "sigs.k8s.io/kwok@v0.8.0"
# The sandbox's shape (sandbox/ecs_sandbox/cluster.py ClusterConfig defaults).
ZONES = ("zone-a", "zone-b", "zone-c")
NODES_PER_ZONE = 2
NODE_CAPACITY = {"cpu": "4", "memory": "8Gi", "pods": "110"}
INSTANCE_TYPE = "m5.xlarge"
KWOK_NODE_LABEL = "kwok.x-k8s.io/node"
SERVICE_CIDR = "10.96.0.0/16"
CLUSTER_CIDR = "10.244.0.0/16"
READY_TIMEOUT = 120.0


def log(message: str) -> None:
    print(f"cluster: {message}", file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def build_binaries() -> Path:
    result = subprocess.run(
        ["bash", str(TOOLS / "build_cluster.sh")], check=True, stdout=subprocess.PIPE, text=True
    )
    return Path(result.stdout.strip().splitlines()[-1])


def openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True)


def make_certificates(pki: Path) -> None:
    """A CA, the API server's serving certificate, an admin client in system:masters, and the
    ServiceAccount signing key."""
    pki.mkdir(parents=True, exist_ok=True)
    openssl("genrsa", "-out", str(pki / "ca.key"), "2048")
    openssl(
        "req", "-x509", "-new", "-nodes", "-key", str(pki / "ca.key"), "-sha256",
        "-days", "3650", "-subj", "/CN=ecs-operator-test-ca", "-out", str(pki / "ca.crt"),
    )  # fmt: skip
    extensions = pki / "server.ext"
    extensions.write_text(
        "subjectAltName=IP:127.0.0.1,IP:10.96.0.1,DNS:localhost,DNS:kubernetes,"
        "DNS:kubernetes.default,DNS:kubernetes.default.svc,"
        "DNS:kubernetes.default.svc.cluster.local\n"
        "extendedKeyUsage=serverAuth,clientAuth\n"
    )
    for name, subject, ext in (
        ("server", "/CN=kube-apiserver", extensions),
        ("admin", "/O=system:masters/CN=kubernetes-admin", None),
    ):
        openssl("genrsa", "-out", str(pki / f"{name}.key"), "2048")
        openssl(
            "req", "-new", "-key", str(pki / f"{name}.key"), "-subj", subject,
            "-out", str(pki / f"{name}.csr"),
        )  # fmt: skip
        openssl(
            "x509", "-req", "-in", str(pki / f"{name}.csr"), "-CA", str(pki / "ca.crt"),
            "-CAkey", str(pki / "ca.key"), "-CAcreateserial", "-days", "3650", "-sha256",
            "-out", str(pki / f"{name}.crt"), *(["-extfile", str(ext)] if ext else []),
        )  # fmt: skip
    openssl("genrsa", "-out", str(pki / "sa.key"), "2048")
    openssl("rsa", "-in", str(pki / "sa.key"), "-pubout", "-out", str(pki / "sa.pub"))


def write_kubeconfig(path: Path, server: str, pki: Path) -> None:
    def b64(name: str) -> str:
        return base64.b64encode((pki / name).read_bytes()).decode()

    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "ecs-operator-real",
                "cluster": {"server": server, "certificate-authority-data": b64("ca.crt")},
            }
        ],
        "users": [
            {
                "name": "admin",
                "user": {
                    "client-certificate-data": b64("admin.crt"),
                    "client-key-data": b64("admin.key"),
                },
            }
        ],
        "contexts": [
            {
                "name": "ecs-operator-real",
                "context": {"cluster": "ecs-operator-real", "user": "admin"},
            }
        ],
        "current-context": "ecs-operator-real",
    }
    path.write_text(json.dumps(config, indent=2))
    path.chmod(0o600)


def kwok_stages() -> str:
    """kwok's default node and pod stages (a custom stage list replaces them) plus ours."""
    modcache = subprocess.run(
        ["go", "env", "GOMODCACHE"], check=True, capture_output=True, text=True
    ).stdout.strip()
    stage_dir = Path(modcache) / KWOK_MODULE / "kustomize" / "stage"
    documents = [(stage_dir / name).read_text() for name in KWOK_STAGE_FILES]
    documents.append((TOOLS / "kwok_fault_stages.yaml").read_text())
    return "\n---\n".join(documents)


class Api:
    """Just enough of an admin client for the set-up (urllib with the admin certificate)."""

    def __init__(self, server: str, pki: Path) -> None:
        self.server = server
        self.context = ssl.create_default_context(cafile=str(pki / "ca.crt"))
        self.context.load_cert_chain(str(pki / "admin.crt"), str(pki / "admin.key"))

    def request(self, method: str, path: str, body: Any = None, content_type: str = "") -> Any:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.server + path, data=data, method=method)
        request.add_header("Content-Type", content_type or "application/json")
        with urllib.request.urlopen(request, context=self.context, timeout=10) as response:
            return json.loads(response.read() or b"{}")

    def healthy(self) -> bool:
        try:
            request = urllib.request.Request(self.server + "/readyz")
            with urllib.request.urlopen(request, context=self.context, timeout=2) as response:
                return response.status == 200
        except (urllib.error.URLError, OSError):
            return False


def wait(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise SystemExit(f"cluster: timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.2)


def start(name: str, command: list[str]) -> int:
    log_file = (STATE / f"{name}.log").open("ab")
    process = subprocess.Popen(
        command, stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True, cwd=STATE
    )
    (STATE / f"{name}.pid").write_text(str(process.pid))
    (STATE / f"{name}.cmd").write_text(json.dumps(command))
    return process.pid


def stop(name: str) -> None:
    pid_file = STATE / f"{name}.pid"
    if not pid_file.exists():
        return
    pid = int(pid_file.read_text())
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        pid_file.unlink()
        return
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    else:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)
    pid_file.unlink()


def node_manifest(zone: str, index: int) -> dict[str, Any]:
    name = f"node-{zone}-{index}"
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "annotations": {"node.alpha.kubernetes.io/ttl": "0"},
            "labels": {
                KWOK_NODE_LABEL: "fake",
                "type": "kwok",
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
                "node.kubernetes.io/instance-type": INSTANCE_TYPE,
                "topology.kubernetes.io/zone": zone,
                "topology.kubernetes.io/region": "sandbox",
            },
        },
        "spec": {"providerID": f"kwok://{name}"},
        "status": {"capacity": NODE_CAPACITY, "allocatable": NODE_CAPACITY},
    }


def up() -> None:
    if (STATE / "kube-apiserver.pid").exists():
        down()
    bin_dir = build_binaries()
    STATE.mkdir(parents=True, exist_ok=True)
    pki = STATE / "pki"
    make_certificates(pki)
    etcd_port, etcd_peer, api_port, kcm_port, sched_port, kwok_port = (
        free_port() for _ in range(6)
    )
    server = f"https://127.0.0.1:{api_port}"
    admin_kubeconfig = STATE / "kubeconfig"
    write_kubeconfig(admin_kubeconfig, server, pki)
    (STATE / "stages.yaml").write_text(kwok_stages())
    (STATE / "bin").unlink(missing_ok=True)
    (STATE / "bin").symlink_to(bin_dir)

    log(f"etcd on 127.0.0.1:{etcd_port}")
    start("etcd", [
        str(bin_dir / "etcd"), f"--data-dir={STATE / 'etcd'}", "--unsafe-no-fsync",
        f"--listen-client-urls=http://127.0.0.1:{etcd_port}",
        f"--advertise-client-urls=http://127.0.0.1:{etcd_port}",
        f"--listen-peer-urls=http://127.0.0.1:{etcd_peer}",
        f"--initial-advertise-peer-urls=http://127.0.0.1:{etcd_peer}",
        f"--initial-cluster=default=http://127.0.0.1:{etcd_peer}",
        "--quota-backend-bytes=8589934592", "--log-level=warn",
    ])  # fmt: skip
    log(f"kube-apiserver on {server}")
    apiserver = [
        str(bin_dir / "kube-apiserver"), f"--etcd-servers=http://127.0.0.1:{etcd_port}",
        "--bind-address=127.0.0.1", "--advertise-address=127.0.0.1",
        f"--secure-port={api_port}", "--authorization-mode=Node,RBAC",
        "--endpoint-reconciler-type=none", "--allow-privileged=true",
        f"--service-cluster-ip-range={SERVICE_CIDR}",
        f"--tls-cert-file={pki / 'server.crt'}", f"--tls-private-key-file={pki / 'server.key'}",
        f"--client-ca-file={pki / 'ca.crt'}",
        "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
        f"--service-account-key-file={pki / 'sa.pub'}",
        f"--service-account-signing-key-file={pki / 'sa.key'}",
        "--enable-priority-and-fairness=false", "--max-requests-inflight=2000",
        "--max-mutating-requests-inflight=1000",
    ]  # fmt: skip
    start("kube-apiserver", apiserver)
    api = Api(server, pki)
    wait(api.healthy, 90, "kube-apiserver /readyz")
    log("kube-controller-manager, kube-scheduler, kwok")
    start("kube-controller-manager", [
        str(bin_dir / "kube-controller-manager"), f"--kubeconfig={admin_kubeconfig}",
        f"--authentication-kubeconfig={admin_kubeconfig}",
        f"--authorization-kubeconfig={admin_kubeconfig}",
        "--bind-address=127.0.0.1", f"--secure-port={kcm_port}",
        f"--root-ca-file={pki / 'ca.crt'}",
        f"--service-account-private-key-file={pki / 'sa.key'}",
        "--use-service-account-credentials=true",
        "--node-monitor-period=1s", "--node-monitor-grace-period=12s",
        "--allocate-node-cidrs=true", f"--cluster-cidr={CLUSTER_CIDR}",
        f"--service-cluster-ip-range={SERVICE_CIDR}", "--leader-elect=false",
    ])  # fmt: skip
    start("kube-scheduler", [
        str(bin_dir / "kube-scheduler"), f"--kubeconfig={admin_kubeconfig}",
        f"--authentication-kubeconfig={admin_kubeconfig}",
        f"--authorization-kubeconfig={admin_kubeconfig}",
        "--bind-address=127.0.0.1", f"--secure-port={sched_port}", "--leader-elect=false",
    ])  # fmt: skip
    start("kwok", [
        str(bin_dir / "kwok"), f"--kubeconfig={admin_kubeconfig}",
        f"--config={STATE / 'stages.yaml'}", "--manage-all-nodes=false",
        f"--manage-nodes-with-label-selector={KWOK_NODE_LABEL}=fake",
        "--node-lease-duration-seconds=8", f"--server-address=127.0.0.1:{kwok_port}",
        "--cidr=10.0.0.1/16", "--node-ip=10.0.0.1",
    ])  # fmt: skip
    create_nodes(api)
    wait(lambda: default_service_account(api), 60, "the default ServiceAccount")
    log(f"ready: export KUBECONFIG={admin_kubeconfig}")


def create_nodes(api: Api) -> None:
    names = []
    for zone in ZONES:
        for index in range(1, NODES_PER_ZONE + 1):
            manifest = node_manifest(zone, index)
            names.append(manifest["metadata"]["name"])
            try:
                api.request("POST", "/api/v1/nodes", manifest)
            except urllib.error.HTTPError as error:
                if error.code != 409:
                    raise
            # A created Node's status is not taken from the POST: set the capacity kwok copies.
            api.request(
                "PATCH",
                f"/api/v1/nodes/{manifest['metadata']['name']}/status",
                {"status": manifest["status"]},
                "application/merge-patch+json",
            )

    wait(lambda: nodes_ready(api, names), READY_TIMEOUT, f"{len(names)} Ready nodes")


def node_names() -> list[str]:
    return [f"node-{zone}-{index}" for zone in ZONES for index in range(1, NODES_PER_ZONE + 1)]


def rbac_allows(api: Api) -> bool:
    """Whether RBAC lets kube-system's namespace-controller ServiceAccount list namespaces (a
    bootstrap binding every cluster has)."""
    review = {
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SubjectAccessReview",
        "spec": {
            "user": "system:serviceaccount:kube-system:namespace-controller",
            "groups": ["system:serviceaccounts", "system:authenticated"],
            "resourceAttributes": {"verb": "list", "resource": "namespaces"},
        },
    }
    answer = api.request("POST", "/apis/authorization.k8s.io/v1/subjectaccessreviews", review)
    return bool(answer.get("status", {}).get("allowed"))


def nodes_ready(api: Api, names: list[str]) -> bool:
    """Every node named is Ready and untainted."""
    nodes = api.request("GET", "/api/v1/nodes")["items"]
    ready = {
        node["metadata"]["name"]
        for node in nodes
        for condition in node.get("status", {}).get("conditions", [])
        if condition["type"] == "Ready"
        and condition["status"] == "True"
        and not node.get("spec", {}).get("taints")
    }
    return set(names) <= ready


def default_service_account(api: Api) -> bool:
    try:
        api.request("GET", "/api/v1/namespaces/default/serviceaccounts/default")
    except urllib.error.HTTPError:
        return False
    return True


def down() -> None:
    for name in ("kwok", "kube-scheduler", "kube-controller-manager", "kube-apiserver", "etcd"):
        stop(name)
    if STATE.exists():
        shutil.rmtree(STATE)
    log("stopped")


def restart_apiserver() -> None:
    command = json.loads((STATE / "kube-apiserver.cmd").read_text())
    stop("kube-apiserver")
    start("kube-apiserver", command)
    server = next(arg for arg in command if arg.startswith("--secure-port="))
    api = Api(f"https://127.0.0.1:{server.split('=', 1)[1]}", STATE / "pki")
    wait(api.healthy, 90, "kube-apiserver /readyz")
    # /readyz can pass before the RBAC authorizer's caches are filled, and until then it denies
    # every ServiceAccount (a real restart's transient 403s): wait until it allows one again.
    wait(lambda: rbac_allows(api), 60, "the RBAC authorizer after the restart")
    # Node Leases looked stale while it was down: return once kube-controller-manager sees every
    # node Ready again and has lifted its taints, as a restart in production settles.
    wait(lambda: nodes_ready(api, node_names()), READY_TIMEOUT, "every node Ready after restart")
    # The other components' watches failed while it was down and their reflectors back off (up
    # to about 30 s): return once a new Pod is scheduled and run again.
    schedules_and_runs(api)


PROBE_POD = "cluster-restart-probe"


def schedules_and_runs(api: Api) -> None:
    """Create a Pod, wait until kube-scheduler has bound it and kwok runs it, delete it."""
    path = "/api/v1/namespaces/default/pods"
    body = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": PROBE_POD},
        "spec": {"containers": [{"name": "probe", "image": "busybox"}]},
    }
    api.request("POST", path, body)

    def running() -> bool:
        pod = api.request("GET", f"{path}/{PROBE_POD}")
        return bool(pod.get("spec", {}).get("nodeName")) and (
            pod.get("status", {}).get("phase") == "Running"
        )

    try:
        wait(running, READY_TIMEOUT, "a new Pod scheduled and running after the restart")
    finally:
        api.request("DELETE", f"{path}/{PROBE_POD}?gracePeriodSeconds=0")

        def gone() -> bool:
            try:
                api.request("GET", f"{path}/{PROBE_POD}")
            except urllib.error.HTTPError as error:
                return error.code == 404
            return False

        wait(gone, READY_TIMEOUT, "the probe Pod deleted")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=["up", "down", "run", "restart-apiserver"])
    command = parser.parse_args().command
    if command == "up":
        up()
    elif command == "down":
        down()
    elif command == "restart-apiserver":
        restart_apiserver()
    else:
        up()
        print(f"export KUBECONFIG={STATE / 'kubeconfig'}   # Ctrl-C stops the cluster")
        try:
            signal.pause()
        except KeyboardInterrupt:
            pass
        finally:
            down()


if __name__ == "__main__":
    main()
