// Verifies a key-based Sigstore bundle with sigstore-js (@sigstore/bundle +
// @sigstore/verify), the way `sigstore verify --key` does, with no transparency
// log or timestamp required (cairn's bundles carry none yet).
//
// usage: node verify_bundle.js BUNDLE.json PUBLIC_KEY.pem KEY_ID [TRUSTED_ROOT.json]
// With a trusted root (cairn writes one for its own log: <data>/trusted_root.json),
// the bundle's transparency log entry is required and checked against it
// (inclusion proof, checkpoint signature, body); without, none is required
// (sigstore-js still checks, and so rejects, any entry it cannot trust).
// exit: 0 verified; 1 rejected (invalid bundle or bad signature); 2 usage or setup.
'use strict';

const fs = require('fs');
const crypto = require('crypto');
const util = require('util');

let sigstoreBundle, sigstoreVerify;
try {
  sigstoreBundle = require('@sigstore/bundle');
  sigstoreVerify = require('@sigstore/verify');
} catch (e) {
  console.error(`cannot load @sigstore/verify (run scripts/install-interop-tools): ${e.message}`);
  process.exit(2);
}

const [bundlePath, keyPath, keyId, trustedRootPath] = process.argv.slice(2);
if (!bundlePath || !keyPath || !keyId) {
  console.error('usage: node verify_bundle.js BUNDLE.json PUBLIC_KEY.pem KEY_ID');
  process.exit(2);
}

const json = JSON.parse(fs.readFileSync(bundlePath, 'utf8'));
const publicKey = crypto.createPublicKey(fs.readFileSync(keyPath));

function reject(what, e) {
  console.error(`rejected: ${what}: ${e && e.code ? e.code + ' ' : ''}${e && e.message ? e.message : e}`);
  process.exit(1);
}

let bundle;
try {
  bundle = sigstoreBundle.bundleFromJSON(json);
  sigstoreBundle.assertBundleLatest(bundle);
} catch (e) {
  reject('invalid bundle', e);
}
if (bundle.mediaType !== sigstoreBundle.BUNDLE_V03_MEDIA_TYPE) {
  reject('mediaType', bundle.mediaType);
}
if (!sigstoreBundle.isBundleWithPublicKey(bundle) || !sigstoreBundle.isBundleWithDsseEnvelope(bundle)) {
  reject('not a key-based DSSE bundle', bundle.verificationMaterial.content.$case);
}
// The JSON cairn wrote must be exactly what sigstore-js writes for the same bundle:
// same field names, same base64, nothing extra, nothing missing. One allowed
// difference: proto3 JSON omits an empty repeated field, so sigstore-js drops
// `tlogEntries: []`, which cairn writes on purpose (sigstore-js's own validator
// reads a bundle without it as invalid before defaults are applied).
const rewritten = sigstoreBundle.bundleToJSON(bundle);
if (rewritten.verificationMaterial.tlogEntries === undefined && Array.isArray(json.verificationMaterial.tlogEntries) && json.verificationMaterial.tlogEntries.length === 0) {
  rewritten.verificationMaterial.tlogEntries = [];
}
if (!util.isDeepStrictEqual(rewritten, json)) {
  console.error(`cairn:      ${JSON.stringify(json)}`);
  console.error(`sigstore-js: ${JSON.stringify(rewritten)}`);
  console.error('the bundle JSON does not round-trip through sigstore-js');
  process.exit(2);
}

const emptyTrustedRoot = {
  mediaType: 'application/vnd.dev.sigstore.trustedroot+json;version=0.1',
  tlogs: [],
  certificateAuthorities: [],
  ctlogs: [],
  timestampAuthorities: [],
};
const keyFinder = (hint) => {
  if (hint !== keyId) {
    throw new sigstoreVerify.VerificationError({ code: 'PUBLIC_KEY_ERROR', message: `unknown key hint ${hint}` });
  }
  return { publicKey, validFor: () => true };
};
let trustedRoot = emptyTrustedRoot;
if (trustedRootPath) {
  try {
    trustedRoot = require('@sigstore/protobuf-specs').TrustedRoot.fromJSON(
      JSON.parse(fs.readFileSync(trustedRootPath, 'utf8')));
  } catch (e) {
    console.error(`cannot read the trusted root ${trustedRootPath}: ${e.message}`);
    process.exit(2);
  }
}
const verifier = new sigstoreVerify.Verifier(sigstoreVerify.toTrustMaterial(trustedRoot, keyFinder), {
  tlogThreshold: trustedRootPath ? 1 : 0,
  ctlogThreshold: 0,
  timestampThreshold: 0,
});
try {
  verifier.verify(sigstoreVerify.toSignedEntity(bundle));
} catch (e) {
  reject('verification failed', e);
}
console.log(`verified: ${publicKey.asymmetricKeyType} key ${keyId}`);
process.exit(0);
