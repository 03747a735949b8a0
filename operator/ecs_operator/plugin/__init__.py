"""`kubectl ecs`: the ECS verbs (register-task-definition, run-task, stop-task, create-service,
update-service, describe-*, wait, logs) as a kubectl plugin, the console script `kubectl-ecs`.

- `translate`: pure; ECS request JSON and flags -> the manifests and patches to send, validated
  with the models (every problem names its field);
- `views`: pure; objects -> ECS's describe output (JSON) and plain-text tables, and the waiters'
  verdicts;
- `commands`: the verbs, against the API through `kube.client.KubeClient` only;
- `cli`: arguments, output and exit codes (0 done, 1 failed or timed out, 2 bad input).

The plugin is a client: it never imports the controllers (nor Kopf), and it writes only what a
user would (objects and their `spec`), never `status`.
"""
