import { test, expect, Browser } from "@playwright/test";
import * as fs from "node:fs";
import * as https from "node:https";
import { BENCH_PASSWORD, BENCH_PORT, BENCH_URL } from "../bench.config";
import { buildImage, skopeoPush } from "../tests/helpers";

const host = `127.0.0.1:${BENCH_PORT}`;
const admin = `admin:${BENCH_PASSWORD}`;
const authorization = `Basic ${Buffer.from(admin).toString("base64")}`;
const STREAMS = 10_000;
const lines: string[] = [];

function report(line: string) {
  console.log(line);
  lines.push(line);
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

/** A GET with its own encoding, body undecoded: the bytes a browser would receive. */
function rawGet(url: string, headers: Record<string, string>): Promise<{ status: number; bytes: number; encoding: string }> {
  return new Promise((resolve, reject) => {
    https.get(url, { headers, rejectUnauthorized: false }, (response) => {
      let bytes = 0;
      response.on("data", (chunk: Buffer) => (bytes += chunk.length));
      response.on("end", () => resolve({ status: response.statusCode ?? 0, bytes, encoding: String(response.headers["content-encoding"] ?? "identity") }));
    }).on("error", reject);
  });
}

async function seed() {
  const api = `${BENCH_URL}/apis/image.openshift.io/v1/namespaces/big/imagestreams`;
  const namespaces = await fetch(`${BENCH_URL}/api/v1/namespaces`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization },
    body: JSON.stringify({ metadata: { name: "big" } }),
  });
  expect([201, 409]).toContain(namespaces.status);
  let next = 0;
  const worker = async () => {
    while (next < STREAMS) {
      const name = `stream-${String(next++).padStart(5, "0")}`;
      const response = await fetch(api, {
        method: "POST",
        headers: { "content-type": "application/json", authorization },
        body: JSON.stringify({ metadata: { name } }),
      });
      expect([201, 409]).toContain(response.status);
    }
  };
  await Promise.all(Array.from({ length: 16 }, worker));
  skopeoPush(buildImage("bench"), host, "big/stream-00042:v1", admin);
}

async function timeToInteractive(browser: Browser, url: string): Promise<{ ms: number; transfer: Map<string, number> }> {
  const context = await browser.newContext({ extraHTTPHeaders: { authorization }, ignoreHTTPSErrors: true });
  const page = await context.newPage();
  const transfer = new Map<string, number>();
  page.on("requestfinished", async (request) => {
    const kind = request.url().match(/\.(wasm|js|css)(\?|$)/)?.[1];
    if (kind) {
      const sizes = await request.sizes();
      transfer.set(request.url(), sizes.responseBodySize);
    }
  });
  await page.addInitScript(() => {
    new MutationObserver((_, observer) => {
      if (document.body?.getAttribute("data-hydrated") === "true") {
        (window as any).__hydratedAt = performance.now();
        observer.disconnect();
      }
    }).observe(document, { attributes: true, subtree: true, attributeFilter: ["data-hydrated"] });
  });
  await page.goto(url);
  await expect(page.locator("body")).toHaveAttribute("data-hydrated", "true");
  await page.waitForLoadState("networkidle");
  const ms = await page.evaluate(() => (window as any).__hydratedAt as number);
  await context.close();
  return { ms, transfer };
}

test("console speed", async ({ browser }) => {
  const seeded = Date.now();
  await seed();
  report(`Berth console benchmark, ${new Date().toISOString()}, ${require("node:os").cpus().length} cores`);
  report(`seeded ${STREAMS} image streams in namespace big in ${((Date.now() - seeded) / 1000).toFixed(1)} s`);

  // Server-rendered namespace pages.
  const views: [string, string][] = [
    ["first page, by name", "/ns/big"],
    ["page 100, by name", "/ns/big?page=100"],
    ["by last updated", "/ns/big?sort=updated"],
    ["by size", "/ns/big?sort=size"],
    ["search \"99\"", "/ns/big?q=99"],
  ];
  for (const [label, path] of views) {
    const times: number[] = [];
    for (let i = 0; i < 55; i++) {
      const start = performance.now();
      const response = await fetch(`${BENCH_URL}${path}`, { headers: { authorization } });
      const html = await response.text();
      expect(response.status).toBe(200);
      expect(html).toContain("data-stream=");
      if (i >= 5) times.push(performance.now() - start);
    }
    report(`SSR namespace page (${STREAMS} streams), ${label}: median ${median(times).toFixed(1)} ms, max ${Math.max(...times).toFixed(1)} ms`);
  }

  // First load: what the browser transfers, and time to interactive.
  const loads: number[] = [];
  let transfer = new Map<string, number>();
  for (let i = 0; i < 10; i++) {
    const run = await timeToInteractive(browser, "/ns/big");
    loads.push(run.ms);
    transfer = run.transfer;
  }
  let total = 0;
  let totalGzip = 0;
  for (const [url, bytes] of transfer) {
    total += bytes;
    const path = new URL(url).pathname;
    const gzip = await rawGet(`${BENCH_URL}${path}`, { "accept-encoding": "gzip" });
    const plain = await rawGet(`${BENCH_URL}${path}`, {});
    totalGzip += gzip.bytes;
    report(`  ${path}: ${(bytes / 1000).toFixed(1)} KB received by Chromium over HTTPS, ${(gzip.bytes / 1000).toFixed(1)} KB as ${gzip.encoding} (plain-HTTP browsers), ${(plain.bytes / 1000).toFixed(1)} KB uncompressed`);
  }
  report(`first load WASM+JS+CSS: ${(total / 1000).toFixed(1)} KB received by Chromium (brotli over HTTPS); ${(totalGzip / 1000).toFixed(1)} KB as gzip (target 400 KB)`);
  report(`time to interactive (navigation start to hydrated), 10 cold loads: median ${median(loads).toFixed(0)} ms, max ${Math.max(...loads).toFixed(0)} ms (target 1500 ms)`);

  // A push seen in an open page.
  const context = await browser.newContext({ extraHTTPHeaders: { authorization }, ignoreHTTPSErrors: true });
  const page = await context.newPage();
  await page.goto("/ns/big/streams/stream-00042");
  await expect(page.locator("body")).toHaveAttribute("data-hydrated", "true");
  const delays: number[] = [];
  for (let i = 0; i < 5; i++) {
    const tag = `live${i}`;
    skopeoPush(buildImage(tag), host, `big/stream-00042:${tag}`, admin);
    const pushed = Date.now();
    await expect(page.locator(`tr[data-tag="${tag}"]`)).toBeVisible({ timeout: 10_000 });
    delays.push(Date.now() - pushed);
  }
  await context.close();
  report(`push visible in an open page (after skopeo returns), 5 pushes: median ${median(delays)} ms, max ${Math.max(...delays)} ms (target 1000 ms)`);

  if (process.env.BENCH_REPORT) fs.writeFileSync(process.env.BENCH_REPORT, lines.join("\n") + "\n");
});
