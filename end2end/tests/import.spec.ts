import { test, expect } from "@playwright/test";
import { spawn, ChildProcess } from "node:child_process";
import * as fs from "node:fs";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { ADMIN_PASSWORD, BASE_URL, PORT } from "../playwright.config";
import { buildImage, hydrated, run, screenshotPath, signIn } from "./helpers";

const authorization = `Basic ${Buffer.from(`admin:${ADMIN_PASSWORD}`).toString("base64")}`;
const REMOTE_PORT = PORT + 7;
const remoteHost = `127.0.0.1:${REMOTE_PORT}`;
let remote: ChildProcess | undefined;

/** Debian's docker-registry on loopback: the other registry to import from. */
test.beforeAll(async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "berth-e2e-remote-"));
  const config = path.join(dir, "config.yml");
  fs.writeFileSync(config, `version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: ${dir}/data\nhttp:\n  addr: ${remoteHost}\n`);
  remote = spawn("docker-registry", ["serve", config], { stdio: "ignore" });
  for (let i = 0; i < 100; i++) {
    const up = await new Promise<boolean>((resolve) => {
      const socket = net.connect(REMOTE_PORT, "127.0.0.1", () => { socket.end(); resolve(true); });
      socket.on("error", () => resolve(false));
    });
    if (up) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  run("skopeo", ["copy", "--dest-tls-verify=false", buildImage("remote"), `docker://${remoteHost}/vendor/tool:1.0`]);
});

test.afterAll(() => remote?.kill());

test("import an image from another registry in the console", async ({ page }) => {
  const created = await fetch(`${BASE_URL}/api/v1/namespaces`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization },
    body: JSON.stringify({ metadata: { name: "imports" } }),
  });
  expect(created.status).toBe(201);
  await page.goto("/ns/imports");
  await hydrated(page);
  await signIn(page, "admin", ADMIN_PASSWORD);

  const form = page.getByRole("region", { name: "Import from another registry" });
  await form.getByLabel("Image", { exact: true }).fill(`${remoteHost}/vendor/tool:1.0`);
  await form.getByLabel("Into image stream").fill("tool");
  await form.getByLabel("Plain HTTP (insecure registry)").check();
  await form.getByLabel("Serve pulls from Berth (pull-through)").check();
  await form.getByRole("button", { name: "Import", exact: true }).click();
  await expect(form.locator(".import-outcomes li.ok")).toContainText("1.0: imported");
  // The new stream shows up in the open page by itself.
  await expect(page.locator('tr[data-stream="tool"]')).toBeVisible();
  await page.screenshot({ path: screenshotPath("import"), fullPage: true });

  await page.locator('tr[data-stream="tool"]').getByRole("link", { name: "tool" }).click();
  await expect(page).toHaveURL(/\/ns\/imports\/streams\/tool$/);
  await hydrated(page);
  await expect(page.locator('tr[data-tag="1.0"]')).toContainText(`from ${remoteHost}/vendor/tool:1.0`);

  // A failure is said in the form and kept on the tag as a warning.
  const streamForm = page.getByRole("region", { name: "Import from another registry" });
  await streamForm.getByLabel("Image", { exact: true }).fill(`${remoteHost}/vendor/tool:2.0`);
  await streamForm.getByLabel("As tag").fill("next");
  await streamForm.getByLabel("Plain HTTP (insecure registry)").check();
  await streamForm.getByRole("button", { name: "Import", exact: true }).click();
  await expect(streamForm.locator(".import-outcomes li.warning")).toContainText("NotFound");
  await expect(page.locator('tr[data-tag="next"] .warning')).toContainText("Last import failed");
  await page.screenshot({ path: screenshotPath("import-failed"), fullPage: true });
});
