"""Micro benchmark: the median time to place one task among 1,000 nodes (not a test).

Run: .venv/bin/python tests/bench/bench_placement.py [--instances 1000] [--runs 2000]
Target (reference/targets.md): at most 1 ms per placement.
"""

import argparse
import random
import statistics
import time

from ecs_operator.core.placement import (
    SERVICE_DEFAULT_STRATEGIES,
    ContainerInstance,
    TaskRequirements,
    place,
)
from ecs_operator.models.placement import PlacementConstraint, PlacementStrategy

ZONES = ("zone-a", "zone-b", "zone-c")


def cluster(size: int, rng: random.Random) -> list[ContainerInstance]:
    """Nodes with varied free capacity and a few tasks of the benchmarked group each."""
    instances = []
    for index in range(size):
        zone = ZONES[index % len(ZONES)]
        tasks = rng.randrange(4)
        instances.append(
            ContainerInstance(
                name=f"node-{index:04d}",
                zone=zone,
                attributes={
                    "ecs.availability-zone": zone,
                    "ecs.instance-type": rng.choice(("m5.large", "t3.large", "c6g.xlarge")),
                },
                registered_cpu_millicores=4000,
                remaining_cpu_millicores=rng.randrange(0, 4000),
                registered_memory_mib=16384,
                remaining_memory_mib=rng.randrange(0, 16384),
                used_ports_tcp=frozenset({8080}) if index % 7 == 0 else frozenset(),
                running_tasks_count=tasks,
                group_counts={"service:web": tasks} if tasks else {},
            )
        )
    return instances


SCENARIOS = {
    "random (standalone default)": TaskRequirements.create(
        cpu_units=256, memory_mib=512, group="family:web"
    ),
    "service default (zone, then node)": TaskRequirements.create(
        cpu_units=256, memory_mib=512, group="service:web", strategies=SERVICE_DEFAULT_STRATEGIES
    ),
    "spread(zone), binpack(memory), port, memberOf": TaskRequirements.create(
        cpu_units=256,
        memory_mib=512,
        group="service:web",
        host_ports_tcp=(8080,),
        constraints=[
            PlacementConstraint(
                type="memberOf", expression="attribute:ecs.instance-type =~ (m5|t3)\\..*"
            )
        ],
        strategies=[
            PlacementStrategy(type="spread", field="attribute:ecs.availability-zone"),
            PlacementStrategy(type="binpack", field="memory"),
        ],
    ),
}


def medians(instances: int = 1000, runs: int = 2000) -> dict[str, float]:
    """The median time of one placement, in µs, per scenario (`make bench` calls this)."""
    rng = random.Random(7)
    nodes = cluster(instances, rng)
    result = {}
    for name, task in SCENARIOS.items():
        samples = []
        for _ in range(runs):
            start = time.perf_counter_ns()
            place(task, nodes, rng)
            samples.append(time.perf_counter_ns() - start)
        result[name] = statistics.median(samples) / 1000
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--instances", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=2000)
    arguments = parser.parse_args()
    for name, median in medians(arguments.instances, arguments.runs).items():
        print(f"{name:48} median {median:8.1f} µs  ({arguments.instances} instances)")


if __name__ == "__main__":
    main()
