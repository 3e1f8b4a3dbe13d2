import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { test, expect } from "@playwright/test";
import { ADMIN_PASSWORD } from "../playwright.config";
import { digestOf, expectAccessible, hydrated, run, screenshotPath, signIn, skopeoPush, target } from "./helpers";

// An image's files: each layer as a tree, the merged view, a text file and a download. Berth
// indexes its own layers; in front of a cluster the console reads them from the cluster's
// registry with the signed-in user's token, and the pages are the same.
const admin = `admin:${ADMIN_PASSWORD}`;

/** Two layers built with umoci: the first has `etc/motd`, `etc/os-release` and `app/old.txt`;
 * the second removes `app/old.txt` (a whiteout) and replaces `etc/motd`. */
function twoLayerImage(tag: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "berth-e2e-layers-"));
  const layout = path.join(dir, "layout");
  const image = `${layout}:${tag}`;
  run("umoci", ["init", "--layout", layout]);
  run("umoci", ["new", "--image", image]);
  const bundle = path.join(dir, "bundle");
  run("umoci", ["unpack", "--image", image, bundle]);
  const root = path.join(bundle, "rootfs");
  fs.mkdirSync(path.join(root, "etc"), { recursive: true });
  fs.mkdirSync(path.join(root, "app"), { recursive: true });
  fs.writeFileSync(path.join(root, "etc", "motd"), "first motd\n");
  fs.writeFileSync(path.join(root, "etc", "os-release"), 'NAME="Berth <script>alert(1)</script>"\n');
  fs.writeFileSync(path.join(root, "app", "old.txt"), "removed later\n");
  run("umoci", ["repack", "--image", image, bundle]);
  fs.rmSync(bundle, { recursive: true, force: true });
  run("umoci", ["unpack", "--image", image, bundle]);
  fs.rmSync(path.join(root, "app", "old.txt"));
  fs.writeFileSync(path.join(root, "etc", "motd"), "second motd\n");
  run("umoci", ["repack", "--image", image, bundle]);
  return `oci:${image}`;
}

test("an image's layers open as file trees, merged and one by one", async ({ page }) => {
  const { host, base, mode } = target();
  const inFront = mode === "in-front";
  const shot = (name: string) => screenshotPath(inFront ? `in-front-${name}` : name);
  skopeoPush(twoLayerImage("files"), host, "files/app:v1", admin);
  const digest = await digestOf(base, admin, "files/app", "v1");
  await page.goto(`/ns/files/streams/app/images/${digest}`);
  await hydrated(page);
  await signIn(page, "admin", ADMIN_PASSWORD);
  await expect(page.getByRole("heading", { name: /Layers/ })).toBeVisible();
  await page.getByRole("link", { name: "Browse files (all layers merged)" }).click();
  await expect(page).toHaveURL(/\/images\/sha256(:|%3A)[0-9a-f]+\/files$/);

  // The merged view: the whiteout applied, each file with its layer.
  await hydrated(page);
  await expect(page.getByRole("link", { name: "etc/" })).toBeVisible();
  await expect(page.locator('tr[data-path="app/old.txt"]')).toHaveCount(0);
  await page.getByRole("link", { name: "etc/" }).click();
  await expect(page).toHaveURL(/\?dir=etc$/);
  const motd = page.locator('tr[data-path="etc/motd"]');
  await expect(motd).toContainText("-rw-r--r--");
  await expect(motd.locator("td").nth(6)).toHaveText("2");
  await expect(page.locator('tr[data-path="etc/os-release"] td').nth(6)).toHaveText("1");
  await page.screenshot({ path: shot("files-merged"), fullPage: true });
  await expectAccessible(page, "the merged view");

  // A text file in the page, escaped; the address keeps it.
  await page.getByRole("link", { name: "os-release", exact: true }).click();
  await expect(page.locator("pre.file-content")).toHaveText('NAME="Berth <script>alert(1)</script>"\n');
  await page.reload();
  await expect(page.locator("pre.file-content")).toContainText("<script>");
  await page.screenshot({ path: shot("files-text"), fullPage: true });

  // A download is an attachment of the file's bytes.
  const [download] = await Promise.all([
    page.waitForEvent("download"),
    page.getByRole("link", { name: "Download etc/motd" }).click(),
  ]);
  expect(download.suggestedFilename()).toBe("motd");
  expect(fs.readFileSync(await download.path()).toString()).toBe("second motd\n");

  // Layer 2 alone: its whiteout and its new motd; search by path.
  await page.getByRole("link", { name: /^Layer 2/ }).click();
  await expect(page).toHaveURL(/\/layers\/sha256(:|%3A)[0-9a-f]+$/);
  await hydrated(page);
  await page.getByLabel("Search files by path").fill("old");
  await expect(page.locator('tr[data-path="app/.wh.old.txt"]')).toContainText("whiteout");
  await page.getByLabel("Search files by path").fill("");
  await expect(page.getByRole("link", { name: "etc/" })).toBeVisible();
  await page.screenshot({ path: shot("files-layer"), fullPage: true });
  await expectAccessible(page, "one layer's files");

  // Keyboard only: the search field and the rows' links are reachable and work.
  await page.getByRole("link", { name: "etc/" }).focus();
  await page.keyboard.press("Enter");
  await expect(page.locator('tr[data-path="etc/motd"]')).toBeVisible();
});
