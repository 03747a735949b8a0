"""The Kubernetes object an ECS name refers to: the one rule for task roles, secret references
and load balancers.

ECS names things Kubernetes names differently: IAM roles (``ecsTaskRole``,
``ecs_task_iam_role``), Secrets Manager secrets (``prod/db``, whose ARN adds AWS's random
``-AbCdEf``), SSM parameters (``/prod/db/password``, ``db_password``), target groups and classic
load balancers (``Web-TG``). Each maps to a Kubernetes name in two steps:

1. **The ECS name** is read out of the value (``ecs_role_name``, ``ecs_secret_name``,
   ``ecs_target_group_name``): a role ARN gives its role name (the last path segment: IAM role
   names are unique in an account whatever their path); a Secrets Manager ARN its secret name
   with paths and without the 6-character random suffix (so rotating or recreating the secret
   changes nothing); an SSM parameter ARN its parameter name (``/prod/db/password``); a target
   group ARN its name (``targetgroup/web-tg/73e2…`` -> ``web-tg``). A plain value is the name.
2. **The rule** (``kubernetes_name``): a name that is already a valid Kubernetes name stays as
   it is (``ecs-task-role``, ``db-credentials``). Any other is lower-cased, every run of
   characters other than ``a-z`` and ``0-9`` becomes ``-``, and since that can make two names
   equal (``prod/db`` and ``prod-db``, ``Web`` and ``web``), ``-`` and the first 8 hex digits of
   the SHA-256 of the ECS name are appended: ``ecsTaskRole`` -> ``ecstaskrole-5c1a…``,
   ``prod/db`` -> ``prod-db-…``, ``staging/db`` -> ``staging-db-…``. Distinct ECS names give
   distinct Kubernetes names (up to a collision of the 32-bit digest), the result is always
   valid (a DNS subdomain of at most 253 characters, or where a DNS label is needed, a label of
   at most 63 that starts with a letter), and mapping a mapped name again changes nothing.

The task definition can name the object itself where the rule does not fit
(``taskRoleServiceAccountName``, ``secrets[].kubernetesSecretName``,
``repositoryCredentials.kubernetesSecretName``); those are Kubernetes names already.
"""

import hashlib
import re
from typing import Final

from ecs_operator.models.service import ServiceLoadBalancer

MAX_SUBDOMAIN: Final = 253
MAX_LABEL: Final = 63
DIGEST_LENGTH: Final = 8

_SUBDOMAIN: Final = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
# DNS-1035: what a Kubernetes Service's name must be (a LoadBalancer names its Service).
_LABEL: Final = re.compile(r"[a-z]([-a-z0-9]*[a-z0-9])?")
_NOT_ALPHANUMERIC: Final = re.compile(r"[^a-z0-9]+")
_IAM_ROLE_NAME: Final = re.compile(r"[\w+=,.@-]{1,64}", re.ASCII)
_RANDOM_SUFFIX: Final = re.compile(r"(?<=.)-[A-Za-z0-9]{6}\Z")


def is_kubernetes_name(name: str, *, label: bool = False) -> bool:
    """A DNS subdomain of at most 253 characters (``label``: a DNS-1035 label of at most 63)."""
    if label:
        return len(name) <= MAX_LABEL and _LABEL.fullmatch(name) is not None
    return len(name) <= MAX_SUBDOMAIN and _SUBDOMAIN.fullmatch(name) is not None


def kubernetes_name(ecs_name: str, *, label: bool = False) -> str:
    """The Kubernetes name of ``ecs_name`` by the rule in the module docstring."""
    if is_kubernetes_name(ecs_name, label=label):
        return ecs_name
    digest = hashlib.sha256(ecs_name.encode()).hexdigest()[:DIGEST_LENGTH]
    form = _NOT_ALPHANUMERIC.sub("-", ecs_name.lower()).strip("-")
    if not form or (label and not form[0].isalpha()):
        form = f"x-{form}"
    room = (MAX_LABEL if label else MAX_SUBDOMAIN) - len(digest) - 1
    return f"{form[:room].rstrip('-')}-{digest}"


def ecs_role_name(role: str) -> str:
    """The IAM role name of a task role: ``arn:aws:iam::1:role/service-role/web`` -> ``web``;
    a plain value is the name."""
    return role.rsplit("/", 1)[-1] if role.startswith("arn:") else role


def is_role_name(name: str) -> bool:
    """An IAM role name (1-64 letters, digits and ``+=,.@_-``) or a Kubernetes name."""
    return _IAM_ROLE_NAME.fullmatch(name) is not None or is_kubernetes_name(name)


def service_account_name(role: str) -> str:
    """The ServiceAccount a task role (ARN or name) maps to."""
    return kubernetes_name(ecs_role_name(role))


def ecs_secret_name(arn_resource: str) -> str:
    """The secret name in a Secrets Manager ARN's resource part (``prod/db-AbCdEf`` ->
    ``prod/db``): ECS takes full ARNs, which end in ``-`` and 6 random characters (AWS advises
    against secret names that end so, because partial ARNs cannot be told apart)."""
    return _RANDOM_SUFFIX.sub("", arn_resource)


def ecs_parameter_name(arn_resource: str) -> str:
    """The SSM parameter name in a parameter ARN's resource part: ``parameter/prod/db/password``
    -> ``/prod/db/password`` (a hierarchical name starts with ``/``), ``parameter/db_password``
    -> ``db_password``."""
    path = arn_resource.removeprefix("parameter/")
    return f"/{path}" if "/" in path else path


def secret_name(ecs_name: str) -> str:
    """The Secret a Secrets Manager secret or SSM parameter name maps to."""
    return kubernetes_name(ecs_name)


def ecs_target_group_name(arn: str) -> str:
    """The name in a target group ARN (the model's pattern checked its shape):
    ``arn:aws:elasticloadbalancing:R:A:targetgroup/web-tg/73e2d6bc24d8a067`` -> ``web-tg``."""
    return arn.split(":", 5)[-1].split("/")[1]


def load_balancer_name(ecs_name: str) -> str:
    """The LoadBalancer object a classic load balancer's or a target group's name maps to (a
    DNS label: the LoadBalancer names its Kubernetes Service)."""
    return kubernetes_name(ecs_name, label=True)


def load_balancer_of(entry: ServiceLoadBalancer) -> str:
    """The LoadBalancer object a Service's ``loadBalancers[]`` entry names."""
    arn = entry.target_group_arn
    return load_balancer_name(
        ecs_target_group_name(arn) if arn is not None else str(entry.load_balancer_name)
    )


def alternate_load_balancer_of(entry: ServiceLoadBalancer) -> str | None:
    """The LoadBalancer object an entry's ``advancedConfiguration.alternateTargetGroupArn``
    names, by the rule of ``targetGroupArn`` (a target group ARN gives its name; a plain value
    is the name); None without one."""
    advanced = entry.advanced_configuration
    if advanced is None:
        return None
    named = advanced.alternate_target_group_arn
    return load_balancer_name(ecs_target_group_name(named) if named.startswith("arn:") else named)


def load_balancer_field(entry: ServiceLoadBalancer) -> str:
    """Which field of the entry names its LoadBalancer (``targetGroupArn`` or
    ``loadBalancerName``), for messages naming it."""
    if entry.target_group_arn is not None:
        return "targetGroupArn"
    return "loadBalancerName"
