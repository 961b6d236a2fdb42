//! Canonical JSON and the digests a decision carries: the policy digest (over the
//! sorted policy files and the data) and the input digest (over the input).
//!
//! Canonical form here: no insignificant whitespace, object members sorted by
//! the UTF-8 bytes of their keys, strings and numbers as `serde_json` writes them.
//! It is independent of `serde_json`'s `preserve_order` feature (which another
//! crate in the build may turn on). For integers and strings it coincides with
//! RFC 8785 (JCS) when keys are ASCII; floats are written by `serde_json`.

/// Canonical JSON text of `value`.
pub fn canonical_json(value: &serde_json::Value) -> String {
    let mut out = String::new();
    write_canonical(value, &mut out);
    out
}

fn write_canonical(value: &serde_json::Value, out: &mut String) {
    use serde_json::Value;
    match value {
        Value::Null | Value::Bool(_) | Value::Number(_) | Value::String(_) => {
            // Scalars: serde_json's own compact writer (cannot fail for a Value).
            out.push_str(&value.to_string());
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        Value::Object(members) => {
            let mut sorted: Vec<_> = members.iter().collect();
            sorted.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
            out.push('{');
            for (i, (key, item)) in sorted.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(key.clone()).to_string());
                out.push(':');
                write_canonical(item, out);
            }
            out.push('}');
        }
    }
}

/// `sha256:<hex>` of bytes.
pub fn sha256_prefixed(bytes: &[u8]) -> String {
    cairn_evidence::sha256(bytes).to_string()
}

/// The policy digest: SHA-256 over the policy files sorted by name, then the
/// data. Each file contributes `u64be(len(name)) name u64be(len(text)) text`,
/// then `u64be(len(data)) data` with `data` in canonical JSON. Length prefixes
/// make the encoding unambiguous; sorting makes it independent of the order the
/// files were handed in.
pub fn policy_digest(files: &[(String, String)], data: &serde_json::Value) -> String {
    let mut sorted: Vec<&(String, String)> = files.iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    let mut ctx = cairn_evidence::Sha256Hasher::new();
    for (name, text) in sorted {
        for part in [name.as_bytes(), text.as_bytes()] {
            ctx.update(&(part.len() as u64).to_be_bytes());
            ctx.update(part);
        }
    }
    let data = canonical_json(data);
    ctx.update(&(data.len() as u64).to_be_bytes());
    ctx.update(data.as_bytes());
    ctx.finish().to_string()
}

/// The input digest: SHA-256 over the canonical JSON of the input.
pub fn input_digest(input: &serde_json::Value) -> String {
    sha256_prefixed(canonical_json(input).as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn canonical_json_sorts_keys_at_every_level_and_drops_whitespace() {
        let v = json!({"b": 1, "a": {"d": [true, null, "x\"y"], "c": -2.5}});
        assert_eq!(
            canonical_json(&v),
            r#"{"a":{"c":-2.5,"d":[true,null,"x\"y"]},"b":1}"#
        );
    }

    #[test]
    fn input_digest_ignores_member_order() {
        let a: serde_json::Value = serde_json::from_str(r#"{"x":1,"y":[1,2]}"#).unwrap();
        let b: serde_json::Value = serde_json::from_str(r#"{ "y": [1, 2], "x": 1 }"#).unwrap();
        assert_eq!(input_digest(&a), input_digest(&b));
        let c = json!({"x": 1, "y": [2, 1]});
        assert_ne!(input_digest(&a), input_digest(&c));
    }

    #[test]
    fn sha256_of_empty_is_the_known_value() {
        assert_eq!(
            sha256_prefixed(b""),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn policy_digest_is_order_independent_and_unambiguous() {
        let a = ("a.rego".to_owned(), "package x".to_owned());
        let b = ("b.rego".to_owned(), "package y".to_owned());
        let data = json!({});
        assert_eq!(
            policy_digest(&[a.clone(), b.clone()], &data),
            policy_digest(&[b.clone(), a.clone()], &data)
        );
        // Moving bytes between name and text changes the digest.
        let shifted = ("a.regop".to_owned(), "ackage x".to_owned());
        assert_ne!(
            policy_digest(std::slice::from_ref(&a), &data),
            policy_digest(&[shifted], &data)
        );
        // So does the data.
        assert_ne!(
            policy_digest(std::slice::from_ref(&a), &data),
            policy_digest(&[a], &json!({"cairn": {"params": {}}}))
        );
    }
}
