//! cairn's CycloneDX and SPDX output judged by the real validators, run as child
//! processes: the CycloneDX 1.6 schema from ../shared/conformance (Python
//! `jsonschema`), `cyclonedx-python-lib`'s strict JSON validator, the SPDX 2.3 schema
//! and `pyspdxtools`. The validators live in the venv `scripts/install-sbom-validators`
//! makes; without it these tests fail and say so. Also: every `cyclonedx/valid` 1.6
//! JSON file validates against the schema and every `cyclonedx/invalid` one does not.

use std::path::{Path, PathBuf};
use std::process::Command;

use cairn_sbom::cyclonedx::{self, DocumentInput, Subject, SubjectKind};
use cairn_sbom::cyclonedx_read;
use cairn_sbom::{Component, scan_tree, spdx_doc};

fn conformance_dir() -> PathBuf {
    cairn_testkit::conformance_dir()
}

fn venv() -> PathBuf {
    let target = match std::env::var_os("CARGO_TARGET_DIR") {
        Some(t) => PathBuf::from(t),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"),
    };
    let bin = target.join("sbom-tools/venv/bin");
    assert!(
        bin.join("python").is_file() && bin.join("pyspdxtools").is_file(),
        "the SBOM validators are not installed in {}: run scripts/install-sbom-validators",
        bin.display()
    );
    bin
}

/// Runs a Python snippet from the validators' venv; returns (success, stdout+stderr).
fn python(code: &str, args: &[&Path]) -> (bool, String) {
    let out = Command::new(venv().join("python"))
        .arg("-c")
        .arg(code)
        .args(args)
        .output()
        .expect("run the venv's python");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// Validates each file named on the command line against a schema (first argument),
/// with the CycloneDX schema's neighbours registered under their `$id`s; prints
/// `ok <file>` or `fail <file>: <first error>` per file.
const SCHEMA_CHECK: &str = r#"
import json, sys, pathlib
import jsonschema, referencing
schema_path = pathlib.Path(sys.argv[1])
resources = []
for p in schema_path.parent.glob("*.json"):
    s = json.loads(p.read_text())
    if "$id" in s:
        resources.append((s["$id"], referencing.Resource.from_contents(s, default_specification=referencing.jsonschema.DRAFT7)))
registry = referencing.Registry().with_resources(resources)
schema = json.loads(schema_path.read_text())
cls = jsonschema.validators.validator_for(schema)
validator = cls(schema, registry=registry, format_checker=cls.FORMAT_CHECKER)
for f in sys.argv[2:]:
    doc = json.loads(pathlib.Path(f).read_text())
    err = jsonschema.exceptions.best_match(validator.iter_errors(doc))
    print(("ok " + f) if err is None else ("fail " + f + ": " + err.message[:300]))
"#;

const CYCLONEDX_STRICT: &str = r#"
import sys, pathlib
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator
err = JsonStrictValidator(SchemaVersion.V1_6).validate_str(pathlib.Path(sys.argv[1]).read_text())
if err is not None:
    print(repr(err))
    sys.exit(1)
print("valid")
"#;

fn schema_results(schema: &Path, files: &[PathBuf]) -> Vec<(PathBuf, Result<(), String>)> {
    let mut args: Vec<&Path> = vec![schema];
    args.extend(files.iter().map(PathBuf::as_path));
    let (ok, out) = python(SCHEMA_CHECK, &args);
    assert!(ok, "schema check crashed: {out}");
    let lines: Vec<&str> = out
        .lines()
        .filter(|l| l.starts_with("ok ") || l.starts_with("fail "))
        .collect();
    assert_eq!(lines.len(), files.len(), "one verdict per file: {out}");
    files
        .iter()
        .zip(lines)
        .map(|(f, l)| {
            (
                f.clone(),
                if l.starts_with("ok ") {
                    Ok(())
                } else {
                    Err(l.to_string())
                },
            )
        })
        .collect()
}

/// Every fixture under tests/data, scanned as one source tree plus an OS root.
fn fixture_components() -> Vec<Component> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data");
    let files: Vec<(String, PathBuf)> = vec![
        ("Cargo.lock".into(), root.join("cargo/Cargo.lock")),
        (
            "web/package-lock.json".into(),
            root.join("npm/package-lock.json"),
        ),
        ("py/poetry.lock".into(), root.join("poetry/poetry.lock")),
        ("py2/uv.lock".into(), root.join("uv/uv.lock")),
        (
            "py3/requirements.txt".into(),
            root.join("requirements/requirements.txt"),
        ),
        ("svc/go.mod".into(), root.join("go/go.mod")),
        ("svc/go.sum".into(), root.join("go/go.sum")),
        ("rb/Gemfile.lock".into(), root.join("ruby/Gemfile.lock")),
        (
            "php/composer.lock".into(),
            root.join("composer/composer.lock"),
        ),
        ("java/pom.xml".into(), root.join("maven-pom/pom.xml")),
        (
            "java/dependency-list.txt".into(),
            root.join("maven-list/dependency-list.txt"),
        ),
        ("var/lib/dpkg/status".into(), root.join("dpkg/status")),
        ("lib/apk/db/installed".into(), root.join("apk/installed")),
    ];
    let read = |p: &str| {
        files
            .iter()
            .find(|(q, _)| q == p)
            .and_then(|(_, f)| std::fs::read(f).ok())
    };
    let report = scan_tree(files.iter().map(|(p, _)| p.as_str()), &read);
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    assert_eq!(report.files.len(), files.len());
    report.components
}

fn input(components: &[Component]) -> DocumentInput<'_> {
    DocumentInput {
        subject: Subject {
            kind: SubjectKind::Application,
            name: "shop".into(),
            version: Some("2.1.0".into()),
            purl: Some("pkg:generic/shop@2.1.0".into()),
        },
        components,
        uuid: *b"0123456789abcdef",
        timestamp: "2026-11-25T12:00:00Z",
        tool_version: env!("CARGO_PKG_VERSION"),
    }
}

#[test]
fn cyclonedx_output_passes_schema_and_cyclonedx_python_lib() {
    let conf = conformance_dir();
    let components = fixture_components();
    let bytes = cyclonedx::to_json(&input(&components)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bom.cdx.json");
    std::fs::write(&file, &bytes).unwrap();

    let results = schema_results(
        &conf.join("cyclonedx/schema/bom-1.6.schema.json"),
        std::slice::from_ref(&file),
    );
    assert_eq!(results[0].1, Ok(()), "bom-1.6.schema.json");
    let (ok, out) = python(CYCLONEDX_STRICT, &[&file]);
    assert!(
        ok && out.contains("valid"),
        "cyclonedx-python-lib strict validator: {out}"
    );

    // The document says what it should, not just something valid.
    let doc: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(doc["specVersion"], "1.6");
    assert_eq!(
        doc["serialNumber"],
        "urn:uuid:30313233-3435-4637-b839-616263646566"
    );
    let purls: Vec<&str> = doc["components"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["purl"].as_str().unwrap())
        .collect();
    let mut unique: Vec<&str> = components.iter().map(|c| c.purl.as_str()).collect();
    unique.dedup();
    assert_eq!(purls, unique, "one component per purl, sorted");
    let jackson = doc["components"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "jackson-databind")
        .unwrap();
    assert_eq!(
        jackson["evidence"]["occurrences"].as_array().unwrap().len(),
        2,
        "found in pom.xml and dependency-list.txt"
    );
    assert!(
        doc["dependencies"]
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d["ref"] == "pkg:cargo/serde@1.0.210")
    );
}

#[test]
fn spdx_output_passes_schema_and_pyspdxtools() {
    let conf = conformance_dir();
    let components = fixture_components();
    let bytes = spdx_doc::to_json(&input(&components), "https://cairn.example/spdx").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bom.spdx.json");
    std::fs::write(&file, &bytes).unwrap();

    let results = schema_results(
        &conf.join("spdx/spdx-2.3-schema.json"),
        std::slice::from_ref(&file),
    );
    assert_eq!(results[0].1, Ok(()), "spdx-2.3-schema.json");
    let out = Command::new(venv().join("pyspdxtools"))
        .arg("-i")
        .arg(&file)
        .output()
        .expect("run pyspdxtools");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "pyspdxtools: {text}");

    let doc: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(doc["spdxVersion"], "SPDX-2.3");
    assert_eq!(doc["dataLicense"], "CC0-1.0");
    assert_eq!(
        doc["documentNamespace"],
        "https://cairn.example/spdx/shop-30313233-3435-4637-b839-616263646566"
    );
    assert_eq!(doc["relationships"][0]["relationshipType"], "DESCRIBES");
}

#[test]
fn same_input_same_bytes() {
    let mut components = fixture_components();
    let a = cyclonedx::to_json(&input(&components)).unwrap();
    let s = spdx_doc::to_json(&input(&components), "https://cairn.example/spdx").unwrap();
    components.reverse();
    assert_eq!(a, cyclonedx::to_json(&input(&components)).unwrap());
    assert_eq!(
        s,
        spdx_doc::to_json(&input(&components), "https://cairn.example/spdx").unwrap()
    );
}

#[test]
fn bad_document_inputs_are_errors() {
    let components = fixture_components();
    for ts in [
        "2026-11-25 12:00:00Z",
        "2026-13-25T12:00:00Z",
        "2026-11-25T12:00:00",
        "2026-11-25T12:00:00.Z",
        "yesterday",
    ] {
        let mut i = input(&components);
        i.timestamp = ts;
        assert!(cyclonedx::to_json(&i).is_err(), "{ts}");
        assert!(spdx_doc::to_json(&i, "https://x.example/").is_err(), "{ts}");
    }
    let i = input(&components);
    for ns in ["not a uri", "https://x.example/#frag", "relative/path"] {
        assert!(spdx_doc::to_json(&i, ns).is_err(), "{ns}");
    }
}

fn corpus(conf: &Path, dir: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(conf.join("cyclonedx").join(dir))
        .expect("read the corpus folder")
        .map(|e| e.expect("read a corpus entry").path())
        .filter(|p| p.to_string_lossy().ends_with("-1.6.json"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no 1.6 JSON cases in cyclonedx/{dir}");
    files
}

/// The schema (with its format checks) as the strict judge of the CycloneDX corpus.
#[test]
fn cyclonedx_corpus_valid_pass_invalid_fail_schema() {
    let conf = conformance_dir();
    let schema = conf.join("cyclonedx/schema/bom-1.6.schema.json");
    let valid = corpus(&conf, "valid");
    let invalid = corpus(&conf, "invalid");
    for (f, r) in schema_results(&schema, &valid) {
        assert_eq!(r, Ok(()), "{}", f.display());
    }
    for (f, r) in schema_results(&schema, &invalid) {
        assert!(r.is_err(), "{} validated", f.display());
    }
}

/// The judges judge: a cairn document broken on purpose is rejected by each of them.
#[test]
fn validators_reject_broken_documents() {
    let conf = conformance_dir();
    let components = fixture_components();
    let dir = tempfile::tempdir().unwrap();
    let mut cdx: serde_json::Value =
        serde_json::from_slice(&cyclonedx::to_json(&input(&components)).unwrap()).unwrap();
    cdx["components"][0]["type"] = serde_json::json!("bogus");
    let cdx_file = dir.path().join("broken.cdx.json");
    std::fs::write(&cdx_file, serde_json::to_vec(&cdx).unwrap()).unwrap();
    let results = schema_results(
        &conf.join("cyclonedx/schema/bom-1.6.schema.json"),
        std::slice::from_ref(&cdx_file),
    );
    assert!(results[0].1.is_err());
    let (ok, out) = python(CYCLONEDX_STRICT, &[&cdx_file]);
    assert!(
        !ok,
        "cyclonedx-python-lib accepted a bogus component type: {out}"
    );

    let mut spdx: serde_json::Value = serde_json::from_slice(
        &spdx_doc::to_json(&input(&components), "https://cairn.example/spdx").unwrap(),
    )
    .unwrap();
    spdx["packages"][1]["licenseDeclared"] = serde_json::json!("Not-A-Licence-1.0");
    let spdx_file = dir.path().join("broken.spdx.json");
    std::fs::write(&spdx_file, serde_json::to_vec(&spdx).unwrap()).unwrap();
    let out = Command::new(venv().join("pyspdxtools"))
        .arg("-i")
        .arg(&spdx_file)
        .output()
        .expect("run pyspdxtools");
    assert!(
        !out.status.success(),
        "pyspdxtools accepted an unknown licence id"
    );
}

/// cairn's own strict reader: every valid 1.6 JSON case reads, every invalid one is
/// rejected, and cairn's output reads back to the components it was made from.
#[test]
fn cyclonedx_corpus_strict_reader() {
    let conf = conformance_dir();
    for f in corpus(&conf, "valid") {
        let bytes = std::fs::read(&f).unwrap();
        if let Err(e) = cyclonedx_read::read(&bytes) {
            panic!("{}: {e}", f.display());
        }
    }
    // Each invalid case is rejected for the reason its name gives.
    let reasons: &[(&str, &str)] = &[
        ("bomformat", "$.bomFormat"),
        ("component-ref", "bom-ref: must not be empty"),
        ("component-swid", ".swid"),
        ("component-type", "unknown component type"),
        ("dependency", "$.dependencies[0]: no ref"),
        ("empty-component", "no name"),
        ("hash-alg", "unknown hash algorithm"),
        ("hash-md5", "hashes[0]: \"foo\" is not a hex digest"),
        ("hash-sha1", "hashes[1]: \"foo\" is not a hex digest"),
        ("hash-sha256", "hashes[2]: \"foo\" is not a hex digest"),
        ("hash-sha512", "hashes[3]: \"foo\" is not a hex digest"),
        ("issue-type", "resolves[0].type"),
        ("license-choice", "both license and expression"),
        (
            "license-declared-concluded-mix",
            "an expression must be the only licence entry",
        ),
        ("license-encoding", "text.encoding"),
        ("license-id", "\"Apache-2\" is not an SPDX licence id"),
        ("license-missing-id-and-name", "neither id nor name"),
        ("metadata-license", "$.metadata.licenses"),
        ("metadata-timestamp", "$.metadata.timestamp"),
        ("missing-component-type", "no type"),
        ("patch-type", "patches[0].type"),
        ("properties", "property without a name"),
        ("scope", ".scope"),
        ("serialnumber", "$.serialNumber"),
        ("service-data", "data[0].flow"),
    ];
    let invalid = corpus(&conf, "invalid");
    assert_eq!(
        invalid.len(),
        reasons.len(),
        "a reason for every invalid case"
    );
    for f in invalid {
        let name = f.file_name().unwrap().to_string_lossy().into_owned();
        let case = name
            .strip_prefix("invalid-")
            .and_then(|n| n.strip_suffix("-1.6.json"))
            .unwrap();
        let (_, why) = reasons
            .iter()
            .find(|(c, _)| *c == case)
            .unwrap_or_else(|| panic!("no reason listed for {name}"));
        match cyclonedx_read::read(&std::fs::read(&f).unwrap()) {
            Ok(_) => panic!("{name} was accepted"),
            Err(e) => assert!(e.to_string().contains(why), "{name}: {e}"),
        }
    }
    let components = fixture_components();
    let bom = cyclonedx_read::read(&cyclonedx::to_json(&input(&components)).unwrap()).unwrap();
    let mut want: Vec<&str> = components.iter().map(|c| c.purl.as_str()).collect();
    want.dedup();
    let got: Vec<&str> = bom
        .components
        .iter()
        .filter_map(|c| c.purl.as_deref())
        .collect();
    assert_eq!(got, want);
    assert_eq!(bom.subject.map(|s| s.name), Some("shop".to_string()));
    assert!(
        bom.dependencies
            .iter()
            .any(|(r, on)| r == "pkg:cargo/serde@1.0.210"
                && on == &["pkg:cargo/serde_derive@1.0.210"])
    );
}
