import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { Page, expect } from "@playwright/test";

/** Runs a command and returns its output, failing with its error output. */
export function run(program: string, args: string[]): string {
  return execFileSync(program, args, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
}

/** Builds a small OCI image with umoci (no container engine) and returns its `oci:` reference. */
export function buildImage(tag: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "berth-e2e-image-"));
  const layout = path.join(dir, "layout");
  run("umoci", ["init", "--layout", layout]);
  run("umoci", ["new", "--image", `${layout}:${tag}`]);
  const bundle = path.join(dir, "bundle");
  run("umoci", ["unpack", "--image", `${layout}:${tag}`, bundle]);
  fs.writeFileSync(path.join(bundle, "rootfs", "hello.txt"), `hello from ${tag}\n`);
  run("umoci", ["repack", "--image", `${layout}:${tag}`, bundle]);
  return `oci:${layout}:${tag}`;
}

/** Pushes an image to Berth with skopeo, as `user:password` (or token). */
export function skopeoPush(source: string, host: string, repository: string, creds: string) {
  run("skopeo", ["copy", "--dest-tls-verify=false", "--dest-creds", creds, source, `docker://${host}/${repository}`]);
}

/** Waits until the WASM bundle has hydrated the page. */
export async function hydrated(page: Page) {
  await expect(page.locator("body")).toHaveAttribute("data-hydrated", "true");
}

export function screenshotPath(name: string): string {
  const dir = path.resolve(__dirname, "..", "screenshots");
  fs.mkdirSync(dir, { recursive: true });
  return path.join(dir, `${name}.png`);
}

/** Signs in through the console's sign-in link and the embedded provider's form. */
export async function signIn(page: Page, user: string, password: string) {
  await page.getByRole("link", { name: "Sign in" }).click();
  await expect(page.getByRole("heading", { name: "Sign in to Berth" })).toBeVisible();
  await page.getByLabel("User name").fill(user);
  await page.getByLabel("Password").fill(password);
  await page.getByRole("button", { name: "Sign in" }).click();
  await expect(page.locator(".user-menu .who")).toHaveText(user);
  await hydrated(page);
}
