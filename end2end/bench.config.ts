import { defineConfig } from "@playwright/test";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { execFileSync } from "node:child_process";

// The console benchmark (bench/console.sh): its own Berth on its own port and data folder.
export const BENCH_PORT = Number(process.env.BERTH_BENCH_PORT ?? 5097);
// HTTPS, as a deployment serves it: Chromium asks for brotli only over TLS.
export const BENCH_URL = `https://127.0.0.1:${BENCH_PORT}`;
export const BENCH_PASSWORD = "bench-admin-password";
const root = path.resolve(__dirname, "..");
process.env.BERTH_BENCH_DATA ??= fs.mkdtempSync(path.join(os.tmpdir(), "berth-bench-console-"));
const data = process.env.BERTH_BENCH_DATA;
const cert = path.join(data, "tls.crt");
const key = path.join(data, "tls.key");
if (!fs.existsSync(cert)) {
  // A self-signed certificate for 127.0.0.1, made by Debian's openssl.
  execFileSync("openssl", [
    "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "2",
    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", key, "-out", cert,
  ], { stdio: "ignore" });
}
// The benchmark's own requests (seeding, SSR timings) accept that certificate.
process.env.NODE_TLS_REJECT_UNAUTHORIZED = "0";

export default defineConfig({
  testDir: "./bench",
  testMatch: "**/*.bench.ts",
  timeout: 15 * 60_000,
  workers: 1,
  reporter: [["list"]],
  use: {
    baseURL: BENCH_URL,
    ignoreHTTPSErrors: true,
    launchOptions: {
      executablePath: process.env.CHROMIUM_PATH ?? "/usr/bin/chromium",
      args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"],
    },
  },
  webServer: {
    command: `${root}/target/release/berth serve --listen 127.0.0.1:${BENCH_PORT} --data-dir ${data}/data --tls-cert ${cert} --tls-key ${key} --site-dir ${root}/target/site --log-level warn`,
    url: `${BENCH_URL}/readyz`,
    ignoreHTTPSErrors: true,
    reuseExistingServer: false,
    timeout: 60_000,
    stdout: "ignore",
    stderr: "pipe",
    env: { BERTH_BOOTSTRAP_PASSWORD: BENCH_PASSWORD },
  },
});
