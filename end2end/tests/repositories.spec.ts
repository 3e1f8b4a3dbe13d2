import { test, expect } from "@playwright/test";
import { ADMIN_PASSWORD, PORT } from "../playwright.config";
import { buildImage, hydrated, screenshotPath, signIn, skopeoPush } from "./helpers";

const host = `127.0.0.1:${PORT}`;

test("the empty registry shows how to push a first image", async ({ page }) => {
  const response = await page.goto("/");
  expect(response?.status()).toBe(200);
  await hydrated(page);
  await expect(page.getByRole("heading", { name: "Repositories" })).toBeVisible();
  await expect(page.getByText("No images yet")).toBeVisible();
  await expect(page.locator("pre code").first()).toContainText(`docker://${host}/`);
  await page.screenshot({ path: screenshotPath("repositories-empty"), fullPage: true });
});

test("the console lists a repository pushed by skopeo, with its tags", async ({ page }) => {
  const image = buildImage("v1");
  skopeoPush(image, host, "e2e/hello:v1", `admin:${ADMIN_PASSWORD}`);
  skopeoPush(image, host, "e2e/hello:latest", `admin:${ADMIN_PASSWORD}`);
  await page.goto("/");
  await hydrated(page);
  // Anonymous visitors see nothing of it.
  await expect(page.locator('tr[data-repository="e2e/hello"]')).toHaveCount(0);
  await signIn(page, "admin", ADMIN_PASSWORD);
  const row = page.locator('tr[data-repository="e2e/hello"]');
  await expect(row).toBeVisible();
  await expect(row.locator(".tag")).toHaveText(["latest", "v1"]);
  await expect(page).toHaveTitle("Repositories · Berth");
  await page.screenshot({ path: screenshotPath("repositories-listed"), fullPage: true });
});

test("an unknown page is a real 404", async ({ page }) => {
  const response = await page.goto("/no/such/page");
  expect(response?.status()).toBe(404);
  await expect(page.getByRole("heading", { name: "Page not found" })).toBeVisible();
});
