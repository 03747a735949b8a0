#!/usr/bin/env bash
# Build the real control plane's binaries from the pinned Go wrapper modules under tools/:
# kube-apiserver, kube-controller-manager, kube-scheduler and kubectl (k8s.io/kubernetes, version
# stamped), etcd (go.etcd.io/etcd/server/v3) and kwok (sigs.k8s.io/kwok).
#
# Output: $ECS_OPERATOR_CACHE/cluster-<versions>/bin (default ~/.cache/ecs-operator), outside git
# and keyed by the pinned versions, so a fresh clone on the same machine reuses it. Each binary is
# built only when missing. Prints the bin directory on its last line.
set -euo pipefail

KUBE_VERSION=v1.36.3
ETCD_VERSION=v3.6.16
KWOK_VERSION=v0.8.0

TOOLS="$(cd "$(dirname "$0")" && pwd)"
CACHE="${ECS_OPERATOR_CACHE:-$HOME/.cache/ecs-operator}"
BIN="$CACHE/cluster-kube-$KUBE_VERSION-etcd-$ETCD_VERSION-kwok-$KWOK_VERSION/bin"
mkdir -p "$BIN"

export CGO_ENABLED=0 GOTOOLCHAIN=local GOFLAGS="-mod=mod -trimpath"

# Without the stamp the server reports v0.0.0-master and kubectl/helm version checks break.
minor="${KUBE_VERSION#v1.}"
minor="${minor%%.*}"
stamp=""
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  stamp+=" -X $pkg.gitVersion=$KUBE_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
  stamp+=" -X $pkg.gitTreeState=clean -X $pkg.gitCommit=ecs-operator-module-build"
  stamp+=" -X $pkg.buildDate=1970-01-01T00:00:00Z"
done

build() {  # build NAME MODULE_DIR PACKAGE [LDFLAGS]
  local name=$1 dir=$2 package=$3 ldflags=${4:-}
  if [[ -x "$BIN/$name" ]]; then
    return
  fi
  echo "building $name ($package) — the first build takes minutes" >&2
  local started=$SECONDS
  (cd "$TOOLS/$dir" && go build -ldflags "-s -w $ldflags" -o "$BIN/$name.partial" "$package")
  mv "$BIN/$name.partial" "$BIN/$name"
  echo "built $name in $((SECONDS - started)) s" >&2
}

build etcd etcd go.etcd.io/etcd/server/v3
build kwok kwok sigs.k8s.io/kwok/cmd/kwok
build kube-apiserver kube k8s.io/kubernetes/cmd/kube-apiserver "$stamp"
build kube-controller-manager kube k8s.io/kubernetes/cmd/kube-controller-manager "$stamp"
build kube-scheduler kube k8s.io/kubernetes/cmd/kube-scheduler "$stamp"
build kubectl kube k8s.io/kubernetes/cmd/kubectl "$stamp"
echo "$BIN"
