//! deploy/kubernetes renders with `kubectl kustomize` for every overlay, and
//! what it renders is what cairn needs: `cairn serve --listen 0.0.0.0:8443`
//! over TLS from the serving certificate's secret (0400), `cairn worker`, both
//! reading `CAIRN_DATABASE_URL` from a secret and org.toml from a ConfigMap
//! that cairn's own parser accepts; every image pinned by digest on an
//! allowed registry (cairn's own rule, never Docker Hub); secrets declared
//! without data; the worker's sandbox needs granted inside the pod's user
//! namespace only (never privileged); and a ValidatingWebhookConfiguration
//! with failurePolicy Fail, sideEffects None, v1 reviews, aimed at the serve
//! Service's port and path, sending exactly the resources the webhook judges,
//! and skipping cairn's own namespace.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use cairn_model::config::parse_org;
use cairn_model::image_ref::ImageRef;
use serde_json::Value;

const KUBECTL: &str = "kubectl is needed to render deploy/kubernetes (`kubectl kustomize`): install it \
(the `kubectl` package from pkgs.k8s.io, or Debian's `kubernetes-client`)";

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/kubernetes")
}

/// The overlay's rendered objects, as JSON (YAML read by Debian's python3-yaml).
fn render(overlay: &Path) -> Vec<Value> {
    let out = Command::new("kubectl")
        .arg("kustomize")
        .arg(overlay)
        .output()
        .expect(KUBECTL);
    assert!(
        out.status.success(),
        "kubectl kustomize {}: {}",
        overlay.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let mut child = Command::new("/usr/bin/python3")
        .args([
            "-c",
            "import sys, json, yaml; json.dump([d for d in yaml.safe_load_all(sys.stdin) if d], sys.stdout)",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 with python3-yaml (Debian) must be installed");
    {
        use std::io::Write;
        child.stdin.take().unwrap().write_all(&out.stdout).unwrap();
    }
    let json = child.wait_with_output().unwrap();
    assert!(
        json.status.success(),
        "{}",
        String::from_utf8_lossy(&json.stderr)
    );
    serde_json::from_slice(&json.stdout).unwrap()
}

fn find<'a>(objects: &'a [Value], kind: &str, name: &str) -> &'a Value {
    objects
        .iter()
        .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no {kind} {name}"))
}

fn strings(v: &Value) -> Vec<&str> {
    v.as_array()
        .unwrap_or_else(|| panic!("not a list: {v}"))
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect()
}

fn env_secret<'a>(container: &'a Value, name: &str) -> (&'a str, &'a str) {
    let e = container["env"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == name)
        .unwrap_or_else(|| panic!("no env {name} in {container}"));
    let r = &e["valueFrom"]["secretKeyRef"];
    (r["name"].as_str().unwrap(), r["key"].as_str().unwrap())
}

/// The volume mounted at the directory holding `path` in `pod`.
fn volume_of<'a>(pod: &'a Value, container: &Value, path: &str) -> &'a Value {
    let mount = container["volumeMounts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| path.starts_with(&format!("{}/", m["mountPath"].as_str().unwrap())))
        .max_by_key(|m| m["mountPath"].as_str().unwrap().len())
        .unwrap_or_else(|| panic!("nothing mounted over {path}"));
    pod["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == mount["name"])
        .unwrap()
}

fn check_overlay(name: &str, objects: &[Value]) {
    let namespace = "cairn";
    for o in objects {
        let kind = o["kind"].as_str().unwrap();
        if !matches!(kind, "Namespace" | "ValidatingWebhookConfiguration") {
            assert_eq!(o["metadata"]["namespace"], namespace, "{name}: {kind}");
        }
    }
    // org.toml: cairn's own parser accepts it, and it maps namespaces.
    let config = objects
        .iter()
        .find(|o| o["kind"] == "ConfigMap" && o["data"]["org.toml"].is_string())
        .expect("a ConfigMap holding org.toml");
    let org = parse_org("org.toml", config["data"]["org.toml"].as_str().unwrap())
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    assert!(
        !org.admission_namespaces.is_empty(),
        "{name}: no namespace mapped"
    );
    assert!(!org.admission_namespaces.contains_key(namespace));

    // Secrets are declared, never filled in git.
    for secret in ["cairn-database", "cairn-keys"] {
        let s = find(objects, "Secret", secret);
        assert!(
            s.get("data").is_none() && s.get("stringData").is_none(),
            "{s}"
        );
    }

    // serve: the command, TLS from the certificate's secret, the database URL.
    let serve = find(objects, "Deployment", "cairn-serve");
    let pod = &serve["spec"]["template"]["spec"];
    let c = &pod["containers"][0];
    let command = strings(&c["command"]);
    assert_eq!(
        command[..4],
        ["cairn", "serve", "--listen", "0.0.0.0:8443"],
        "{command:?}"
    );
    assert_eq!(command[4], "--tls-cert");
    assert_eq!(command[6], "--tls-key");
    assert_eq!(command.len(), 8, "{command:?}");
    for file in [command[5], command[7]] {
        let v = volume_of(pod, c, file);
        assert_eq!(v["secret"]["secretName"], "cairn-serve-tls", "{file}");
        assert_eq!(
            v["secret"]["defaultMode"], 0o400,
            "{file}: the key must be 0400"
        );
    }
    assert_eq!(
        env_secret(c, "CAIRN_DATABASE_URL"),
        ("cairn-database", "url")
    );
    assert_eq!(c["ports"][0]["containerPort"], 8443);
    assert_eq!(c["readinessProbe"]["httpGet"]["scheme"], "HTTPS");
    assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/readyz");
    let keys = volume_of(pod, c, "/var/lib/cairn/keys/signing.key");
    assert_eq!(keys["secret"]["secretName"], "cairn-keys");
    assert_eq!(keys["secret"]["defaultMode"], 0o400);

    // worker: the command, the database URL, the sandbox's needs inside the
    // pod's user namespace only.
    let worker = find(objects, "Deployment", "cairn-worker");
    let wpod = &worker["spec"]["template"]["spec"];
    let w = &wpod["containers"][0];
    assert_eq!(strings(&w["command"]), ["cairn", "worker"]);
    assert_eq!(
        env_secret(w, "CAIRN_DATABASE_URL"),
        ("cairn-database", "url")
    );
    assert_eq!(
        wpod["hostUsers"], false,
        "capabilities only in the pod's user namespace"
    );
    assert_eq!(w["securityContext"]["procMount"], "Unmasked");
    for p in [pod, wpod] {
        assert_eq!(p["hostUsers"], false);
        assert_eq!(p["automountServiceAccountToken"], false);
        for c in p["containers"].as_array().unwrap() {
            let sc = &c["securityContext"];
            assert_ne!(sc["privileged"], true);
            assert_eq!(sc["allowPrivilegeEscalation"], false);
            assert_eq!(sc["readOnlyRootFilesystem"], true);
            assert_eq!(strings(&sc["capabilities"]["drop"]), ["ALL"]);
        }
    }

    // Every image of every pod template: pinned, allowed, never Docker Hub.
    for o in objects.iter().filter(|o| o["kind"] == "Deployment") {
        let spec = &o["spec"]["template"]["spec"];
        for list in ["initContainers", "containers"] {
            for c in spec[list].as_array().into_iter().flatten() {
                let image = c["image"].as_str().unwrap();
                ImageRef::parse(image)
                    .unwrap()
                    .check_allowed(&org.registries, true)
                    .unwrap_or_else(|e| panic!("{name}: {e}"));
            }
        }
    }

    // The Service the webhook calls: 443 → the container's 8443.
    let service = find(objects, "Service", "cairn-serve");
    let port = &service["spec"]["ports"][0];
    assert_eq!(port["port"], 443);
    assert_eq!(port["targetPort"], c["ports"][0]["name"]);
    for (k, v) in serve["spec"]["selector"]["matchLabels"]
        .as_object()
        .unwrap()
    {
        assert_eq!(&service["spec"]["selector"][k], v);
    }

    // The webhook.
    let config = find(objects, "ValidatingWebhookConfiguration", "cairn-admission");
    let hooks = config["webhooks"].as_array().unwrap();
    assert_eq!(hooks.len(), 1);
    let hook = &hooks[0];
    assert_eq!(hook["failurePolicy"], "Fail");
    assert_eq!(hook["sideEffects"], "None");
    assert_eq!(strings(&hook["admissionReviewVersions"]), ["v1"]);
    let svc = &hook["clientConfig"]["service"];
    assert_eq!(svc["name"], "cairn-serve");
    assert_eq!(svc["namespace"], namespace);
    assert_eq!(svc["path"], "/admission/validate");
    assert_eq!(svc["port"], 443);
    let mut sent: Vec<(String, String)> = Vec::new();
    for rule in hook["rules"].as_array().unwrap() {
        let ops = strings(&rule["operations"]);
        assert!(ops.contains(&"CREATE") && ops.contains(&"UPDATE"), "{rule}");
        assert!(!ops.contains(&"*"), "{rule}");
        for group in strings(&rule["apiGroups"]) {
            for resource in strings(&rule["resources"]) {
                sent.push((group.to_owned(), resource.to_owned()));
            }
        }
    }
    sent.sort();
    let mut judged: Vec<(String, String)> = cairn_server::admission::RESOURCES
        .iter()
        .map(|(g, r)| ((*g).to_owned(), (*r).to_owned()))
        .collect();
    judged.sort();
    assert_eq!(
        sent, judged,
        "{name}: the webhook sends exactly what cairn judges"
    );
    let excluded = hook["namespaceSelector"]["matchExpressions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["key"] == "kubernetes.io/metadata.name" && e["operator"] == "NotIn")
        .expect("a namespaceSelector excluding namespaces");
    let excluded = strings(&excluded["values"]);
    for ns in [namespace, "kube-system"] {
        assert!(
            excluded.contains(&ns),
            "{ns} must be excluded: {excluded:?}"
        );
    }
    println!(
        "{name}: {} objects; serve × {}, worker × {}; namespaces {:?}; webhook sends {} resources",
        objects.len(),
        serve["spec"]["replicas"],
        worker["spec"]["replicas"],
        org.admission_namespaces,
        sent.len()
    );
}

#[test]
fn every_overlay_renders_what_cairn_needs() {
    let overlays = root().join("overlays");
    let mut names: Vec<String> = std::fs::read_dir(&overlays)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["production", "staging"]);
    for name in &names {
        check_overlay(name, &render(&overlays.join(name)));
    }
}

#[test]
fn an_overlay_that_pulls_cairn_from_docker_hub_is_caught() {
    // The staging overlay, edited to take cairn's image from Docker Hub: it
    // renders, and the checks refuse it, naming the rule.
    let dir = tempfile::tempdir().unwrap();
    copy_flat(&root().join("base"), &dir.path().join("base"));
    let staging = dir.path().join("overlays/staging");
    copy_flat(&root().join("overlays/staging"), &staging);
    let k = staging.join("kustomization.yaml");
    let text = std::fs::read_to_string(&k).unwrap().replace(
        "newName: registry.example.org/platform/cairn",
        "newName: docker.io/library/cairn",
    );
    std::fs::write(&k, text).unwrap();
    let objects = render(&staging);
    let caught = std::panic::catch_unwind(|| check_overlay("edited staging", &objects))
        .expect_err("an image from Docker Hub must be refused");
    let message = caught.downcast_ref::<String>().cloned().unwrap_or_default();
    println!("refused: {message}");
    assert!(message.contains("rule no-docker-hub"), "{message}");
    assert!(
        message.contains("docker.io/library/cairn@sha256:"),
        "{message}"
    );
}

fn copy_flat(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
}
