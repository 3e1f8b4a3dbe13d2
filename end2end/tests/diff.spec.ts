import { test, expect } from "@playwright/test";
import { ADMIN_PASSWORD, BERTH_BINARY } from "../playwright.config";
import { addUser, buildImage, digestOf, expectAccessible, hydrated, run, screenshotPath, signIn, skopeoPush, target } from "./helpers";

// Runs against Berth and against its console in front of a cluster (a second Berth).
const admin = `admin:${ADMIN_PASSWORD}`;
let inFront = false;
test.beforeEach(() => {
  inFront = target().mode === "in-front";
});
const shot = (name: string) => screenshotPath(inFront ? `in-front-${name}` : name);

/** Two images of one layout: `one` (a layer, MODE=dev, OLD=1, `serve`) and `two`, one's layer
 * with another on top, MODE=prod, port 8080 and `serve --port=8080`. */
function imagePair(): [string, string] {
  const one = buildImage("one");
  const layout = one.slice("oci:".length, one.lastIndexOf(":"));
  run("umoci", ["config", "--image", `${layout}:one`, "--config.env", "MODE=dev", "--config.env", "OLD=1", "--config.cmd", "serve"]);
  const bundle = `${layout}-two`;
  run("umoci", ["unpack", "--image", `${layout}:one`, bundle]);
  run("sh", ["-c", `echo app > '${bundle}/rootfs/app.txt'`]);
  run("umoci", ["repack", "--image", `${layout}:two`, bundle]);
  run("umoci", ["config", "--image", `${layout}:two`, "--clear=config.env", "--config.env", "MODE=prod",
    "--config.exposedports", "8080/tcp", "--clear=config.cmd", "--config.cmd", "serve", "--config.cmd", "--port=8080"]);
  return [`oci:${layout}:one`, `oci:${layout}:two`];
}

test("compare an image with the previous one: configuration, layers, size", async ({ page }) => {
  const { host, base, dataDir } = target();
  const [one, two] = imagePair();
  skopeoPush(one, host, "diff/app:v1", admin);
  const first = await digestOf(base, admin, "diff/app", "v1");
  skopeoPush(two, host, "diff/app:v1", admin);
  const second = await digestOf(base, admin, "diff/app", "v1");
  expect(second).not.toBe(first);

  await page.goto("/ns/diff/streams/app");
  await hydrated(page);
  await signIn(page, "admin", ADMIN_PASSWORD);
  // From the tag's history: the current image with the one before it.
  await page.locator('details.tag-history[data-tag="v1"]').getByRole("link", { name: /Compare with the previous image/ }).click();
  await expect(page).toHaveURL(new RegExp(`/ns/diff/streams/app/compare\\?from=${first.replace(":", "%3A")}&to=${second.replace(":", "%3A")}$`));
  const setting = (name: string) => page.locator(`tr[data-setting="${name}"]`);
  await expect(setting("Environment MODE")).toContainText("dev");
  await expect(setting("Environment MODE")).toContainText("prod");
  await expect(setting("Environment MODE")).toHaveAttribute("data-change", "changed");
  await expect(setting("Environment OLD")).toHaveAttribute("data-change", "removed");
  await expect(setting("Ports 8080/tcp")).toHaveAttribute("data-change", "added");
  await expect(setting("Command")).toContainText('["serve","--port=8080"]');
  await expect(page.locator('tr[data-place="shared"]')).toHaveCount(1);
  await expect(page.locator('tr[data-place="only-to"]')).toHaveCount(1);
  await expect(page.locator('tr[data-place="only-from"]')).toHaveCount(0);
  await expect(page.locator(".layer-summary")).toContainText("1 shared");
  await expect(page.locator(".size-delta")).toContainText("+");
  await expect(page.locator('[data-side="to"]')).toContainText("v1");
  // Over the merged views (in front of a cluster, of layers read from its registry): the file
  // the second image's own layer adds.
  await expect(page.locator('tr[data-path="app.txt"]')).toHaveAttribute("data-change", "added");
  await expect(page.locator(".file-counts")).toContainText("1 added");
  await page.getByLabel("Show").selectOption("removed");
  await page.getByRole("button", { name: "Filter" }).click();
  await expect(page).toHaveURL(/files=removed/);
  await expect(page.getByText("No file changes match.")).toBeVisible();
  await page.goBack();
  // The address is the filter: Back shows every change, and the form says so.
  await expect(page.getByText("1 matching change.")).toBeVisible();
  await expect(page.getByLabel("Show")).toHaveValue("");
  await page.screenshot({ path: shot("compare"), fullPage: true });
  await expectAccessible(page, "the comparison");

  // The address is the comparison: a reload shows it again; swapped, the changes turn around.
  await page.reload();
  await expect(setting("Environment OLD")).toHaveAttribute("data-change", "removed");
  await page.getByRole("link", { name: "Swap" }).click();
  await expect(page).toHaveURL(new RegExp(`from=${second.replace(":", "%3A")}&to=${first.replace(":", "%3A")}`));
  await expect(setting("Environment OLD")).toHaveAttribute("data-change", "added");
  await expect(page.locator('tr[data-place="only-from"]')).toHaveCount(1);

  // The form: a tag on one side, an image on the other; the address follows.
  await page.getByLabel("From").selectOption(first);
  await page.getByLabel("To").selectOption("v1");
  await page.getByRole("button", { name: "Compare" }).click();
  await expect(page).toHaveURL(/from=sha256%3A[0-9a-f]+&to=v1/);
  await expect(setting("Environment MODE")).toContainText("prod");

  // From the image page, with the image before it by default.
  await page.goto(`/ns/diff/streams/app/images/${second}`);
  await page.getByRole("link", { name: "Compare with another image" }).click();
  await expect(page.locator('[data-side="from"]')).toContainText(first.slice(7, 19));
  await expect(setting("Environment MODE")).toHaveAttribute("data-change", "changed");

  // Someone who may not pull the stream is told so, and sees none of it.
  addUser(BERTH_BINARY, dataDir, "dora", "dora-password");
  await page.context().clearCookies();
  await page.goto(`/ns/diff/streams/app/compare?from=${first}&to=${second}`);
  await hydrated(page);
  await signIn(page, "dora", "dora-password");
  await page.goto(`/ns/diff/streams/app/compare?from=${first}&to=${second}`);
  await expect(page.getByRole("heading", { name: "Not allowed" })).toBeVisible();
  await expect(page.locator("tr[data-setting]")).toHaveCount(0);
  await page.screenshot({ path: shot("compare-refused"), fullPage: true });
});
