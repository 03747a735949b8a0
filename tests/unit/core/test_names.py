"""The one rule mapping ECS names (roles, secrets, load balancers) to Kubernetes names."""

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ecs_operator.core import names
from ecs_operator.models.service import ServiceLoadBalancer

SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
LABEL = re.compile(r"[a-z]([-a-z0-9]*[a-z0-9])?")

# What ECS names are made of (IAM: [\w+=,.@-]; Secrets Manager: /_+=.@-; SSM: _.-/), and more.
ecs_names = st.text(
    alphabet=st.sampled_from("abcXYZ019_-./+=,@ :é"), min_size=1, max_size=600
) | st.text(min_size=1, max_size=40)


def is_subdomain(name: str) -> bool:
    return len(name) <= 253 and SUBDOMAIN.fullmatch(name) is not None


def is_label(name: str) -> bool:
    return len(name) <= 63 and LABEL.fullmatch(name) is not None


@given(ecs_names)
def test_every_name_maps_to_a_valid_name_and_mapping_again_changes_nothing(name: str) -> None:
    subdomain = names.kubernetes_name(name)
    assert is_subdomain(subdomain)
    assert names.kubernetes_name(subdomain) == subdomain
    label = names.kubernetes_name(name, label=True)
    assert is_label(label)
    assert names.kubernetes_name(label, label=True) == label


@given(ecs_names, ecs_names)
def test_distinct_names_map_to_distinct_names(a: str, b: str) -> None:
    if a != b:
        assert names.kubernetes_name(a) != names.kubernetes_name(b)
        assert names.kubernetes_name(a, label=True) != names.kubernetes_name(b, label=True)


@given(st.from_regex(SUBDOMAIN, fullmatch=True).filter(lambda n: len(n) <= 253))
def test_a_valid_kubernetes_name_stays_itself(name: str) -> None:
    assert names.kubernetes_name(name) == name


@pytest.mark.parametrize(
    ("ecs_name", "form"),
    [
        ("ecsTaskRole", "ecstaskrole"),
        ("ecs_task_iam_role", "ecs-task-iam-role"),
        ("AmazonECS_OpenTelemetryXrayRole", "amazonecs-opentelemetryxrayrole"),
        ("prod/db", "prod-db"),
        ("/prod/db/password", "prod-db-password"),
        ("___", "x"),
    ],
)
def test_a_mapped_name_reads_like_the_ecs_name_with_a_digest(ecs_name: str, form: str) -> None:
    mapped = names.kubernetes_name(ecs_name)
    assert re.fullmatch(rf"{re.escape(form)}-[0-9a-f]{{8}}", mapped), mapped


def test_names_that_only_lower_casing_or_replacing_would_merge_stay_apart() -> None:
    merged = ["prod/db", "prod-db", "prod_db", "Prod/DB", "prod.db"]
    assert len({names.kubernetes_name(name) for name in merged}) == len(merged)
    assert names.kubernetes_name("prod-db") == "prod-db"
    assert names.kubernetes_name("prod.db") == "prod.db"
    assert names.kubernetes_name("prod.db", label=True) != "prod.db"


def test_a_label_starts_with_a_letter() -> None:
    assert names.kubernetes_name("1st-tg", label=True).startswith("x-1st-tg-")
    assert names.kubernetes_name("1st-tg") == "1st-tg"


@pytest.mark.parametrize(
    ("role", "ecs_name"),
    [
        ("arn:aws:iam::123456789012:role/ecsTaskRole", "ecsTaskRole"),
        ("arn:aws:iam::123456789012:role/service-role/x", "x"),
        ("arn:aws-cn:iam::123456789012:role/a/b/web", "web"),
        ("web", "web"),
    ],
)
def test_a_role_arn_names_its_role(role: str, ecs_name: str) -> None:
    assert names.ecs_role_name(role) == ecs_name
    assert names.service_account_name(role) == names.kubernetes_name(ecs_name)


@pytest.mark.parametrize(
    ("resource", "ecs_name"),
    [
        ("prod/db-AbCdEf", "prod/db"),
        ("db-credentials-a1B2c3", "db-credentials"),
        ("db-creds", "db-creds"),  # 5 characters: no random suffix
        ("-AbCdEf", "-AbCdEf"),  # nothing before it: a name, not a suffix
    ],
)
def test_the_secrets_manager_random_suffix_is_dropped(resource: str, ecs_name: str) -> None:
    assert names.ecs_secret_name(resource) == ecs_name


def test_ssm_parameter_names_keep_their_hierarchy() -> None:
    assert names.ecs_parameter_name("parameter/prod/db/password") == "/prod/db/password"
    assert names.ecs_parameter_name("parameter/db_password") == "db_password"


def entry(**fields: object) -> ServiceLoadBalancer:
    return ServiceLoadBalancer.model_validate(
        {"containerName": "web", "containerPort": 80} | fields
    )


def test_a_target_group_arn_names_the_load_balancer_after_the_target_group() -> None:
    arn = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/web-tg/73e2d6bc24d8a067"
    assert names.load_balancer_of(entry(targetGroupArn=arn)) == "web-tg"
    assert names.load_balancer_field(entry(targetGroupArn=arn)) == "targetGroupArn"
    camel = arn.replace("web-tg", "Web-TG")
    assert names.load_balancer_of(entry(targetGroupArn=camel)) == names.load_balancer_name("Web-TG")


def test_the_alternate_names_a_load_balancer_by_the_target_group_rule() -> None:
    arn = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/Web-Green/73e2d6bc"
    alternate = {"advancedConfiguration": {"alternateTargetGroupArn": arn}}
    assert names.alternate_load_balancer_of(
        entry(loadBalancerName="web", **alternate)
    ) == names.load_balancer_name("Web-Green")
    plain = {"advancedConfiguration": {"alternateTargetGroupArn": "web-green"}}
    assert names.alternate_load_balancer_of(entry(loadBalancerName="web", **plain)) == "web-green"
    assert names.alternate_load_balancer_of(entry(loadBalancerName="web")) is None


def test_a_classic_load_balancer_name_maps_by_the_same_rule() -> None:
    assert names.load_balancer_of(entry(loadBalancerName="web")) == "web"
    mapped = names.load_balancer_of(entry(loadBalancerName="MyELB"))
    assert mapped == names.kubernetes_name("MyELB", label=True)
    assert mapped.startswith("myelb-")
    assert names.load_balancer_field(entry(loadBalancerName="MyELB")) == "loadBalancerName"


def test_role_names_are_iam_or_kubernetes_names() -> None:
    assert names.is_role_name("AmazonECS_OpenTelemetryXrayRole")
    assert names.is_role_name("a" * 64)
    assert names.is_role_name("s" * 200)  # a ServiceAccount named outright
    assert not names.is_role_name("R" * 65)
    assert not names.is_role_name("web role")


def test_the_digest_is_stable() -> None:
    """Users create objects of these names: a change of the rule would orphan them."""
    assert names.kubernetes_name("ecsTaskRole") == "ecstaskrole-1fb102bd"
    assert names.kubernetes_name("prod/db") == "prod-db-96e5a54a"
