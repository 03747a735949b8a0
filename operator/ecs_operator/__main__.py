"""Entry point of the `ecs-operator` console script and of `python -m ecs_operator`."""

from ecs_operator.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
