"""The sandbox cluster: an in-memory Kubernetes API server with simulated zone nodes.

It exists because development and CI machines have no Docker engine (so no kind) and no
kube-apiserver build can be installed. It is faithful where a controller or kubectl depends on
the API; it is not a container runtime and never runs images.

A distribution of its own (`ecs-sandbox`: `ecs-sandbox serve`, `ecs-sandbox demo`), beside the
operator's: it never imports `ecs_operator`, and the operator never imports it, so neither the
operator's wheel nor its image carries it.
"""

__version__ = "0.1.0"
