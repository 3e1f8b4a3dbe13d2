import { test, expect, Browser, Page } from "@playwright/test";
import { ADMIN_PASSWORD, BASE_URL, BERTH_BINARY, DATA_DIR, PORT } from "../playwright.config";
import {
  addUser, apiFromPage, bind, buildImage, expectAccessible, hydrated, screenshotPath, signIn, signInLink, skopeoPush,
} from "./helpers";

// What a new user ran into (issue 16): each test fails without its fix.
const host = `127.0.0.1:${PORT}`;
const admin = `admin:${ADMIN_PASSWORD}`;
const authorization = `Basic ${Buffer.from(admin).toString("base64")}`;

/** Creates a namespace as the administrator. */
async function namespace(name: string) {
  const made = await fetch(`${BASE_URL}/api/v1/namespaces`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization },
    body: JSON.stringify({ metadata: { name } }),
  });
  expect(made.status, await made.text()).toBe(201);
}

/** A page of its own (its own cookies), signed in as `user`, at `path`. */
async function signedInPage(browser: Browser, path: string, user = "admin", password = ADMIN_PASSWORD, viewport?: { width: number; height: number }): Promise<Page> {
  const context = await browser.newContext(viewport ? { viewport } : {});
  const page = await context.newPage();
  await page.goto(path);
  await hydrated(page);
  await signIn(page, user, password);
  return page;
}

/** Every error the page logs or throws, from now on. */
function errorsOf(page: Page): string[] {
  const errors: string[] = [];
  page.on("console", (message) => {
    if (message.type() === "error") errors.push(message.text());
  });
  page.on("pageerror", (error) => errors.push(error.message));
  return errors;
}

test("the 404 page's header says who is signed in, not an error", async ({ page }) => {
  await page.goto("/no/such/page");
  await hydrated(page);
  await expect(signInLink(page)).toBeVisible();
  await expect(page.locator("header .error")).toHaveCount(0);
  await signIn(page, "admin", ADMIN_PASSWORD);
  const missing = await page.goto("/no/such/page");
  expect(missing?.status()).toBe(404);
  await hydrated(page);
  await expect(page.locator(".user-menu .who")).toHaveText("admin");
  await expect(page.locator("header")).not.toContainText("could not answer");
  await expect(page.locator("header")).not.toContainText("no page at this address");
});

test("signed out, the home page and a deep link invite to sign in, and sign-in comes back", async ({ page }) => {
  skopeoPush(buildImage("invite"), host, "invite/app:v1", admin);
  await page.goto("/");
  await hydrated(page);
  await expect(page.getByText("Sign in to see the namespaces you may use.")).toBeVisible();
  await expect(page.getByText("No namespaces yet")).toHaveCount(0);
  const deep = await page.goto("/ns/invite/streams/app?tab=1");
  expect(deep?.status()).toBe(401);
  await hydrated(page);
  await expect(page.getByRole("heading", { name: "Sign in to see this page" })).toBeVisible();
  await expect(page.locator("main")).not.toContainText("system:anonymous");
  await page.screenshot({ path: screenshotPath("sign-in-invitation"), fullPage: true });
  await expectAccessible(page, "sign-in invitation");
  await page.locator("main").getByRole("link", { name: "Sign in" }).click();
  await page.getByLabel("User name").fill("admin");
  await page.getByLabel("Password").fill(ADMIN_PASSWORD);
  await page.getByRole("button", { name: "Sign in" }).click();
  await expect(page).toHaveURL(/\/ns\/invite\/streams\/app\?tab=1$/);
  await expect(page.locator('tr[data-tag="v1"]')).toBeVisible();
});

test("access changes reach the other open pages", async ({ browser }) => {
  await namespace("liveacc");
  addUser(BERTH_BINARY, DATA_DIR, "lia", "lia-password");
  const watcher = await signedInPage(browser, "/ns/liveacc/access");
  const changer = await signedInPage(browser, "/ns/liveacc/access");
  await expect(watcher.locator("tr[data-binding]", { hasText: "User:lia" })).toHaveCount(0);

  await changer.getByLabel("Name", { exact: true }).fill("lia");
  await changer.getByLabel("the role").selectOption("editor");
  await changer.getByRole("button", { name: "Add binding" }).click();
  await expect(changer.locator("tr[data-binding]", { hasText: "User:lia" })).toBeVisible();
  await expect(watcher.locator("tr[data-binding]", { hasText: "User:lia" })).toContainText("editor");

  await changer.getByLabel("New service account").fill("robot");
  await changer.getByRole("button", { name: "Create", exact: true }).click();
  await expect(watcher.locator('[data-account="robot"]')).toBeVisible();

  // Personal tokens made elsewhere (here through the API) show up on the open tokens page.
  await watcher.goto("/tokens");
  await hydrated(watcher);
  await expect(watcher.locator('tr[data-token="from-elsewhere"]')).toHaveCount(0);
  const made = await apiFromPage(changer, "POST", "/apis/access.berth.io/v1/personaltokens", { metadata: { name: "from-elsewhere" } });
  expect(made.status).toBe(201);
  await expect(watcher.locator('tr[data-token="from-elsewhere"]')).toBeVisible();
  await watcher.context().close();
  await changer.context().close();
});

test("a binding to an unknown user warns; a service account shows its roles, login line and can be deleted", async ({ page }) => {
  await namespace("robots");
  await page.goto("/ns/robots/access");
  await hydrated(page);
  await signIn(page, "admin", ADMIN_PASSWORD);
  await page.getByLabel("Name", { exact: true }).fill("nobody-yet");
  await page.getByRole("button", { name: "Add binding" }).click();
  await expect(page.getByRole("status").filter({ hasText: "user nobody-yet does not exist here (yet)" })).toBeVisible();
  const api = await fetch(`${BASE_URL}/apis/access.berth.io/v1/namespaces/robots/rolebindings`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization },
    body: JSON.stringify({ roleRef: { name: "viewer" }, subject: { kind: "User", name: "nobody-else" } }),
  });
  expect(api.status).toBe(201);
  expect(api.headers.get("warning")).toContain("user nobody-else does not exist here (yet)");

  await page.getByLabel("New service account").fill("builder");
  await page.getByRole("button", { name: "Create", exact: true }).click();
  const account = page.locator('[data-account="builder"]');
  await expect(account).toContainText("No role here yet");
  await page.getByLabel("Grant").selectOption("ServiceAccount");
  await page.getByLabel("Name", { exact: true }).fill("builder");
  await page.getByLabel("the role").selectOption("editor");
  await page.getByRole("button", { name: "Add binding" }).click();
  await expect(account).toContainText("Roles here: editor.");
  await account.getByRole("button", { name: "New token" }).click();
  const secret = (await page.locator('[data-secret="token"]').textContent()) ?? "";
  expect(secret).toMatch(/^berth_/);
  await expect(page.locator(".command code", { hasText: "podman login" })).toHaveText(`podman login --tls-verify=false -u builder -p ${secret} ${host}`);
  await page.screenshot({ path: screenshotPath("service-account"), fullPage: true });

  await account.getByRole("button", { name: "Delete service account builder" }).click();
  await page.getByRole("button", { name: "Yes, delete" }).click();
  await expect(account).toHaveCount(0);
  const gone = await fetch(`${BASE_URL}/api/v1/namespaces/robots/serviceaccounts/builder`, { headers: { authorization } });
  expect(gone.status).toBe(404);
});

test("two personal tokens cannot share a name", async ({ page }) => {
  await page.goto("/tokens");
  await hydrated(page);
  await signIn(page, "admin", ADMIN_PASSWORD);
  for (const attempt of [1, 2]) {
    await page.getByLabel("Name").fill("twin");
    await page.getByRole("button", { name: "Create token" }).click();
    if (attempt === 1) await expect(page.locator('tr[data-token="twin"]')).toHaveCount(1);
  }
  await expect(page.getByRole("alert")).toContainText("already exists");
  await expect(page.locator('tr[data-token="twin"]')).toHaveCount(1);
  const again = await apiFromPage(page, "POST", "/apis/access.berth.io/v1/personaltokens", { metadata: { name: "twin" } });
  expect(again.status).toBe(409);
  expect(again.json.reason).toBe("AlreadyExists");
});

test("a viewer sees no webhook or pull-secret forms, and the role that may", async ({ page }) => {
  skopeoPush(buildImage("viewed"), host, "viewed/app:v1", admin);
  addUser(BERTH_BINARY, DATA_DIR, "vera", "vera-password");
  await bind(BASE_URL, admin, "viewed", "viewer", "User", "vera");
  await page.goto("/ns/viewed");
  await hydrated(page);
  await signIn(page, "vera", "vera-password");
  await expect(page.locator(".your-access")).toHaveText("You may pull here.");
  await page.goto("/ns/viewed/streams/app");
  await hydrated(page);
  await expect(page.locator(".your-access")).toHaveText("You may pull here.");
  for (const [path, what] of [["webhooks", "add or change webhooks"], ["secrets", "add or delete pull secrets"]]) {
    await page.goto(`/ns/viewed/${path}`);
    await hydrated(page);
    await expect(page.locator("form:not(.inline)")).toHaveCount(0);
    await expect(page.getByText(`Only administrators of viewed (role admin) may ${what}.`)).toBeVisible();
    await page.screenshot({ path: screenshotPath(`viewer-${path}`), fullPage: true });
  }
  // The administrator has the forms, and is told everything they may do.
  await page.goto("/ns/viewed");
  await hydrated(page);
  await page.getByRole("button", { name: "Sign out" }).click();
  await signIn(page, "admin", ADMIN_PASSWORD);
  await page.goto("/ns/viewed");
  await expect(page.locator(".your-access")).toHaveText("You may pull, push, delete, manage access and manage pull secrets here.");
  await page.goto("/ns/viewed/secrets");
  await expect(page.getByRole("region", { name: "Add a pull secret" })).toBeVisible();
});

test("name fields validate in the browser, and pages log no errors", async ({ page }) => {
  const errors = errorsOf(page);
  await namespace("patterns");
  await page.goto("/");
  await hydrated(page);
  await signIn(page, "admin", ADMIN_PASSWORD);
  const field = page.getByLabel("New namespace name");
  await field.fill("Not_A-Name-");
  expect(await field.evaluate((input: HTMLInputElement) => input.validity.patternMismatch)).toBe(true);
  await page.getByRole("button", { name: "Create namespace" }).click();
  await expect(page.locator('tr[data-namespace="Not_A-Name-"]')).toHaveCount(0);
  await field.fill("a-good-name");
  expect(await field.evaluate((input: HTMLInputElement) => input.checkValidity())).toBe(true);
  await page.goto("/ns/patterns/access");
  await hydrated(page);
  const account = page.getByLabel("New service account");
  await account.fill("-robot");
  expect(await account.evaluate((input: HTMLInputElement) => input.validity.patternMismatch)).toBe(true);
  expect(errors).toEqual([]);
});

test("signed-in pages are not kept: Back after signing out shows no page of the session", async ({ page }) => {
  const response = await page.goto("/tokens");
  expect(response?.headers()["cache-control"] ?? "").not.toContain("no-store");
  await hydrated(page);
  await signIn(page, "admin", ADMIN_PASSWORD);
  const signedIn = await page.goto("/tokens");
  expect(signedIn?.headers()["cache-control"]).toBe("no-store");
  await hydrated(page);
  await page.getByRole("button", { name: "Sign out" }).click();
  await expect(signInLink(page)).toBeVisible();
  await page.goBack();
  await expect(page.locator(".user-menu .who")).toHaveCount(0);
});

test("at 375 px the row actions stay in view and dates stay on one line", async ({ browser }) => {
  skopeoPush(buildImage("narrow-ux"), host, "narrowux/a-rather-long-stream-name:a-long-tag-name-v1", admin);
  const page = await signedInPage(browser, "/ns/narrowux/streams/a-rather-long-stream-name", "admin", ADMIN_PASSWORD, { width: 375, height: 740 });
  const row = page.locator('tr[data-tag="a-long-tag-name-v1"]');
  await expect(row).toBeVisible();
  await expect(row.getByRole("button", { name: /^Pull commands for/ })).toBeInViewport();
  await expect(row.getByRole("button", { name: /^Delete tag/ })).toBeInViewport();
  const when = row.locator("time");
  await expect(when).toHaveAttribute("datetime", /^\d{4}-\d\d-\d\dT/);
  await expect(when).toHaveAttribute("title", / UTC$/);
  const lines = await when.evaluate((element) => element.getClientRects().length);
  expect(lines).toBe(1);
  await page.screenshot({ path: screenshotPath("narrow-stream-actions"), fullPage: true });
  await page.goto("/");
  await hydrated(page);
  // The row may be below the fold (earlier tests made namespaces): it is its width that counts.
  const namespaceRow = page.locator('tr[data-namespace="narrowux"]');
  const remove = namespaceRow.getByRole("button", { name: /^Delete namespace/ });
  await expect(remove).toBeVisible();
  const box = await remove.boundingBox();
  expect(box && box.x >= 0 && box.x + box.width <= 375, `delete at ${JSON.stringify(box)}`).toBe(true);
  await page.screenshot({ path: screenshotPath("narrow-namespaces"), fullPage: true });
  await page.context().close();
});

test("the namespace page has a breadcrumb, and the sign-in page an icon", async ({ page }) => {
  await namespace("crumbs");
  await page.goto("/ns/crumbs");
  await hydrated(page);
  await signIn(page, "admin", ADMIN_PASSWORD);
  await expect(page.getByRole("navigation", { name: "Breadcrumb" }).getByRole("link", { name: "Namespaces" })).toBeVisible();
  const icon = await page.request.get("/favicon.ico");
  expect(icon.status()).toBe(200);
  expect(icon.headers()["content-type"]).toContain("image/svg+xml");
});
