#!/usr/bin/env python3
"""One burst of registry traffic shaped like a conformance run, for bench/memory.sh.

Each worker pushes and pulls in its own repository over one keep-alive connection: monolithic
uploads (POST ?digest=, and POST then PUT), chunked uploads (PATCH with Content-Range, the
upload's status, an out-of-order chunk), a cross-repository mount, manifests PUT/GET/HEAD/DELETE
by tag and digest, tag lists with n and last, referrers, the catalog, errors (unknown blobs and
manifests, bad digests, invalid manifests, bad names, unknown uploads, anonymous requests) and
requests with made-up HTTP methods. Standard library only.

Usage: burst.py BASE_URL USER PASSWORD [--workers N] [--rounds N] [--run ID]
       burst.py BASE_URL USER PASSWORD --failed-logins N [--name-bytes B] [--run ID]
The second form sends N failed Basic sign-ins to /v2/, each with a new user name of B bytes
(default 8192), spread over the workers: what anyone can send without an account.
Prints the number of requests and of each status class.
"""

import argparse
import base64
import hashlib
import http.client
import json
import os
import sys
import threading
import urllib.parse
from collections import Counter

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
ARTIFACT = "application/vnd.example.sbom.v1"


def sha256(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


class Client:
    def __init__(self, base, auth, counts):
        url = urllib.parse.urlsplit(base)
        self.host, self.port = url.hostname, url.port or 80
        self.auth = auth
        self.counts = counts
        self.conn = None

    def request(self, method, path, body=None, headers=None, anonymous=False):
        headers = dict(headers or {})
        if self.auth and not anonymous:
            headers["Authorization"] = self.auth
        for attempt in range(2):
            if self.conn is None:
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=60)
            try:
                self.conn.request(method, path, body=body, headers=headers)
                response = self.conn.getresponse()
                data = response.read()
                self.counts[f"{response.status // 100}xx"] += 1
                self.counts["requests"] += 1
                if response.getheader("Connection", "").lower() == "close":
                    self.conn.close()
                    self.conn = None
                return response.status, response.headers, data
            except (http.client.HTTPException, ConnectionError, OSError):
                self.conn.close()
                self.conn = None
                if attempt:
                    raise
        raise RuntimeError("unreachable")


def location_path(headers):
    location = headers.get("Location", "")
    split = urllib.parse.urlsplit(location)
    return split.path + ("?" + split.query if split.query else "")


def with_query(path, **params):
    return path + ("&" if "?" in path else "?") + urllib.parse.urlencode(params)


def push_monolithic(c, repo, data):
    digest = sha256(data)
    status, _, _ = c.request(
        "POST",
        f"/v2/{repo}/blobs/uploads/?digest={digest}",
        data,
        {"Content-Type": "application/octet-stream", "Content-Length": str(len(data))},
    )
    assert status == 201, f"monolithic push: {status}"
    return digest


def push_post_put(c, repo, data):
    digest = sha256(data)
    status, headers, _ = c.request("POST", f"/v2/{repo}/blobs/uploads/", b"")
    assert status == 202, f"upload start: {status}"
    status, _, _ = c.request(
        "PUT",
        with_query(location_path(headers), digest=digest),
        data,
        {"Content-Type": "application/octet-stream", "Content-Length": str(len(data))},
    )
    assert status == 201, f"upload put: {status}"
    return digest


def push_chunked(c, repo, data, chunk):
    digest = sha256(data)
    status, headers, _ = c.request("POST", f"/v2/{repo}/blobs/uploads/", b"")
    assert status == 202, f"upload start: {status}"
    path = location_path(headers)
    offset = 0
    while offset < len(data):
        part = data[offset : offset + chunk]
        status, headers, _ = c.request(
            "PATCH",
            path,
            part,
            {
                "Content-Type": "application/octet-stream",
                "Content-Range": f"{offset}-{offset + len(part) - 1}",
                "Content-Length": str(len(part)),
            },
        )
        assert status == 202, f"patch: {status}"
        path = location_path(headers)
        offset += len(part)
        c.request("GET", path)
    # A chunk out of order is refused with 416.
    c.request(
        "PATCH",
        path,
        b"x",
        {"Content-Range": "0-0", "Content-Type": "application/octet-stream"},
    )
    status, _, _ = c.request("PUT", with_query(path, digest=digest), b"")
    assert status == 201, f"chunked put: {status}"
    return digest


def manifest(config, layers, subject=None, artifact_type=None):
    body = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": sha256(config), "size": len(config)},
        "layers": [
            {"mediaType": OCI_LAYER, "digest": sha256(layer), "size": len(layer)}
            for layer in layers
        ],
    }
    if subject:
        body["subject"] = subject
    if artifact_type:
        body["artifactType"] = artifact_type
    return json.dumps(body).encode()


def put_manifest(c, repo, reference, body):
    status, _, _ = c.request(
        "PUT",
        f"/v2/{repo}/manifests/{reference}",
        body,
        {"Content-Type": OCI_MANIFEST},
    )
    assert status == 201, f"manifest put {reference}: {status}"
    return sha256(body)


def round_of(c, repo, other, run, worker, round_no, counts):
    tag = f"r{run}-{round_no}"
    c.request("GET", "/v2/")
    c.request("GET", "/v2/", anonymous=True)
    # Blobs: small and mid-sized, monolithic both ways, chunked in several sizes.
    config = json.dumps(
        {"architecture": "amd64", "os": "linux", "run": run, "worker": worker, "round": round_no}
    ).encode()
    layers = [
        os.urandom(4 * 1024),
        os.urandom(256 * 1024),
        os.urandom(1024 * 1024),
        os.urandom(3 * 1024 * 1024),
    ]
    push_monolithic(c, repo, config)
    push_monolithic(c, repo, layers[0])
    push_post_put(c, repo, layers[1])
    push_chunked(c, repo, layers[2], 256 * 1024)
    push_chunked(c, repo, layers[3], 1024 * 1024)
    for layer in layers:
        digest = sha256(layer)
        c.request("HEAD", f"/v2/{repo}/blobs/{digest}")
        c.request("GET", f"/v2/{repo}/blobs/{digest}")
        c.request("GET", f"/v2/{repo}/blobs/{digest}", headers={"Range": "bytes=0-1023"})
    # Mount into the other repository.
    c.request(
        "POST", f"/v2/{other}/blobs/uploads/?mount={sha256(layers[0])}&from={repo}", b""
    )
    c.request("POST", f"/v2/{other}/blobs/uploads/?mount={sha256(config)}&from={repo}", b"")
    # Manifests by tag and digest, read back every way.
    body = manifest(config, layers)
    digest = put_manifest(c, repo, tag, body)
    put_manifest(c, repo, digest, body)
    for reference in (tag, digest):
        c.request("GET", f"/v2/{repo}/manifests/{reference}", headers={"Accept": OCI_MANIFEST})
        c.request("HEAD", f"/v2/{repo}/manifests/{reference}", headers={"Accept": OCI_MANIFEST})
    # A referrer of the image, and the referrers list.
    sbom = os.urandom(2048)
    empty = b"{}"
    push_monolithic(c, repo, sbom)
    push_monolithic(c, repo, empty)
    referrer = manifest(
        empty,
        [sbom],
        subject={"mediaType": OCI_MANIFEST, "digest": digest, "size": len(body)},
        artifact_type=ARTIFACT,
    )
    referrer_digest = put_manifest(c, repo, sha256(referrer), referrer)
    c.request("GET", f"/v2/{repo}/referrers/{digest}")
    c.request("GET", f"/v2/{repo}/referrers/{digest}?artifactType={ARTIFACT}")
    # Tags and the catalog.
    for extra in range(3):
        put_manifest(c, repo, f"{tag}-x{extra}", body)
    c.request("GET", f"/v2/{repo}/tags/list")
    c.request("GET", f"/v2/{repo}/tags/list?n=2")
    c.request("GET", f"/v2/{repo}/tags/list?n=2&last={tag}")
    c.request("GET", "/v2/_catalog")
    c.request("GET", "/v2/_catalog?n=1")
    # Errors.
    missing = sha256(os.urandom(32))
    c.request("GET", f"/v2/{repo}/blobs/{missing}")
    c.request("HEAD", f"/v2/{repo}/blobs/{missing}")
    c.request("GET", f"/v2/{repo}/manifests/{missing}")
    c.request("GET", f"/v2/{repo}/manifests/no-such-tag")
    c.request("GET", f"/v2/{repo}/blobs/sha256:nothex")
    c.request("PUT", f"/v2/{repo}/manifests/bad", b"{not json", {"Content-Type": OCI_MANIFEST})
    c.request(
        "PUT",
        f"/v2/{repo}/manifests/bad",
        manifest(os.urandom(16), [os.urandom(16)]),
        {"Content-Type": OCI_MANIFEST},
    )
    c.request("GET", "/v2/UPPER/case/tags/list")
    c.request("GET", f"/v2/{repo}/blobs/uploads/00000000-0000-0000-0000-000000000000")
    c.request(
        "POST",
        f"/v2/{repo}/blobs/uploads/?digest={missing}",
        b"wrong bytes",
        {"Content-Type": "application/octet-stream"},
    )
    c.request("GET", f"/v2/{repo}/tags/list", anonymous=True)
    c.request("PUT", f"/v2/{repo}/manifests/{tag}", body, {"Content-Type": OCI_MANIFEST}, True)
    c.request("GET", f"/v2/no/such/path/at/all-{round_no}")
    # Made-up methods (each a new name), and a known one on the wrong resource.
    for n in range(3):
        c.request(f"X{run}W{worker}R{round_no}M{n}", f"/v2/{repo}/tags/list")
    c.request("PROPFIND", "/v2/")
    c.request("TRACE", f"/v2/{repo}/manifests/{tag}")
    # Deletes: a tag, the referrer, a manifest, a blob, an upload.
    c.request("DELETE", f"/v2/{repo}/manifests/{tag}-x0")
    c.request("DELETE", f"/v2/{repo}/manifests/{referrer_digest}")
    c.request("DELETE", f"/v2/{repo}/blobs/{sha256(sbom)}")
    status, headers, _ = c.request("POST", f"/v2/{repo}/blobs/uploads/", b"")
    if status == 202:
        c.request("DELETE", location_path(headers))
    c.request("GET", f"/v2/{repo}/manifests/{tag}-x0")
    counts["rounds"] += 1


def worker(base, auth, run, number, rounds, totals, lock, failures):
    counts = Counter()
    c = Client(base, auth, counts)
    repo = f"bench/burst-{number}"
    other = f"bench/mounted-{number}"
    try:
        for round_no in range(rounds):
            round_of(c, repo, other, run, number, round_no, counts)
    except Exception as err:  # noqa: BLE001 - reported below, the run goes on
        failures.append(f"worker {number}: {err}")
    with lock:
        totals.update(counts)


def failed_logins(base, run, number, count, name_bytes, totals, lock, failures):
    counts = Counter()
    c = Client(base, None, counts)
    try:
        for n in range(count):
            prefix = f"x{run}w{number}n{n}-"
            name = prefix + "a" * max(0, name_bytes - len(prefix))
            token = base64.b64encode(f"{name}:wrong".encode()).decode()
            c.request("GET", "/v2/", headers={"Authorization": "Basic " + token})
    except Exception as err:  # noqa: BLE001 - reported below, the run goes on
        failures.append(f"worker {number}: {err}")
    with lock:
        totals.update(counts)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("base")
    parser.add_argument("user")
    parser.add_argument("password")
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--run", default="0")
    parser.add_argument("--failed-logins", type=int, default=0)
    parser.add_argument("--name-bytes", type=int, default=8192)
    args = parser.parse_args()
    auth = "Basic " + base64.b64encode(f"{args.user}:{args.password}".encode()).decode()
    totals, lock, failures = Counter(), threading.Lock(), []
    if args.failed_logins:
        share = args.failed_logins // args.workers
        threads = [
            threading.Thread(
                target=failed_logins,
                args=(args.base, args.run, n, share, args.name_bytes, totals, lock, failures),
            )
            for n in range(args.workers)
        ]
    else:
        threads = [
            threading.Thread(
                target=worker,
                args=(args.base, auth, args.run, n, args.rounds, totals, lock, failures),
            )
            for n in range(args.workers)
        ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    summary = " ".join(f"{k}={totals[k]}" for k in sorted(totals))
    print(summary)
    for failure in failures:
        print(failure, file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
