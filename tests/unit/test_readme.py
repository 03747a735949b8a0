"""The README documents every field the operator accepts but does not honour."""

from pathlib import Path

from ecs_operator.core.render import NOT_HONOURED

README = Path(__file__).resolve().parents[2] / "README.md"


def test_every_field_not_honoured_is_in_the_readme_table() -> None:
    text = README.read_text()
    missing = [field for field in NOT_HONOURED if f"| `{field}` |" not in text]
    assert not missing, f"add these to the README's 'Accepted but not honoured' table: {missing}"
