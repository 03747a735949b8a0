"""The ECS cluster query language (core.query): parser, errors and evaluation."""

from collections.abc import Mapping
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ecs_operator.core.placement import ContainerInstance
from ecs_operator.core.query import MAX_NESTING, QueryError, parse_expression, version_key

NODE = ContainerInstance(
    name="i-abcd1234",
    zone="us-east-1a",
    attributes={
        "ecs.availability-zone": "us-east-1a",
        "ecs.instance-type": "t2.micro",
        "ecs.os-type": "linux",
        "size": "10",
        "team/name": "payments",
    },
    registered_cpu_millicores=2000,
    remaining_cpu_millicores=2000,
    registered_memory_mib=4096,
    remaining_memory_mib=4096,
    running_tasks_count=1,
    group_counts={"service:production": 1},
    registered_at=datetime(2018, 2, 13, 22, 30, tzinfo=UTC),
    agent_version="1.30.2",
)
GROUPS: Mapping[str, int] = NODE.group_counts


def matches(text: str, groups: Mapping[str, int] = GROUPS, node: ContainerInstance = NODE) -> bool:
    return parse_expression(text).matches(node, groups)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # The examples of the ECS developer guide.
        ("attribute:ecs.availability-zone in [us-east-1a, us-east-1b]", True),
        ("attribute:ecs.availability-zone in [us-east-1b, us-east-1c]", False),
        ("attribute:ecs.instance-type =~ t2.*", True),
        ("attribute:ecs.instance-type =~ g2.*", False),
        (
            "attribute:ecs.instance-type =~ t2.* and attribute:ecs.availability-zone != us-east-1d",
            True,
        ),
        (
            "attribute:ecs.instance-type =~ g2.* and attribute:ecs.availability-zone != us-east-1d",
            False,
        ),
        ("task:group == service:production", True),
        ("not(task:group == database)", True),
        ("not(task:group == service:production)", False),
        ("runningTasksCount == 1", True),
        ("agentVersion < 1.14.5", False),
        ("agentVersion > 1.14.5", True),
        ("registeredAt < 2018-02-13", False),
        ("registeredAt < 2018-02-14", True),
        ("ec2InstanceId in ['i-abcd1234', 'i-wxyx7890']", True),
        ('ec2InstanceId in ["i-wxyx7890"]', False),
    ],
)
def test_ecs_documentation_examples(text: str, expected: bool) -> None:
    assert matches(text) is expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("attribute:ecs.os-type == linux", True),
        ("attribute:ecs.os-type equals linux", True),
        ("attribute:ecs.os-type EQUALS linux", True),
        ("attribute:ecs.os-type != linux", False),
        ("attribute:ecs.os-type not_equals windows", True),
        ("attribute:size > 9", True),
        ("attribute:size greater_than 10", False),
        ("attribute:size >= 10", True),
        ("attribute:size greater_than_equal 11", False),
        ("attribute:size < 10.5", True),
        ("attribute:size less_than 10", False),
        ("attribute:size <= 10.0", True),
        ("attribute:size less_than_equal 9", False),
        ("attribute:size exists", True),
        ("attribute:gpu exists", False),
        ("attribute:gpu !exists", True),
        ("attribute:size not_exists", False),
        ("attribute:size in [1, 10]", True),
        ("attribute:size !in [10]", False),
        ("attribute:size not_in [1, 2]", True),
        ("attribute:ecs.instance-type matches t2\\..*", True),
        ("attribute:ecs.instance-type !~ t2.*", False),
        ("attribute:ecs.instance-type not_matches m5.*", True),
        ("attribute:team/name == payments", True),
    ],
)
def test_every_operator_and_its_word_form(text: str, expected: bool) -> None:
    assert matches(text) is expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("attribute:size == 10 && attribute:ecs.os-type == linux", True),
        ("attribute:size == 10 and attribute:ecs.os-type == windows", False),
        ("attribute:size == 1 || attribute:ecs.os-type == linux", True),
        ("attribute:size == 1 or attribute:ecs.os-type == windows", False),
        ("!attribute:size == 1", True),
        ("! attribute:size == 10", False),
        ("not attribute:size == 10", False),
        # and binds tighter than or; parentheses override it.
        ("attribute:size == 1 and attribute:size == 2 or attribute:size == 10", True),
        ("attribute:size == 1 and (attribute:size == 2 or attribute:size == 10)", False),
        ("(attribute:size == 10)", True),
        ("((attribute:size == 10) && !(attribute:gpu exists))", True),
        ("not not attribute:size == 10", True),
        # No spaces around symbols; a regex holding parentheses stays one value.
        ("attribute:size==10&&attribute:ecs.os-type!=windows", True),
        ("attribute:ecs.instance-type =~ (t2|m5)\\..*", True),
        ("(attribute:ecs.instance-type =~ (g2|m5)\\..*) or task:group exists", True),
    ],
)
def test_compound_forms_and_precedence(text: str, expected: bool) -> None:
    assert matches(text) is expected


def test_regular_expressions_must_match_the_whole_value() -> None:
    assert matches("attribute:ecs.instance-type =~ t2.*")
    assert not matches("attribute:ecs.instance-type =~ t2")
    assert not matches("attribute:ecs.instance-type =~ micro")
    assert matches("attribute:ecs.instance-type !~ t2")


def test_a_missing_attribute_satisfies_only_negations() -> None:
    positive = ["== x", "> 1", "< 1", "in [x]", "=~ .*", "exists"]
    negative = ["!= x", "not_in [x]", "!~ .*", "!exists"]
    assert not any(matches(f"attribute:gpu {rest}") for rest in positive)
    assert all(matches(f"attribute:gpu {rest}") for rest in negative)


def test_numbers_compare_as_numbers_and_words_as_strings() -> None:
    assert matches("attribute:size > 9")  # "10" > "9" is false as strings
    assert matches("attribute:size == 1e1")
    assert matches("attribute:ecs.os-type > abc")
    assert not matches("attribute:ecs.os-type < abc")


def test_task_group_affinity_and_anti_affinity() -> None:
    empty: Mapping[str, int] = {}
    assert matches("task:group == service:production")
    assert not matches("task:group == service:production", empty)
    assert not matches("task:group == service:production", {"service:production": 0})
    assert matches("not(task:group == service:production)", empty)
    assert matches("task:group != database")
    assert matches("task:group in [database, service:production]")
    assert not matches("task:group not_in [database, service:production]")
    assert matches("task:group =~ service:.*")
    assert not matches("task:group =~ family:.*")
    assert matches("task:group exists")
    assert not matches("task:group exists", empty)
    assert matches("task:group !exists", empty)


def test_running_tasks_count_agent_and_instance_id() -> None:
    assert matches("runningTasksCount < 2")
    assert not matches("runningTasksCount > 1")
    assert matches("runningTasksCount in [0, 1]")
    assert matches("agentConnected == true")
    assert matches("agentConnected == TRUE")
    assert not matches("agentConnected == false")
    disconnected = ContainerInstance(
        name="n", zone=None, attributes={}, registered_cpu_millicores=0,
        remaining_cpu_millicores=0, registered_memory_mib=0, remaining_memory_mib=0, ready=False,
    )  # fmt: skip
    assert matches("agentConnected != true", node=disconnected)
    assert not matches("agentVersion exists", node=disconnected)
    assert not matches("registeredAt exists", node=disconnected)
    assert not matches("registeredAt < 2030-01-01", node=disconnected)
    assert matches("ec2InstanceId == i-abcd1234")
    assert matches("ec2InstanceId =~ i-.*")


def test_agent_version_compares_as_a_version() -> None:
    assert matches("agentVersion > 1.9.9")  # 1.30.2 > 1.9.9, unlike the strings
    assert matches("agentVersion >= 1.30.2")
    assert matches("agentVersion == 1.30.2")
    assert matches("agentVersion < 1.30.10")
    assert matches("agentVersion in [1.29, 1.30.2]")
    assert matches("agentVersion =~ 1\\.30\\..*")
    assert version_key("v1.30.0-eks-1") == (1, 30)
    assert version_key("1.30") == version_key("1.30.0")
    assert version_key("latest") is None


def test_registered_at_compares_days_or_instants() -> None:
    assert matches("registeredAt == 2018-02-13")
    assert matches("registeredAt <= 2018-02-13")
    assert matches("registeredAt >= 2018-02-13")
    assert matches("registeredAt > 2018-02-12")
    assert matches("registeredAt > 2018-02-13T22:00:00Z")
    assert matches("registeredAt < 2018-02-13T23:00:00+00:00")
    assert matches("registeredAt < 2018-02-13T23:00:00")  # naive means UTC
    assert matches("registeredAt in [2018-02-13, 2019-01-01]")
    assert matches("registeredAt =~ 2018-02-13T.*")


def test_expression_keeps_its_text() -> None:
    assert parse_expression("runningTasksCount == 1").text == "runningTasksCount == 1"


@pytest.mark.parametrize(
    ("text", "message", "column"),
    [
        ("", "empty expression", 1),
        ("   ", "empty expression", 4),
        ("foo == 1", "unknown subject 'foo'", 1),
        ("attribute: == 1", "invalid attribute name ''", 1),
        ("== 1", "expected a subject", 1),
        ("attribute:x", "expected an operator after 'attribute:x', found the end", 12),
        ("attribute:x = 1", "expected an operator after 'attribute:x', found '='", 13),
        ("attribute:x likes 1", "expected an operator after 'attribute:x', found 'likes'", 13),
        ("attribute:x ==", "expected a value after '==', found the end", 15),
        ("attribute:x == 1 and", "expected a condition, found the end", 21),
        ("attribute:x == 1 foo", "expected 'and', 'or' or the end, found 'foo'", 18),
        ("attribute:x == 1)", "expected 'and', 'or' or the end, found ')'", 17),
        ("(attribute:x == 1", "expected ')' to close the '(' at column 1", 18),
        ("attribute:x in a", "expected '[' to open the list after 'in'", 16),
        ("attribute:x in [a b]", "expected ',' or ']' in the list, found 'b]'", 19),
        ("attribute:x in [a,", "expected a value, found the end", 19),
        ("attribute:x in []", "expected a value, found ']'", 17),
        ("attribute:x == 'abc", "unterminated quoted value", 16),
        ("attribute:x =~ t2(", "invalid regular expression 't2('", 16),
        ("task:group > a", "operator '>' does not apply to task:group", 12),
        ("agentConnected < true", "operator '<' does not apply to agentConnected", 16),
        ("agentConnected == yes", "agentConnected is true or false, not 'yes'", 19),
        ("runningTasksCount < many", "runningTasksCount compares with a number, not 'many'", 21),
        ("agentVersion > new", "'new' is not a version", 16),
        ("registeredAt < yesterday", "registeredAt compares with a date", 16),
    ],
)
def test_errors_say_what_and_where(text: str, message: str, column: int) -> None:
    with pytest.raises(QueryError) as raised:
        parse_expression(text)
    assert message in str(raised.value)
    assert raised.value.column == column
    assert f"column {column} of {text!r}" in str(raised.value)


def test_query_error_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="unknown subject"):
        parse_expression("bogus exists")


# -- hostile input: linear-time regular expressions, bounded nesting ------------------------------


def test_a_catastrophic_pattern_matches_in_linear_time() -> None:
    """`no(.*.*.*)*Z` backtracks for ever in Python `re` on a 40-character node name; RE2 does
    not backtrack (this test would hang, and time out, on a backtracking engine)."""
    bomb = "ec2InstanceId =~ no(.*.*.*)*Z"
    node = ContainerInstance(
        name="no" + "x" * 40,
        zone="a",
        attributes={},
        registered_cpu_millicores=1000,
        remaining_cpu_millicores=1000,
        registered_memory_mib=1024,
        remaining_memory_mib=1024,
    )
    assert not matches(bomb, node=node)
    assert matches("task:group =~ no(.*.*.*)*Z", {"no" + "y" * 40 + "Z": 1})


@pytest.mark.parametrize(
    "pattern", ["(a)\\1", "(?=t2).*", "(?!t2).*", "(?<=t)2.*", "(?<!x)t2.*", "(?P<x>a)(?P=x)"]
)
def test_backreferences_and_lookaround_are_refused_saying_why(pattern: str) -> None:
    with pytest.raises(QueryError, match="backreferences and lookaround are not supported"):
        parse_expression(f"attribute:ecs.instance-type =~ {pattern}")


def test_regex_syntax_errors_name_the_pattern() -> None:
    with pytest.raises(QueryError, match=r"invalid regular expression '\(t2': missing \)"):
        parse_expression("attribute:ecs.instance-type =~ '(t2'")


@pytest.mark.parametrize(
    ("opening", "closing"), [("(", ")"), ("not ", ""), ("!", ""), ("not(", ")")]
)
def test_nesting_is_bounded(opening: str, closing: str) -> None:
    condition = "agentConnected == true"
    levels = MAX_NESTING // (2 if opening == "not(" else 1)
    deepest = opening * levels + condition + closing * levels
    assert matches(deepest)  # an even number of negations
    too_deep = opening * 985 + condition + closing * 985
    with pytest.raises(QueryError, match=f"nested deeper than {MAX_NESTING} levels") as raised:
        parse_expression(too_deep)
    assert len(str(raised.value)) < 400  # the expression is shown clipped


def test_parsed_expressions_are_shared() -> None:
    text = "attribute:ecs.instance-type =~ t2.*"
    assert parse_expression(text) is parse_expression(text)


_HOSTILE_TOKENS = st.sampled_from(
    [
        "(",
        ")",
        "!",
        "not ",
        " and ",
        " or ",
        "&&",
        "||",
        "[",
        "]",
        ",",
        "'",
        '"',
        " ",
        "=~ ",
        "!~ ",
        "== ",
        "in ",
        "a",
        "ec2InstanceId ",
        "attribute:x ",
        "task:group ",
        ".*",
        "\\1",
        "(?=",
        "\x1b",
        "é",
    ]
)


@given(st.lists(_HOSTILE_TOKENS, max_size=400).map("".join))
def test_any_text_parses_or_is_refused_with_a_query_error(text: str) -> None:
    """Whatever the text (deep nesting included), parsing ends in an expression or a
    QueryError: never a RecursionError or another exception."""
    try:
        expression = parse_expression(text)
    except QueryError as error:
        assert error.column >= 1
    else:
        expression.matches(NODE, GROUPS)
