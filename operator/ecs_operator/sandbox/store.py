"""The in-memory object store behind the sandbox API server.

CONTRACT (shared by the HTTP layer, the schema module and the cluster simulator; implement
exactly this surface):

- Objects are plain JSON-compatible dicts. The store owns its copies: every method returns a
  copy the caller may mutate, and never keeps a reference to what it was given.
- One global `resourceVersion` counter (an int, a string on the wire) shared by all kinds.
- Every failure raises `ecs_operator.sandbox.errors.ApiError` with the canonical reason.

    store = Store(registry, watch_window=5000)
    store.create(rt, namespace, obj, *, dry_run=False) -> dict
    store.get(rt, namespace, name) -> dict
    store.list(rt, namespace, *, label_selector="", field_selector="",
               limit=None, continue_token=None) -> dict          # a `KindList` object
    store.replace(rt, namespace, name, obj, *, subresource=None) -> dict   # PUT
    store.patch(rt, namespace, name, patch, content_type, *, subresource=None) -> dict
    store.delete(rt, namespace, name, options=None) -> dict       # DeleteOptions dict
    store.delete_collection(rt, namespace, options=None, *, label_selector="",
                            field_selector="") -> dict             # a `KindList` of deleted
    store.watch(rt, namespace, *, resource_version=None, label_selector="",
                field_selector="") -> Watch
    store.resource_version -> str                                 # current global rv

`namespace` is None for cluster-scoped kinds and for all-namespaces list/watch.
`content_type` is one of application/merge-patch+json, application/json-patch+json,
application/strategic-merge-patch+json (the last only for built-in kinds; 415 for CRDs).

`Watch` is an async iterator of `{"type": ADDED|MODIFIED|DELETED, "object": dict}` with
`close()`. With `resource_version` None or "0" it first yields ADDED for every current match,
then live changes; with an rv it replays everything after that rv (410 `Expired` ApiError raised
by `store.watch` itself when the rv is older than the kept window of `watch_window` events per
resource type). Objects that stop matching a label selector arrive as DELETED, objects that
start matching as ADDED, as kube-apiserver does.
"""
