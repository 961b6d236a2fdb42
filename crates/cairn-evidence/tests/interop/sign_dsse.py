"""Signs a DSSE envelope with in-toto 3.x (in_toto.models.metadata.Envelope, i.e.
securesystemslib's DSSE signing) with a fresh key, for cairn to verify.

usage: python sign_dsse.py ed25519|p256 PAYLOAD_FILE PAYLOAD_TYPE OUT_ENVELOPE.json OUT_PUBLIC_KEY.pem
exit: 0 written; 2 usage or setup error.
"""

import json
import sys

try:
    from cryptography.hazmat.primitives import serialization
    from in_toto.models.metadata import Envelope
    from securesystemslib.signer import CryptoSigner
except ImportError as e:
    print(f"cannot import in-toto (run scripts/install-interop-tools): {e}", file=sys.stderr)
    sys.exit(2)


def main() -> int:
    if len(sys.argv) != 6:
        print(__doc__, file=sys.stderr)
        return 2
    algorithm, payload_path, payload_type, out_envelope, out_key = sys.argv[1:]
    if algorithm == "ed25519":
        signer = CryptoSigner.generate_ed25519()
    elif algorithm == "p256":
        signer = CryptoSigner.generate_ecdsa()
    else:
        print(__doc__, file=sys.stderr)
        return 2
    with open(payload_path, "rb") as f:
        envelope = Envelope(payload=f.read(), payload_type=payload_type, signatures={})
    envelope.sign(signer)
    with open(out_envelope, "wb") as f:
        f.write(json.dumps(envelope.to_dict()).encode())
    # The public half, as SubjectPublicKeyInfo PEM.
    public = serialization.load_pem_private_key(signer.private_bytes, None).public_key()
    with open(out_key, "wb") as f:
        f.write(
            public.public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )
    print(f"signed with {signer.public_key.scheme} key {signer.public_key.keyid}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
