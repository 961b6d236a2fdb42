// The peer side of `cairn bench verify`: verifies one Sigstore bundle with
// sigstore-js (@sigstore/verify) N times in one thread, the same full offline
// verification (certificate chain, SCTs, log entries, identity) cairn does, and
// prints {"iterations", "seconds"} as JSON.
//
// usage: node sigstore_verify.js TRUSTED_ROOT BUNDLE ARTIFACT IDENTITY ISSUER ITERATIONS
'use strict';
const fs = require('fs');
const { bundleFromJSON } = require('@sigstore/bundle');
const { TrustedRoot } = require('@sigstore/protobuf-specs');
const { Verifier, toSignedEntity, toTrustMaterial } = require('@sigstore/verify');

const [rootPath, bundlePath, artifactPath, identity, issuer, n] = process.argv.slice(2);
const iterations = Number(n);
const root = TrustedRoot.fromJSON(JSON.parse(fs.readFileSync(rootPath, 'utf8')));
const verifier = new Verifier(toTrustMaterial(root));
const bundle = bundleFromJSON(JSON.parse(fs.readFileSync(bundlePath, 'utf8')));
const artifact = fs.readFileSync(artifactPath);
const policy = { subjectAlternativeName: identity, extensions: { issuer } };

const once = () => verifier.verify(toSignedEntity(bundle, artifact), policy);
for (let i = 0; i < Math.min(50, iterations); i++) once();
const start = process.hrtime.bigint();
for (let i = 0; i < iterations; i++) once();
const seconds = Number(process.hrtime.bigint() - start) / 1e9;
console.log(JSON.stringify({ iterations, seconds }));
