"""Copy the Gateway API's standard-channel CRDs (GatewayClass, Gateway, HTTPRoute) into
.tools/gateway-api-VERSION/ for the integration tests to apply.

The Gateway API is a real, standard dependency of the HTTPRoute traffic split: the tests install
its own CRDs, not a copy written here. They come from the Go module sigs.k8s.io/gateway-api
(the Go module proxy is reachable from the development and CI machines), fetched with
`go mod download -json`, whose checksum database verifies the module. Usage:
`make gateway-api` or `.venv/bin/python tools/fetch_gateway_api.py [--output DIR]`.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

MODULE = "sigs.k8s.io/gateway-api"
VERSION = "v1.6.3"
CRDS = (
    "gateway.networking.k8s.io_gatewayclasses.yaml",
    "gateway.networking.k8s.io_gateways.yaml",
    "gateway.networking.k8s.io_httproutes.yaml",
)
DEFAULT_OUTPUT = Path(__file__).resolve().parent.parent / ".tools" / f"gateway-api-{VERSION}"


class FetchError(Exception):
    pass


def module_dir() -> Path:
    """The module's directory in the Go module cache, downloading it when missing."""
    result = subprocess.run(
        ["go", "mod", "download", "-json", f"{MODULE}@{VERSION}"],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise FetchError(
            f"go mod download {MODULE}@{VERSION} failed: {result.stdout}{result.stderr}"
        )
    return Path(json.loads(result.stdout)["Dir"])


def fetch(output: Path) -> None:
    source = module_dir() / "config" / "crd" / "standard"
    output.mkdir(parents=True, exist_ok=True)
    for name in CRDS:
        if not (source / name).is_file():
            raise FetchError(f"{name} is not in {source}")
        shutil.copyfile(source / name, output / name)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    args = parser.parse_args()
    try:
        fetch(args.output)
    except (FetchError, FileNotFoundError) as error:
        print(f"fetch_gateway_api: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
