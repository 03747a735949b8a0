# The operator image: `docker build -t ghcr.io/ecs-operator/ecs-operator:0.1.0 .`
# Stage 1 builds the project's wheel and every runtime dependency's wheel, pinned by the lock;
# stage 2 installs them from those wheels only (no network, no compiler, no build tools).
ARG PYTHON_IMAGE=python:3.11.13-slim-bookworm

FROM ${PYTHON_IMAGE} AS builder
WORKDIR /src
COPY pyproject.toml README.md ./
COPY requirements/lock.txt requirements/lock.txt
COPY operator/ operator/
RUN pip wheel --no-cache-dir --wheel-dir /wheels --constraint requirements/lock.txt .

FROM ${PYTHON_IMAGE}
ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
# Mounted, not copied: the wheels never land in an image layer (BuildKit, Docker 23+ default).
RUN --mount=type=bind,from=builder,source=/wheels,target=/wheels \
    pip install --no-index --find-links=/wheels ecs-operator
# Numeric, so the kubelet can verify runAsNonRoot; the root filesystem may be read-only
# (the operator writes nothing outside /tmp).
USER 65532:65532
WORKDIR /tmp
# 8081: the health endpoint (http://0.0.0.0:8081/healthz, for the kubelet's probes);
# 9090: Prometheus metrics, when --metrics-port=9090 is passed.
EXPOSE 8081 9090
ENTRYPOINT ["ecs-operator", "run"]
CMD ["--health-address=0.0.0.0"]
