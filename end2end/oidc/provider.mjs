// A real, external OpenID Connect provider for the browser tests: the OpenID-certified npm
// package oidc-provider on loopback, with one client (Berth's console), PKCE required, a groups
// claim, and its built-in development login pages (any name and password signs in; the name
// becomes the subject).
import { Provider } from "oidc-provider";
import { generateKeyPairSync } from "node:crypto";

const port = Number(process.env.OIDC_PORT ?? 5079);
const issuer = `http://127.0.0.1:${port}`;
const redirect = process.env.OIDC_REDIRECT_URI ?? "http://127.0.0.1:5078/console/callback";
const secret = process.env.OIDC_CLIENT_SECRET ?? "berthtestsecret";

const { privateKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
const jwk = { ...privateKey.export({ format: "jwk" }), kid: "test-key", use: "sig", alg: "RS256" };

const provider = new Provider(issuer, {
  clients: [
    {
      client_id: "berth",
      client_secret: secret,
      redirect_uris: [redirect],
      token_endpoint_auth_method: "client_secret_basic",
      grant_types: ["authorization_code"],
      response_types: ["code"],
    },
  ],
  pkce: { required: () => true },
  jwks: { keys: [jwk] },
  cookies: { keys: ["berth-e2e-cookie-key"] },
  claims: {
    openid: ["sub"],
    profile: ["name", "preferred_username"],
    groups: ["groups"],
  },
  conformIdTokenClaims: false,
  features: { devInteractions: { enabled: true } },
  async findAccount(_ctx, id) {
    return {
      accountId: id,
      async claims() {
        return { sub: id, preferred_username: id, name: `${id} (OIDC)`, groups: ["oidc-devs"] };
      },
    };
  },
});

provider.listen(port, "127.0.0.1", () => {
  console.log(`oidc-provider listening on ${issuer}`);
});
