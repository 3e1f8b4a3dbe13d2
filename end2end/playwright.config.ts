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
// Made once in the main process; workers (which load this file again) inherit the variables.
process.env.BERTH_E2E_DATA ??= fs.mkdtempSync(path.join(os.tmpdir(), "berth-e2e-"));
process.env.BERTH_E2E_OIDC_DATA ??= fs.mkdtempSync(path.join(os.tmpdir(), "berth-e2e-oidc-"));
const dataDir = process.env.BERTH_E2E_DATA;
// Every browser of the suite signs in from 127.0.0.1: the per-address throttle (5x the per-user
// rate) would otherwise refuse the suite's later sign-ins.
const mainConfig = path.join(dataDir, "berth.toml");
fs.writeFileSync(mainConfig, "[auth]\nlogin_attempts_per_minute = 100\n");

// A second Berth whose console signs people in through an external OpenID Connect provider.
export const OIDC_BERTH_PORT = PORT + 1;
export const OIDC_PORT = PORT + 2;
export const OIDC_BERTH_URL = `http://127.0.0.1:${OIDC_BERTH_PORT}`;
const oidcDataDir = process.env.BERTH_E2E_OIDC_DATA;
const oidcConfig = path.join(oidcDataDir, "berth.toml");
fs.writeFileSync(
  oidcConfig,
  `[auth.oidc]
issuer = "http://127.0.0.1:${OIDC_PORT}"
client_id = "berth"
client_secret = "berthtestsecret"
scopes = ["profile", "groups"]
`,
);
/** The data folder of the OIDC instance, for the command-line tool. */
export const OIDC_DATA_DIR = path.join(oidcDataDir, "data");
export const DATA_DIR = dataDir;
export const BERTH_BINARY = `${root}/target/release/berth`;

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
  webServer: [
    {
      command: `${root}/target/release/berth serve --config ${mainConfig} --listen 127.0.0.1:${PORT} --data-dir ${dataDir} --site-dir ${root}/target/site --log-level warn`,
      url: `${BASE_URL}/readyz`,
      reuseExistingServer: false,
      timeout: 60_000,
      stdout: "ignore",
      stderr: "pipe",
      env: { BERTH_BOOTSTRAP_PASSWORD: ADMIN_PASSWORD },
    },
    {
      command: `node oidc/provider.mjs`,
      url: `http://127.0.0.1:${OIDC_PORT}/.well-known/openid-configuration`,
      reuseExistingServer: false,
      timeout: 30_000,
      stdout: "ignore",
      stderr: "pipe",
      env: {
        OIDC_PORT: String(OIDC_PORT),
        OIDC_REDIRECT_URI: `${OIDC_BERTH_URL}/console/callback`,
        OIDC_CLIENT_SECRET: "berthtestsecret",
      },
    },
    {
      command: `${root}/target/release/berth serve --config ${oidcConfig} --listen 127.0.0.1:${OIDC_BERTH_PORT} --data-dir ${path.join(oidcDataDir, "data")} --site-dir ${root}/target/site --log-level warn`,
      url: `${OIDC_BERTH_URL}/readyz`,
      reuseExistingServer: false,
      timeout: 60_000,
      stdout: "ignore",
      stderr: "pipe",
      env: { BERTH_BOOTSTRAP_PASSWORD: ADMIN_PASSWORD },
    },
  ],
});
