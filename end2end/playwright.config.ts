import { defineConfig } from "@playwright/test";
import * as path from "node:path";
import * as os from "node:os";
import * as fs from "node:fs";

// Berth under test: the release build from `scripts/build`, on its own port and
// data folder, so the suite never touches a developer's instance. With BERTH_E2E_REPLICAS=N
// (N >= 2), the instance under test is the testbed (server/examples/testbed.rs, built by
// `cargo build -p berth --example testbed`): HAProxy at PORT round-robining N replicas on
// PostgreSQL and SeaweedFS, so that consecutive requests of a page reach different processes.
export const PORT = Number(process.env.BERTH_E2E_PORT ?? 5077);
export const REPLICAS = Number(process.env.BERTH_E2E_REPLICAS ?? 1);
export const BASE_URL = `http://127.0.0.1:${PORT}`;
/** The bootstrap administrator's password in the instance under test. */
export const ADMIN_PASSWORD = "e2e-admin-password";
const root = path.resolve(__dirname, "..");
// Made once in the main process; workers (which load this file again) inherit the variables.
process.env.BERTH_E2E_DATA ??= fs.mkdtempSync(path.join(os.tmpdir(), "berth-e2e-"));
process.env.BERTH_E2E_OIDC_DATA ??= fs.mkdtempSync(path.join(os.tmpdir(), "berth-e2e-oidc-"));
const dataDir = process.env.BERTH_E2E_DATA;
// Every browser of the suite signs in from 127.0.0.1: the per-address throttle (5x the per-user
// rate) would otherwise refuse the suite's later sign-ins. Retention policies may remove what a
// test has just pushed (the lifecycle test runs one for real).
const mainConfig = path.join(dataDir, "berth.toml");
fs.writeFileSync(mainConfig, "[auth]\nlogin_attempts_per_minute = 100\n\n[prune]\nretention_grace_seconds = 0\n");

// A second Berth whose console signs people in through an external OpenID Connect provider. The
// issuer is configured, so its origin (on loopback) is trusted without an egress allow-list.
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
// The testbed writes the variables that point a `berth` command at its stores here.
const storesEnv = path.join(dataDir, "stores.env");

/** The environment of a `berth` command on the data folder `dir`: with replicas, the main
 * instance's database and bucket are the testbed's, named in variables it writes at start. */
export function berthCommandEnv(dir: string): NodeJS.ProcessEnv {
  if (REPLICAS < 2 || dir !== DATA_DIR) {
    return process.env;
  }
  const env = { ...process.env };
  for (const line of fs.readFileSync(storesEnv, "utf8").split("\n")) {
    const at = line.indexOf("=");
    if (at > 0) {
      env[line.slice(0, at)] = line.slice(at + 1);
    }
  }
  return env;
}

const mainArgs = `--config ${mainConfig} --site-dir ${root}/target/site --log-level warn --egress-allow 127.0.0.1/32`;

// The console in front of a cluster: a Berth on its embedded defaults plays the cluster (same
// API and OAuth), another serves the console in front of it (the configured API and registry
// origins are trusted by the egress policy; the OAuth server is at the same origin). A second
// pair's cluster gives tokens that last 15 s, for the expiry test.
export const CLUSTER_PORT = PORT + 3;
export const FRONT_PORT = PORT + 4;
export const EXPIRING_CLUSTER_PORT = PORT + 5;
export const EXPIRING_FRONT_PORT = PORT + 6;
export const CLUSTER_URL = `http://127.0.0.1:${CLUSTER_PORT}`;
export const FRONT_URL = `http://127.0.0.1:${FRONT_PORT}`;
export const EXPIRING_CLUSTER_URL = `http://127.0.0.1:${EXPIRING_CLUSTER_PORT}`;
export const EXPIRING_FRONT_URL = `http://127.0.0.1:${EXPIRING_FRONT_PORT}`;
process.env.BERTH_E2E_CLUSTER_DATA ??= fs.mkdtempSync(path.join(os.tmpdir(), "berth-e2e-cluster-"));
const clusterRoot = process.env.BERTH_E2E_CLUSTER_DATA;
export const CLUSTER_DATA_DIR = path.join(clusterRoot, "cluster");
const FRONT_SECRET = "front0secret";

/** A cluster (a Berth) with the console in front of it registered as an OAuth client. */
function pair(name: string, clusterPort: number, frontPort: number, auth: string) {
  const config = path.join(clusterRoot, `${name}.toml`);
  fs.writeFileSync(
    config,
    `[auth]\nlogin_attempts_per_minute = 100\n${auth}\n\n[[auth.clients]]\nid = "berth-front"\nsecret = "${FRONT_SECRET}"\nredirect_uri = "http://127.0.0.1:${frontPort}/console/callback"\n`,
  );
  const cluster = `http://127.0.0.1:${clusterPort}`;
  const front = `http://127.0.0.1:${frontPort}`;
  const server = (url: string, command: string) => ({
    command,
    url: `${url}/readyz`,
    reuseExistingServer: false,
    timeout: 60_000,
    stdout: "ignore" as const,
    stderr: "pipe" as const,
    env: { BERTH_BOOTSTRAP_PASSWORD: ADMIN_PASSWORD },
  });
  return [
    server(cluster, `${root}/target/release/berth serve --config ${config} --listen 127.0.0.1:${clusterPort} --data-dir ${path.join(clusterRoot, name)} --site-dir ${root}/target/site --log-level warn`),
    server(front, `${root}/target/release/berth serve --listen 127.0.0.1:${frontPort} --data-dir ${path.join(clusterRoot, `${name}-front`)} --site-dir ${root}/target/site --log-level warn --upstream-api ${cluster} --upstream-registry ${cluster} --upstream-client-id berth-front --upstream-client-secret ${FRONT_SECRET}`),
  ];
}

/** Where a test's images go and whose API it checks: Berth itself, or the cluster. */
export type Target = { mode: "local" | "in-front"; base: string; host: string; dataDir: string };

export default defineConfig({
  testDir: "./tests",
  timeout: 60_000,
  expect: { timeout: 10_000 },
  fullyParallel: false,
  workers: 1,
  reporter: [["list"]],
  // The page tests run twice: against Berth, and against the console in front of a cluster.
  projects: [
    {
      name: "local",
      use: { baseURL: BASE_URL },
      metadata: { mode: "local", base: BASE_URL, host: `127.0.0.1:${PORT}`, dataDir: DATA_DIR } satisfies Target,
      testIgnore: /in-front\.spec\.ts/,
    },
    {
      name: "in-front",
      use: { baseURL: FRONT_URL },
      metadata: { mode: "in-front", base: CLUSTER_URL, host: `127.0.0.1:${CLUSTER_PORT}`, dataDir: CLUSTER_DATA_DIR } satisfies Target,
      testMatch: /(console|in-front|signatures|diff|layers)\.spec\.ts/,
    },
  ],
  use: {
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
      // The import and webhook tests' remote registry and receiver listen on 127.0.0.1, which
      // the egress policy refuses unless allowed.
      command:
        REPLICAS < 2
          ? `${root}/target/release/berth serve --listen 127.0.0.1:${PORT} --data-dir ${dataDir} ${mainArgs}`
          : `${root}/target/debug/examples/testbed --berth ${root}/target/release/berth --replicas ${REPLICAS} --port ${PORT} --env-file ${storesEnv} -- ${mainArgs}`,
      url: `${BASE_URL}/readyz`,
      reuseExistingServer: false,
      timeout: REPLICAS < 2 ? 60_000 : 120_000,
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
    ...pair("cluster", CLUSTER_PORT, FRONT_PORT, ""),
    ...pair("expiring", EXPIRING_CLUSTER_PORT, EXPIRING_FRONT_PORT, "access_token_seconds = 15"),
  ],
});
