#!/usr/bin/env python3
"""Time from a push through one replica to the watch event on another, for bench/watch.sh.

A watch of namespace `bench`'s image streams is opened on replica B; then, one after another,
COUNT manifests are pushed through replica A, each to a new tag of bench/app. For each push it
records when the PUT was sent, when its answer arrived and when B's watch reported the tag.
Prints one line per push (tag, seconds from the PUT sent, seconds from its answer) on stdout.
Standard library only.

Usage: watch_latency.py A_URL B_URL USER PASSWORD [--count N] [--pause SECONDS]
"""

import argparse
import base64
import hashlib
import http.client
import json
import sys
import threading
import time
import urllib.parse

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


def sha256(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def connection(base):
    url = urllib.parse.urlsplit(base)
    return http.client.HTTPConnection(url.hostname, url.port or 80, timeout=30)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("a")
    parser.add_argument("b")
    parser.add_argument("user")
    parser.add_argument("password")
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--pause", type=float, default=0.02)
    args = parser.parse_args()
    auth = "Basic " + base64.b64encode(f"{args.user}:{args.password}".encode()).decode()

    push = connection(args.a)

    def request(method, path, body=None, headers=None):
        push.request(method, path, body=body, headers={"Authorization": auth, **(headers or {})})
        response = push.getresponse()
        data = response.read()
        if response.status >= 300:
            sys.exit(f"{method} {path}: {response.status} {data[:200]!r}")
        return response

    config = json.dumps({"architecture": "amd64", "os": "linux",
                         "rootfs": {"type": "layers", "diff_ids": []}}).encode()
    request("POST", f"/v2/bench/app/blobs/uploads/?digest={sha256(config)}", config,
            {"Content-Type": "application/octet-stream"})
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": sha256(config), "size": len(config)},
        "layers": [],
    }).encode()
    # The namespace exists once something is pushed: the watch is opened on it after.
    request("PUT", "/v2/bench/app/manifests/warm-up", manifest, {"Content-Type": OCI_MANIFEST})

    seen = {}
    arrived = threading.Condition()

    def watch():
        conn = connection(args.b)
        conn.timeout = None
        conn.request("GET", "/apis/image.openshift.io/v1/namespaces/bench/imagestreams?watch=true",
                     headers={"Authorization": auth})
        response = conn.getresponse()
        if response.status != 200:
            sys.exit(f"watch on B: {response.status}")
        for line in response:
            now = time.monotonic()
            try:
                event = json.loads(line)
            except ValueError:
                continue
            tags = event.get("object", {}).get("status", {}).get("tags", []) or []
            with arrived:
                for tag in tags:
                    seen.setdefault(tag.get("tag"), now)
                arrived.notify_all()

    threading.Thread(target=watch, daemon=True).start()
    with arrived:
        if not arrived.wait_for(lambda: "warm-up" in seen, timeout=10):
            sys.exit("the watch on B did not report the existing stream within 10 s")

    for i in range(args.count):
        tag = f"t{i}"
        sent = time.monotonic()
        request("PUT", f"/v2/bench/app/manifests/{tag}", manifest, {"Content-Type": OCI_MANIFEST})
        answered = time.monotonic()
        with arrived:
            if not arrived.wait_for(lambda: tag in seen, timeout=10):
                sys.exit(f"no event for {tag} on B within 10 s")
            at = seen[tag]
        print(f"{tag} {at - sent:.6f} {at - answered:.6f}", flush=True)
        time.sleep(args.pause)


if __name__ == "__main__":
    main()
