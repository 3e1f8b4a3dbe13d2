"""The Python `kubernetes` and `openshift` dynamic clients against Berth, as scripts use them:
discovery, then list, create, patch and watch of image streams. Run by server/tests/kubectl.rs
with BERTH_URL, BERTH_CA, BERTH_TOKEN and BERTH_NAMESPACE set; prints what each client saw as
one JSON object, which the Rust test checks."""

import json
import os
import threading

from kubernetes import client
from kubernetes.dynamic import DynamicClient as KubernetesDynamicClient
from openshift.dynamic import DynamicClient as OpenShiftDynamicClient

MERGE = "application/merge-patch+json"


def api_client():
    configuration = client.Configuration()
    configuration.host = os.environ["BERTH_URL"]
    configuration.ssl_ca_cert = os.environ["BERTH_CA"]
    configuration.api_key = {"authorization": "Bearer " + os.environ["BERTH_TOKEN"]}
    return client.ApiClient(configuration)


def exercise(label, dynamic_client_class):
    namespace = os.environ["BERTH_NAMESPACE"]
    dynamic = dynamic_client_class(api_client())
    streams = dynamic.resources.get(api_version="image.openshift.io/v1", kind="ImageStream")
    name = "py-" + label
    created = streams.create(
        namespace=namespace,
        body={
            "apiVersion": "image.openshift.io/v1",
            "kind": "ImageStream",
            "metadata": {"name": name},
            "spec": {"tags": [{"name": "stable", "from": {"kind": "ImageStreamTag", "name": "base:1"}}]},
        },
    ).to_dict()
    merged = streams.patch(
        namespace=namespace, name=name, body={"metadata": {"labels": {"client": label}}}, content_type=MERGE
    ).to_dict()
    # The clients' default patch type: strategic merge, tags merged by name.
    strategic = streams.patch(
        namespace=namespace,
        name=name,
        body={"spec": {"tags": [{"name": "edge", "from": {"kind": "ImageStreamTag", "name": "base:1"}}]}},
    ).to_dict()
    listed = streams.get(namespace=namespace).to_dict()

    def change():
        streams.patch(
            namespace=namespace, name=name, body={"metadata": {"annotations": {"watched": "yes"}}}, content_type=MERGE
        )

    timer = threading.Timer(1.0, change)
    timer.start()
    events = []
    for event in streams.watch(
        namespace=namespace, resource_version=listed["metadata"]["resourceVersion"], timeout=20
    ):
        raw = event["raw_object"]
        events.append([event["type"], raw["metadata"]["name"]])
        if raw["metadata"]["name"] == name and raw["metadata"].get("annotations", {}).get("watched") == "yes":
            break
    timer.join()
    return {
        "created": created["metadata"]["name"],
        "label": merged["metadata"].get("labels", {}).get("client"),
        "tags": sorted(tag["name"] for tag in strategic["spec"].get("tags", [])),
        "listed": sorted(item["metadata"]["name"] for item in listed["items"]),
        "events": events,
    }


print(
    json.dumps(
        {
            "kubernetes": exercise("kubernetes", KubernetesDynamicClient),
            "openshift": exercise("openshift", OpenShiftDynamicClient),
        }
    )
)
