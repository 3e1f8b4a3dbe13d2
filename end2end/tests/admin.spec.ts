import { test, expect } from "@playwright/test";
import { ADMIN_PASSWORD, BASE_URL, BERTH_BINARY, DATA_DIR } from "../playwright.config";
import { addUser, expectAccessible, hydrated, screenshotPath, signIn } from "./helpers";

const USER = "auditee";
const PASSWORD = "auditee-password";

/** A namespace made by `USER` through the API: a change of theirs for the audit log. */
async function namespaceOfTheUser(name: string) {
  const response = await fetch(`${BASE_URL}/api/v1/namespaces`, {
    method: "POST",
    headers: {
      "content-type": "application/json",
      authorization: `Basic ${Buffer.from(`${USER}:${PASSWORD}`).toString("base64")}`,
    },
    body: JSON.stringify({ metadata: { name } }),
  });
  expect(response.status, await response.text()).toBe(201);
}

test.beforeAll(async () => {
  addUser(BERTH_BINARY, DATA_DIR, USER, PASSWORD);
  await namespaceOfTheUser("audited");
});

test("an administrator opens the audit log and the users from the namespaces page", async ({ page }) => {
  await page.goto("/");
  await signIn(page, "admin", ADMIN_PASSWORD);

  // The audit log: the newest first, the user's namespace among them.
  await page.locator(".panel-head").getByRole("link", { name: "Audit log" }).click();
  await expect(page).toHaveURL(/\/audit$/);
  await expect(page.getByRole("heading", { name: "Audit log" })).toBeVisible();
  const created = page.locator("table.audit tbody tr", { hasText: "namespace-create" }).filter({ hasText: "audited" });
  await expect(created).toHaveCount(1);
  await expect(created.getByRole("cell").nth(1)).toHaveText(USER);
  await page.screenshot({ path: screenshotPath("audit"), fullPage: true });
  await expectAccessible(page, "audit log");

  // Filtered by user with the form: only theirs, the filter kept in the address.
  await page.getByLabel("User", { exact: true }).fill(USER);
  await page.getByRole("button", { name: "Filter" }).click();
  await expect(page).toHaveURL(/\/audit\?user=auditee/);
  await expect(page.getByLabel("User", { exact: true })).toHaveValue(USER);
  const rows = page.locator("table.audit tbody tr");
  await expect(rows.first()).toBeVisible();
  for (const who of await rows.locator("td:nth-child(2)").allTextContents()) {
    expect(who).toBe(USER);
  }
  await expect(page.getByText("Filtered by the server")).toBeVisible();
  await page.screenshot({ path: screenshotPath("audit-filtered"), fullPage: true });

  // The users, from the namespaces page: both, a name opening what they did.
  await page.goto("/");
  await hydrated(page);
  await page.locator(".panel-head").getByRole("link", { name: "Users" }).click();
  await expect(page).toHaveURL(/\/users$/);
  await expect(page.getByRole("heading", { name: "Users" })).toBeVisible();
  await expect(page.locator("tr[data-user=admin]")).toBeVisible();
  const user = page.locator(`tr[data-user=${USER}]`);
  await expect(user).toContainText(`:${USER}`);
  await page.screenshot({ path: screenshotPath("users"), fullPage: true });
  await expectAccessible(page, "users");
  await user.getByRole("link", { name: USER }).click();
  await expect(page).toHaveURL(/\/audit\?user=auditee$/);
  await expect(page.locator("table.audit tbody tr", { hasText: "audited" })).toHaveCount(1);
});

test("a plain user is shown neither page", async ({ browser }) => {
  const page = await (await browser.newContext({ baseURL: BASE_URL })).newPage();
  await page.goto("/");
  await signIn(page, USER, PASSWORD);
  await expect(page.locator(".panel-head").getByRole("link", { name: "Audit log" })).toHaveCount(0);
  await expect(page.locator(".panel-head").getByRole("link", { name: "Users" })).toHaveCount(0);
  for (const path of ["/audit", "/users"]) {
    const response = await page.goto(path);
    expect(response?.status()).toBe(403);
    await expect(page.getByRole("heading", { name: "Not allowed" })).toBeVisible();
  }
  await page.context().close();
});
