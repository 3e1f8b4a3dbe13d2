import { test, expect, Browser, BrowserContext } from "@playwright/test";
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

/** A link slower than loopback, where what a page fetches and in what order shows: each request
 * waits a round trip, and the bytes come at broadband speed (Chromium's network emulation). */
const SLOWER_LINK = { offline: false, latency: 40, downloadThroughput: 20e6 / 8, uploadThroughput: 5e6 / 8 };

/** Cold loads of each page: `BENCH_LOADS`, else 3 (10 for the namespace page on loopback). */
const LOADS = Number(process.env.BENCH_LOADS) || 0;

/** One load of `url` in `context`: ms from navigation start to hydrated (every island of the
 * page, see `LiveFeed`), and the WASM, JS and CSS it fetched (url -> bytes as received). */
async function load(context: BrowserContext, url: string, link?: typeof SLOWER_LINK): Promise<{ ms: number; transfer: Map<string, number> }> {
  const page = await context.newPage();
  if (link) {
    const devtools = await context.newCDPSession(page);
    await devtools.send("Network.enable");
    await devtools.send("Network.emulateNetworkConditions", link);
  }
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
  await page.close();
  return { ms, transfer };
}

function newContext(browser: Browser): Promise<BrowserContext> {
  return browser.newContext({ extraHTTPHeaders: { authorization }, ignoreHTTPSErrors: true });
}

/** A cold first load (a new browser context: nothing cached). */
async function timeToInteractive(browser: Browser, url: string, link?: typeof SLOWER_LINK): Promise<{ ms: number; transfer: Map<string, number> }> {
  const context = await newContext(browser);
  const run = await load(context, url, link);
  await context.close();
  return run;
}

/** The bytes of `urls` as Chromium received them (brotli over HTTPS), and as gzip (what a
 * browser gets over plain HTTP, Berth's default, where browsers do not ask for brotli). */
async function weigh(transfer: Map<string, number>): Promise<{ files: number; brotli: number; gzip: number }> {
  let brotli = 0;
  let gzip = 0;
  for (const [url, bytes] of transfer) {
    brotli += bytes;
    gzip += (await rawGet(`${BENCH_URL}${new URL(url).pathname}`, { "accept-encoding": "gzip" })).bytes;
  }
  return { files: transfer.size, brotli, gzip };
}

const kb = (bytes: number) => `${(bytes / 1000).toFixed(1)} KB`;

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

  // First load of each page: what the browser transfers (the runtime, then each island's own
  // code and the chunks it shares), and time to interactive.
  const tagged = await fetch(`${BENCH_URL}/apis/image.openshift.io/v1/namespaces/big/imagestreamtags/stream-00042:v1`, { headers: { authorization } });
  const digest = (await tagged.json()).image.metadata.name as string;
  const pages: [string, string][] = [
    ["namespaces", "/"],
    ["namespace (10,000 streams)", "/ns/big"],
    ["image stream", "/ns/big/streams/stream-00042"],
    ["image", `/ns/big/streams/stream-00042/images/${digest}`],
    ["access", "/ns/big/access"],
    ["lifecycle", "/ns/big/lifecycle"],
    ["webhooks", "/ns/big/webhooks"],
    ["pull secrets", "/ns/big/secrets"],
    ["tokens", "/tokens"],
  ];
  let heaviest = { gzip: 0, brotli: 0, page: "" };
  // What each first load fetched, by file (for finding what to merge or move): beside the report.
  const filesByPage: Record<string, Record<string, number>> = {};
  for (const [label, path] of pages) {
    const loads: number[] = [];
    let transfer = new Map<string, number>();
    for (let i = 0; i < (LOADS || (path === "/ns/big" ? 10 : 3)); i++) {
      const run = await timeToInteractive(browser, path);
      loads.push(run.ms);
      transfer = run.transfer;
    }
    const weight = await weigh(transfer);
    filesByPage[label] = Object.fromEntries([...transfer].map(([url, bytes]) => [new URL(url).pathname, bytes]));
    if (weight.gzip > heaviest.gzip) heaviest = { ...weight, page: label };
    report(`first load, ${label}: ${weight.files} files, ${kb(weight.brotli)} brotli (HTTPS), ${kb(weight.gzip)} gzip (HTTP); time to interactive median ${median(loads).toFixed(0)} ms, max ${Math.max(...loads).toFixed(0)} ms (${loads.length} cold loads)`);
  }
  report(`heaviest first load: ${heaviest.page}, ${kb(heaviest.gzip)} gzip (target 250 KB), ${kb(heaviest.brotli)} brotli (target 200 KB)`);

  // The same first loads over a slower link (on loopback, the two cores are what is measured).
  for (const [label, path] of pages) {
    const loads: number[] = [];
    for (let i = 0; i < (LOADS || 3); i++) {
      loads.push((await timeToInteractive(browser, path, SLOWER_LINK)).ms);
    }
    report(`first load over ${SLOWER_LINK.latency} ms and ${SLOWER_LINK.downloadThroughput * 8e-6} Mbit/s, ${label}: time to interactive median ${median(loads).toFixed(0)} ms, max ${Math.max(...loads).toFixed(0)} ms (${loads.length} cold loads)`);
  }

  // Later pages: one browser going from page to page; what each adds to what it has.
  const browsing = await newContext(browser);
  const seen = new Set<string>();
  let largestExtra = 0;
  for (const [label, path] of pages) {
    const run = await load(browsing, path);
    const extra = new Map([...run.transfer].filter(([url]) => !seen.has(url)));
    run.transfer.forEach((_, url) => seen.add(url));
    const weight = await weigh(extra);
    if (path !== "/") largestExtra = Math.max(largestExtra, weight.gzip);
    report(`  then ${label}: ${weight.files} more files, ${kb(weight.brotli)} brotli, ${kb(weight.gzip)} gzip; interactive in ${run.ms.toFixed(0)} ms`);
  }
  await browsing.close();
  report(`largest extra code of a later page: ${kb(largestExtra)} gzip (target 100 KB)`);

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

  if (process.env.BENCH_REPORT) {
    fs.writeFileSync(process.env.BENCH_REPORT, lines.join("\n") + "\n");
    fs.writeFileSync(process.env.BENCH_REPORT.replace(/\.txt$/, "") + ".files.json", JSON.stringify(filesByPage, null, 1) + "\n");
  }
});
