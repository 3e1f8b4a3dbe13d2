import { test, expect } from "@playwright/test";
import * as http from "node:http";
import { AddressInfo } from "node:net";
import { ADMIN_PASSWORD, BASE_URL, PORT } from "../playwright.config";
import { buildImage, expectAccessible, hydrated, screenshotPath, signIn, skopeoPush } from "./helpers";

const authorization = `Basic ${Buffer.from(`admin:${ADMIN_PASSWORD}`).toString("base64")}`;

test("a webhook added in the console shows its deliveries, a retry included, and sends one again", async ({ page }) => {
  // A receiver that refuses its first delivery.
  const received: { headers: http.IncomingHttpHeaders; body: string }[] = [];
  const receiver = http.createServer((request, response) => {
    let body = "";
    request.on("data", (chunk) => (body += chunk));
    request.on("end", () => {
      received.push({ headers: request.headers, body });
      response.statusCode = received.length === 1 ? 500 : 204;
      response.end();
    });
  });
  await new Promise<void>((resolve) => receiver.listen(0, "127.0.0.1", resolve));
  const url = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook`;
  const created = await fetch(`${BASE_URL}/api/v1/namespaces`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization },
    body: JSON.stringify({ metadata: { name: "hooked" } }),
  });
  expect(created.status).toBe(201);

  await page.goto("/ns/hooked/webhooks");
  await hydrated(page);
  await signIn(page, "admin", ADMIN_PASSWORD);
  await expect(page.getByText("No webhooks yet")).toBeVisible();
  const form = page.getByRole("region", { name: "Add a webhook" });
  await form.getByLabel("Name").fill("ci");
  await form.getByLabel("URL").fill(url);
  await form.getByRole("button", { name: "Add webhook" }).click();
  await expect(form.getByText("copy it now")).toBeVisible();
  await expect(page.locator('article[data-webhook="ci"]')).toContainText(url);

  skopeoPush(buildImage("hooked"), `127.0.0.1:${PORT}`, "hooked/app:v1", `admin:${ADMIN_PASSWORD}`);
  const delivery = page.locator('article[data-webhook="ci"] tr[data-state="delivered"]');
  await expect(delivery).toContainText("1: HTTP 500; 2: HTTP 204", { timeout: 20_000 });
  expect(received.length).toBeGreaterThanOrEqual(2);
  expect(received[1].headers["x-berth-signature-256"]).toMatch(/^sha256=[0-9a-f]{64}$/);
  expect(received[1].headers["content-type"]).toContain("application/vnd.docker.distribution.events.v1+json");
  expect(JSON.parse(received[1].body).events[0].target.repository).toBe("hooked/app");
  await page.screenshot({ path: screenshotPath("webhooks"), fullPage: true });
  await expectAccessible(page, "webhooks");

  // Redeliver: a new delivery with the same body, under its own id, listed above the first.
  const firstId = await delivery.getAttribute("data-delivery");
  expect(firstId).toBeTruthy();
  const hook = page.locator('article[data-webhook="ci"]');
  await hook.locator(`tr[data-delivery="${firstId}"]`).getByRole("button", { name: "Redeliver" }).click();
  const again = hook.locator(`tr[data-redelivery-of="${firstId}"]`);
  await expect(again).toHaveAttribute("data-state", "delivered", { timeout: 20_000 });
  await expect(again).toContainText("1: HTTP 204");
  await expect(again).toContainText(`sent again: delivery ${firstId}`);
  await expect(hook.locator("tbody tr").first()).toHaveAttribute("data-redelivery-of", firstId!);
  await expect(again.getByRole("button", { name: "Redeliver" })).toBeVisible();
  expect(received.length).toBe(3);
  const [, first, resent] = received;
  expect(resent.body).toBe(first.body);
  expect(resent.headers["x-berth-signature-256"]).toBe(first.headers["x-berth-signature-256"]);
  expect(resent.headers["x-berth-event"]).toBe(first.headers["x-berth-event"]);
  expect(resent.headers["x-berth-delivery"]).toBe(await again.getAttribute("data-delivery"));
  expect(resent.headers["x-berth-delivery"]).not.toBe(firstId);
  await page.screenshot({ path: screenshotPath("webhooks-redelivered"), fullPage: true });
  receiver.close();
});

test("a webhook sends a test event, shows what it sent and was answered, and is edited, disabled and given a new secret", async ({ page }) => {
  // A receiver that answers every request 200 with a short JSON body.
  const received: { headers: http.IncomingHttpHeaders; path: string; body: string }[] = [];
  const receiver = http.createServer((request, response) => {
    let body = "";
    request.on("data", (chunk) => (body += chunk));
    request.on("end", () => {
      received.push({ headers: request.headers, path: request.url ?? "", body });
      response.setHeader("content-type", "application/json");
      response.end(JSON.stringify({ accepted: true, by: "test receiver" }));
    });
  });
  await new Promise<void>((resolve) => receiver.listen(0, "127.0.0.1", resolve));
  const base = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}`;
  const created = await fetch(`${BASE_URL}/api/v1/namespaces`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization },
    body: JSON.stringify({ metadata: { name: "pinged" } }),
  });
  expect(created.status).toBe(201);
  const subscribed = await fetch(`${BASE_URL}/apis/berth.io/v1/namespaces/pinged/webhooks`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization },
    body: JSON.stringify({ metadata: { name: "ci" }, spec: { url: `${base}/first`, events: ["push"] } }),
  });
  expect(subscribed.status).toBe(201);

  await page.goto("/ns/pinged/webhooks");
  await hydrated(page);
  await signIn(page, "admin", ADMIN_PASSWORD);
  const hook = page.locator('article[data-webhook="ci"]');
  await expect(hook).toContainText(`${base}/first`);

  // A test event: a delivery like any other, its body and the answer shown when opened.
  await hook.getByRole("button", { name: "Send test event to ci" }).click();
  const ping = hook.locator('tr[data-state="delivered"]', { hasText: "ping" });
  await expect(ping).toContainText("1: HTTP 200", { timeout: 20_000 });
  expect(received).toHaveLength(1);
  expect(received[0].headers["x-berth-event"]).toBe("ping");
  expect(received[0].headers["x-berth-signature-256"]).toMatch(/^sha256=[0-9a-f]{64}$/);
  expect(JSON.parse(received[0].body)).toMatchObject({ type: "Ping", namespace: "pinged", webhook: "ci" });
  const id = await ping.getAttribute("data-delivery");
  const detail = hook.locator(`tr[data-detail-of="${id}"]`);
  await detail.getByText(`Request and answers of delivery ${id}`).click();
  await expect(detail.locator("pre").first()).toContainText('"type": "Ping"');
  await expect(detail.locator("pre.response")).toHaveText('{"accepted":true,"by":"test receiver"}');
  await page.screenshot({ path: screenshotPath("webhooks-ping"), fullPage: true });
  await expectAccessible(page, "webhooks with a delivery opened");

  // Edited: a new URL and fewer events; the next test event goes there.
  await hook.getByText("Edit ci").click();
  const edit = hook.getByRole("form", { name: "Edit webhook ci" });
  await expect(edit.getByLabel("URL")).toHaveValue(`${base}/first`);
  await edit.getByLabel("URL").fill(`${base}/moved`);
  await edit.getByLabel("Deletes").check();
  await edit.getByRole("button", { name: "Save changes" }).click();
  await expect(hook.locator("dl.facts")).toContainText(`${base}/moved`);
  await expect(hook.locator("dl.facts")).toContainText("push, delete");
  await hook.getByRole("button", { name: "Send test event to ci" }).click();
  await expect.poll(() => received.length, { timeout: 20_000 }).toBe(2);
  expect(received[1].path).toBe("/moved");

  // Disabled: said so, no test events; then enabled again.
  await hook.getByRole("button", { name: "Disable ci" }).click();
  await expect(hook).toHaveAttribute("data-disabled", "true");
  await expect(hook.locator("h2")).toContainText("disabled");
  await expect(hook.getByRole("button", { name: "Send test event to ci" })).toBeDisabled();
  await page.screenshot({ path: screenshotPath("webhooks-disabled"), fullPage: true });
  await hook.getByRole("button", { name: "Enable ci" }).click();
  await expect(hook).toHaveAttribute("data-disabled", "false");
  await expect(hook.getByRole("button", { name: "Send test event to ci" })).toBeEnabled();

  // A new secret, shown once, after a confirmation. The edit form stayed open while the list
  // was read again.
  await expect(hook.locator("details.edit-webhook")).toHaveAttribute("open", "");
  await hook.getByRole("button", { name: "Regenerate the secret of ci" }).click();
  await hook.getByRole("button", { name: "Yes, make a new secret" }).click();
  await expect(hook.getByText("copy it now")).toBeVisible();
  const secret = await hook.locator(".secret .command code").textContent();
  expect(secret).toMatch(/^[0-9a-f]{64}$/);
  await page.screenshot({ path: screenshotPath("webhooks-secret"), fullPage: true });
  receiver.close();
});
