"""The sandbox cluster: an in-memory Kubernetes API server with simulated zone nodes.

It exists because development and CI machines have no Docker engine (so no kind) and no
kube-apiserver build can be installed. It is faithful where a controller or kubectl depends on
the API; it is not a container runtime and never runs images.
"""
