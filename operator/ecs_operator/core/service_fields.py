"""What a Service's spec accepts but the operator does not honour, for ``status.unsupported``.

A CreateService request, an ecspresso or Terraform service definition or describe-services'
output pastes as it is; what ECS has and Kubernetes cannot honour is listed here, never silently
dropped (the reasons are ``core.render.NOT_HONOURED``'s, the README's table). Empty values
(``"serviceRegistries": []``, ``"enableExecuteCommand": false``) mean "not used" and are not
reported; neither is what is honoured (``propagateTags: SERVICE`` copies the tags to the tasks,
a ``serviceName`` that is the Service's own name, the ECS deployment controller).
"""

from ecs_operator.core.render import NOT_HONOURED
from ecs_operator.core.strategies import is_staged, strategy_of
from ecs_operator.models.common import UnsupportedField
from ecs_operator.models.service import ServiceSpec, route_name
from ecs_operator.models.taskdefinition import family_name


def _field(path: str, key: str, *, read_only: bool = False) -> UnsupportedField:
    return UnsupportedField(field=path, reason=NOT_HONOURED[key], read_only=read_only or None)


def unsupported_service_fields(name: str, spec: ServiceSpec) -> list[UnsupportedField]:
    """The fields of the Service ``name``'s ``spec`` that are accepted but not honoured."""
    found: list[UnsupportedField] = []
    if spec.service_name is not None and family_name(spec.service_name) != name:
        found.append(_field("spec.serviceName", "serviceName"))
    for path, key, used in (
        ("spec.cluster", "cluster", spec.cluster is not None),
        ("spec.platformVersion", "platformVersion", spec.platform_version is not None),
        ("spec.platformFamily", "platformFamily", spec.platform_family is not None),
        ("spec.enableExecuteCommand", "enableExecuteCommand", bool(spec.enable_execute_command)),
        (
            "spec.networkConfiguration",
            "networkConfiguration",
            spec.network_configuration is not None
            and spec.network_configuration.awsvpc_configuration is not None,
        ),
        (
            "spec.propagateTags",
            "propagateTags TASK_DEFINITION",
            spec.propagate_tags == "TASK_DEFINITION",
        ),
        ("spec.enableECSManagedTags", "enableECSManagedTags", bool(spec.enable_ecs_managed_tags)),
        (
            "spec.capacityProviderStrategy",
            "capacityProviderStrategy",
            bool(spec.capacity_provider_strategy),
        ),
        (
            "spec.deploymentController",
            "deploymentController",
            spec.deployment_controller is not None and spec.deployment_controller.type != "ECS",
        ),
        ("spec.serviceRegistries", "serviceRegistries", bool(spec.service_registries)),
        (
            "spec.serviceConnectConfiguration",
            "serviceConnectConfiguration",
            bool(spec.service_connect_configuration),
        ),
        ("spec.role", "role", spec.role is not None),
    ):
        if used:
            found.append(_field(path, key))
    found.extend(_lifecycle_hooks(spec))
    for index, entry in enumerate(spec.load_balancers or ()):
        advanced = entry.advanced_configuration
        if advanced is None:
            continue
        for name, setting in (
            ("productionListenerRule", advanced.production_listener_rule),
            ("testListenerRule", advanced.test_listener_rule),
            ("roleArn", advanced.role_arn),
        ):
            # A listener rule naming an HTTPRoute is honoured (core.http_routes), an ELB rule
            # ARN is not.
            if setting and (name == "roleArn" or route_name(setting) is None):
                found.append(
                    _field(
                        f"spec.loadBalancers[{index}].advancedConfiguration.{name}",
                        f"loadBalancers[].advancedConfiguration.{name}",
                    )
                )
    for path, value in (
        ("spec.runningCount", spec.running_count),
        ("spec.pendingCount", spec.pending_count),
    ):
        if value is not None:
            found.append(_field(path, "read-only fields of describe-services", read_only=True))
    return found


def _lifecycle_hooks(spec: ServiceSpec) -> list[UnsupportedField]:
    """Hooks of a ROLLING service."""
    configuration = spec.deployment_configuration
    hooks = (configuration.lifecycle_hooks if configuration else None) or ()
    if is_staged(strategy_of(spec)):
        return []
    return [
        _field(
            f"spec.deploymentConfiguration.lifecycleHooks[{index}]", "lifecycleHooks with ROLLING"
        )
        for index in range(len(hooks))
    ]
