"""What the test suites share, imported as `from support.helpers import …` (pytest's
`pythonpath` is `tests`):

- `helpers`: `ClusterTarget` (the sandbox or a real cluster), `wait_for`, kubectl runs;
- `ecs_api`, `services`, `load_balancers`, `hostile_corpus`: the integration suites' ECS client,
  bodies and invariants; `api_faults`: API faults on either cluster (the resilience suite);
- `widgets`: the sandbox conformance suite's custom resource; `install`: the install tests';
- `podfactory`, `servicesim`, `crd_rules`: builders and simulators of the unit tests;
- `fake_kube`, `controllers`: the controller-level tests' in-memory API server behind the real
  `KubeClient`, recording every request, and an operator with a small cluster in front of it;
- `harness`: the benchmarks' processes and client (also the leader-election test's);
- `argocd_health`, `kind_cluster`: Argo CD's health checks in Lua, the e2e suite's kind cluster.
"""
