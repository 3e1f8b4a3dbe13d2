import { test, expect } from "@playwright/test";
import { ADMIN_PASSWORD, CLUSTER_URL, EXPIRING_CLUSTER_URL, EXPIRING_FRONT_URL, FRONT_URL } from "../playwright.config";
import { buildImage, expectAccessible, hydrated, screenshotPath, signIn, skopeoPush } from "./helpers";

// What only the console in front of a cluster does: sign-in is the cluster's, and when the
// cluster stops taking the token (here its tokens last 15 s), the console sends the person
// back to sign in, to the page they were on.
test("an expired cluster token sends the user back to sign in", async ({ page }) => {
  test.setTimeout(90_000);
  const host = new URL(EXPIRING_CLUSTER_URL).host;
  skopeoPush(buildImage("expiring"), host, "exp/app:v1", `admin:${ADMIN_PASSWORD}`);
  await page.goto(`${EXPIRING_FRONT_URL}/ns/exp/streams/app`);
  // Not signed in: straight to the cluster's sign-in form.
  await expect(page).toHaveURL(new RegExp(`^${EXPIRING_CLUSTER_URL}/oauth/authorize`));
  await signIn(page, "admin", ADMIN_PASSWORD);
  await expect(page).toHaveURL(`${EXPIRING_FRONT_URL}/ns/exp/streams/app`);
  await expect(page.locator('tr[data-tag="v1"]')).toBeVisible();
  // Tokens from the cluster are the session's: the console has none of its own to offer.
  await expect(page.getByRole("link", { name: "Tokens" })).toHaveCount(0);
  await page.screenshot({ path: screenshotPath("in-front-signed-in"), fullPage: true });

  await page.waitForTimeout(16_000);
  await page.reload();
  await expect(page.getByRole("heading", { name: "Sign in to Berth" })).toBeVisible();
  await expect(page).toHaveURL(new RegExp(`^${EXPIRING_CLUSTER_URL}/oauth/authorize`));
  await page.screenshot({ path: screenshotPath("in-front-expired"), fullPage: true });
  await signIn(page, "admin", ADMIN_PASSWORD);
  await expect(page).toHaveURL(`${EXPIRING_FRONT_URL}/ns/exp/streams/app`);
  await hydrated(page);
  await expect(page.locator('tr[data-tag="v1"]')).toBeVisible();
});

// The lifecycle page in front of a cluster: usage against the cluster's own ResourceQuotas, and
// Berth's own resources (retention, immutability, pruning) said to be unavailable, not errors.
test("the lifecycle page shows the cluster's quotas and says Berth's rules are not here", async ({ page }) => {
  const admin = `admin:${ADMIN_PASSWORD}`;
  const host = new URL(CLUSTER_URL).host;
  skopeoPush(buildImage("quoted"), host, "quoted/app:v1", admin);
  const quota = await fetch(`${CLUSTER_URL}/api/v1/namespaces/quoted/resourcequotas`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Basic ${Buffer.from(admin).toString("base64")}` },
    body: JSON.stringify({ metadata: { name: "registry" }, spec: { hard: { "openshift.io/imagestreams": 4, "berth.io/storage": "1Gi" } } }),
  });
  expect(quota.status, await quota.text()).toBe(201);

  await page.goto(`${FRONT_URL}/ns/quoted/lifecycle`);
  await signIn(page, "admin", ADMIN_PASSWORD);
  await expect(page).toHaveURL(`${FRONT_URL}/ns/quoted/lifecycle`);
  await hydrated(page);
  await expect(page.getByRole("meter", { name: "Image streams" })).toHaveAttribute("aria-valuetext", "1 of 4");
  await expect(page.getByRole("meter", { name: "Storage" })).toHaveAttribute("aria-valuetext", /^[0-9.]+ k?B of 1\.1 GB$/);
  await expect(page.locator('[data-usage="images"]')).toHaveText("1");
  await expect(page.locator(".not-here")).toHaveCount(2);
  await expect(page.locator(".not-here").first()).toContainText("not available in front of a cluster");
  await expect(page.getByRole("button", { name: "Add rule" })).toHaveCount(0);
  await page.screenshot({ path: screenshotPath("in-front-lifecycle"), fullPage: true });
  await expectAccessible(page, "lifecycle, in front of a cluster");

  await page.goto(`${FRONT_URL}/`);
  await hydrated(page);
  await expect(page.locator('tr[data-namespace="quoted"]')).toBeVisible();
  await expect(page.getByRole("link", { name: "Prune images" })).toHaveCount(0);
  const prune = await page.goto(`${FRONT_URL}/prune`);
  expect(prune?.status()).toBe(404);
  await expect(page.getByRole("heading", { name: "Not available here" })).toBeVisible();
});
