"""Entry point of the `ecs-sandbox` console script and of `python -m ecs_sandbox`."""

from ecs_sandbox.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
