import { test, expect } from "@playwright/test";
import * as crypto from "node:crypto";
import { ADMIN_PASSWORD } from "../playwright.config";
import { buildImage, digestOf, hydrated, screenshotPath, signIn, skopeoPush, target } from "./helpers";

// Runs against Berth and against its console in front of a cluster (a second Berth): the
// signatures, SBOM and attestation are pushed where `target()` says, as cosign and oras lay
// them out, signed here with Node's crypto. Trusted keys are Berth's own: in front of a cluster
// the signature is listed but not verified.
const admin = `admin:${ADMIN_PASSWORD}`;
const authorization = `Basic ${Buffer.from(admin).toString("base64")}`;
const OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json";

const sha256 = (data: Buffer) => `sha256:${crypto.createHash("sha256").update(data).digest("hex")}`;

async function pushBlob(base: string, repository: string, data: Buffer): Promise<string> {
  const digest = sha256(data);
  const response = await fetch(`${base}/v2/${repository}/blobs/uploads/?digest=${digest}`, {
    method: "POST",
    headers: { authorization, "content-type": "application/octet-stream" },
    body: new Uint8Array(data),
  });
  expect(response.status, await response.text()).toBe(201);
  return digest;
}

type Layer = { mediaType: string; data: Buffer; annotations?: Record<string, string> };

/** Pushes an OCI 1.1 artifact manifest as `reference` (its digest when empty). */
async function pushArtifact(base: string, repository: string, reference: string, layers: Layer[], extra: Record<string, unknown> = {}) {
  const empty = Buffer.from("{}");
  await pushBlob(base, repository, empty);
  const descriptors = [];
  for (const layer of layers) {
    const digest = await pushBlob(base, repository, layer.data);
    descriptors.push({ mediaType: layer.mediaType, digest, size: layer.data.length, annotations: layer.annotations ?? {} });
  }
  const manifest = Buffer.from(JSON.stringify({
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    config: { mediaType: "application/vnd.oci.empty.v1+json", digest: sha256(empty), size: 2 },
    layers: descriptors,
    ...extra,
  }));
  const response = await fetch(`${base}/v2/${repository}/manifests/${reference || sha256(manifest)}`, {
    method: "PUT",
    headers: { authorization, "content-type": OCI_MANIFEST },
    body: manifest,
  });
  expect(response.status, await response.text()).toBe(201);
}

/** cosign's simple-signing layer for `digest`, signed with an ed25519 key. */
function cosignLayer(digest: string, key: crypto.KeyObject): Layer {
  const payload = Buffer.from(JSON.stringify({
    critical: { identity: { "docker-reference": "signed/app" }, image: { "docker-manifest-digest": digest }, type: "cosign container image signature" },
    optional: null,
  }));
  return {
    mediaType: "application/vnd.dev.cosign.simplesigning.v1+json",
    data: payload,
    annotations: { "dev.cosignproject.cosign/signature": crypto.sign(null, payload, key).toString("base64") },
  };
}

test("signatures verified and not, a searchable SBOM, an attestation, and the signed badge", async ({ page }) => {
  const { host, base, mode } = target();
  const inFront = mode === "in-front";
  const shot = (name: string) => screenshotPath(inFront ? `in-front-${name}` : name);
  skopeoPush(buildImage("signed-v1"), host, "signed/app:v1", admin);
  skopeoPush(buildImage("signed-v2"), host, "signed/app:v2", admin);
  const v1 = await digestOf(base, admin, "signed/app", "v1");
  const v1Size = (await (await fetch(`${base}/v2/signed/app/manifests/${v1}`, { headers: { authorization, accept: OCI_MANIFEST } })).arrayBuffer()).byteLength;
  const trusted = crypto.generateKeyPairSync("ed25519");
  const stranger = crypto.generateKeyPairSync("ed25519");
  await pushArtifact(base, "signed/app", `${v1.replace(":", "-")}.sig`, [
    cosignLayer(v1, trusted.privateKey),
    cosignLayer(v1, stranger.privateKey),
  ]);
  const spdx = {
    spdxVersion: "SPDX-2.3",
    name: "signed-app",
    packages: [
      { name: "openssl", versionInfo: "3.0.13", licenseConcluded: "Apache-2.0", externalRefs: [{ referenceType: "purl", referenceLocator: "pkg:deb/debian/openssl@3.0.13" }] },
      { name: "zlib", versionInfo: "1.3", licenseDeclared: "Zlib", externalRefs: [{ referenceType: "purl", referenceLocator: "pkg:deb/debian/zlib@1.3" }] },
      { name: "left-pad", versionInfo: "1.3.0", licenseConcluded: "WTFPL", externalRefs: [{ referenceType: "purl", referenceLocator: "pkg:npm/left-pad@1.3.0" }] },
    ],
  };
  const subject = { mediaType: OCI_MANIFEST, digest: v1, size: v1Size };
  await pushArtifact(base, "signed/app", "", [{ mediaType: "application/spdx+json", data: Buffer.from(JSON.stringify(spdx)) }], { artifactType: "application/spdx+json", subject });
  const statement = { _type: "https://in-toto.io/Statement/v1", subject: [{ name: "signed/app", digest: { sha256: v1.slice(7) } }], predicateType: "https://slsa.dev/provenance/v1", predicate: {} };
  const envelope = { payloadType: "application/vnd.in-toto+json", payload: Buffer.from(JSON.stringify(statement)).toString("base64"), signatures: [] };
  await pushArtifact(base, "signed/app", `${v1.replace(":", "-")}.att`, [{ mediaType: "application/vnd.dsse.envelope.v1+json", data: Buffer.from(JSON.stringify(envelope)) }]);

  await page.goto("/ns/signed");
  await hydrated(page);
  await signIn(page, "admin", ADMIN_PASSWORD);

  // The namespace's admins add the trusted key on its signing keys page. In front of a cluster
  // (where access is the cluster's business) no link leads there, and the page says why.
  if (inFront) {
    await expect(page.getByRole("link", { name: "Signing keys" })).toHaveCount(0);
    await page.goto("/ns/signed/keys");
  } else {
    await page.getByRole("link", { name: "Signing keys" }).click();
  }
  await expect(page).toHaveURL(/\/ns\/signed\/keys$/);
  await hydrated(page);
  if (inFront) {
    await expect(page.getByText("not available in front of a cluster")).toBeVisible();
  } else {
    await page.getByLabel("Name").fill("release");
    await page.getByLabel("Public key (PEM)").fill("-----BEGIN PUBLIC KEY-----\nnot a key\n-----END PUBLIC KEY-----");
    await page.getByRole("button", { name: "Add key" }).click();
    await expect(page.getByRole("alert")).toContainText("Public key:");
    await page.getByLabel("Public key (PEM)").fill(trusted.publicKey.export({ type: "spki", format: "pem" }).toString());
    await page.getByRole("button", { name: "Add key" }).click();
    await expect(page.locator('tr[data-key="release"]')).toContainText("Ed25519");
  }
  await page.screenshot({ path: shot("trusted-keys"), fullPage: true });

  // The stream's tag rows: v1 is signed (cosign's tag), v2 is not.
  await page.goto("/ns/signed/streams/app");
  await hydrated(page);
  await expect(page.locator('tr[data-tag="v1"] .badge.signed')).toHaveText("signed");
  await expect(page.locator('tr[data-tag="v2"] .badge.signed')).toHaveCount(0);
  await page.screenshot({ path: shot("stream-signed"), fullPage: true });

  await page.goto(`/ns/signed/streams/app/images/${v1}`);
  await hydrated(page);
  const signatures = page.getByRole("region", { name: "Signatures" });
  if (inFront) {
    await expect(signatures.locator('tr[data-verified="false"]')).toHaveCount(2);
    await expect(signatures).toContainText("not available in front of a cluster");
  } else {
    await expect(signatures.locator('tr[data-verified="true"]')).toContainText("verified with trusted key release");
    await expect(signatures.locator('tr[data-verified="false"]')).toContainText("no trusted key matches");
  }
  const sbom = page.getByRole("region", { name: "SBOM" });
  await expect(sbom).toContainText("SPDX 2.3");
  await expect(sbom.locator("tbody tr")).toHaveCount(3);
  await sbom.getByLabel("Search packages").fill("deb");
  await expect(sbom.locator("tbody tr")).toHaveCount(2);
  await sbom.getByLabel("Search packages").fill("zlib");
  await expect(sbom.locator("tbody tr")).toHaveCount(1);
  await expect(sbom.getByRole("status")).toHaveText("1 of 3 packages");
  await expect(page.getByRole("region", { name: "Attestations" })).toContainText("https://slsa.dev/provenance/v1");
  await page.getByRole("heading", { name: "Signatures" }).scrollIntoViewIfNeeded();
  await page.screenshot({ path: shot("image-signatures"), fullPage: true });

  // An unsigned image says so.
  const v2 = await digestOf(base, admin, "signed/app", "v2");
  await page.goto(`/ns/signed/streams/app/images/${v2}`);
  await hydrated(page);
  await expect(page.getByRole("region", { name: "Signatures" })).toContainText("unsigned");
});
