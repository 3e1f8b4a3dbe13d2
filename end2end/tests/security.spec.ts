import { expect, test, Page } from "@playwright/test";
import { ADMIN_PASSWORD } from "../playwright.config";
import { buildImage, digestOf, hydrated, screenshotPath, signIn, skopeoPush, target } from "./helpers";

// The console under its Content-Security-Policy: markup in an address runs nothing (it is
// escaped, and an inline script without the page's nonce would be refused anyway), while the
// page's own hydration script (with the nonce) and WASM run as ever.

const admin = `admin:${ADMIN_PASSWORD}`;

/** Every dialog a page opens and every policy violation the browser reports. */
function watch(page: Page): { dialogs: string[]; violations: string[] } {
  const seen = { dialogs: [] as string[], violations: [] as string[] };
  page.on("dialog", async (dialog) => {
    seen.dialogs.push(dialog.message());
    await dialog.dismiss();
  });
  page.on("console", (message) => {
    if (message.text().includes("Content Security Policy")) {
      seen.violations.push(message.text());
    }
  });
  return seen;
}

test("markup in an address runs no script and shows as text", async ({ page }) => {
  const seen = watch(page);
  await page.goto("/");
  await hydrated(page);
  await signIn(page, "admin", ADMIN_PASSWORD);
  const injections: [string, string][] = [
    ["/ns/%3C%2Ftitle%3E%3Cscript%3Ealert(1)%3C%2Fscript%3E", "</title><script>alert(1)</script> · Berth"],
    ["/ns/x%22%3E%3Cimg%20src%3Dx%20onerror%3Dalert(2)%3E/webhooks", 'Webhooks · x"><img src=x onerror=alert(2)> · Berth'],
    ["/ns/ns/streams/%3C%2Ftitle%3E%3Csvg%20onload%3Dalert(3)%3E", "ns/</title><svg onload=alert(3)> · Berth"],
  ];
  for (const [address, title] of injections) {
    const response = await page.goto(address);
    const policy = response!.headers()["content-security-policy"] ?? "";
    expect(policy).toContain("'nonce-");
    expect(policy).toContain("frame-ancestors 'none'");
    expect(response!.headers()["x-content-type-options"]).toBe("nosniff");
    await hydrated(page);
    await expect(page).toHaveTitle(title);
    expect(await page.locator("img, iframe").count()).toBe(0);
  }
  // A query parameter the namespace page reads back into its search box.
  await page.goto("/ns/team?q=%3C%2Ftitle%3E%3Cscript%3Ealert(4)%3C%2Fscript%3E");
  await hydrated(page);
  expect(seen.dialogs).toEqual([]);
  expect(seen.violations).toEqual([]);
});

test("pages hydrate under the policy: WASM runs, and the layer bars are drawn without inline styles", async ({ page }) => {
  const { host, base } = target();
  skopeoPush(buildImage("csp"), host, "csp/app:v1", admin);
  skopeoPush(buildImage("csp2"), host, "csp/other:v1", admin);
  const digest = await digestOf(base, admin, "csp/app", "v1");
  const seen = watch(page);
  const response = await page.goto("/ns/csp");
  const policy = response!.headers()["content-security-policy"] ?? "";
  const nonce = /'nonce-([^']+)'/.exec(policy)?.[1];
  expect(nonce).toBeTruthy();
  await hydrated(page);
  await signIn(page, "admin", ADMIN_PASSWORD);
  await expect(page.locator("tr[data-stream]")).toHaveCount(2);
  // Search as you type is the WASM's: the list and the address follow each key.
  await page.getByLabel("Search image streams").pressSequentially("oth");
  await expect(page.locator("tr[data-stream]")).toHaveCount(1);
  await expect(page).toHaveURL(/\?q=oth$/);

  await page.goto(`/ns/csp/streams/app/images/${digest}`);
  await hydrated(page);
  const bar = page.locator("ol.layers svg.bar rect").first();
  await expect(bar).toBeVisible();
  expect(Number(await bar.getAttribute("width"))).toBeGreaterThan(0);
  await page.screenshot({ path: screenshotPath("csp-image"), fullPage: true });
  expect(seen.dialogs).toEqual([]);
  expect(seen.violations).toEqual([]);
});
