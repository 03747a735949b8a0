"""Fetch Prometheus for the alarm-rollback tests: the distribution's `prometheus` package
(Debian 12: 2.42), downloaded with `apt-get download` (no root needed) and unpacked with
`dpkg -x` into `.tools/prometheus-VERSION/`, kept per version; `.tools/prometheus` links to
its binary. A version already unpacked is not fetched again.

    python tools/fetch_prometheus.py [--version VERSION] [--tools DIR]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def candidate_version() -> str:
    """The version apt would install (`apt-cache policy prometheus`)."""
    policy = subprocess.run(
        ["apt-cache", "policy", "prometheus"], capture_output=True, text=True, check=True
    ).stdout
    for line in policy.splitlines():
        key, _, value = line.strip().partition(":")
        if key == "Candidate" and value.strip() not in ("", "(none)"):
            return value.strip()
    raise SystemExit(
        "fetch_prometheus: apt knows no prometheus package (run apt-get update, or give --version)"
    )


def fetch(version: str, tools: Path) -> Path:
    """Unpack prometheus VERSION under ``tools`` (unless there already); its binary."""
    target = tools / f"prometheus-{version}"
    binary = target / "usr" / "bin" / "prometheus"
    if not binary.exists():
        tools.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=tools) as scratch:
            subprocess.run(
                ["apt-get", "download", f"prometheus={version}"], cwd=scratch, check=True
            )
            (package,) = Path(scratch).glob("prometheus_*.deb")
            unpacked = Path(scratch) / "root"
            subprocess.run(["dpkg", "-x", str(package), str(unpacked)], check=True)
            shutil.rmtree(target, ignore_errors=True)
            unpacked.rename(target)
    link = tools / "prometheus"
    link.unlink(missing_ok=True)
    link.symlink_to(binary.relative_to(tools))
    return binary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--version", help="package version (default: apt's candidate)")
    parser.add_argument("--tools", type=Path, default=REPO / ".tools")
    args = parser.parse_args(argv)
    binary = fetch(args.version or candidate_version(), args.tools)
    print(binary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
