//! The client against a real `docker-registry` (distribution 2.8), read back
//! by real `skopeo`.

mod common;

use std::process::Command;

use cairn_registry::{
    Credentials, Error, ImageIndex, Platform, PushedBlob, Registry, RegistryOptions, att_tag,
    media_types,
};
use common::{Auth, MemStore, RegistryServer, TestImage, bytes, run};

#[test]
fn ping_and_monolithic_push_pull_roundtrip() {
    let server = RegistryServer::start();
    let reg = server.client();
    reg.ping().expect("ping");
    let data = bytes(1, 300 * 1024 + 7);
    let digest = cairn_evidence::sha256(&data);
    assert!(!reg.blob_exists("cairn/app", &digest).expect("head"));
    let how = reg
        .push_blob(
            "cairn/app",
            &digest,
            data.len() as u64,
            &mut data.as_slice(),
        )
        .expect("push");
    assert_eq!(how, PushedBlob::Uploaded);
    assert!(reg.blob_exists("cairn/app", &digest).expect("head"));
    let again = reg
        .push_blob(
            "cairn/app",
            &digest,
            data.len() as u64,
            &mut data.as_slice(),
        )
        .expect("push again");
    assert_eq!(again, PushedBlob::Existed);
    let mut out = Vec::new();
    reg.pull_blob("cairn/app", &digest, data.len() as u64, &mut out)
        .expect("pull");
    assert_eq!(out, data);
}

#[test]
fn chunked_push_above_threshold_and_explicit() {
    let server = RegistryServer::start();
    let mut options = server.options(Credentials::Anonymous);
    options.chunk_threshold = 1024 * 1024;
    options.chunk_size = 256 * 1024;
    let reg = Registry::with_options(options).expect("client");
    let data = bytes(2, 1024 * 1024 + 300 * 1024 + 3);
    let digest = cairn_evidence::sha256(&data);
    let how = reg
        .push_blob("chunks", &digest, data.len() as u64, &mut data.as_slice())
        .expect("chunked push");
    assert_eq!(how, PushedBlob::UploadedInChunks);
    let mut out = Vec::new();
    reg.pull_blob("chunks", &digest, data.len() as u64, &mut out)
        .expect("pull");
    assert_eq!(out, data);

    // Directly, with a chunk size that does not divide the size, and a small
    // blob under the threshold goes in one PUT.
    let other = bytes(3, 100_001);
    let od = cairn_evidence::sha256(&other);
    reg.push_blob_chunked(
        "chunks",
        &od,
        other.len() as u64,
        &mut other.as_slice(),
        30_000,
    )
    .expect("explicit chunks");
    let mut out = Vec::new();
    reg.pull_blob("chunks", &od, other.len() as u64, &mut out)
        .expect("pull");
    assert_eq!(out, other);
    let small = bytes(4, 1000);
    let sd = cairn_evidence::sha256(&small);
    assert_eq!(
        reg.push_blob("chunks", &sd, 1000, &mut small.as_slice())
            .expect("small"),
        PushedBlob::Uploaded
    );
}

#[test]
fn upload_of_content_that_is_not_the_digest_is_refused() {
    let server = RegistryServer::start();
    let reg = server.client();
    let data = bytes(5, 5000);
    let wrong = cairn_evidence::sha256(b"something else");
    let err = reg
        .push_blob_monolithic("bad", &wrong, 5000, &mut data.as_slice())
        .expect_err("registry must refuse");
    let msg = err.to_string();
    assert!(msg.contains("bad") && msg.contains("127.0.0.1"), "{msg}");
    assert!(!reg.blob_exists("bad", &wrong).expect("head"));
    // A reader shorter than the declared size is an error, not a short blob.
    let d = cairn_evidence::sha256(&data);
    let err = reg
        .push_blob_monolithic("bad", &d, 6000, &mut data.as_slice())
        .expect_err("short content");
    assert!(matches!(err, Error::Io { .. }), "{err:?}");
    assert!(!reg.blob_exists("bad", &d).expect("head"));
}

/// One pass: the producer writes (here in odd-sized pieces) while the
/// uploader PATCHes chunks (the first 8 KiB, then 16, 32 and 64 KiB ones);
/// the blob lands whole. Then the faults: a producer
/// that names another digest, one that claims another size, and one that fails
/// half-way; each is refused with its reason and nothing is in the repository.
#[test]
fn streaming_push_lands_whole_and_lies_or_failures_keep_nothing() {
    let server = RegistryServer::start();
    let mut options = server.options(Credentials::Anonymous);
    options.chunk_size = 64 * 1024;
    options.first_stream_chunk = 8 * 1024;
    let reg = Registry::with_options(options).expect("client");
    let data = bytes(11, 5 * 64 * 1024 + 12_345);
    let digest = cairn_evidence::sha256(&data);
    let produce = |sink: &mut dyn std::io::Write| -> Result<_, Error> {
        for piece in data.chunks(10_007) {
            sink.write_all(piece).expect("write");
        }
        Ok(("stored", digest, data.len() as u64))
    };
    assert_eq!(
        reg.push_blob_streaming("stream", produce)
            .expect("streamed"),
        "stored"
    );
    let mut out = Vec::new();
    reg.pull_blob("stream", &digest, data.len() as u64, &mut out)
        .expect("pull");
    assert_eq!(out, data);

    // A producer that names a digest its bytes do not have.
    let other = bytes(12, 200_000);
    let lie = cairn_evidence::sha256(b"not these bytes");
    let err = reg
        .push_blob_streaming("stream-lie", |sink| {
            sink.write_all(&other).expect("write");
            Ok::<_, Error>(((), lie, other.len() as u64))
        })
        .expect_err("the registry must refuse a wrong digest");
    println!("wrong digest refused: {err}");
    assert!(err.to_string().contains("stream-lie"), "{err}");
    assert!(!reg.blob_exists("stream-lie", &lie).expect("head"));
    let real = cairn_evidence::sha256(&other);
    assert!(!reg.blob_exists("stream-lie", &real).expect("head"));

    // A producer that claims more bytes than it wrote.
    let err = reg
        .push_blob_streaming("stream-size", |sink| {
            sink.write_all(&other).expect("write");
            Ok::<_, Error>(((), real, other.len() as u64 + 1))
        })
        .expect_err("a size that is not what was sent");
    let reason = std::error::Error::source(&err).map(ToString::to_string);
    println!("wrong size refused: {err}: {reason:?}");
    assert!(
        reason.as_deref().is_some_and(|r| r.contains("bytes")),
        "{err:?}"
    );
    assert!(!reg.blob_exists("stream-size", &real).expect("head"));

    // A producer that fails half-way: its error, and no blob.
    let err = reg
        .push_blob_streaming("stream-fail", |sink| {
            sink.write_all(&other[..150_000]).expect("write");
            Err::<((), cairn_registry::Digest, u64), _>(Error::Io {
                context: cairn_registry::Context {
                    registry: "local".into(),
                    repository: "stream-fail".into(),
                    operation: "produce the blob",
                },
                source: std::io::Error::other("the disk is full"),
            })
        })
        .expect_err("a failed producer");
    println!("failed producer: {err}");
    assert!(format!("{err:?}").contains("the disk is full"), "{err:?}");
    assert!(!reg.blob_exists("stream-fail", &real).expect("head"));
}

#[test]
fn mount_between_repositories_and_fallback_to_upload() {
    let server = RegistryServer::start();
    let reg = server.client();
    let data = bytes(6, 70_000);
    let digest = cairn_evidence::sha256(&data);
    reg.push_blob("team/a", &digest, 70_000, &mut data.as_slice())
        .expect("push a");
    let how = reg
        .push_blob_from(
            "team/b",
            &digest,
            70_000,
            &mut data.as_slice(),
            Some("team/a"),
        )
        .expect("mount");
    assert_eq!(how, PushedBlob::Mounted);
    assert!(reg.blob_exists("team/b", &digest).expect("head"));
    assert_eq!(
        reg.push_blob_from(
            "team/b",
            &digest,
            70_000,
            &mut data.as_slice(),
            Some("team/a")
        )
        .expect("again"),
        PushedBlob::Existed
    );
    // The source does not have it: 202, so the blob is uploaded instead.
    let other = bytes(7, 1234);
    let od = cairn_evidence::sha256(&other);
    assert!(
        !reg.mount_blob("team/c", &od, "team/a")
            .expect("mount declined")
    );
    assert_eq!(
        reg.push_blob_from("team/c", &od, 1234, &mut other.as_slice(), Some("team/a"))
            .expect("fallback"),
        PushedBlob::Uploaded
    );
    let mut out = Vec::new();
    reg.pull_blob("team/c", &od, 1234, &mut out).expect("pull");
    assert_eq!(out, other);
}

#[test]
fn image_push_get_pull_and_skopeo_reads_it() {
    let server = RegistryServer::start();
    let reg = server.client();
    let image = TestImage::new("hello from cairn\n");
    let store = image.store();
    let pushed = reg
        .push_image(&store, &image.manifest_digest, "cairn/hello", "v1")
        .expect("push image");
    assert_eq!(pushed, image.manifest_digest);

    let fetched = reg
        .get_manifest("cairn/hello", "v1", &[media_types::OCI_MANIFEST])
        .expect("get by tag");
    assert_eq!(fetched.bytes, image.manifest);
    assert_eq!(fetched.media_type, media_types::OCI_MANIFEST);
    assert_eq!(fetched.digest, image.manifest_digest);
    let by_digest = reg
        .get_manifest(
            "cairn/hello",
            image.manifest_digest.to_string().as_str(),
            &[],
        )
        .expect("get by digest");
    assert_eq!(by_digest, fetched);

    // Pushing again skips every blob (they exist) and gives the same digest.
    assert_eq!(
        reg.push_image(&store, &image.manifest_digest, "cairn/hello", "v1-again")
            .expect("again"),
        image.manifest_digest
    );

    let pulled = MemStore::default();
    let d = reg
        .pull_image("cairn/hello", "v1", &pulled)
        .expect("pull image");
    assert_eq!(d, image.manifest_digest);
    assert_eq!(*pulled.blobs.lock().expect("lock"), image.blobs);

    let inspect = run(Command::new("skopeo").args([
        "inspect",
        "--tls-verify=false",
        &format!("docker://{}/cairn/hello:v1", server.host()),
    ]));
    let v: serde_json::Value = serde_json::from_str(&inspect).expect("skopeo json");
    assert_eq!(v["Digest"], image.manifest_digest.to_string());
    assert_eq!(v["Layers"][0], image.layer.digest.to_string());
    let dir = tempfile::tempdir().expect("tmp");
    let layout = dir.path().join("layout");
    run(Command::new("skopeo").args([
        "--insecure-policy",
        "copy",
        "--src-tls-verify=false",
        &format!("docker://{}/cairn/hello:v1", server.host()),
        &format!("oci:{}:v1", layout.display()),
    ]));
    let copied = std::fs::read(layout.join("blobs/sha256").join(image.layer.digest.hex()))
        .expect("skopeo copied the layer");
    assert_eq!(copied, image.blobs[&image.layer.digest]);
}

#[test]
fn index_resolves_to_linux_amd64() {
    let server = RegistryServer::start();
    let reg = server.client();
    let amd = TestImage::new("amd64\n");
    let arm = TestImage::new("arm64\n");
    for img in [&amd, &arm] {
        reg.push_image(
            &img.store(),
            &img.manifest_digest,
            "multi",
            img.manifest_digest.to_string().as_str(),
        )
        .expect("push child");
    }
    let entry = |img: &TestImage, arch: &str| {
        let mut d = img.descriptor();
        d.platform = Some(Platform {
            architecture: arch.into(),
            os: "linux".into(),
            variant: None,
        });
        d
    };
    let index = ImageIndex {
        schema_version: 2,
        media_type: Some(media_types::OCI_INDEX.into()),
        manifests: vec![entry(&arm, "arm64"), entry(&amd, "amd64")],
    };
    let bytes = serde_json::to_vec(&index).expect("json");
    let index_digest = reg
        .push_manifest("multi", "latest", media_types::OCI_INDEX, &bytes)
        .expect("push index");
    assert_eq!(index_digest, cairn_evidence::sha256(&bytes));
    let (fetched, manifest) = reg.get_image_manifest("multi", "latest").expect("resolve");
    assert_eq!(fetched.digest, amd.manifest_digest);
    assert_eq!(manifest.layers[0].digest, amd.layer.digest);
    let store = MemStore::default();
    assert_eq!(
        reg.pull_image("multi", "latest", &store).expect("pull"),
        amd.manifest_digest
    );

    // Pushing the index from a store pushes its children first.
    let mut both = amd.store();
    both.blobs
        .get_mut()
        .expect("lock")
        .extend(arm.blobs.clone());
    both.blobs
        .get_mut()
        .expect("lock")
        .insert(index_digest, bytes.clone());
    assert_eq!(
        reg.push_image(&both, &index_digest, "multi2", "latest")
            .expect("push index image"),
        index_digest
    );
    assert!(reg.blob_exists("multi2", &arm.layer.digest).expect("head"));

    let only_arm = ImageIndex {
        manifests: vec![entry(&arm, "arm64")],
        ..index
    };
    let b = serde_json::to_vec(&only_arm).expect("json");
    reg.push_manifest("multi", "arm-only", media_types::OCI_INDEX, &b)
        .expect("push");
    let err = reg
        .get_image_manifest("multi", "arm-only")
        .expect_err("no amd64");
    assert!(matches!(err, Error::NoPlatform { .. }), "{err}");
    assert!(err.to_string().contains("linux/amd64"));
}

#[test]
fn attach_two_evidences_and_read_them_back_via_the_att_tag() {
    let server = RegistryServer::start();
    let reg = server.client();
    let image = TestImage::new("evidence subject\n");
    reg.push_image(&image.store(), &image.manifest_digest, "app", "rc1")
        .expect("push");
    let subject = image.descriptor();
    let provenance = br#"{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json","n":1}"#;
    let test_result = br#"{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json","n":2}"#;
    let at = "application/vnd.dev.sigstore.bundle.v0.3+json";
    let m1 = reg
        .attach(
            "app",
            &subject,
            at,
            provenance,
            media_types::SIGSTORE_BUNDLE,
        )
        .expect("attach 1");
    let m2 = reg
        .attach(
            "app",
            &subject,
            at,
            test_result,
            media_types::SIGSTORE_BUNDLE,
        )
        .expect("attach 2");
    assert_ne!(m1, m2);
    // Attaching the same payload again changes nothing.
    assert_eq!(
        reg.attach(
            "app",
            &subject,
            at,
            provenance,
            media_types::SIGSTORE_BUNDLE
        )
        .expect("again"),
        m1
    );

    // The registry has no referrers API, so the .att tag carries both.
    let att = reg
        .get_manifest(
            "app",
            &att_tag(&image.manifest_digest),
            &[media_types::OCI_MANIFEST],
        )
        .expect("att tag");
    let m: cairn_registry::ImageManifest = serde_json::from_slice(&att.bytes).expect("json");
    assert_eq!(m.layers.len(), 2);

    let mut got = reg
        .attached("app", &image.manifest_digest)
        .expect("attached");
    got.sort_by(|a, b| a.payload.cmp(&b.payload));
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].payload, provenance);
    assert_eq!(got[1].payload, test_result);
    assert!(
        got.iter()
            .all(|a| a.artifact_type == at && a.media_type == media_types::SIGSTORE_BUNDLE)
    );
    let mut digests: Vec<_> = got.iter().map(|a| a.manifest_digest).collect();
    digests.sort();
    let mut expected = vec![m1, m2];
    expected.sort();
    assert_eq!(digests, expected);

    // The artifact manifests themselves are OCI 1.1 artifacts about the image.
    let art = reg
        .get_manifest("app", m1.to_string().as_str(), &[])
        .expect("artifact");
    let art: cairn_registry::ImageManifest = serde_json::from_slice(&art.bytes).expect("json");
    assert_eq!(art.artifact_type.as_deref(), Some(at));
    assert_eq!(art.config.media_type, media_types::OCI_EMPTY);
    assert_eq!(art.subject.expect("subject").digest, image.manifest_digest);

    // Nothing attached to another image.
    let other = TestImage::new("other\n");
    assert!(
        reg.attached("app", &other.manifest_digest)
            .expect("none")
            .is_empty()
    );
}

#[test]
fn basic_auth_right_and_wrong_password() {
    let server = RegistryServer::start_with(Auth::Htpasswd {
        user: "alice".into(),
        password: "s3cret-pa55".into(),
    });
    let good = Registry::with_options(server.options(Credentials::basic("alice", "s3cret-pa55")))
        .expect("client");
    good.ping().expect("ping with the right password");
    let data = bytes(8, 10_000);
    let d = cairn_evidence::sha256(&data);
    good.push_blob("private/app", &d, 10_000, &mut data.as_slice())
        .expect("push");
    let mut out = Vec::new();
    good.pull_blob("private/app", &d, 10_000, &mut out)
        .expect("pull");
    assert_eq!(out, data);

    let bad = Registry::with_options(server.options(Credentials::basic("alice", "wrong-pa55word")))
        .expect("client");
    let err = bad
        .blob_exists("private/app", &d)
        .expect_err("wrong password");
    assert!(
        matches!(err, Error::Unauthorized { status: 401, .. }),
        "{err:?}"
    );
    let text = format!("{err} {err:?} {bad:?}");
    assert!(
        text.contains("401") && text.contains("private/app") && text.contains(&server.host()),
        "{text}"
    );
    assert!(!text.contains("wrong-pa55word"), "password leaked: {text}");

    let anon = server.client();
    assert!(matches!(
        anon.ping().expect_err("anonymous"),
        Error::Unauthorized { .. }
    ));
}

#[test]
fn bearer_token_flow_with_es256_tokens() {
    let dir = tempfile::tempdir().expect("tmp");
    let tokens = common::token::TokenServer::start(dir.path(), "bob", "t0ken-pass");
    let server = RegistryServer::start_with(Auth::Token {
        realm: tokens.realm(),
        service: common::token::SERVICE.into(),
        issuer: common::token::ISSUER.into(),
        root_cert: tokens.root_cert.clone(),
    });
    let reg = Registry::with_options(server.options(Credentials::basic("bob", "t0ken-pass")))
        .expect("client");
    let image = TestImage::new("behind a token\n");
    reg.push_image(&image.store(), &image.manifest_digest, "secure/app", "v1")
        .unwrap_or_else(|e| panic!("push with tokens: {e}\n{}", server.log()));
    let store = MemStore::default();
    assert_eq!(
        reg.pull_image("secure/app", "v1", &store).expect("pull"),
        image.manifest_digest
    );
    // Mount needs pull on the source too: both scopes go in one token.
    assert_eq!(
        reg.push_blob_from(
            "secure/other",
            &image.layer.digest,
            image.layer.size,
            &mut image.blobs[&image.layer.digest].as_slice(),
            Some("secure/app")
        )
        .expect("mount"),
        PushedBlob::Mounted
    );

    let seen = tokens.requests.lock().expect("lock").clone();
    assert!(seen.iter().all(|(authorized, _)| *authorized), "{seen:?}");
    assert!(
        seen.iter()
            .any(|(_, s)| s.contains(&"repository:secure/app:pull,push".to_owned())),
        "{seen:?}"
    );
    assert!(
        seen.iter().any(
            |(_, s)| s.contains(&"repository:secure/other:pull,push".to_owned())
                && s.contains(&"repository:secure/app:pull".to_owned())
        ),
        "{seen:?}"
    );
    // Tokens are cached per scope: far fewer token requests than registry calls.
    assert!(seen.len() <= 6, "{} token requests: {seen:?}", seen.len());

    let bad = Registry::with_options(server.options(Credentials::basic("bob", "not-the-pass")))
        .expect("client");
    let err = bad
        .get_manifest("secure/app", "v1", &[])
        .expect_err("wrong password");
    assert!(
        matches!(err, Error::Unauthorized { status: 401, .. }),
        "{err:?}"
    );
    let text = format!("{err} {err:?}");
    assert!(
        text.contains("token") && text.contains("secure/app"),
        "{text}"
    );
    assert!(!text.contains("not-the-pass"), "password leaked: {text}");
}

#[test]
fn corrupt_manifest_and_blob_are_refused_and_nothing_is_kept() {
    let server = RegistryServer::start();
    let reg = server.client();
    let image = TestImage::new("corrupt me\n");
    reg.push_image(&image.store(), &image.manifest_digest, "victim", "v1")
        .expect("push");

    server.corrupt_blob(&image.layer.digest);
    let mut sink = Vec::new();
    let err = reg
        .pull_blob("victim", &image.layer.digest, image.layer.size, &mut sink)
        .expect_err("corrupt layer");
    assert!(matches!(err, Error::DigestMismatch { .. }), "{err:?}");
    let dir = tempfile::tempdir().expect("tmp");
    let target = dir.path().join("layer");
    assert!(
        reg.pull_blob_to_path("victim", &image.layer.digest, image.layer.size, &target)
            .is_err()
    );
    assert_eq!(
        std::fs::read_dir(dir.path()).expect("ls").count(),
        0,
        "a partial file was kept"
    );
    let store = MemStore::default();
    let err = reg
        .pull_image("victim", "v1", &store)
        .expect_err("corrupt image");
    assert!(matches!(err, Error::DigestMismatch { .. }), "{err:?}");
    assert!(
        !store
            .blobs
            .lock()
            .expect("lock")
            .contains_key(&image.layer.digest)
    );

    server.corrupt_blob(&image.manifest_digest);
    for reference in ["v1", image.manifest_digest.to_string().as_str()] {
        let err = reg
            .get_manifest("victim", reference, &[])
            .expect_err("corrupt manifest");
        assert!(
            matches!(err, Error::DigestMismatch { .. }),
            "{reference}: {err:?}"
        );
        assert!(err.to_string().contains("victim"));
    }

    // Pushing bytes under a digest they do not have is refused before sending.
    let err = reg
        .push_manifest(
            "victim",
            image.config.digest.to_string().as_str(),
            media_types::OCI_MANIFEST,
            &image.manifest,
        )
        .expect_err("mismatch");
    assert!(matches!(err, Error::DigestMismatch { .. }), "{err:?}");
}

#[test]
fn unknown_repository_blob_and_tag_give_clear_errors() {
    let server = RegistryServer::start();
    let reg = server.client();
    let err = reg
        .get_manifest("no/such-repo", "latest", &[])
        .expect_err("unknown repo");
    let msg = err.to_string();
    assert!(matches!(err, Error::NotFound { .. }), "{err:?}");
    assert!(
        msg.contains("no/such-repo") && msg.contains("latest") && msg.contains(&server.host()),
        "{msg}"
    );

    let image = TestImage::new("x\n");
    reg.push_image(&image.store(), &image.manifest_digest, "known", "v1")
        .expect("push");
    let missing = cairn_evidence::sha256(b"missing");
    let err = reg
        .pull_blob("known", &missing, 7, &mut Vec::new())
        .expect_err("unknown blob");
    assert!(matches!(err, Error::NotFound { .. }), "{err:?}");
    assert!(
        err.to_string().contains(missing.to_string().as_str()),
        "{err}"
    );
    let err = reg
        .get_manifest("known", "v2", &[])
        .expect_err("unknown tag");
    assert!(err.to_string().contains("MANIFEST_UNKNOWN"), "{err}");

    // Names that are not valid never reach the wire.
    assert!(matches!(
        reg.get_manifest("../etc", "v1", &[]),
        Err(Error::InvalidName { .. })
    ));
    assert!(matches!(
        reg.get_manifest("known", "v1/../x", &[]),
        Err(Error::InvalidName { .. })
    ));

    // A registry that is not there.
    let port = common::free_port();
    let mut o = RegistryOptions::new(format!("127.0.0.1:{port}"), Credentials::Anonymous);
    o.scheme = cairn_registry::Scheme::HttpLoopback;
    let gone = Registry::with_options(o).expect("client");
    let err = gone.ping().expect_err("nothing listening");
    assert!(matches!(err, Error::Transport { .. }), "{err:?}");
    assert!(
        err.to_string().contains(&format!("127.0.0.1:{port}")),
        "{err}"
    );
}

#[test]
fn https_with_a_private_ca_and_untrusted_certificates_refused() {
    let server = RegistryServer::start_with(Auth::Tls);
    let ca = std::fs::read(server.dir.path().join("tls.crt")).expect("cert");
    let mut options = RegistryOptions::new(server.host(), Credentials::Anonymous);
    options.ca_pem = Some(ca);
    let reg = Registry::with_options(options).expect("client");
    reg.ping().expect("ping over TLS");
    let image = TestImage::new("over tls\n");
    reg.push_image(&image.store(), &image.manifest_digest, "tls/app", "v1")
        .expect("push over TLS");
    let store = MemStore::default();
    assert_eq!(
        reg.pull_image("tls/app", "v1", &store)
            .expect("pull over TLS"),
        image.manifest_digest
    );

    // The default roots do not know this certificate: refused, not trusted.
    let untrusted = Registry::new(&server.host(), Credentials::Anonymous).expect("client");
    let err = untrusted.ping().expect_err("self-signed certificate");
    assert!(matches!(err, Error::Transport { .. }), "{err:?}");
    // And plain HTTP to a TLS port is not silently used.
    assert!(server.client().ping().is_err());
}

/// Issue 18: HTTPS spoken to a real plain-HTTP registry failed with rustls'
/// "received corrupt message"; it now says the registry answers plain HTTP and
/// what to do (on loopback: --plain-http).
#[test]
fn https_to_a_plain_http_registry_says_so_with_the_fix() {
    let server = RegistryServer::start();
    let mut o = RegistryOptions::new(server.host(), Credentials::Anonymous);
    o.scheme = cairn_registry::Scheme::Https;
    let reg = Registry::with_options(o).expect("client");
    let err = reg.ping().expect_err("TLS to plain HTTP fails");
    println!("{err}");
    assert!(
        matches!(err, Error::PlainHttp { loopback: true, .. }),
        "{err:?}"
    );
    let text = err.to_string();
    assert!(
        text.contains("answers plain HTTP, not HTTPS") && text.contains("--plain-http"),
        "{text}"
    );
    // The same registry over plain HTTP (loopback) works.
    server.client().ping().expect("plain HTTP on loopback");
}
