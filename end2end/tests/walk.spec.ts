import { test, expect, Page } from "@playwright/test";
import { spawn, ChildProcess } from "node:child_process";
import * as fs from "node:fs";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { ADMIN_PASSWORD, BASE_URL, PORT } from "../playwright.config";
import { buildImage, digestOf, hydrated, run, screenshotPath, signIn, skopeoPush } from "./helpers";

// What a walk through every flow found: each test fails without its fix.
const admin = `admin:${ADMIN_PASSWORD}`;
const host = new URL(BASE_URL).host;
const authorization = `Basic ${Buffer.from(admin).toString("base64")}`;
const REMOTE_PORT = PORT + 11;
const remoteHost = `127.0.0.1:${REMOTE_PORT}`;
let remote: ChildProcess | undefined;

/** Debian's docker-registry on loopback, in plain HTTP: the other registry to import from. */
test.beforeAll(async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "berth-e2e-walk-remote-"));
  const config = path.join(dir, "config.yml");
  fs.writeFileSync(config, `version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: ${dir}/data\nhttp:\n  addr: ${remoteHost}\n`);
  remote = spawn("docker-registry", ["serve", config], { stdio: "ignore" });
  for (let i = 0; i < 100; i++) {
    const up = await new Promise<boolean>((resolve) => {
      const socket = net.connect(REMOTE_PORT, "127.0.0.1", () => { socket.end(); resolve(true); });
      socket.on("error", () => resolve(false));
    });
    if (up) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  run("skopeo", ["copy", "--dest-tls-verify=false", buildImage("walk-remote"), `docker://${remoteHost}/vendor/walk:1.0`]);
});

test.afterAll(() => remote?.kill());

async function openAsAdmin(page: Page, url: string) {
  await page.goto(url);
  await hydrated(page);
  await signIn(page, "admin", ADMIN_PASSWORD);
}

async function makeNamespace(name: string) {
  const created = await fetch(`${BASE_URL}/api/v1/namespaces`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization },
    body: JSON.stringify({ metadata: { name } }),
  });
  expect(created.status).toBe(201);
}

test("after a rollback and a new push, the tag is not shown pinned to the old image", async ({ page }) => {
  skopeoPush(buildImage("pin-a"), host, "pin/app:v1", admin);
  const first = await digestOf(BASE_URL, admin, "pin/app", "v1");
  skopeoPush(buildImage("pin-b"), host, "pin/app:v1", admin);
  await openAsAdmin(page, "/ns/pin/streams/app");
  const history = page.locator('details.tag-history[data-tag="v1"]');
  // A rollback asks first.
  await history.getByRole("button", { name: `Roll back v1 to ${first.slice(7, 19)}` }).click();
  const confirm = history.getByRole("dialog");
  await expect(confirm).toBeVisible();
  await expect(confirm.getByRole("button", { name: "Yes, roll back" })).toBeFocused();
  await confirm.getByRole("button", { name: "Yes, roll back" }).click();
  const row = page.locator('tr[data-tag="v1"]');
  await expect(row).toContainText(`pinned to ${first.slice(7, 19)}`);

  skopeoPush(buildImage("pin-c"), host, "pin/app:v1", admin);
  const third = await digestOf(BASE_URL, admin, "pin/app", "v1");
  await expect(row).toContainText(third.slice(7, 19));
  await expect(row).not.toContainText("pinned to");
});

test("the role menu says what each role allows", async ({ page }) => {
  await makeNamespace("roles");
  await openAsAdmin(page, "/ns/roles/access");
  const options = await page.getByLabel("the role").locator("option").allTextContents();
  expect(options).toEqual(["viewer (pull)", "editor (pull, push)", "admin (pull, push, delete, manage access)"]);
});

test("a failed tag keeps what was typed, beside the form, without a jump", async ({ page }) => {
  skopeoPush(buildImage("form"), host, "form/app:v1", admin);
  await page.setViewportSize({ width: 1280, height: 600 });
  await openAsAdmin(page, "/ns/form/streams/app");
  const form = page.getByRole("region", { name: "Add or move a tag" });
  await form.scrollIntoViewIfNeeded();
  await form.getByLabel("Tag", { exact: true }).fill("stable");
  await form.getByLabel("points at").fill("nosuchtag");
  expect(await page.evaluate(() => window.scrollY)).toBeGreaterThan(0);
  // What the eye sees: the form stays where it is on the screen (content above it may change
  // as live updates arrive; the browser's scroll anchoring keeps the view in place).
  const onScreen = async () => (await form.boundingBox())?.y;
  const before = await onScreen();
  await form.getByRole("button", { name: "Tag", exact: true }).click();
  await expect(form.getByRole("alert")).toBeVisible();
  await expect(form.getByLabel("Tag", { exact: true })).toHaveValue("stable");
  await expect(form.getByLabel("points at")).toHaveValue("nosuchtag");
  expect(await onScreen()).toBe(before);
  await page.screenshot({ path: screenshotPath("walk-tag-error") });

  await form.getByLabel("points at").fill("v1");
  await form.getByRole("button", { name: "Tag", exact: true }).click();
  await expect(page.locator('tr[data-tag="stable"]')).toBeVisible();
  await expect(form.getByRole("alert")).toHaveCount(0);
  expect(await onScreen()).toBe(before);
});

test("deleting a namespace says what goes and asks for its name", async ({ page }) => {
  skopeoPush(buildImage("gone-a"), host, "doomed/a:v1", admin);
  skopeoPush(buildImage("gone-b"), host, "doomed/a:v2", admin);
  skopeoPush(buildImage("gone-c"), host, "doomed/b:v1", admin);
  await openAsAdmin(page, "/");
  const row = page.locator('tr[data-namespace="doomed"]');
  const opener = row.getByRole("button", { name: "Delete namespace doomed" });
  const box = await row.boundingBox();
  const cells = await row.locator("td").evaluateAll((tds) => tds.map((td) => td.getBoundingClientRect().width));
  await opener.click();
  const confirm = row.getByRole("dialog");
  await expect(confirm).toContainText("2 image streams, 3 tags and 3 images go with it.");
  // The confirm opens over the table: nothing moves.
  expect(await row.boundingBox()).toEqual(box);
  expect(await row.locator("td").evaluateAll((tds) => tds.map((td) => td.getBoundingClientRect().width))).toEqual(cells);
  const name = confirm.getByLabel("Type doomed to confirm");
  await expect(name).toBeFocused();
  await page.screenshot({ path: screenshotPath("walk-delete-namespace") });
  const yes = confirm.getByRole("button", { name: "Yes, delete" });
  await expect(yes).toBeDisabled();
  // Escape cancels, and the focus goes back to the button.
  await page.keyboard.press("Escape");
  await expect(confirm).toHaveCount(0);
  await expect(opener).toBeFocused();

  await opener.click();
  await row.getByRole("dialog").getByLabel("Type doomed to confirm").fill("doome");
  await expect(row.getByRole("dialog").getByRole("button", { name: "Yes, delete" })).toBeDisabled();
  await row.getByRole("dialog").getByLabel("Type doomed to confirm").fill("doomed");
  await row.getByRole("dialog").getByRole("button", { name: "Yes, delete" }).click();
  await expect(row).toHaveCount(0);
});

test("what is typed before the page's code arrives stays, and is what is sent", async ({ page }) => {
  await openAsAdmin(page, "/");
  // Hold the WASM back while typing, as a slow link does (routing also turns the cache off).
  let release = () => {};
  const held = new Promise<void>((resolve) => (release = resolve));
  await page.route(/\.wasm$/, async (route) => {
    await held;
    await route.continue();
  });
  await page.goto("/", { waitUntil: "domcontentloaded" });
  await page.getByLabel("New namespace name").fill("typed-early");
  await expect(page.locator("body")).not.toHaveAttribute("data-hydrated", "true");
  release();
  await hydrated(page);
  await expect(page.getByLabel("New namespace name")).toHaveValue("typed-early");
  await page.getByRole("button", { name: "Create namespace" }).click();
  await expect(page.locator('tr[data-namespace="typed-early"]')).toBeVisible();
});

/** What the page's head preloads with `fetch` (the islands' modules and chunks). */
function preloaded(page: Page): Promise<string[]> {
  return page.locator('head link[rel="preload"][as="fetch"]').evaluateAll((links) => links.map((link) => link.getAttribute("href") ?? ""));
}

test("a page preloads its islands' code with the main bundle, and fetches it once", async ({ page }) => {
  const fetched: string[] = [];
  page.on("request", (request) => {
    if (/\/pkg\/split_create_namespace_loader_/.test(request.url())) fetched.push(request.url());
  });
  await openAsAdmin(page, "/");
  await expect(page.getByRole("button", { name: "Create namespace" })).toBeVisible();
  expect((await preloaded(page)).filter((href) => href.includes("/pkg/split_create_namespace_loader_"))).toHaveLength(1);
  // The island's loader takes the preloaded answer: one request, not a second fetch.
  expect(fetched).toHaveLength(1);
});

test("an island's shared code comes in a few merged files, each preloaded and fetched once", async ({ page }) => {
  await makeNamespace("merged");
  await openAsAdmin(page, "/ns/merged/access");
  const fetched: string[] = [];
  page.on("request", (request) => {
    const url = new URL(request.url());
    if (/^\/pkg\/chunks?_/.test(url.pathname)) fetched.push(url.pathname);
  });
  await page.reload();
  await hydrated(page);
  await expect(page.getByRole("button", { name: "Add binding" })).toBeVisible();
  // cargo-leptos's split gives the access page's island 29 chunks; scripts/merge_wasm_chunks.py
  // merges them so that no island needs more than 4.
  expect(fetched.length).toBeGreaterThan(0);
  expect(fetched.length).toBeLessThanOrEqual(4);
  expect(new Set(fetched).size).toBe(fetched.length);
  const preloads = (await preloaded(page)).map((href) => new URL(href, BASE_URL).pathname);
  expect(preloads.filter((path) => /^\/pkg\/chunks?_/.test(path)).sort()).toEqual([...fetched].sort());
});

test("an island inside another preloads nothing of its own; the same island alone does", async ({ page }) => {
  skopeoPush(buildImage("preload"), host, "preload/app:v1", admin);
  const digest = await digestOf(BASE_URL, admin, "preload/app", "v1");
  const fetched: string[] = [];
  page.on("request", (request) => fetched.push(new URL(request.url()).pathname));
  // The stream page's pull commands are `CommandLine` islands inside `StreamControls`.
  await openAsAdmin(page, "/ns/preload/streams/app");
  await expect(page.getByRole("button", { name: "Copy podman pull command" }).first()).toBeVisible();
  expect((await preloaded(page)).some((href) => href.includes("/pkg/split_stream_controls_loader_"))).toBe(true);
  expect((await preloaded(page)).filter((href) => href.includes("/pkg/split_command_line_loader_"))).toEqual([]);
  expect(fetched.filter((url) => url.includes("/pkg/split_command_line_loader_"))).toEqual([]);
  // The image page's are islands of their own, hydrated with their own code.
  await page.goto(`/ns/preload/streams/app/images/${digest}`);
  await hydrated(page);
  expect((await preloaded(page)).filter((href) => href.includes("/pkg/split_command_line_loader_"))).toHaveLength(1);
});

test("a followed link is a page load: the keyboard starts again at \"Skip to content\"", async ({ page }) => {
  // Pages are loaded by the browser (islands, no client-side router), so what a page load does
  // for focus applies: the first Tab goes to the skip link, which leads to the page's content.
  skopeoPush(buildImage("focus"), host, "focus/app:v1", admin);
  await openAsAdmin(page, "/");
  await page.locator('tr[data-namespace="focus"] a').click();
  await expect(page).toHaveURL(/\/ns\/focus$/);
  await hydrated(page);
  await page.keyboard.press("Tab");
  await expect(page.getByRole("link", { name: "Skip to content" })).toBeFocused();
  await page.keyboard.press("Enter");
  await page.keyboard.press("Tab");
  await expect(page.locator("main :focus")).toHaveCount(1);
  await page.locator('tr[data-stream="app"]').getByRole("link", { name: "app" }).click();
  await expect(page.getByRole("heading", { level: 1 })).toContainText("app");
  await hydrated(page);
  await page.keyboard.press("Tab");
  await expect(page.getByRole("link", { name: "Skip to content" })).toBeFocused();
});

test("imports: plain HTTP hint, a failed first import offers no pull, dry run", async ({ page }) => {
  await makeNamespace("walkimports");
  await openAsAdmin(page, "/ns/walkimports");
  const form = page.getByRole("region", { name: "Import from another registry" });
  // Without "Plain HTTP", the TLS error says what to do.
  await form.getByLabel("Image", { exact: true }).fill(`${remoteHost}/vendor/walk:1.0`);
  await form.getByLabel("Into image stream").fill("walk");
  await form.getByRole("button", { name: "Import", exact: true }).click();
  const failed = form.locator(".import-outcomes li.warning");
  await expect(failed).toContainText("Plain HTTP (insecure registry)");
  await expect(failed).not.toContainText("InvalidContentType");

  // The new stream's tag has no image: it says the import failed and offers no pull commands.
  await page.locator('tr[data-stream="walk"]').getByRole("link", { name: "walk" }).click();
  await expect(page).toHaveURL(/\/ns\/walkimports\/streams\/walk$/);
  await hydrated(page);
  const row = page.locator('tr[data-tag="1.0"]');
  await expect(row.locator(".warning")).toContainText("Last import failed");
  await expect(row).toContainText("no image");
  await expect(page.getByRole("region", { name: "Pull" })).toHaveCount(0);
  await expect(row.getByRole("button", { name: /Pull commands/ })).toHaveCount(0);
  await page.screenshot({ path: screenshotPath("walk-import-failed"), fullPage: true });

  // A dry run reads the image and changes nothing; a real import links to the image.
  const streamForm = page.getByRole("region", { name: "Import from another registry" });
  await streamForm.getByLabel("Image", { exact: true }).fill(`${remoteHost}/vendor/walk:1.0`);
  await streamForm.getByLabel("Plain HTTP (insecure registry)").check();
  await streamForm.getByLabel("Dry run: only check what would be imported").check();
  await streamForm.getByRole("button", { name: "Check" }).click();
  await expect(streamForm.locator(".import-outcomes li.ok")).toContainText("would import");
  await expect(row).toContainText("no image");
  await streamForm.getByLabel("Dry run: only check what would be imported").uncheck();
  await streamForm.getByRole("button", { name: "Import", exact: true }).click();
  const imported = streamForm.locator(".import-outcomes li.ok");
  await expect(imported).toContainText("1.0: imported");
  await expect(page.getByRole("region", { name: "Pull" })).toBeVisible();
  await imported.getByRole("link").click();
  await expect(page).toHaveURL(/\/ns\/walkimports\/streams\/walk\/images\/sha256:/);
});
