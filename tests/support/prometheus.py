"""A real Prometheus server for the alarm-rollback tests, scraping a metric the test controls.

`ControlledMetric` serves one gauge (prometheus_client exposition on a free port, its own
registry); `PrometheusServer` runs the distribution's `prometheus` binary (`make prometheus`
unpacks it into `.tools/`) with a configuration that scrapes that endpoint every second, and
returns once Prometheus answers ready and has scraped it (polled with a deadline).
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import requests
from prometheus_client import CollectorRegistry, Gauge, start_http_server

REPO = Path(__file__).resolve().parents[2]
BINARY = REPO / ".tools" / "prometheus"
SCRAPE_INTERVAL = "1s"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def prometheus_binary() -> Path:
    found = BINARY if BINARY.exists() else shutil.which("prometheus")
    if found is None:
        raise AssertionError("Prometheus is not fetched: run `make prometheus` first")
    return Path(found)


class ControlledMetric:
    """A gauge at http://127.0.0.1:PORT/metrics whose value the test sets."""

    def __init__(self, name: str) -> None:
        self.registry = CollectorRegistry()
        self.gauge = Gauge(name, "a value the test controls", registry=self.registry)
        self.port = free_port()
        self.server, self.thread = start_http_server(
            self.port, addr="127.0.0.1", registry=self.registry
        )

    def set(self, value: float) -> None:
        self.gauge.set(value)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class PrometheusServer:
    def __init__(self, workdir: Path, target_port: int) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = workdir / "prometheus.yml"
        config.write_text(
            "global:\n"
            f"  scrape_interval: {SCRAPE_INTERVAL}\n"
            f"  evaluation_interval: {SCRAPE_INTERVAL}\n"
            "scrape_configs:\n"
            "  - job_name: app\n"
            "    static_configs:\n"
            f"      - targets: ['127.0.0.1:{target_port}']\n"
        )
        self.log = workdir / "prometheus.log"
        with self.log.open("w") as log:
            self.process = subprocess.Popen(
                [
                    str(prometheus_binary()),
                    f"--config.file={config}",
                    f"--storage.tsdb.path={workdir / 'data'}",
                    f"--web.listen-address=127.0.0.1:{self.port}",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def query(self, expression: str) -> Any:
        response = requests.get(f"{self.url}/api/v1/query", params={"query": expression}, timeout=5)
        response.raise_for_status()
        return response.json()["data"]["result"]

    def wait_ready(self, metric: str, timeout: float = 30.0) -> None:
        """Until Prometheus answers ready and has a sample of ``metric``."""
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise AssertionError(f"prometheus exited:\n{self.log.read_text()[-2000:]}")
            try:
                if requests.get(f"{self.url}/-/ready", timeout=2).ok and self.query(metric):
                    return
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"prometheus not ready with {metric} after {timeout} s:\n"
                    f"{self.log.read_text()[-2000:]}"
                )
            time.sleep(0.2)

    def wait_value(self, metric: str, value: float, timeout: float = 15.0) -> None:
        """Until Prometheus's latest sample of ``metric`` is ``value`` (one scrape later)."""
        deadline = time.monotonic() + timeout
        while True:
            result = self.query(metric)
            if result and float(result[0]["value"][1]) == value:
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"{metric} is not {value} in Prometheus: {result}")
            time.sleep(0.2)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
