// A real OpenID Connect provider for the single sign-on tests: npm's
// oidc-provider (OpenID Certified), on loopback. It generates its signing keys
// (RS256 and ES256), writes them (PKCS#8, for the test to forge tampered tokens
// with the provider's own key) to $KEYS_FILE (0600), and serves:
// - client `cairn` (confidential, client_secret_basic, PKCE required) whose ID
//   tokens are ES256 and carry email, email_verified and groups;
// - clients `ci-bot` and `release-bot` (client credentials, secret
//   $CI_SECRET) whose access tokens are RS256 JWTs for the resource
//   `urn:cairn:api` (RFC 9068), `sub` = the client id;
// - accounts: any login; `alice` is alice@example.org in group `release`,
//   `bob` is in group `platform`, anyone else has an unmapped email.
// Prints `issuer <url>` when it listens, `jwks fetched` on every JWKS request.
//
// Env: OIDC_PROVIDER (the module's path), PORT (0: any), CAIRN_REDIRECT,
// CLIENT_SECRET, CI_SECRET, KEYS_FILE, KID_SUFFIX (a rotation: new keys).
import { createRequire } from "node:module";
import { generateKeyPairSync } from "node:crypto";
import { writeFileSync } from "node:fs";
import http from "node:http";

const require = createRequire(import.meta.url);
const { default: Provider, errors } = await import(process.env.OIDC_PROVIDER);
const suffix = process.env.KID_SUFFIX || "1";

const rsa = generateKeyPairSync("rsa", { modulusLength: 2048 });
const ec = generateKeyPairSync("ec", { namedCurve: "P-256" });
const keys = [
  { ...rsa.privateKey.export({ format: "jwk" }), kid: `rsa-${suffix}`, alg: "RS256", use: "sig" },
  { ...ec.privateKey.export({ format: "jwk" }), kid: `ec-${suffix}`, alg: "ES256", use: "sig" },
];
writeFileSync(
  process.env.KEYS_FILE,
  JSON.stringify([
    { kid: `rsa-${suffix}`, alg: "RS256", pkcs8: rsa.privateKey.export({ type: "pkcs8", format: "der" }).toString("base64") },
    { kid: `ec-${suffix}`, alg: "ES256", pkcs8: ec.privateKey.export({ type: "pkcs8", format: "der" }).toString("base64") },
  ]),
  { mode: 0o600 },
);

const accounts = {
  alice: { email: "alice@example.org", email_verified: true, groups: ["release"] },
  bob: { email: "bob@example.org", email_verified: true, groups: ["platform"] },
};

const server = http.createServer();
server.listen(Number(process.env.PORT || 0), "127.0.0.1", () => {
  const issuer = `http://127.0.0.1:${server.address().port}`;
  const provider = new Provider(issuer, {
    clients: [
      {
        client_id: "cairn",
        client_secret: process.env.CLIENT_SECRET,
        redirect_uris: [process.env.CAIRN_REDIRECT],
        grant_types: ["authorization_code"],
        response_types: ["code"],
        token_endpoint_auth_method: "client_secret_basic",
        id_token_signed_response_alg: "ES256",
      },
      ...["ci-bot", "release-bot"].map((client_id) => ({
        client_id,
        client_secret: process.env.CI_SECRET,
        redirect_uris: [],
        grant_types: ["client_credentials"],
        response_types: [],
        token_endpoint_auth_method: "client_secret_basic",
      })),
    ],
    jwks: { keys },
    cookies: { keys: ["test-cookie-key-not-a-secret"] },
    pkce: { required: () => true },
    conformIdTokenClaims: false,
    claims: { openid: ["sub"], email: ["email", "email_verified"], groups: ["groups"], profile: ["name"] },
    findAccount: async (ctx, sub) => ({
      accountId: sub,
      claims: async () => ({
        sub,
        ...(accounts[sub] || { email: `${sub}@elsewhere.example`, email_verified: true, groups: [] }),
      }),
    }),
    features: {
      devInteractions: { enabled: true },
      clientCredentials: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: (ctx, client) => (client.clientId.endsWith("-bot") ? "urn:cairn:api" : undefined),
        useGrantedResource: () => true,
        getResourceServerInfo: (ctx, resource) => {
          if (resource !== "urn:cairn:api") throw new errors.InvalidTarget();
          return {
            scope: "api",
            audience: "urn:cairn:api",
            accessTokenFormat: "jwt",
            accessTokenTTL: 300,
            jwt: { sign: { alg: "RS256" } },
          };
        },
      },
    },
  });
  const handle = provider.callback();
  server.on("request", (req, res) => {
    if (req.url.startsWith("/jwks")) console.log("jwks fetched");
    handle(req, res);
  });
  console.log(`issuer ${issuer}`);
});
