"""Store (no HTTP): create/get/replace/patch metadata rules, generation, status split, 4xx."""

from __future__ import annotations

from typing import Any

import pytest

from ecs_sandbox.errors import ApiError
from ecs_sandbox.resources import ResourceType
from ecs_sandbox.store import Store

MERGE = "application/merge-patch+json"


@pytest.fixture
def store() -> Store:
    return Store()


def rt(store: Store, plural: str, group: str = "", version: str = "v1") -> ResourceType:
    return store.registry.get(group, version, plural)


def pod(name: str, **spec: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": name},
        "spec": {"containers": [{"name": "main", "image": "busybox"}], **spec},
    }


def configmap(name: str, **data: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": data}


def error_of(call: Any, *args: Any, **kwargs: Any) -> ApiError:
    with pytest.raises(ApiError) as caught:
        call(*args, **kwargs)
    return caught.value


def test_default_namespaces_exist(store: Store) -> None:
    names = [n["metadata"]["name"] for n in store.list(rt(store, "namespaces"), None)["items"]]
    assert names == ["default", "kube-node-lease", "kube-public", "kube-system"]
    default = store.get(rt(store, "namespaces"), None, "default")
    assert default["status"]["phase"] == "Active"
    assert default["metadata"]["labels"]["kubernetes.io/metadata.name"] == "default"


def test_create_fills_system_metadata(store: Store) -> None:
    created = store.create(rt(store, "configmaps"), "default", configmap("a", k="v"))
    meta = created["metadata"]
    assert len(meta["uid"]) == 36
    assert meta["creationTimestamp"].endswith("Z")
    assert meta["generation"] == 1
    assert meta["namespace"] == "default"
    assert created["apiVersion"] == "v1"
    assert created["kind"] == "ConfigMap"
    assert list(created)[:3] == ["apiVersion", "kind", "metadata"]


def test_create_ignores_client_system_fields(store: Store) -> None:
    body = configmap("a")
    body["metadata"].update(uid="mine", resourceVersion="999", generation=7)
    created = store.create(rt(store, "configmaps"), "default", body)
    assert created["metadata"]["uid"] != "mine"
    assert created["metadata"]["generation"] == 1
    assert created["metadata"]["resourceVersion"] != "999"


def test_resource_version_is_one_global_counter(store: Store) -> None:
    seen = [int(store.resource_version)]
    seen.append(
        int(
            store.create(rt(store, "configmaps"), "default", configmap("a"))["metadata"][
                "resourceVersion"
            ]
        )
    )
    seen.append(
        int(store.create(rt(store, "pods"), "default", pod("p"))["metadata"]["resourceVersion"])
    )
    seen.append(
        int(
            store.patch(rt(store, "configmaps"), "default", "a", {"data": {"x": "1"}}, MERGE)[
                "metadata"
            ]["resourceVersion"]
        )
    )
    assert seen == sorted(seen)
    assert len(set(seen)) == len(seen)
    assert store.resource_version == str(seen[-1])


def test_returned_objects_are_private_copies(store: Store) -> None:
    body = configmap("a", k="v")
    created = store.create(rt(store, "configmaps"), "default", body)
    body["data"]["k"] = "changed by caller"
    created["data"]["k"] = "changed too"
    store.get(rt(store, "configmaps"), "default", "a")["data"]["k"] = "and again"
    assert store.get(rt(store, "configmaps"), "default", "a")["data"] == {"k": "v"}


def test_generate_name(store: Store) -> None:
    body = {"metadata": {"generateName": "web-"}}
    first = store.create(rt(store, "configmaps"), "default", body)["metadata"]["name"]
    second = store.create(rt(store, "configmaps"), "default", body)["metadata"]["name"]
    assert first.startswith("web-") and len(first) == len("web-") + 5
    assert first != second


def test_create_twice_is_409(store: Store) -> None:
    store.create(rt(store, "configmaps"), "default", configmap("a"))
    err = error_of(store.create, rt(store, "configmaps"), "default", configmap("a"))
    assert (err.code, err.reason) == (409, "AlreadyExists")
    assert err.message == 'configmaps "a" already exists'


def test_missing_namespace_is_404(store: Store) -> None:
    err = error_of(store.create, rt(store, "configmaps"), "nowhere", configmap("a"))
    assert (err.code, err.reason) == (404, "NotFound")
    assert "nowhere" in err.message


def test_namespace_mismatch_is_400(store: Store) -> None:
    body = configmap("a")
    body["metadata"]["namespace"] = "kube-system"
    err = error_of(store.create, rt(store, "configmaps"), "default", body)
    assert (err.code, err.reason) == (400, "BadRequest")


def test_namespace_from_body_when_argument_is_none(store: Store) -> None:
    body = configmap("a")
    body["metadata"]["namespace"] = "kube-system"
    assert (
        store.create(rt(store, "configmaps"), None, body)["metadata"]["namespace"] == "kube-system"
    )


def test_cluster_scoped_objects_drop_namespace(store: Store) -> None:
    node = store.create(rt(store, "nodes"), None, {"metadata": {"name": "n1", "namespace": "x"}})
    assert "namespace" not in node["metadata"]


@pytest.mark.parametrize(
    ("plural", "name"),
    [("configmaps", "Bad_Name"), ("namespaces", "a.b"), ("services", "1abc"), ("nodes", "-x")],
)
def test_invalid_names_are_422_naming_metadata_name(store: Store, plural: str, name: str) -> None:
    body: dict[str, Any] = {"metadata": {"name": name}}
    if plural == "services":
        body["spec"] = {"ports": [{"port": 80}]}
    namespace = "default" if rt(store, plural).namespaced else None
    err = error_of(store.create, rt(store, plural), namespace, body)
    assert (err.code, err.reason) == (422, "Invalid")
    assert [c.field for c in err.causes] == ["metadata.name"]


def test_name_is_required(store: Store) -> None:
    err = error_of(store.create, rt(store, "configmaps"), "default", {"metadata": {}})
    assert err.code == 422
    assert err.causes[0].field == "metadata.name"


@pytest.mark.parametrize(
    ("metadata", "field"),
    [
        ({"labels": {"a": 1}}, "metadata.labels[a]"),
        ({"labels": ["a"]}, "metadata.labels"),
        ({"annotations": {"a": None}}, "metadata.annotations[a]"),
        ({"finalizers": "x"}, "metadata.finalizers"),
        ({"ownerReferences": [{"uid": 5}]}, "metadata.ownerReferences[0].uid"),
        ({"name": 42}, "metadata.name"),
    ],
)
def test_wrong_metadata_types_are_400_naming_the_field(
    store: Store, metadata: dict[str, Any], field: str
) -> None:
    body = {"metadata": {"name": "a", **metadata}}
    err = error_of(store.create, rt(store, "configmaps"), "default", body)
    assert (err.code, err.reason) == (400, "BadRequest")
    assert field in err.message


def test_bad_label_syntax_is_422(store: Store) -> None:
    body = {"metadata": {"name": "a", "labels": {"ok": "not ok!"}}}
    err = error_of(store.create, rt(store, "configmaps"), "default", body)
    assert err.code == 422
    assert err.causes[0].field == "metadata.labels"


def test_metadata_must_be_an_object(store: Store) -> None:
    err = error_of(store.create, rt(store, "configmaps"), "default", {"metadata": "x"})
    assert err.code == 400
    assert "metadata" in err.message


def test_wrong_kind_or_api_version_is_400(store: Store) -> None:
    wrong_kind = {"kind": "Secret", "metadata": {"name": "a"}}
    assert error_of(store.create, rt(store, "configmaps"), "default", wrong_kind).code == 400
    wrong_version = {"apiVersion": "v2", "metadata": {"name": "a"}}
    assert error_of(store.create, rt(store, "configmaps"), "default", wrong_version).code == 400


def test_pod_defaults(store: Store) -> None:
    created = store.create(rt(store, "pods"), "default", pod("p"))
    spec = created["spec"]
    assert spec["restartPolicy"] == "Always"
    assert spec["terminationGracePeriodSeconds"] == 30
    assert spec["schedulerName"] == "default-scheduler"
    assert created["status"]["phase"] == "Pending"
    tolerations = {t["key"]: t for t in spec["tolerations"]}
    for key in ("node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable"):
        assert tolerations[key] == {
            "key": key,
            "operator": "Exists",
            "effect": "NoExecute",
            "tolerationSeconds": 300,
        }


def test_pod_default_tolerations_respect_existing_ones(store: Store) -> None:
    mine = {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute"}
    created = store.create(rt(store, "pods"), "default", pod("p", tolerations=[mine]))
    keys = [t["key"] for t in created["spec"]["tolerations"]]
    assert keys == ["node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable"]
    assert "tolerationSeconds" not in created["spec"]["tolerations"][0]


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        ({"containers": []}, "spec.containers"),
        ({"containers": [{"name": "a"}]}, "spec.containers[0].image"),
        ({"containers": [{"image": "x"}]}, "spec.containers[0].name"),
        (
            {"containers": [{"name": "a", "image": "x"}, {"name": "a", "image": "y"}]},
            "spec.containers[1].name",
        ),
        (
            {"containers": [{"name": "a", "image": "x"}], "restartPolicy": "Sometimes"},
            "spec.restartPolicy",
        ),
    ],
)
def test_pod_validation(store: Store, spec: dict[str, Any], field: str) -> None:
    err = error_of(
        store.create, rt(store, "pods"), "default", {"metadata": {"name": "p"}, "spec": spec}
    )
    assert (err.code, err.reason) == (422, "Invalid")
    assert field in [c.field for c in err.causes]
    assert err.message.startswith('Pod "p" is invalid: ')


def test_event_needs_involved_object(store: Store) -> None:
    err = error_of(store.create, rt(store, "events"), "default", {"metadata": {"name": "e"}})
    assert err.code == 422
    assert err.causes[0].field == "involvedObject"


def test_status_is_dropped_on_create_for_status_subresource(store: Store) -> None:
    body = pod("p")
    body["status"] = {"phase": "Running"}
    assert store.create(rt(store, "pods"), "default", body)["status"]["phase"] == "Pending"


def test_nodes_keep_status_on_create(store: Store) -> None:
    body = {"metadata": {"name": "n1"}, "status": {"capacity": {"cpu": "4"}}}
    assert store.create(rt(store, "nodes"), None, body)["status"] == {"capacity": {"cpu": "4"}}


def test_dry_run_stores_nothing(store: Store) -> None:
    before = store.resource_version
    created = store.create(rt(store, "configmaps"), "default", configmap("a"), dry_run=True)
    assert created["metadata"]["name"] == "a"
    assert store.resource_version == before
    assert error_of(store.get, rt(store, "configmaps"), "default", "a").code == 404


def test_get_missing_is_404(store: Store) -> None:
    err = error_of(store.get, rt(store, "pods"), "default", "nope")
    assert (err.code, err.reason, err.message) == (404, "NotFound", 'pods "nope" not found')


# ------------------------------------------------------------------ replace / generation


def test_replace_with_stale_resource_version_is_409(store: Store) -> None:
    created = store.create(rt(store, "configmaps"), "default", configmap("a", k="1"))
    store.patch(rt(store, "configmaps"), "default", "a", {"data": {"k": "2"}}, MERGE)
    created["data"]["k"] = "3"
    err = error_of(store.replace, rt(store, "configmaps"), "default", "a", created)
    assert (err.code, err.reason) == (409, "Conflict")
    assert err.message == (
        'Operation cannot be fulfilled on configmaps "a": the object has been modified; '
        "please apply your changes to the latest version and try again"
    )
    assert store.get(rt(store, "configmaps"), "default", "a")["data"] == {"k": "2"}


def test_replace_without_resource_version_is_unconditional(store: Store) -> None:
    store.create(rt(store, "configmaps"), "default", configmap("a", k="1"))
    replaced = store.replace(rt(store, "configmaps"), "default", "a", configmap("a", k="9"))
    assert replaced["data"] == {"k": "9"}


def test_uid_and_creation_timestamp_are_immutable(store: Store) -> None:
    created = store.create(rt(store, "configmaps"), "default", configmap("a"))
    body = configmap("a")
    body["metadata"]["uid"] = "00000000-0000-0000-0000-000000000000"
    err = error_of(store.replace, rt(store, "configmaps"), "default", "a", body)
    assert err.code == 409
    assert "Precondition failed: UID in precondition" in err.message
    body = configmap("a", k="v")
    body["metadata"]["creationTimestamp"] = "2000-01-01T00:00:00Z"
    replaced = store.replace(rt(store, "configmaps"), "default", "a", body)
    assert replaced["metadata"]["creationTimestamp"] == created["metadata"]["creationTimestamp"]
    assert replaced["metadata"]["uid"] == created["metadata"]["uid"]


def test_name_mismatch_on_replace_is_400(store: Store) -> None:
    store.create(rt(store, "configmaps"), "default", configmap("a"))
    err = error_of(store.replace, rt(store, "configmaps"), "default", "a", configmap("b"))
    assert err.code == 400


def test_generation_moves_only_with_spec(store: Store) -> None:
    services = rt(store, "services")
    store.create(
        services, "default", {"metadata": {"name": "s"}, "spec": {"ports": [{"port": 80}]}}
    )
    labelled = store.patch(services, "default", "s", {"metadata": {"labels": {"a": "b"}}}, MERGE)
    assert labelled["metadata"]["generation"] == 1
    status = store.patch(
        services,
        "default",
        "s",
        {"status": {"loadBalancer": {"ingress": [{"ip": "1.2.3.4"}]}}},
        MERGE,
        subresource="status",
    )
    assert status["metadata"]["generation"] == 1
    changed = store.patch(services, "default", "s", {"spec": {"ports": [{"port": 81}]}}, MERGE)
    assert changed["metadata"]["generation"] == 2


def test_generation_counts_data_of_kinds_without_spec(store: Store) -> None:
    store.create(rt(store, "configmaps"), "default", configmap("a", k="1"))
    changed = store.patch(rt(store, "configmaps"), "default", "a", {"data": {"k": "2"}}, MERGE)
    assert changed["metadata"]["generation"] == 2


def test_update_that_changes_nothing_is_a_noop(store: Store) -> None:
    created = store.create(rt(store, "configmaps"), "default", configmap("a", k="1"))
    same = store.patch(rt(store, "configmaps"), "default", "a", {"data": {"k": "1"}}, MERGE)
    assert same["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"]


def test_main_resource_write_ignores_status(store: Store) -> None:
    store.create(rt(store, "pods"), "default", pod("p"))
    patched = store.patch(
        rt(store, "pods"),
        "default",
        "p",
        {"status": {"phase": "Running"}, "metadata": {"labels": {"a": "b"}}},
        MERGE,
    )
    assert patched["status"]["phase"] == "Pending"
    assert patched["metadata"]["labels"] == {"a": "b"}


def test_status_write_changes_only_status(store: Store) -> None:
    store.create(rt(store, "pods"), "default", pod("p"))
    current = store.get(rt(store, "pods"), "default", "p")
    current["status"]["phase"] = "Running"
    current["metadata"]["labels"] = {"sneaky": "yes"}
    current["spec"]["activeDeadlineSeconds"] = 5
    updated = store.replace(rt(store, "pods"), "default", "p", current, subresource="status")
    assert updated["status"]["phase"] == "Running"
    assert "labels" not in updated["metadata"]
    assert "activeDeadlineSeconds" not in updated["spec"]


def test_status_subresource_unknown_for_kind_is_404(store: Store) -> None:
    store.create(rt(store, "configmaps"), "default", configmap("a"))
    err = error_of(
        store.patch,
        rt(store, "configmaps"),
        "default",
        "a",
        {"status": {}},
        MERGE,
        subresource="status",
    )
    assert err.code == 404


def test_pod_spec_is_immutable_except_allowed_fields(store: Store) -> None:
    store.create(rt(store, "pods"), "default", pod("p"))
    image = store.patch(
        rt(store, "pods"),
        "default",
        "p",
        {"spec": {"containers": [{"name": "main", "image": "nginx"}]}},
        "application/strategic-merge-patch+json",
    )
    assert image["spec"]["containers"][0]["image"] == "nginx"
    err = error_of(
        store.patch, rt(store, "pods"), "default", "p", {"spec": {"nodeName": "n1"}}, MERGE
    )
    assert (err.code, err.causes[0].field) == (422, "spec")
    assert "pod updates may not change fields" in err.message


def test_service_cluster_ip_is_allocated_and_kept(store: Store) -> None:
    services = rt(store, "services")
    created = store.create(
        services, "default", {"metadata": {"name": "s"}, "spec": {"ports": [{"port": 80}]}}
    )
    ip = created["spec"]["clusterIP"]
    assert ip.startswith("10.96.")
    assert created["spec"]["ports"][0] == {"port": 80, "protocol": "TCP", "targetPort": 80}
    replaced = store.replace(
        services, "default", "s", {"metadata": {"name": "s"}, "spec": {"ports": [{"port": 80}]}}
    )
    assert replaced["spec"]["clusterIP"] == ip
    body = {"metadata": {"name": "s"}, "spec": {"clusterIP": "10.0.0.1", "ports": [{"port": 80}]}}
    assert error_of(store.replace, services, "default", "s", body).code == 422


@pytest.mark.parametrize(
    "patch",
    [
        {"metadata": {"labels": {"a": 5}}},
        {"metadata": {"finalizers": [1]}},
        {"metadata": {"ownerReferences": "me"}},
        {"spec": None},
        {"spec": {"containers": []}},
        {"spec": {"containers": [{"name": "main", "image": "x"}, {"name": "main", "image": "y"}]}},
    ],
)
def test_bad_input_never_corrupts_the_store(store: Store, patch: dict[str, Any]) -> None:
    store.create(rt(store, "pods"), "default", pod("p"))
    before = store.get(rt(store, "pods"), "default", "p")
    rv = store.resource_version
    with pytest.raises(ApiError) as caught:
        store.patch(rt(store, "pods"), "default", "p", patch, MERGE)
    assert caught.value.code in (400, 422)
    assert store.get(rt(store, "pods"), "default", "p") == before
    assert store.resource_version == rv


def test_non_dict_bodies_are_400(store: Store) -> None:
    assert error_of(store.create, rt(store, "configmaps"), "default", ["x"]).code == 400
    store.create(rt(store, "configmaps"), "default", configmap("a"))
    assert error_of(store.replace, rt(store, "configmaps"), "default", "a", "x").code == 400
