import { test, expect } from "@playwright/test";
import { ADMIN_PASSWORD, BERTH_BINARY } from "../playwright.config";
import {
  addUser, attempt, bind, buildImage, digestOf, expectAccessible, hydrated, podmanEnv, screenshotPath, signIn, signInLink,
  skopeoPush, tabTo, target,
} from "./helpers";

// The same tests run against Berth and against its console in front of a cluster (a second
// Berth): `target()` says where images are pushed and whose API checks the outcome.
const admin = `admin:${ADMIN_PASSWORD}`;
let host = "";
let BASE_URL = "";
let DATA_DIR = "";
let inFront = false;
test.beforeEach(() => {
  ({ host, base: BASE_URL, dataDir: DATA_DIR } = target());
  inFront = target().mode === "in-front";
});
/** Screenshots of the two modes side by side. */
const shot = (name: string) => screenshotPath(inFront ? `in-front-${name}` : name);

test("an empty namespace shows how to push its first image", async ({ page }) => {
  await page.goto("/");
  await hydrated(page);
  await signIn(page, "admin", ADMIN_PASSWORD);
  await page.getByLabel("New namespace name").fill("fresh");
  await page.getByRole("button", { name: "Create namespace" }).click();
  await page.locator('tr[data-namespace="fresh"] a').click();
  await expect(page).toHaveURL(/\/ns\/fresh$/);
  await expect(page.getByText("No image streams here yet")).toBeVisible();
  await expect(page.locator(".command code").last()).toHaveText(`podman push --tls-verify=false ${host}/fresh/myimage:latest`);
  await page.screenshot({ path: shot("namespace-empty"), fullPage: true });
  await expectAccessible(page, "empty namespace");
});

test("browse a skopeo push: namespace, stream, tag, image", async ({ page }) => {
  skopeoPush(buildImage("browse"), host, "shop/web:v1", admin);
  const digest = await digestOf(BASE_URL, admin, "shop/web", "v1");
  await page.goto("/");
  await hydrated(page);
  // Anonymous visitors see nothing of it.
  await expect(page.locator('tr[data-namespace="shop"]')).toHaveCount(0);
  await expectAccessible(page, "namespaces, signed out");
  await signIn(page, "admin", ADMIN_PASSWORD);
  const namespaceRow = page.locator('tr[data-namespace="shop"]');
  // Its image streams: counted on Berth; a cluster's namespace list has no count.
  await expect(namespaceRow.locator("td.num").first()).toHaveText(inFront ? "—" : "1");
  await page.screenshot({ path: shot("namespaces"), fullPage: true });
  await expectAccessible(page, "namespaces");
  await namespaceRow.getByRole("link", { name: "shop" }).click();
  await expect(page.locator('tr[data-stream="web"]')).toContainText("v1");
  await page.screenshot({ path: shot("namespace"), fullPage: true });
  await expectAccessible(page, "namespace");
  await page.getByRole("link", { name: "web", exact: true }).click();
  await expect(page).toHaveURL(/\/ns\/shop\/streams\/web$/);
  const tagRow = page.locator('tr[data-tag="v1"]');
  await expect(tagRow).toContainText(digest.slice(7, 19));
  if (!inFront) {
    // A cluster's image streams carry no platforms (nor sizes): only Berth's own pages show them.
    await expect(tagRow).toContainText("linux/amd64");
  }
  await expect(page.locator(".command code").first()).toHaveText(`podman pull --tls-verify=false ${host}/shop/web:v1`);
  await expect(page.locator(".command code", { hasText: `@${digest}` }).first()).toBeVisible();
  await page.screenshot({ path: shot("stream"), fullPage: true });
  await expectAccessible(page, "stream");

  // Copy buttons put the command on the clipboard.
  await page.context().grantPermissions(["clipboard-read", "clipboard-write"], { origin: new URL(page.url()).origin });
  await page.getByRole("button", { name: "Copy podman pull command" }).click();
  await expect(page.getByRole("button", { name: "Copy podman pull command" })).toHaveText("Copied");
  expect(await page.evaluate(() => navigator.clipboard.readText())).toBe(`podman pull --tls-verify=false ${host}/shop/web:v1`);

  await tagRow.getByRole("link", { name: digest.slice(7, 19) }).click();
  await expect(page.getByRole("heading", { name: /Layers/ })).toBeVisible();
  await expect(page.locator("ol.layers li")).toHaveCount(1);
  await expect(page.locator("dl.facts").first()).toContainText(digest);
  // The same pull command as the stream page's, flag included.
  await expect(page.getByRole("button", { name: "Copy pull by digest command" }).locator("xpath=..").locator("code")).toHaveText(
    `podman pull --tls-verify=false ${host}/shop/web@${digest}`,
  );
  await page.getByText("Manifest JSON").click();
  await expect(page.locator("pre.json").first()).toContainText(/"schemaVersion":\s*2/);
  await page.screenshot({ path: shot("image"), fullPage: true });
  await expectAccessible(page, "image");

  // Deep links survive a reload; back and forward move between pages.
  await page.reload();
  await expect(page.getByRole("heading", { name: /Layers/ })).toBeVisible();
  await page.goBack();
  await expect(page).toHaveURL(/\/ns\/shop\/streams\/web$/);
  await page.goForward();
  await expect(page).toHaveURL(/\/images\/sha256:/);
});

test("search, sort and pages keep their place in the address", async ({ page }) => {
  for (const name of ["alpha", "beta", "gamma"]) {
    skopeoPush(buildImage(name), host, `find/${name}:v1`, admin);
  }
  await page.goto("/ns/find");
  await hydrated(page);
  await signIn(page, "admin", ADMIN_PASSWORD);
  await expect(page.locator("tr[data-stream]")).toHaveCount(3);
  await page.getByLabel("Search image streams").pressSequentially("mm");
  await expect(page.locator("tr[data-stream]")).toHaveCount(1);
  await expect(page).toHaveURL(/\?q=mm$/);
  await page.reload();
  await hydrated(page);
  await expect(page.locator('tr[data-stream="gamma"]')).toBeVisible();
  await expect(page.getByLabel("Search image streams")).toHaveValue("mm");
  await page.getByLabel("Search image streams").fill("nothing-like-it");
  await expect(page.getByText("No image stream matches")).toBeVisible();
  await page.screenshot({ path: shot("namespace-search"), fullPage: true });
});

test("a push shows up live in an open page, with a notice", async ({ page }) => {
  skopeoPush(buildImage("live1"), host, "live/api:v1", admin);
  await page.goto("/ns/live/streams/api");
  await hydrated(page);
  await signIn(page, "admin", ADMIN_PASSWORD);
  await expect(page.locator('tr[data-tag="v1"]')).toBeVisible();
  await expect(page.locator('tr[data-tag="v2"]')).toHaveCount(0);
  skopeoPush(buildImage("live2"), host, "live/api:v2", admin);
  const pushed = Date.now();
  await expect(page.locator('tr[data-tag="v2"]')).toBeVisible();
  console.log(`push visible in the open page ${Date.now() - pushed} ms after skopeo finished`);
  await expect(page.locator(".notice", { hasText: "live/api:v2" })).toBeVisible();
  await page.screenshot({ path: shot("live-update"), fullPage: true });
});

test("tag an image, then roll a tag back through its history", async ({ page }) => {
  skopeoPush(buildImage("first"), host, "roll/app:v1", admin);
  const first = await digestOf(BASE_URL, admin, "roll/app", "v1");
  skopeoPush(buildImage("second"), host, "roll/app:v1", admin);
  const second = await digestOf(BASE_URL, admin, "roll/app", "v1");
  expect(second).not.toBe(first);
  await page.goto("/ns/roll/streams/app");
  await hydrated(page);
  await signIn(page, "admin", ADMIN_PASSWORD);

  await page.getByLabel("Tag", { exact: true }).fill("stable");
  await page.getByLabel("points at").fill("v1");
  await page.getByRole("button", { name: "Tag", exact: true }).click();
  await expect(page.locator('tr[data-tag="stable"]')).toContainText(second.slice(7, 19));

  const history = page.locator('details.tag-history[data-tag="v1"]');
  await expect(history.locator("li")).toHaveCount(2);
  await history.getByRole("button", { name: `Roll back v1 to ${first.slice(7, 19)}` }).click();
  await history.getByRole("button", { name: "Yes, roll back" }).click();
  await expect(page.locator('tr[data-tag="v1"]')).toContainText(first.slice(7, 19));
  await expect(history.locator("li")).toHaveCount(3);
  await expect(history.locator("li.current")).toHaveAttribute("data-image", first);
  expect(await digestOf(BASE_URL, admin, "roll/app", "v1")).toBe(first);
  await page.screenshot({ path: shot("rollback"), fullPage: true });

  // Untag asks first, then the tag is gone.
  await page.locator('tr[data-tag="stable"]').getByRole("button", { name: "Delete tag stable" }).click();
  await page.getByRole("button", { name: "Yes, delete" }).click();
  await expect(page.locator('tr[data-tag="stable"]')).toHaveCount(0);
});

test("a viewer sees no changing controls, and the server refuses the changes anyway", async ({ page }) => {
  skopeoPush(buildImage("view"), host, "seen/app:v1", admin);
  addUser(BERTH_BINARY, DATA_DIR, "val", "val-password");
  await bind(BASE_URL, admin, "seen", "viewer", "User", "val");
  await page.goto("/ns/seen/streams/app");
  await hydrated(page);
  await signIn(page, "val", "val-password");
  await expect(page.locator('tr[data-tag="v1"]')).toBeVisible();
  await expect(page.getByRole("button", { name: /Delete/ })).toHaveCount(0);
  await expect(page.getByRole("button", { name: /Roll back/ })).toHaveCount(0);
  await expect(page.getByRole("heading", { name: "Add or move a tag" })).toHaveCount(0);
  await expect(page.getByRole("link", { name: "Access" })).toHaveCount(0);
  await page.screenshot({ path: shot("viewer-stream"), fullPage: true });
  await expectAccessible(page, "stream, as a viewer");

  // The same change the editor's button sends, from the viewer's own session.
  const refused = await page.evaluate(async () => {
    const session = await (await fetch("/console/api/session")).json();
    const body = new URLSearchParams({ csrf: session.csrf_token, namespace: "seen", stream: "app", tag: "evil", from: "v1" });
    const response = await fetch("/console/api/tag", { method: "POST", body });
    return await response.text();
  });
  expect(refused).toContain("Forbidden");
  await page.goto("/ns/seen/access");
  await expect(page.getByRole("heading", { name: inFront ? "Not available here" : "Not allowed" })).toBeVisible();
});

test("a personal token made in the console logs podman in", async ({ page }) => {
  test.skip(inFront, "in front of a cluster, tokens are the cluster's (oc whoami -t)");
  skopeoPush(buildImage("token"), host, "tok/app:v1", admin);
  await page.goto("/");
  await hydrated(page);
  await signIn(page, "admin", ADMIN_PASSWORD);
  await page.getByRole("link", { name: "Tokens" }).click();
  await expect(page.getByRole("heading", { name: "Personal tokens" })).toBeVisible();
  await hydrated(page);
  await page.getByLabel("Name").fill("ci-laptop");
  await page.getByRole("button", { name: "Create token" }).click();
  const secret = (await page.locator('[data-secret="token"]').textContent()) ?? "";
  expect(secret).toMatch(/^berth_/);
  await expect(page.locator(".command code", { hasText: "podman login" })).toHaveText(`podman login --tls-verify=false -u any -p ${secret} ${host}`);
  await expect(page.locator('tr[data-token="ci-laptop"]')).toBeVisible();
  await page.screenshot({ path: shot("token-created"), fullPage: true });
  await expectAccessible(page, "tokens");

  const env = podmanEnv();
  const login = attempt("podman", ["login", "--tls-verify=false", "-u", "any", "-p", secret, host], env);
  expect(login.code, login.output).toBe(0);
  const pull = attempt("podman", ["pull", "--tls-verify=false", `${host}/tok/app:v1`], env);
  expect(pull.code, pull.output).toBe(0);

  // Revoked, it no longer works; the secret is never shown again.
  await page.reload();
  await expect(page.locator('[data-secret="token"]')).toHaveCount(0);
  await page.locator('tr[data-token="ci-laptop"]').getByRole("button", { name: "Delete token ci-laptop" }).click();
  await page.getByRole("button", { name: "Yes, delete" }).click();
  await expect(page.locator('tr[data-token="ci-laptop"]')).toContainText("revoked");
  const again = attempt("podman", ["login", "--tls-verify=false", "-u", "any", "-p", secret, host], env);
  expect(again.code).not.toBe(0);
});

test("access is managed in the console: bind, see who can pull, service account token", async ({ page }) => {
  test.skip(inFront, "in front of a cluster, access is managed in the cluster (oc adm policy)");
  skopeoPush(buildImage("acc"), host, "acc/app:v1", admin);
  addUser(BERTH_BINARY, DATA_DIR, "ada", "ada-password");
  await page.goto("/ns/acc");
  await hydrated(page);
  await signIn(page, "admin", ADMIN_PASSWORD);
  await page.getByRole("link", { name: "Access" }).click();
  await expect(page).toHaveURL(/\/ns\/acc\/access$/);
  await hydrated(page);
  await page.getByLabel("Name", { exact: true }).fill("ada");
  await page.getByLabel("the role").selectOption("editor");
  await page.getByRole("button", { name: "Add binding" }).click();
  await expect(page.locator("tr[data-binding]", { hasText: "User:ada" })).toContainText("editor");
  await expect(page.locator(".who-can-push")).toContainText("ada");
  await page.getByLabel("New service account").fill("builder");
  await page.getByRole("button", { name: "Create", exact: true }).click();
  await page.locator('[data-account="builder"]').getByRole("button", { name: "New token" }).click();
  const secret = (await page.locator('[data-secret="token"]').textContent()) ?? "";
  expect(secret).toMatch(/^berth_/);
  await page.screenshot({ path: shot("access"), fullPage: true });
  await expectAccessible(page, "access");
  await page.locator("tr[data-binding]", { hasText: "User:ada" }).getByRole("button", { name: /Delete binding/ }).click();
  await page.getByRole("button", { name: "Yes, delete" }).click();
  await expect(page.locator("tr[data-binding]", { hasText: "User:ada" })).toHaveCount(0);
});

test("the main flow works with the keyboard alone", async ({ page }) => {
  skopeoPush(buildImage("keys"), host, "keys/tool:v1", admin);
  await page.goto("/");
  await hydrated(page);
  if (!inFront) {
    // In front of a cluster, the visitor is on the cluster's sign-in form already.
    await tabTo(page, signInLink(page));
    await page.keyboard.press("Enter");
  }
  await tabTo(page, page.getByLabel("User name"));
  await expectAccessible(page, "sign-in");
  await page.keyboard.type("admin");
  await page.keyboard.press("Tab");
  await page.keyboard.type(ADMIN_PASSWORD);
  await page.keyboard.press("Enter");
  await expect(page.locator(".user-menu .who")).toHaveText("admin");
  await hydrated(page);
  await tabTo(page, page.getByRole("link", { name: "keys", exact: true }));
  await page.keyboard.press("Enter");
  await expect(page).toHaveURL(/\/ns\/keys$/);
  await hydrated(page);
  await tabTo(page, page.getByLabel("Search image streams"));
  await page.keyboard.type("to");
  await tabTo(page, page.getByRole("link", { name: "tool", exact: true }));
  // The focus is visible.
  const outline = await page.evaluate(() => getComputedStyle(document.activeElement as Element).outlineStyle);
  expect(outline).not.toBe("none");
  await page.screenshot({ path: shot("keyboard-focus"), fullPage: true });
  await page.keyboard.press("Enter");
  await expect(page).toHaveURL(/\/ns\/keys\/streams\/tool$/);
  await tabTo(page, page.getByRole("button", { name: "Copy podman pull command" }));
  await page.keyboard.press("Enter");
  await expect(page.getByRole("button", { name: "Copy podman pull command" })).toHaveText("Copied");
});

test("an unknown page and an unknown stream are real 404s", async ({ page }) => {
  const response = await page.goto("/no/such/page");
  expect(response?.status()).toBe(404);
  await expect(page.getByRole("heading", { name: "Page not found" })).toBeVisible();
  await expectAccessible(page, "404");
  await page.goto("/");
  await hydrated(page);
  await signIn(page, "admin", ADMIN_PASSWORD);
  const missing = await page.goto("/ns/nowhere/streams/nothing");
  expect(missing?.status()).toBe(404);
  await expect(page.getByRole("heading", { name: "Not found" })).toBeVisible();
  await page.screenshot({ path: shot("not-found"), fullPage: true });
  await expectAccessible(page, "unknown stream");
});
