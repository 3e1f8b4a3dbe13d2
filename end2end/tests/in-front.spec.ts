import { test, expect } from "@playwright/test";
import { ADMIN_PASSWORD, EXPIRING_CLUSTER_URL, EXPIRING_FRONT_URL } from "../playwright.config";
import { buildImage, hydrated, screenshotPath, signIn, skopeoPush } from "./helpers";

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
