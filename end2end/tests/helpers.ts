import { execFileSync, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import AxeBuilder from "@axe-core/playwright";
import { Page, expect, test } from "@playwright/test";
import { berthCommandEnv, type Target } from "../playwright.config";

/** Where this project's images go and whose API it checks (see the projects in the config). */
export function target(): Target {
  return test.info().project.metadata as Target;
}

/** Whether the page is the sign-in form (a console in front of a cluster sends people there). */
async function onSignInForm(page: Page): Promise<boolean> {
  return page.getByRole("heading", { name: "Sign in to Berth" }).isVisible();
}

/** Runs a command and returns its output, failing with its error output. */
export function run(program: string, args: string[], env: NodeJS.ProcessEnv = process.env): string {
  return execFileSync(program, args, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"], env });
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

/** Waits until the WASM bundle has hydrated the page; a console in front of a cluster sends a
 * visitor who is not signed in to the cluster's sign-in form instead, which has no WASM. */
export async function hydrated(page: Page) {
  if (new URL(page.url()).pathname === "/oauth/authorize") {
    return;
  }
  await expect(page.locator("body")).toHaveAttribute("data-hydrated", "true");
}

export function screenshotPath(name: string): string {
  const dir = path.resolve(__dirname, "..", "screenshots");
  fs.mkdirSync(dir, { recursive: true });
  return path.join(dir, `${name}.png`);
}

/** The header's sign-in link (a page refused to a visitor has a second one, in its body). */
export function signInLink(page: Page) {
  return page.locator(".user-menu").getByRole("link", { name: "Sign in" });
}

/** Signs in through the console's sign-in link and the embedded provider's form. */
export async function signIn(page: Page, user: string, password: string) {
  if (!(await onSignInForm(page))) {
    await signInLink(page).click();
  }
  await expect(page.getByRole("heading", { name: "Sign in to Berth" })).toBeVisible();
  await page.getByLabel("User name").fill(user);
  await page.getByLabel("Password").fill(password);
  await page.getByRole("button", { name: "Sign in" }).click();
  await expect(page.locator(".user-menu .who")).toHaveText(user);
  await hydrated(page);
}

/** Settings for podman with no container engine: vfs storage and logins in a private folder. */
export function podmanEnv(): NodeJS.ProcessEnv {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "berth-e2e-podman-"));
  fs.writeFileSync(path.join(dir, "storage.conf"), `[storage]\ndriver = "vfs"\ngraphroot = "${dir}/root"\nrunroot = "${dir}/run"\n`);
  fs.writeFileSync(path.join(dir, "containers.conf"), `[engine]\ncgroup_manager = "cgroupfs"\nevents_logger = "file"\n`);
  fs.writeFileSync(path.join(dir, "auth.json"), "{}");
  return {
    ...process.env,
    CONTAINERS_STORAGE_CONF: path.join(dir, "storage.conf"),
    CONTAINERS_CONF: path.join(dir, "containers.conf"),
    REGISTRY_AUTH_FILE: path.join(dir, "auth.json"),
    TMPDIR: dir,
  };
}

/** Runs a command with an environment; returns its exit code and output. */
export function attempt(program: string, args: string[], env: NodeJS.ProcessEnv): { code: number; output: string } {
  const result = spawnSync(program, args, { encoding: "utf8", env });
  return { code: result.status ?? -1, output: `${result.stdout}${result.stderr}` };
}

/** Calls the API from the signed-in page, with the session's CSRF token, as the console does. */
export async function apiFromPage(page: Page, method: string, url: string, body?: unknown): Promise<{ status: number; json: any }> {
  return page.evaluate(
    async ({ method, url, body }) => {
      const session = await (await fetch("/console/api/session")).json();
      const response = await fetch(url, {
        method,
        headers: { "content-type": "application/json", "x-csrf-token": session.csrf_token ?? "" },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      return { status: response.status, json: await response.json() };
    },
    { method, url, body },
  );
}

/** Presses Tab until `target` has the focus (keyboard-only use), failing after `limit` presses. */
export async function tabTo(page: Page, target: import("@playwright/test").Locator, limit = 40) {
  for (let i = 0; i < limit; i++) {
    if (await target.evaluate((el) => el === document.activeElement).catch(() => false)) {
      return;
    }
    await page.keyboard.press("Tab");
  }
  throw new Error(`Tab never reached ${target}`);
}

/** Adds a local user with the command-line tool, on the stores of the instance whose data
 * folder is `dataDir`. */
export function addUser(binary: string, dataDir: string, name: string, password: string) {
  run(binary, ["user", "add", name, "--password", password, "--data-dir", dataDir], berthCommandEnv(dataDir));
}

/** Grants a role on a namespace (or one stream of it) through the access API, as `creds`. */
export async function bind(base: string, creds: string, namespace: string, role: string, kind: string, name: string, imageStream?: string) {
  const response = await fetch(`${base}/apis/access.berth.io/v1/namespaces/${namespace}/rolebindings`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Basic ${Buffer.from(creds).toString("base64")}` },
    body: JSON.stringify({ roleRef: { name: role }, subject: { kind, name }, imageStream }),
  });
  expect(response.status, await response.text()).toBe(201);
}

/** The digest a tag names, from the registry. */
export async function digestOf(base: string, creds: string, repository: string, tag: string): Promise<string> {
  const response = await fetch(`${base}/v2/${repository}/manifests/${tag}`, {
    method: "HEAD",
    headers: {
      authorization: `Basic ${Buffer.from(creds).toString("base64")}`,
      accept: "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.v2+json",
    },
  });
  expect(response.status).toBe(200);
  return response.headers.get("docker-content-digest") ?? "";
}

/** The axe rule sets every page is held to: WCAG 2.0/2.1 A and AA, and axe's best practices. */
const AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"];

/** Runs axe on the page as it is now and fails listing each violation (rule, impact, the
 * elements), so a page that regresses says where. `label` names the page in the failure. */
export async function expectAccessible(page: Page, label: string) {
  const results = await new AxeBuilder({ page }).withTags(AXE_TAGS).analyze();
  const report = results.violations.map(
    (violation) =>
      `${violation.id} (${violation.impact ?? "no impact"}): ${violation.help}\n` +
      violation.nodes.map((node) => `    ${node.target.join(" ")}: ${node.failureSummary?.replace(/\n/g, " ") ?? ""}`).join("\n"),
  );
  expect(report, `axe on ${label} (${page.url()})`).toEqual([]);
}
