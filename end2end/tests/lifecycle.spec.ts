import { test, expect, Page } from "@playwright/test";
import { ADMIN_PASSWORD, BASE_URL, BERTH_BINARY, DATA_DIR, PORT } from "../playwright.config";
import { addUser, bind, buildImage, digestOf, expectAccessible, hydrated, screenshotPath, signIn, skopeoPush } from "./helpers";

const host = `127.0.0.1:${PORT}`;
const admin = `admin:${ADMIN_PASSWORD}`;
const authorization = `Basic ${Buffer.from(admin).toString("base64")}`;

/** Calls Berth's API as the administrator; answers the status and body. */
async function api(method: string, path: string, body?: unknown): Promise<{ status: number; json: any }> {
  const response = await fetch(`${BASE_URL}${path}`, {
    method,
    headers: { "content-type": "application/json", authorization },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  return { status: response.status, json: text ? JSON.parse(text) : null };
}

/** Creates a namespace as the administrator. */
async function namespace(name: string) {
  const made = await api("POST", "/api/v1/namespaces", { metadata: { name } });
  expect(made.status, JSON.stringify(made.json)).toBe(201);
}

/** Pushes a new image (its content named after `seed`) as `repository:tag`; answers its digest. */
function push(repository: string, tag: string, seed: string): Promise<string> {
  skopeoPush(buildImage(seed), host, `${repository}:${tag}`, admin);
  return digestOf(BASE_URL, admin, repository, tag);
}

/** The first 12 hex digits of a digest, as the console shows them. */
function short(digest: string): string {
  return digest.replace(/^sha256:/, "").slice(0, 12);
}

/** Whether the registry still has `repository@digest`. */
async function manifestStatus(repository: string, digest: string): Promise<number> {
  const response = await fetch(`${BASE_URL}/v2/${repository}/manifests/${digest}`, {
    method: "HEAD",
    headers: { authorization, accept: "application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json" },
  });
  return response.status;
}

/** A quota and a limit range on `name`, as a cluster administrator sets them. */
async function limits(name: string) {
  const quota = await api("POST", `/api/v1/namespaces/${name}/resourcequotas`, {
    metadata: { name: "registry" },
    spec: { hard: { "berth.io/storage": "1Gi", "openshift.io/imagestreams": 3 } },
  });
  expect(quota.status, JSON.stringify(quota.json)).toBe(201);
  const range = await api("POST", `/api/v1/namespaces/${name}/limitranges`, {
    metadata: { name: "images" },
    spec: { limits: [{ type: "openshift.io/Image", max: { storage: "100Mi" } }] },
  });
  expect(range.status, JSON.stringify(range.json)).toBe(201);
}

async function lifecycle(page: Page, name: string) {
  await page.goto(`/ns/${name}/lifecycle`);
  await hydrated(page);
}

test("usage against quotas; an immutability rule previewed, refused, added and shown; a retention policy dry-run, then run", async ({ page }) => {
  await namespace("kept");
  const v1 = await push("kept/app", "v1", "kept-v1");
  const v2 = await push("kept/app", "v2", "kept-v2");
  const old = await push("kept/app", "old", "kept-old");
  await limits("kept");

  await page.goto("/ns/kept");
  await hydrated(page);
  await signIn(page, "admin", ADMIN_PASSWORD);
  // The namespace page sums its usage up, with a meter per quota.
  const usage = page.getByRole("region", { name: "Usage" });
  await expect(usage.getByRole("meter", { name: "Image streams" })).toHaveAttribute("aria-valuetext", "1 of 3");
  await expect(usage.locator('[data-usage="images"]')).toHaveText("3");
  await page.getByRole("link", { name: "Lifecycle" }).click();
  await expect(page).toHaveURL(/\/ns\/kept\/lifecycle$/);
  await hydrated(page);
  await expect(page.getByRole("heading", { name: "Lifecycle of kept" })).toBeVisible();

  // The storage meter says what the quota counts, as the API's ResourceQuota does.
  const quota = await api("GET", "/api/v1/namespaces/kept/resourcequotas/registry");
  const storage = page.getByRole("meter", { name: "Storage" });
  await expect(storage).toHaveAttribute("aria-valuemax", String(1024 ** 3));
  const used = Number(await storage.getAttribute("aria-valuenow"));
  expect(used).toBeGreaterThan(0);
  expect(quota.json.status.used["berth.io/storage"]).toBe(
    used % 1024 === 0 ? `${used / 1024}Ki` : String(used),
  );
  await expect(storage).toHaveAttribute("aria-valuetext", /^[0-9.]+ k?B of 1\.1 GB$/);
  await expect(page.getByText("Each image pushed: at most 105 MB")).toBeVisible();
  await page.screenshot({ path: screenshotPath("lifecycle-usage"), fullPage: true });
  await expectAccessible(page, "lifecycle");

  // An immutability rule: previewed (nothing stored), refused with the field named and the
  // input kept, then added.
  const rules = page.getByRole("region", { name: "Tag immutability rules" });
  await expect(rules.getByText("No immutability rules")).toBeVisible();
  await rules.getByLabel("Name", { exact: true }).fill("releases");
  await rules.getByLabel("Tags", { exact: true }).fill("v1");
  await rules.getByRole("button", { name: "Preview" }).click();
  await expect(rules.getByRole("status")).toHaveText(
    "Preview of releases: it would make 1 tag: app:v1 immutable. Nothing is stored until you add it.",
  );
  await expect(rules.locator("tr[data-rule]")).toHaveCount(0);
  await rules.getByLabel("Tags", { exact: true }).fill("v1, {v");
  await rules.getByRole("button", { name: "Add rule" }).click();
  await expect(rules.getByRole("alert")).toContainText('Tags: "{v" is not a valid pattern');
  await expect(rules.getByLabel("Tags", { exact: true })).toHaveValue("v1, {v");
  await expect(rules.getByLabel("Name", { exact: true })).toHaveValue("releases");
  await rules.getByLabel("Tags", { exact: true }).fill("v1");
  await rules.getByRole("button", { name: "Add rule" }).click();
  await expect(rules.locator('tr[data-rule="releases"]')).toContainText("1 tag: app:v1");
  await expect(rules.getByLabel("Name", { exact: true })).toHaveValue("");

  // The stream page marks the tag, and says why it cannot be deleted or moved.
  await page.goto("/ns/kept/streams/app");
  await hydrated(page);
  const row = page.locator('table.tags tr[data-tag="v1"]');
  await expect(row.locator(".badge.immutable")).toHaveText("immutable · rule releases");
  await expect(row.getByRole("button", { name: /^Delete tag v1 \(refused: it is immutable \(rule releases\)/ })).toBeDisabled();
  await expect(page.locator('table.tags tr[data-tag="v2"]').getByRole("button", { name: "Delete tag v2" })).toBeEnabled();
  await expect(page.getByRole("button", { name: /^Delete image stream app \(refused:/ })).toBeDisabled();
  await page.getByLabel("Tag", { exact: true }).fill("v1");
  await expect(page.getByText("v1 is immutable (rule releases): it cannot be moved.")).toBeVisible();
  await expect(page.getByRole("button", { name: "Tag", exact: true })).toBeDisabled();
  await page.screenshot({ path: screenshotPath("stream-immutable"), fullPage: true });

  // A retention policy keeping v1: a dry run lists what would go and removes nothing.
  await lifecycle(page, "kept");
  const retention = page.getByRole("region", { name: "Retention policies" });
  await expect(retention.getByText("No retention policies")).toBeVisible();
  await retention.getByLabel("Name", { exact: true }).fill("keep-v1");
  await retention.getByLabel("Keep", { exact: true }).selectOption("always");
  await expect(retention.getByLabel("N", { exact: true })).toBeDisabled();
  await retention.getByLabel("Tags", { exact: true }).fill("v1");
  await retention.getByRole("button", { name: "Add policy" }).click();
  const policy = retention.locator('article[data-policy="keep-v1"]');
  await expect(policy).toContainText("v1, always");
  await expect(policy.locator("dd").last()).toHaveText("never");
  await policy.getByRole("button", { name: "Dry run of keep-v1" }).click();
  const dry = policy.locator('[data-result="dry-run"]');
  await expect(dry).toContainText(/Would remove 2 images and 2 history items from 1 stream, freeing [0-9.]+ k?B/);
  await expect(dry.locator(`[data-image="${v2}"]`)).toHaveText(short(v2));
  await expect(dry.locator(`[data-image="${old}"]`)).toHaveText(short(old));
  await expect(dry.locator(`[data-image="${v1}"]`)).toHaveCount(0);
  expect(await manifestStatus("kept/app", v2)).toBe(200);
  expect(await manifestStatus("kept/app", old)).toBe(200);
  await page.screenshot({ path: screenshotPath("lifecycle-dry-run"), fullPage: true });
  await expectAccessible(page, "lifecycle, dry run");

  // Confirmed, they go; v1 stays, and the policy shows its run.
  await policy.getByRole("button", { name: "Remove these for real" }).click();
  await policy.getByRole("button", { name: "Yes, remove" }).click();
  await expect(policy.locator('[data-result="done"]')).toContainText("Removed 2 images and 2 history items from 1 stream");
  expect(await manifestStatus("kept/app", v2)).toBe(404);
  expect(await manifestStatus("kept/app", old)).toBe(404);
  expect(await manifestStatus("kept/app", v1)).toBe(200);
  await expect(policy).toContainText("2 images, 2 history items removed");
  await expect(page.locator('[data-usage="images"]')).toHaveText("1");
  await page.screenshot({ path: screenshotPath("lifecycle-removed"), fullPage: true });
});

test("the prune preview is the cluster administrator's, with its own confirmation", async ({ page }) => {
  await namespace("pruned");
  const first = await push("pruned/app", "latest", "pruned-first");
  const second = await push("pruned/app", "latest", "pruned-second");

  await page.goto("/");
  await hydrated(page);
  await signIn(page, "admin", ADMIN_PASSWORD);
  await page.getByRole("link", { name: "Prune images" }).click();
  await expect(page).toHaveURL(/\/prune$/);
  await hydrated(page);
  await expect(page.getByRole("heading", { name: "Prune images", level: 1 })).toBeVisible();
  await expect(page.getByText("None is configured")).toBeVisible();

  const form = page.getByRole("region", { name: "Preview a prune" });
  await form.getByLabel("Namespace", { exact: true }).fill("pruned");
  await form.getByLabel("Keep tag revisions").fill("1");
  await form.getByLabel("Keep younger than").fill("soon");
  await form.getByRole("button", { name: "Preview" }).click();
  await expect(form.getByRole("alert")).toContainText('Keep younger than: "soon" is not a duration');
  await expect(form.getByLabel("Keep younger than")).toHaveValue("soon");
  await form.getByLabel("Keep younger than").fill("0s");
  await form.getByRole("button", { name: "Preview" }).click();
  const preview = form.locator('[data-result="dry-run"]');
  await expect(preview).toContainText(/Would remove 1 image and 1 history item from 1 stream/);
  await expect(preview.locator('tr[data-stream="pruned/app"]')).toContainText(short(first));
  await expect(preview.locator(`[data-image="${second}"]`)).toHaveCount(0);
  expect(await manifestStatus("pruned/app", first)).toBe(200);
  await page.screenshot({ path: screenshotPath("prune-preview"), fullPage: true });
  await expectAccessible(page, "prune");

  await form.getByRole("button", { name: "Prune for real" }).click();
  await form.getByRole("button", { name: "Yes, prune" }).click();
  await expect(form.locator('[data-result="done"]')).toContainText("Removed 1 image and 1 history item from 1 stream");
  expect(await manifestStatus("pruned/app", first)).toBe(404);
  expect(await manifestStatus("pruned/app", second)).toBe(200);
});

test("a viewer sees the usage and the marks, and no lifecycle controls", async ({ page }) => {
  await namespace("watched");
  await push("watched/app", "v1", "watched-v1");
  await limits("watched");
  const rule = await api("POST", "/apis/berth.io/v1/namespaces/watched/immutabletagrules", {
    metadata: { name: "releases" },
    spec: { tags: { include: ["v*"] } },
  });
  expect(rule.status, JSON.stringify(rule.json)).toBe(201);
  addUser(BERTH_BINARY, DATA_DIR, "watcher", "watcher-password");
  await bind(BASE_URL, admin, "watched", "viewer", "User", "watcher");

  await page.goto("/ns/watched/lifecycle");
  await hydrated(page);
  await signIn(page, "watcher", "watcher-password");
  await expect(page.getByRole("meter", { name: "Image streams" })).toHaveAttribute("aria-valuetext", "1 of 3");
  await expect(page.getByText("Only administrators of watched see and change its immutability rules.")).toBeVisible();
  await expect(page.getByText("Only administrators of watched see and change its retention policies.")).toBeVisible();
  for (const name of ["Preview", "Add rule", "Add policy"]) {
    await expect(page.getByRole("button", { name })).toHaveCount(0);
  }
  await expect(page.locator("form")).toHaveCount(1); // the sign-out form only
  await page.screenshot({ path: screenshotPath("lifecycle-viewer"), fullPage: true });
  await expectAccessible(page, "lifecycle, as a viewer");

  // The stream page marks the tag for the viewer too; there is nothing to delete.
  await page.goto("/ns/watched/streams/app");
  await hydrated(page);
  await expect(page.locator('table.tags tr[data-tag="v1"] .badge.immutable')).toHaveText("immutable · rule releases");
  await expect(page.getByRole("button", { name: /^Delete/ })).toHaveCount(0);

  // No prune for a viewer: no link, and the page refuses.
  await page.goto("/");
  await hydrated(page);
  await expect(page.locator('tr[data-namespace="watched"]')).toBeVisible();
  await expect(page.getByRole("link", { name: "Prune images" })).toHaveCount(0);
  const refused = await page.goto("/prune");
  expect(refused?.status()).toBe(403);
  await expect(page.getByRole("heading", { name: "Not allowed" })).toBeVisible();
});
