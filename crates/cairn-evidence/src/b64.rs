//! Base64 as DSSE and protobuf JSON use it: standard alphabet with padding when
//! writing; standard or URL-safe, padded or not, when reading (DSSE envelope.md
//! "Either standard or URL-safe encoding is allowed"; the proto3 JSON mapping
//! accepts both).

use base64::Engine;
use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};

use crate::EvidenceError;

const READ_CONFIG: GeneralPurposeConfig =
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent);
const READ_STANDARD: GeneralPurpose = GeneralPurpose::new(&alphabet::STANDARD, READ_CONFIG);
const READ_URL_SAFE: GeneralPurpose = GeneralPurpose::new(&alphabet::URL_SAFE, READ_CONFIG);

pub(crate) fn encode(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

pub(crate) fn decode(text: &str, field: &'static str) -> Result<Vec<u8>, EvidenceError> {
    READ_STANDARD
        .decode(text)
        .or_else(|_| READ_URL_SAFE.decode(text))
        .map_err(|source| EvidenceError::Base64 { field, source })
}

/// serde helpers for `Vec<u8>` fields carried as base64 strings.
pub(crate) mod serde_bytes {
    use serde::{Deserialize, Deserializer, Serializer};

    pub(crate) fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::encode(bytes))
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        super::decode(&text, "a bytes field").map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_every_alphabet_and_padding_and_writes_standard_padded() {
        let bytes = [0xfb, 0xff, 0x01];
        assert_eq!(encode(&bytes), "+/8B");
        for text in ["+/8B", "-_8B"] {
            assert_eq!(decode(text, "t").expect("decodes"), bytes);
        }
        assert_eq!(encode(&[0xfb]), "+w==");
        assert_eq!(decode("+w", "t").expect("unpadded"), [0xfb]);
        assert!(decode("not base64!", "t").is_err());
    }
}
