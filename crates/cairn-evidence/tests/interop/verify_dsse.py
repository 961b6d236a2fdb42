"""Verifies a DSSE envelope with in-toto 3.x (in_toto.models.metadata.Envelope,
i.e. securesystemslib's DSSE verification) and a PEM public key.

usage: python verify_dsse.py ENVELOPE.json PUBLIC_KEY.pem KEY_ID
exit: 0 verified; 1 rejected (bad signature); 2 usage or setup error.
"""

import json
import sys

try:
    from cryptography.hazmat.primitives.serialization import load_pem_public_key
    from in_toto.models.metadata import Envelope
    from securesystemslib.exceptions import VerificationError
    from securesystemslib.signer import SSlibKey
except ImportError as e:
    print(f"cannot import in-toto (run scripts/install-interop-tools): {e}", file=sys.stderr)
    sys.exit(2)


def main() -> int:
    if len(sys.argv) != 4:
        print(__doc__, file=sys.stderr)
        return 2
    envelope_path, key_path, key_id = sys.argv[1:]
    with open(envelope_path, "rb") as f:
        envelope = Envelope.from_dict(json.load(f))
    with open(key_path, "rb") as f:
        key = SSlibKey.from_crypto(load_pem_public_key(f.read()), keyid=key_id)
    try:
        accepted = envelope.verify([key], 1)
    except VerificationError as e:
        print(f"rejected: {e}", file=sys.stderr)
        return 1
    if list(accepted) != [key_id]:
        print(f"rejected: accepted keys {list(accepted)}", file=sys.stderr)
        return 1
    print(f"verified: {key.scheme} key {key_id}, payloadType {envelope.payload_type}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
