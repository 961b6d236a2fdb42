//! Reading and writing the image JSON documents: bounded, strict parsers for
//! manifests, configs and indexes (reachable for fuzzing), and a deterministic
//! writer (object keys sorted, no whitespace) so the same image always has the
//! same digest.

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::layout::MAX_JSON_BYTES;
use crate::{Digest, ImageConfiguration, ImageIndex, ImageManifest, OciError};

/// OCI and Docker schema2 media types of a single-image manifest.
pub(crate) const MANIFEST_TYPES: [&str; 2] = [
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
];
/// OCI and Docker media types of an image index / manifest list.
pub(crate) const INDEX_TYPES: [&str; 2] = [
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
];
/// OCI and Docker media types of an image config.
pub(crate) const CONFIG_TYPES: [&str; 2] = [
    "application/vnd.oci.image.config.v1+json",
    "application/vnd.docker.container.image.v1+json",
];

fn parse<T: DeserializeOwned>(what: &str, bytes: &[u8]) -> Result<T, OciError> {
    if bytes.len() as u64 > MAX_JSON_BYTES {
        return Err(OciError::TooLarge {
            what: "JSON document",
            digest: cairn_evidence::sha256(bytes),
            max: MAX_JSON_BYTES,
        });
    }
    serde_json::from_slice(bytes).map_err(|source| OciError::Json {
        what: format!("{what} {}", cairn_evidence::sha256(bytes)),
        source,
    })
}

/// Parses an image manifest (OCI or Docker schema2) from untrusted bytes:
/// at most [`MAX_JSON_BYTES`], `schemaVersion` 2, a manifest media type if one
/// is given, sha256 digests only.
pub fn parse_manifest(bytes: &[u8]) -> Result<ImageManifest, OciError> {
    let manifest: ImageManifest = parse("manifest", bytes)?;
    let what = || format!("manifest {}", cairn_evidence::sha256(bytes));
    if manifest.schema_version() != 2 {
        return Err(OciError::Invalid {
            what: what(),
            reason: "schemaVersion must be 2",
        });
    }
    if let Some(media_type) = manifest.media_type()
        && !MANIFEST_TYPES.contains(&media_type.to_string().as_str())
    {
        return Err(OciError::UnsupportedMediaType {
            what: what(),
            media_type: media_type.to_string(),
            hint: "an OCI image manifest or a Docker schema2 manifest",
        });
    }
    crate::digest::from_oci(manifest.config().digest())?;
    for layer in manifest.layers() {
        crate::digest::from_oci(layer.digest())?;
    }
    Ok(manifest)
}

/// Parses an image config from untrusted bytes: at most [`MAX_JSON_BYTES`],
/// `rootfs.type` "layers", every diff_id a sha256 digest.
pub fn parse_config(bytes: &[u8]) -> Result<ImageConfiguration, OciError> {
    let config: ImageConfiguration = parse("config", bytes)?;
    if config.rootfs().typ() != "layers" {
        return Err(OciError::Invalid {
            what: format!("config {}", cairn_evidence::sha256(bytes)),
            reason: "rootfs.type must be \"layers\"",
        });
    }
    for diff_id in config.rootfs().diff_ids() {
        Digest::parse(diff_id)?;
    }
    Ok(config)
}

/// Parses an image index (OCI index, Docker manifest list, or a layout's
/// `index.json`) from untrusted bytes: at most [`MAX_JSON_BYTES`],
/// `schemaVersion` 2, sha256 digests only.
pub fn parse_index(bytes: &[u8]) -> Result<ImageIndex, OciError> {
    let index: ImageIndex = parse("index", bytes)?;
    if index.schema_version() != 2 {
        return Err(OciError::Invalid {
            what: format!("index {}", cairn_evidence::sha256(bytes)),
            reason: "schemaVersion must be 2",
        });
    }
    for entry in index.manifests() {
        crate::digest::from_oci(entry.digest())?;
    }
    Ok(index)
}

/// Serialises `value` deterministically: object keys sorted by their bytes,
/// no insignificant whitespace, strings escaped minimally.
pub(crate) fn canonical<T: Serialize>(what: &str, value: &T) -> Result<Vec<u8>, OciError> {
    let value = serde_json::to_value(value).map_err(|source| OciError::Json {
        what: what.to_string(),
        source,
    })?;
    let mut out = Vec::new();
    write_value(&value, &mut out);
    Ok(out)
}

fn write_value(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        Value::Number(n) => out.extend_from_slice(n.to_string().as_bytes()),
        Value::String(s) => write_string(s, out),
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_value(item, out);
            }
            out.push(b']');
        }
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
            out.push(b'{');
            for (i, (key, item)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_string(key, out);
                out.push(b':');
                write_value(item, out);
            }
            out.push(b'}');
        }
    }
}

fn write_string(s: &str, out: &mut Vec<u8>) {
    out.push(b'"');
    for c in s.chars() {
        match c {
            '"' => out.extend_from_slice(b"\\\""),
            '\\' => out.extend_from_slice(b"\\\\"),
            '\n' => out.extend_from_slice(b"\\n"),
            '\r' => out.extend_from_slice(b"\\r"),
            '\t' => out.extend_from_slice(b"\\t"),
            c if u32::from(c) < 0x20 => {
                out.extend_from_slice(format!("\\u{:04x}", u32::from(c)).as_bytes());
            }
            c => {
                let mut buf = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            }
        }
    }
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_sorts_keys_and_escapes() {
        let v: Value = serde_json::from_str(r#"{"b":1,"a":{"z":[true,null],"y":"q\"\u0001\n"}}"#)
            .expect("json");
        let out = canonical("test", &v).expect("canonical");
        assert_eq!(
            String::from_utf8(out.clone()).expect("utf8"),
            r#"{"a":{"y":"q\"\u0001\n","z":[true,null]},"b":1}"#
        );
        let back: Value = serde_json::from_slice(&out).expect("reparse");
        assert_eq!(back, v);
    }

    #[test]
    fn parsers_refuse_bad_documents() {
        assert!(parse_manifest(b"{").is_err());
        assert!(parse_manifest(br#"{"schemaVersion":1,"config":{"mediaType":"a/b","digest":"sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855","size":0},"layers":[]}"#).is_err());
        let ok = br#"{"schemaVersion":2,"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855","size":0},"layers":[]}"#;
        parse_manifest(ok).expect("valid manifest");
        let md5 = String::from_utf8(ok.to_vec()).expect("utf8").replace(
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            "sha512:cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce47d0d13c5d85f2b0ff8318d2877eec2f63b931bd47417a81a538327af927da3e",
        );
        assert!(parse_manifest(md5.as_bytes()).is_err());
        let big = vec![b' '; (MAX_JSON_BYTES + 1) as usize];
        assert!(matches!(parse_config(&big), Err(OciError::TooLarge { .. })));
        assert!(
            parse_config(
                br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"x","diff_ids":[]}}"#
            )
            .is_err()
        );
        parse_config(
            br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#,
        )
        .expect("valid config");
        parse_index(br#"{"schemaVersion":2,"manifests":[]}"#).expect("valid index");
    }
}
