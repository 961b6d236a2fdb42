//! `cairn_sigstore::verify` on arbitrary bundle bytes, with the conformance
//! suite's production trusted root, the default identity, and a fixed time.
#![no_main]

use std::sync::LazyLock;

use cairn_sigstore::{ArtifactInput, TrustedRoot, VerificationPolicy, verify};
use libfuzzer_sys::fuzz_target;

static ROOT: LazyLock<TrustedRoot> = LazyLock::new(|| {
    TrustedRoot::from_json(include_bytes!("../data/production_trusted_root.json"))
        .expect("the production trusted root parses")
});

const ARTIFACT: &[u8] = include_bytes!("../data/a.txt");
const NOW: i64 = 1_900_000_000;

fuzz_target!(|data: &[u8]| {
    let identity = VerificationPolicy::Identity {
        san: "https://github.com/sigstore-conformance/extremely-dangerous-public-oidc-beacon/.github/workflows/extremely-dangerous-oidc-beacon.yml@refs/heads/main".to_owned(),
        issuer: "https://token.actions.githubusercontent.com".to_owned(),
    };
    // Both ways in: the artifact's bytes, and only its digest (as `cairn verify` streams it).
    let by_bytes = verify(data, ArtifactInput::Bytes(ARTIFACT), &identity, &ROOT, NOW);
    let mut hasher = cairn_sigstore::ArtifactHasher::new();
    hasher.update(ARTIFACT);
    let by_digest = verify(
        data,
        ArtifactInput::Sha256(hasher.finish()),
        &identity,
        &ROOT,
        NOW,
    );
    // The digest path may only ask for the bytes, never decide differently.
    if let (Ok(_), Err(e)) = (&by_bytes, &by_digest) {
        assert!(
            matches!(e, cairn_sigstore::VerifyError::NeedsArtifactBytes),
            "verified from the bytes, rejected from the digest: {e}"
        );
    }
    if by_digest.is_ok() {
        assert!(by_bytes.is_ok(), "verified from the digest only");
    }
});
