import { test, expect } from "@playwright/test";
import { ADMIN_PASSWORD, BERTH_BINARY, DATA_DIR, OIDC_BERTH_URL, OIDC_BERTH_PORT, PORT } from "../playwright.config";
import { addUser, apiFromPage, attempt, buildImage, hydrated, podmanEnv, run, screenshotPath, signIn, signInLink, skopeoPush } from "./helpers";

const host = `127.0.0.1:${PORT}`;
const admin = `admin:${ADMIN_PASSWORD}`;

/** Grants a role on a namespace, as the administrator. */
async function bind(base: string, namespace: string, role: string, kind: string, name: string) {
  const response = await fetch(`${base}/apis/access.berth.io/v1/namespaces/${namespace}/rolebindings`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Basic ${Buffer.from(admin).toString("base64")}` },
    body: JSON.stringify({ roleRef: { name: role }, subject: { kind, name } }),
  });
  expect(response.status).toBe(201);
}

test("sign in through an external OpenID Connect provider; its groups grant access", async ({ page }) => {
  // The provider's development pages load web fonts from outside: nothing may leave loopback.
  await page.route(/^https?:\/\/(?!127\.0\.0\.1|localhost)/, (route) => route.abort());
  skopeoPush(buildImage("oidc"), `127.0.0.1:${OIDC_BERTH_PORT}`, "shared/tool:v1", admin);
  await bind(OIDC_BERTH_URL, "shared", "viewer", "Group", "oidc-devs");

  await page.goto(`${OIDC_BERTH_URL}/`);
  await hydrated(page);
  await signInLink(page).click();
  await expect(page).toHaveURL(/127\.0\.0\.1:\d+\/interaction\//);
  await page.locator('input[name="login"]').fill("olivia");
  await page.locator('input[name="password"]').fill("any password");
  await page.getByRole("button", { name: "Sign-in" }).click();
  await page.getByRole("button", { name: "Continue" }).click();
  await expect(page.locator(".user-menu .who")).toHaveText("olivia");
  await hydrated(page);
  await expect(page.locator('tr[data-namespace="shared"]')).toBeVisible();
  await page.screenshot({ path: screenshotPath("signed-in-oidc"), fullPage: true });
});

test("podman logs in with a personal token; a viewer is refused a push", async ({ page }) => {
  const image = buildImage("tokens");
  skopeoPush(image, host, "team/app:v1", admin);
  addUser(BERTH_BINARY, DATA_DIR, "vic", "vic-password");
  await bind(`http://${host}`, "team", "viewer", "User", "vic");

  // Vic signs in, sees the image, and makes a token in his session (CSRF token included).
  await page.goto("/");
  await hydrated(page);
  await signIn(page, "vic", "vic-password");
  await expect(page.locator('tr[data-namespace="team"]')).toBeVisible();
  const refused = await page.evaluate(async () => (await fetch("/apis/access.berth.io/v1/personaltokens", { method: "POST", body: "{}" })).status);
  expect(refused).toBe(403);
  const created = await apiFromPage(page, "POST", "/apis/access.berth.io/v1/personaltokens", { metadata: { name: "laptop" } });
  expect(created.status).toBe(201);
  const token: string = created.json.status.token;
  expect(token).toMatch(/^berth_/);

  const env = podmanEnv();
  const login = attempt("podman", ["login", "--tls-verify=false", "-u", "anything", "-p", token, host], env);
  expect(login.code, login.output).toBe(0);
  const pull = attempt("podman", ["pull", "--tls-verify=false", `${host}/team/app:v1`], env);
  expect(pull.code, pull.output).toBe(0);
  const push = attempt("podman", ["push", "--tls-verify=false", `${host}/team/app:v1`, `docker://${host}/team/app:forbidden`], env);
  expect(push.code).not.toBe(0);
  expect(push.output.toLowerCase()).toMatch(/denied|unauthorized/);
  await page.screenshot({ path: screenshotPath("viewer-signed-in"), fullPage: true });
});
