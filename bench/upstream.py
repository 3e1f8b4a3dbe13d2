#!/usr/bin/env python3
"""The helper of bench/upstream.sh (standard library only): fills the upstream Berth, signs in
to both consoles as a browser does, times the server-rendered pages side by side, counts the
upstream calls of each proxied page from the upstream's /metrics, and writes the report.

Usage (from bench/upstream.sh): upstream.py UPSTREAM_URL FRONT_URL PASSWORD REPORT
Tunables from the environment: BENCH_REQUESTS (50), BENCH_WARMUP (5), BENCH_BIG_STREAMS
(10000), BENCH_TEAM_STREAMS (200), BENCH_TAGS (3).
"""

import base64
import hashlib
import html
import http.client
import json
import math
import os
import platform
import re
import statistics
import sys
import threading
import time
import urllib.parse
from concurrent.futures import ThreadPoolExecutor

UPSTREAM, FRONT, PASSWORD, REPORT = sys.argv[1:5]
REQUESTS = int(os.environ.get("BENCH_REQUESTS", "50"))
WARMUP = int(os.environ.get("BENCH_WARMUP", "5"))
BIG_STREAMS = int(os.environ.get("BENCH_BIG_STREAMS", "10000"))
TEAM_STREAMS = int(os.environ.get("BENCH_TEAM_STREAMS", "200"))
TAGS = int(os.environ.get("BENCH_TAGS", "3"))
BASIC = "Basic " + base64.b64encode(f"admin:{PASSWORD}".encode()).decode()
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


def log(message):
    print(message, file=sys.stderr, flush=True)


# ---- HTTP ------------------------------------------------------------------------------------


class Connection:
    """One keep-alive connection to a base URL, reopened when the server closes it."""

    def __init__(self, base):
        parsed = urllib.parse.urlsplit(base)
        self.host, self.port = parsed.hostname, parsed.port
        self.conn = None

    def request(self, method, path, body=None, headers=None):
        headers = dict(headers or {})
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
            headers.setdefault("Content-Type", "application/json")
        elif isinstance(body, str):
            body = body.encode()
        for attempt in (1, 2):
            if self.conn is None:
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=120)
            try:
                self.conn.request(method, path, body=body, headers=headers)
                response = self.conn.getresponse()
                data = response.read()
                if response.getheader("Connection", "").lower() == "close":
                    self.conn.close()
                    self.conn = None
                return response.status, response, data
            except (http.client.HTTPException, ConnectionError, BrokenPipeError):
                self.conn.close()
                self.conn = None
                if attempt == 2:
                    raise


_local = threading.local()


def thread_connection(base):
    """A connection of this thread's own (seeding runs 16 threads)."""
    conns = getattr(_local, "conns", None)
    if conns is None:
        conns = _local.conns = {}
    if base not in conns:
        conns[base] = Connection(base)
    return conns[base]


def expect(status, wanted, what, data=b""):
    if status not in wanted:
        raise SystemExit(f"{what}: HTTP {status}: {data[:500].decode(errors='replace')}")


# ---- filling the upstream ----------------------------------------------------------------------


def admin_call(method, path, body=None, headers=None):
    headers = dict(headers or {})
    headers["Authorization"] = BASIC
    return thread_connection(UPSTREAM).request(method, path, body, headers)


def create_namespace(name):
    status, _, data = admin_call("POST", "/api/v1/namespaces", {"metadata": {"name": name}})
    expect(status, (201, 409), f"creating namespace {name}", data)


def create_stream(namespace, name):
    status, _, data = admin_call(
        "POST",
        f"/apis/image.openshift.io/v1/namespaces/{namespace}/imagestreams",
        {"metadata": {"name": name}},
    )
    expect(status, (201, 409), f"creating {namespace}/{name}", data)


def sha256(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def push_blob(repository, data):
    digest = sha256(data)
    status, _, answer = admin_call(
        "POST",
        f"/v2/{repository}/blobs/uploads/?digest={digest}",
        data,
        {"Content-Type": "application/octet-stream"},
    )
    expect(status, (201,), f"pushing a blob to {repository}", answer)
    return digest


def push_stream(index):
    """team/app-NNN: one small layer, and TAGS images (v1.., a config each), each tagged."""
    repository = f"team/app-{index:03d}"
    layer = f"layer of {repository}\n".encode() * 64
    layer_digest = push_blob(repository, layer)
    digests = {}
    for t in range(1, TAGS + 1):
        config = json.dumps(
            {
                "architecture": "amd64",
                "os": "linux",
                "created": "2026-01-01T00:00:00Z",
                "config": {"Env": [f"SEED={repository}:{t}"], "Cmd": ["/bin/app"]},
                "rootfs": {"type": "layers", "diff_ids": [sha256(layer)]},
                "history": [{"created_by": f"COPY app {t}"}],
            }
        ).encode()
        config_digest = push_blob(repository, config)
        manifest = json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST,
                "config": {
                    "mediaType": "application/vnd.oci.image.config.v1+json",
                    "digest": config_digest,
                    "size": len(config),
                },
                "layers": [
                    {
                        "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                        "digest": layer_digest,
                        "size": len(layer),
                    }
                ],
            }
        ).encode()
        tag = f"v{t}"
        status, _, answer = admin_call(
            "PUT", f"/v2/{repository}/manifests/{tag}", manifest, {"Content-Type": OCI_MANIFEST}
        )
        expect(status, (201,), f"pushing {repository}:{tag}", answer)
        digests[tag] = sha256(manifest)
    return digests


def seed():
    started = time.monotonic()
    create_namespace("big")
    create_namespace("team")
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda i: create_stream("big", f"stream-{i:05d}"), range(BIG_STREAMS)))
    big_seconds = time.monotonic() - started
    log(f"created {BIG_STREAMS} image streams in big in {big_seconds:.1f} s")
    started = time.monotonic()
    with ThreadPoolExecutor(16) as pool:
        pushed = list(pool.map(push_stream, range(TEAM_STREAMS)))
    team_seconds = time.monotonic() - started
    log(f"pushed {TEAM_STREAMS} image streams x {TAGS} tags to team in {team_seconds:.1f} s")
    return pushed, big_seconds, team_seconds


# ---- signing in, as a browser ------------------------------------------------------------------


class Browser:
    """A cookie jar for 127.0.0.1 (ports are not told apart, as browsers and reqwest's store do)
    and redirects followed by hand."""

    def __init__(self):
        self.cookies = {}
        self.conns = {}

    def _conn(self, base):
        if base not in self.conns:
            self.conns[base] = Connection(base)
        return self.conns[base]

    def request(self, method, url, body=None, headers=None):
        parsed = urllib.parse.urlsplit(url)
        base = f"{parsed.scheme}://{parsed.netloc}"
        path = parsed.path + (f"?{parsed.query}" if parsed.query else "")
        headers = dict(headers or {})
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        status, response, data = self._conn(base).request(method, path, body, headers)
        for header, value in response.getheaders():
            if header.lower() != "set-cookie":
                continue
            pair, *attributes = value.split(";")
            name, _, cookie = pair.strip().partition("=")
            expired = any(
                a.strip().lower() in ("max-age=0",) or a.strip().lower().startswith("max-age=-")
                for a in attributes
            )
            if expired:
                self.cookies.pop(name, None)
            else:
                self.cookies[name] = cookie
        location = response.getheader("Location")
        if location and not location.startswith("http"):
            location = base + location
        return status, location, data


def form_fields(page):
    """The named inputs of a form (as the tests' form_fields reads them)."""
    fields = []
    for chunk in page.split("<input")[1:]:
        tag = chunk.split(">", 1)[0]
        name = re.search(r'name="([^"]*)"', tag)
        if not name:
            continue
        value = re.search(r'value="([^"]*)"', tag)
        fields.append((html.unescape(name.group(1)), html.unescape(value.group(1) if value else "")))
    return fields


def sign_in(console, issuer):
    """Signs in as admin at `console` through the OAuth server at `issuer`; returns the
    `berth_session` cookie."""
    browser = Browser()
    status, authorize, data = browser.request("GET", f"{console}/console/login?then=/")
    expect(status, (303,), f"{console}/console/login", data)
    if not authorize.startswith(f"{issuer}/oauth/authorize?"):
        raise SystemExit(f"{console}/console/login sent to {authorize}")
    status, _, page = browser.request("GET", authorize, headers={"Accept": "text/html"})
    expect(status, (200,), "the authorize page", page)
    fields = [(k, v) for k, v in form_fields(page.decode()) if k not in ("username", "password")]
    fields += [("username", "admin"), ("password", PASSWORD)]
    status, callback, data = browser.request(
        "POST",
        f"{issuer}/oauth/authorize",
        urllib.parse.urlencode(fields),
        {"Content-Type": "application/x-www-form-urlencoded"},
    )
    expect(status, (303,), "posting the authorize form", data)
    if not callback.startswith(f"{console}/console/callback?"):
        raise SystemExit(f"the authorize form sent to {callback}")
    status, _, data = browser.request("GET", callback)
    expect(status, (303,), "the console's callback", data)
    status, _, data = browser.request("GET", f"{console}/console/api/session")
    expect(status, (200,), "the session", data)
    session = json.loads(data)
    if session.get("user") != "admin":
        raise SystemExit(f"{console}: not signed in: {session}")
    return browser.cookies["berth_session"]


# ---- measuring ---------------------------------------------------------------------------------


def percentile(values, fraction):
    ordered = sorted(values)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


def metrics_counts(conn):
    """berth_http_requests_total by (method, route, status), as the upstream reports it."""
    status, _, data = conn.request("GET", "/metrics")
    expect(status, (200,), "the upstream's /metrics", data)
    counts = {}
    for line in data.decode().splitlines():
        if not line.startswith("berth_http_requests_total{"):
            continue
        labels_text, _, value = line[len("berth_http_requests_total{") :].rpartition("} ")
        labels = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', labels_text))
        key = (labels.get("method", "?"), labels.get("route", "?"), labels.get("status", "?"))
        counts[key] = counts.get(key, 0) + float(value)
    return counts


def main():
    start_load = os.getloadavg()[0]
    pushed, big_seconds, team_seconds = seed()
    stream = "app-042" if TEAM_STREAMS > 42 else "app-000"
    digest = pushed[int(stream[4:])][f"v{TAGS}"]

    in_process_cookie = sign_in(UPSTREAM, UPSTREAM)
    proxied_cookie = sign_in(FRONT, UPSTREAM)
    log("signed in to both consoles")

    pages = [
        ("namespaces", "/", "data-namespace="),
        (f"big: stream list ({BIG_STREAMS} streams)", "/ns/big", "data-stream="),
        ("big: ?sort=updated", "/ns/big?sort=updated", "data-stream="),
        (f"team: stream list ({TEAM_STREAMS} streams)", "/ns/team", "data-stream="),
        ("team: ?sort=updated", "/ns/team?sort=updated", "data-stream="),
        (f"stream team/{stream}", f"/ns/team/streams/{stream}", "data-tag="),
        (f"image team/{stream}@v{TAGS}", f"/ns/team/streams/{stream}/images/{digest}", "schemaVersion"),
    ]
    sides = {
        "in-process": (Connection(UPSTREAM), in_process_cookie),
        "proxied": (Connection(FRONT), proxied_cookie),
    }

    def get(side, path):
        conn, cookie = sides[side]
        started = time.perf_counter()
        status, _, data = conn.request(
            "GET", path, headers={"Accept": "text/html", "Cookie": f"berth_session={cookie}"}
        )
        return (time.perf_counter() - started) * 1000, status, data

    results = []
    for label, path, marker in pages:
        sizes, rows = {}, {}
        for side in sides:
            _, status, data = get(side, path)
            text = data.decode(errors="replace")
            if status != 200 or marker not in text:
                raise SystemExit(
                    f"{side} {path}: HTTP {status}, {marker!r} {'found' if marker in text else 'missing'}:\n{text[:2000]}"
                )
            sizes[side] = len(data)
            rows[side] = re.findall(r'data-(?:namespace|stream|tag|image|platform)="([^"]*)"', text)
            for _ in range(WARMUP - 1):
                get(side, path)
        times = {side: [] for side in sides}
        order = list(sides)
        for round_ in range(REQUESTS):
            for side in order if round_ % 2 == 0 else reversed(order):
                ms, status, _ = get(side, path)
                if status != 200:
                    raise SystemExit(f"{side} {path}: HTTP {status}")
                times[side].append(ms)
        same = rows["in-process"] == rows["proxied"]
        if not same:
            log(f"{label}: rows differ: in-process {rows['in-process'][:8]}, proxied {rows['proxied'][:8]}")
        sizes["rows"] = f"{len(rows['proxied'])}{'' if same else ' DIFFER'}"
        results.append((label, path, times, sizes))
        log(
            f"{label}: in-process {statistics.median(times['in-process']):.1f} ms, "
            f"proxied {statistics.median(times['proxied']):.1f} ms"
        )

    # Upstream calls per proxied page load: the upstream's counters around one load each.
    upstream_metrics = Connection(UPSTREAM)
    calls = []
    time.sleep(0.5)
    for label, path, _ in pages:
        before = metrics_counts(upstream_metrics)
        _, status, _ = get("proxied", path)
        expect(status, (200,), f"proxied {path}")
        after = metrics_counts(upstream_metrics)
        delta = {
            key: after.get(key, 0) - before.get(key, 0)
            for key in after
            if key[1] != "/metrics" and after.get(key, 0) - before.get(key, 0) > 0
        }
        calls.append((label, delta))

    # Where the proxied stream list's time goes: the two calls it makes, timed alone.
    direct = Connection(UPSTREAM)
    direct_calls = [
        ("GET imagestreams?limit=50 (big)", "GET", "/apis/image.openshift.io/v1/namespaces/big/imagestreams?limit=50", None),
        (
            "POST selfsubjectrulesreviews (big)",
            "POST",
            "/apis/authorization.k8s.io/v1/selfsubjectrulesreviews",
            {"kind": "SelfSubjectRulesReview", "apiVersion": "authorization.k8s.io/v1", "spec": {"namespace": "big"}},
        ),
    ]
    direct_times = []
    for label, method, path, body in direct_calls:
        samples = []
        for n in range(WARMUP + REQUESTS):
            started = time.perf_counter()
            status, _, data = direct.request(method, path, body, {"Authorization": BASIC})
            expect(status, (200, 201), label, data)
            if n >= WARMUP:
                samples.append((time.perf_counter() - started) * 1000)
        direct_times.append((label, statistics.median(samples), percentile(samples, 0.9)))

    # ---- report ----
    lines = []
    out = lines.append
    out(
        f"Berth console in front of an upstream Berth vs the upstream's own console, "
        f"{time.strftime('%Y-%m-%d %H:%M:%SZ', time.gmtime())}, {os.cpu_count()} cores, "
        f"load average at start {start_load:.2f}, "
        f"Python {platform.python_version()} client on loopback (keep-alive)"
    )
    out(
        f"data: namespace big = {BIG_STREAMS} empty image streams (POSTed through the API, "
        f"{big_seconds:.1f} s); namespace team = {TEAM_STREAMS} streams app-000.. with {TAGS} tags "
        f"v1..v{TAGS} each (one 1.4 KB layer per stream, a config and an OCI manifest per tag, "
        f"pushed through the Distribution API, {team_seconds:.1f} s)"
    )
    out(
        f"server-rendered HTML (GET, Accept: text/html, admin's session cookie), {REQUESTS} requests "
        f"per side after {WARMUP} warm-up, sides alternated; ms; target proxied median <= 1.20x in-process"
    )
    out("")
    out(
        f"{'page':<36} {'in-process':>10} {'p90':>7} {'proxied':>9} {'p90':>7} {'ratio':>6} "
        f"{'p90 ratio':>9}  {'KB in/prox':>11} {'rows':>6}  target"
    )
    for label, path, times, sizes in results:
        a, b = times["in-process"], times["proxied"]
        ma, mb = statistics.median(a), statistics.median(b)
        pa, pb = percentile(a, 0.9), percentile(b, 0.9)
        ratio = mb / ma
        out(
            f"{label:<36} {ma:>10.1f} {pa:>7.1f} {mb:>9.1f} {pb:>7.1f} {ratio:>5.2f}x {pb / pa:>8.2f}x"
            f"  {sizes['in-process'] / 1000:>5.1f}/{sizes['proxied'] / 1000:<5.1f} {sizes['rows']:>6}  "
            f"{'met' if ratio <= 1.2 else 'NOT met'}"
        )
    out("  (pages: " + ", ".join(path for _, path, _, _ in results) + ")")
    out("the upstream calls of the proxied stream list, timed alone (median / p90 ms):")
    for label, median, p90 in direct_times:
        out(f"  {label:<40} {median:>5.2f} / {p90:.2f}")
    out(
        "  rows: the data-namespace/stream/tag/image/platform rows of the proxied page; DIFFER when "
        "they are not the in-process page's, in the same order"
    )
    for label, path, _, sizes in results:
        if "DIFFER" in sizes["rows"] and "sort=updated" in path:
            out(
                f"  {label}: the cluster's API gives times to the second, so streams pushed in the "
                "same second are ordered by name through it and by sub-second time in-process"
            )
    out("")
    out(
        "upstream calls per proxied page load (the upstream's berth_http_requests_total around one "
        "load, its /metrics scrapes left out)"
    )
    for label, delta in calls:
        total = int(sum(delta.values()))
        by_route = {}
        for (method, route, _), n in delta.items():
            by_route[(method, route)] = by_route.get((method, route), 0) + n
        repeated = [(key, n) for key, n in by_route.items() if n > 1]
        challenged = int(sum(n for key, n in delta.items() if key[2] == "401"))
        verdict = (
            f"{len(by_route)} routes, each called once"
            if not repeated
            else f"{len(by_route)} routes; more than once: "
            + ", ".join(f"{int(n)}x {k[0]} {k[1]}" for k, n in repeated)
        )
        if challenged:
            verdict += f"; {challenged} answered 401 (registry bearer challenges)"
        out(f"  {label}: {total} calls ({verdict})")
        for (method, route, status), n in sorted(delta.items(), key=lambda item: item[0][1]):
            out(f"      {int(n):>3} x {method} {route} -> {status}")
    out(f"load average at the end {os.getloadavg()[0]:.2f}")
    report = "\n".join(lines) + "\n"
    with open(REPORT, "w") as file:
        file.write(report)


if __name__ == "__main__":
    main()
