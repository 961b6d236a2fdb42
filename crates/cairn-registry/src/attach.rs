//! Evidence attached to images: OCI 1.1 artifact manifests whose `subject` is
//! the image (image-spec v1.1 "Artifacts Guidance", distribution-spec v1.1
//! "Listing Referrers"), and, for registries without the referrers API, the
//! cosign tag scheme `sha256-<hex>.att` whose layers are the attached payloads.

use std::collections::{BTreeMap, BTreeSet};

use ureq::http;

use crate::client::{Body, Call, read_bounded};
use crate::manifest::{
    ImageIndex, ImageManifest, MAX_MANIFEST_BYTES, media_types, parse_json, pull_scope,
};
use crate::{Descriptor, Digest, Error, Registry, Result};

/// Layer annotation on `.att` manifests: the payload's artifact type.
pub const ATT_LAYER_ARTIFACT_TYPE: &str = "dev.cairn.artifact-type";
/// Layer annotation on `.att` manifests: the OCI 1.1 artifact manifest that
/// carries the same payload.
pub const ATT_LAYER_REFERRER: &str = "dev.cairn.referrer";
/// Attached payloads are read up to 16 MiB each.
pub const MAX_PAYLOAD_BYTES: u64 = 16 * 1024 * 1024;

/// The empty JSON object used as config of artifacts (`application/vnd.oci.empty.v1+json`).
const EMPTY_JSON: &[u8] = b"{}";

/// One payload attached to an image.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attached {
    /// The artifact type (e.g. the Sigstore bundle media type).
    pub artifact_type: String,
    /// The payload's media type.
    pub media_type: String,
    /// The payload, verified against its digest.
    pub payload: Vec<u8>,
    /// The digest of the payload.
    pub payload_digest: Digest,
    /// The manifest that carries it (the artifact manifest when known).
    pub manifest_digest: Digest,
}

impl Registry {
    /// Attaches `payload` to `subject` in `repository` as an OCI 1.1 artifact;
    /// when the registry does not confirm it processed the subject
    /// (`OCI-Subject`), also adds it to the `sha256-<hex>.att` tag. Returns
    /// the artifact manifest's digest.
    pub fn attach(
        &self,
        repository: &str,
        subject: &Descriptor,
        artifact_type: &str,
        payload: &[u8],
        payload_media_type: &str,
    ) -> Result<Digest> {
        let context = self.repo_context(repository, "attach evidence")?;
        if payload.len() as u64 > MAX_PAYLOAD_BYTES {
            return Err(Error::TooLarge {
                context,
                limit: MAX_PAYLOAD_BYTES,
            });
        }
        let empty = self.push_empty_config(repository)?;
        let payload_digest = cairn_evidence::sha256(payload);
        self.push_blob(
            repository,
            &payload_digest,
            payload.len() as u64,
            &mut &payload[..],
        )?;
        let layer = Descriptor::new(payload_media_type, payload_digest, payload.len() as u64);
        let manifest = ImageManifest {
            schema_version: 2,
            media_type: Some(media_types::OCI_MANIFEST.into()),
            artifact_type: Some(artifact_type.into()),
            config: empty.clone(),
            layers: vec![layer.clone()],
            subject: Some(Descriptor::new(
                subject.media_type.clone(),
                subject.digest,
                subject.size,
            )),
            annotations: BTreeMap::new(),
        };
        let bytes = to_json(&manifest, &context)?;
        let digest = cairn_evidence::sha256(&bytes);
        let pushed = self.push_manifest_inner(
            repository,
            &digest.to_string(),
            media_types::OCI_MANIFEST,
            &bytes,
        )?;
        if pushed.subject_supported {
            return Ok(pushed.digest);
        }
        let mut att_layer = layer;
        att_layer
            .annotations
            .insert(ATT_LAYER_ARTIFACT_TYPE.into(), artifact_type.into());
        att_layer
            .annotations
            .insert(ATT_LAYER_REFERRER.into(), pushed.digest.to_string());
        self.add_to_att_tag(repository, &subject.digest, &empty, att_layer)?;
        Ok(pushed.digest)
    }

    fn push_empty_config(&self, repository: &str) -> Result<Descriptor> {
        let digest = cairn_evidence::sha256(EMPTY_JSON);
        self.push_blob(
            repository,
            &digest,
            EMPTY_JSON.len() as u64,
            &mut &EMPTY_JSON[..],
        )?;
        let mut d = Descriptor::new(media_types::OCI_EMPTY, digest, EMPTY_JSON.len() as u64);
        d.data = Some("e30=".into());
        Ok(d)
    }

    /// Read-modify-write of the `.att` manifest, keeping the layers already
    /// there; re-read after writing so a concurrent writer cannot silently
    /// drop this payload.
    fn add_to_att_tag(
        &self,
        repository: &str,
        subject: &Digest,
        config: &Descriptor,
        layer: Descriptor,
    ) -> Result<()> {
        let context = self.context(repository, "update the .att tag");
        let tag = att_tag(subject);
        for _ in 0..5 {
            let mut layers = match self.read_att(repository, subject)? {
                Some((_, m)) => m.layers,
                None => Vec::new(),
            };
            if layers.iter().any(|l| same_payload(l, &layer)) {
                return Ok(());
            }
            layers.push(layer.clone());
            let manifest = ImageManifest {
                schema_version: 2,
                media_type: Some(media_types::OCI_MANIFEST.into()),
                artifact_type: None,
                config: config.clone(),
                layers,
                subject: None,
                annotations: BTreeMap::new(),
            };
            let bytes = to_json(&manifest, &context)?;
            self.push_manifest(repository, &tag, media_types::OCI_MANIFEST, &bytes)?;
            if let Some((_, m)) = self.read_att(repository, subject)?
                && m.layers.iter().any(|l| same_payload(l, &layer))
            {
                return Ok(());
            }
        }
        Err(Error::InvalidResponse {
            context,
            reason: format!("tag {tag} kept losing this payload to concurrent writers; retry"),
        })
    }

    fn read_att(
        &self,
        repository: &str,
        subject: &Digest,
    ) -> Result<Option<(Digest, ImageManifest)>> {
        let context = self.context(repository, "read the .att tag");
        match self.get_manifest(repository, &att_tag(subject), &[media_types::OCI_MANIFEST]) {
            Ok(f) => Ok(Some((
                f.digest,
                parse_json(&f.bytes, &context, ".att manifest")?,
            ))),
            Err(Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Everything attached to `subject`: from the referrers API when the
    /// registry offers it, and from the `.att` tag; de-duplicated by
    /// (artifact type, payload digest). Payloads are verified.
    pub fn attached(&self, repository: &str, subject: &Digest) -> Result<Vec<Attached>> {
        let mut out = Vec::new();
        let mut seen = BTreeSet::new();
        if let Some(index) = self.referrers(repository, subject)? {
            for r in index.manifests {
                let context = self.context(repository, "read a referrer");
                let fetched =
                    self.get_manifest(repository, &r.digest.to_string(), &[&r.media_type])?;
                let m: ImageManifest = parse_json(&fetched.bytes, &context, "referrer manifest")?;
                if m.subject.as_ref().map(|s| &s.digest) != Some(subject) {
                    return Err(Error::InvalidResponse {
                        context,
                        reason: format!("referrer {} is not about {subject}", fetched.digest),
                    });
                }
                let artifact_type = m
                    .artifact_type
                    .clone()
                    .unwrap_or_else(|| m.config.media_type.clone());
                for layer in &m.layers {
                    if seen.insert((artifact_type.clone(), layer.digest)) {
                        out.push(self.read_payload(
                            repository,
                            layer,
                            &artifact_type,
                            &fetched.digest,
                        )?);
                    }
                }
            }
        }
        if let Some((att_digest, m)) = self.read_att(repository, subject)? {
            for layer in &m.layers {
                let artifact_type = layer
                    .annotations
                    .get(ATT_LAYER_ARTIFACT_TYPE)
                    .cloned()
                    .unwrap_or_else(|| layer.media_type.clone());
                let manifest_digest = layer
                    .annotations
                    .get(ATT_LAYER_REFERRER)
                    .and_then(|d| Digest::parse(d).ok())
                    .unwrap_or(att_digest);
                if seen.insert((artifact_type.clone(), layer.digest)) {
                    out.push(self.read_payload(
                        repository,
                        layer,
                        &artifact_type,
                        &manifest_digest,
                    )?);
                }
            }
        }
        Ok(out)
    }

    /// The referrers index, or `None` when the registry has no referrers API.
    fn referrers(&self, repository: &str, subject: &Digest) -> Result<Option<ImageIndex>> {
        let context = self.repo_context(repository, "list referrers")?;
        let resp = self.send(Call {
            method: http::Method::GET,
            url: format!("/v2/{repository}/referrers/{subject}"),
            context: context.clone(),
            scopes: vec![pull_scope(repository)],
            headers: vec![("Accept", media_types::OCI_INDEX.into())],
            body: Body::Empty,
        })?;
        if resp.status().as_u16() == 404 {
            return Ok(None);
        }
        let resp = self.expect(resp, &context, &[200], "referrers", "retry later")?;
        let bytes = read_bounded(resp, MAX_MANIFEST_BYTES, &context)?;
        parse_json(&bytes, &context, "referrers index").map(Some)
    }

    fn read_payload(
        &self,
        repository: &str,
        layer: &Descriptor,
        artifact_type: &str,
        manifest_digest: &Digest,
    ) -> Result<Attached> {
        if layer.size > MAX_PAYLOAD_BYTES {
            return Err(Error::TooLarge {
                context: self.context(repository, "read attached payload"),
                limit: MAX_PAYLOAD_BYTES,
            });
        }
        let mut payload = Vec::with_capacity(usize::try_from(layer.size).unwrap_or(0));
        self.pull_blob(repository, &layer.digest, layer.size, &mut payload)?;
        Ok(Attached {
            artifact_type: artifact_type.to_owned(),
            media_type: layer.media_type.clone(),
            payload,
            payload_digest: layer.digest,
            manifest_digest: *manifest_digest,
        })
    }
}

/// The cosign attestation tag for a subject: `sha256-<hex>.att`.
pub fn att_tag(subject: &Digest) -> String {
    format!("sha256-{}.att", subject.hex())
}

fn same_payload(a: &Descriptor, b: &Descriptor) -> bool {
    a.digest == b.digest
        && a.annotations.get(ATT_LAYER_ARTIFACT_TYPE) == b.annotations.get(ATT_LAYER_ARTIFACT_TYPE)
}

fn to_json(value: &ImageManifest, context: &crate::error::Context) -> Result<Vec<u8>> {
    serde_json::to_vec(value).map_err(|source| Error::Json {
        context: context.clone(),
        what: "artifact manifest",
        source,
    })
}
