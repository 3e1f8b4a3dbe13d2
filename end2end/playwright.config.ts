import { defineConfig } from "@playwright/test";
import * as path from "node:path";
import * as os from "node:os";
import * as fs from "node:fs";

// Berth under test: the release build from `cargo leptos build --release`, on its own port and
// data folder, so the suite never touches a developer's instance.
export const PORT = Number(process.env.BERTH_E2E_PORT ?? 5077);
export const BASE_URL = `http://127.0.0.1:${PORT}`;
/** The bootstrap administrator's password in the instance under test. */
export const ADMIN_PASSWORD = "e2e-admin-password";
const root = path.resolve(__dirname, "..");
const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "berth-e2e-"));

export default defineConfig({
  testDir: "./tests",
  timeout: 60_000,
  expect: { timeout: 10_000 },
  fullyParallel: false,
  workers: 1,
  reporter: [["list"]],
  use: {
    baseURL: BASE_URL,
    trace: "retain-on-failure",
    launchOptions: {
      executablePath: process.env.CHROMIUM_PATH ?? "/usr/bin/chromium",
      args: [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
      ],
    },
  },
  webServer: {
    command: `${root}/target/release/berth serve --listen 127.0.0.1:${PORT} --data-dir ${dataDir} --site-dir ${root}/target/site --log-level warn`,
    url: `${BASE_URL}/readyz`,
    reuseExistingServer: false,
    timeout: 60_000,
    stdout: "ignore",
    stderr: "pipe",
    env: { BERTH_BOOTSTRAP_PASSWORD: ADMIN_PASSWORD },
  },
});
