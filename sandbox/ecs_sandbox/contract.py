"""The operator's API, as strings: what the demo creates, reads and shows.

Copied, never imported: the sandbox distribution does not import `ecs_operator` (it must run,
and be installed, without it). These strings are the operator's public contract (its API group
and version, the label it puts on a service's tasks); a test checks that they still match the
operator's. Kubernetes' own strings (the zone label) live with the simulated nodes, in
`ecs_sandbox.cluster`.
"""

from __future__ import annotations

API_GROUP = "ecs.operator.dev"
API_VERSION = "v1alpha1"
ECS_API_VERSION = f"{API_GROUP}/{API_VERSION}"
# The label on every Task (and Pod) a Service started: the Service's name.
SERVICE_LABEL = f"{API_GROUP}/service"
