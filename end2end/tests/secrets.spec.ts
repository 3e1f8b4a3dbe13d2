import { test, expect } from "@playwright/test";
import { ADMIN_PASSWORD, BASE_URL } from "../playwright.config";
import { expectAccessible, hydrated, screenshotPath, signIn } from "./helpers";

const authorization = `Basic ${Buffer.from(`admin:${ADMIN_PASSWORD}`).toString("base64")}`;
const USER = "robot+e2e";
const PASSWORD = "e2e-pull-secret-pa55word";
/** What the Docker config holds: base64 of `user:password`. */
const AUTH = Buffer.from(`${USER}:${PASSWORD}`).toString("base64");

test("a pull secret added in the console is listed without its credentials, then deleted", async ({ page }) => {
  const created = await fetch(`${BASE_URL}/api/v1/namespaces`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization },
    body: JSON.stringify({ metadata: { name: "vaulted" } }),
  });
  expect(created.status).toBe(201);

  await page.goto("/ns/vaulted");
  await hydrated(page);
  await signIn(page, "admin", ADMIN_PASSWORD);
  await page.getByRole("link", { name: "Pull secrets" }).click();
  await expect(page).toHaveURL(/\/ns\/vaulted\/secrets$/);
  await hydrated(page);
  await expect(page.getByRole("heading", { name: "Pull secrets of vaulted" })).toBeVisible();
  await expect(page.getByText("No pull secrets yet")).toBeVisible();

  const form = page.getByRole("region", { name: "Add a pull secret" });
  const add = async (name: string, registry: string) => {
    await form.getByLabel("Name", { exact: true }).fill(name);
    await form.getByLabel("Registry").fill(registry);
    await form.getByLabel("User name").fill(USER);
    await form.getByLabel("Password or token").fill(PASSWORD);
    await form.getByRole("button", { name: "Add pull secret" }).click();
  };
  await add("quay-robot", "quay.io");
  const quay = page.locator('tr[data-secret="quay-robot"]');
  await expect(quay).toContainText("quay.io");
  await expect(form.getByRole("status")).toHaveText("Stored quay-robot for quay.io.");
  // The form forgets what was typed.
  await expect(form.getByLabel("Password or token")).toHaveValue("");
  await add("local-mirror", "127.0.0.1:5000");
  await expect(page.locator('tr[data-secret="local-mirror"]')).toContainText("127.0.0.1:5000");

  // Neither the page as the browser has it nor the page as the server renders it holds a
  // credential.
  for (const html of [await page.content(), await (await page.request.get("/ns/vaulted/secrets")).text()]) {
    expect(html).toContain("quay-robot");
    expect(html).not.toContain(PASSWORD);
    expect(html).not.toContain(AUTH);
    expect(html).not.toContain(USER);
  }

  await page.screenshot({ path: screenshotPath("pull-secrets"), fullPage: true });
  await expectAccessible(page, "pull secrets");

  // A mistake is said, with the field at fault.
  await add("broken", "not a host");
  await expect(form.getByRole("alert")).toContainText('registry: "not a host" is not a registry host');
  await expect(page.locator('tr[data-secret="broken"]')).toHaveCount(0);

  // Deleting asks once more.
  await quay.getByRole("button", { name: "Delete pull secret quay-robot" }).click();
  await quay.getByRole("button", { name: "Yes, delete" }).click();
  await expect(quay).toHaveCount(0);
  await expect(page.locator('tr[data-secret="local-mirror"]')).toBeVisible();
  await page.reload();
  await hydrated(page);
  await expect(page.locator('tr[data-secret="quay-robot"]')).toHaveCount(0);
});
