"""ecs-operator: Amazon ECS semantics as a Kubernetes operator."""

__version__ = "0.1.0"

API_GROUP = "ecs.operator.dev"
API_VERSION = "v1alpha1"
