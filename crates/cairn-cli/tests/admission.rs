//! The admission webhook end to end: `cairn up --tls-cert --tls-key` with an
//! org.toml mapping namespaces to environments, fed `AdmissionReview` v1
//! documents shaped as the Kubernetes API server sends them, over HTTPS.
//! Allowed: a digest promoted to the namespace's environment, through every
//! workload kind's pod template. Denied, each with its message naming the
//! image and the rule: a tag, Docker Hub (implicit, `docker.io/`,
//! `index.docker.io/`, `registry-1.docker.io/`), a registry not allowed, an
//! unknown digest, a digest that went only by a break-glass override, a VSA
//! for another environment, a VSA row filed under another digest, one bad
//! image among good ones (in init and ephemeral containers and image volumes
//! too), a namespace
//! not mapped; malformed, huge, deep and wrongly-shaped reviews; DELETE and
//! CONNECT allowed as the API server expects.
#![allow(clippy::unwrap_used)]

use crate::common;

use std::path::Path;

use common::server::Up;
use common::tls::{certificate, https};
use common::{Fixture, as_, team};
use serde_json::{Value, json};

const REGISTRY: &str = "registry.example.org";

fn built_image(f: &Fixture, token: &str) -> String {
    let r = as_(f, token, &["run"]);
    assert_eq!(r.code, 0, "{r:?}");
    f.json(&["image", "list"])[0]["digest"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// A pod spec with one container per image, named c0, c1, ...
fn pod_spec(images: &[&str]) -> Value {
    let containers: Vec<Value> = images
        .iter()
        .enumerate()
        .map(|(i, image)| {
            json!({
                "name": format!("c{i}"),
                "image": image,
                "imagePullPolicy": "IfNotPresent",
                "resources": {},
                "terminationMessagePath": "/dev/termination-log",
                "terminationMessagePolicy": "File"
            })
        })
        .collect();
    json!({
        "containers": containers,
        "restartPolicy": "Always",
        "terminationGracePeriodSeconds": 30,
        "dnsPolicy": "ClusterFirst",
        "securityContext": {},
        "schedulerName": "default-scheduler"
    })
}

fn template(spec: Value) -> Value {
    json!({ "metadata": { "creationTimestamp": null, "labels": { "app": "web" } }, "spec": spec })
}

/// `(group, version, kind, resource)` and the object for `kind` around `spec`.
fn object(kind: &str, namespace: &str, spec: Value) -> (&'static str, &'static str, Value) {
    let meta = json!({
        "name": "web",
        "namespace": namespace,
        "uid": "6b8f5f0e-3a8e-4d62-9a57-5b3c1f0e2a11",
        "creationTimestamp": null,
        "labels": { "app": "web" },
        "managedFields": [{
            "manager": "kubectl-client-side-apply",
            "operation": "Update",
            "apiVersion": "v1",
            "fieldsType": "FieldsV1",
            "fieldsV1": { "f:metadata": { "f:labels": { ".": {}, "f:app": {} } } }
        }]
    });
    let selector = json!({ "matchLabels": { "app": "web" } });
    match kind {
        "Pod" => (
            "",
            "pods",
            json!({ "kind": "Pod", "apiVersion": "v1", "metadata": meta, "spec": spec, "status": {} }),
        ),
        "Deployment" | "StatefulSet" | "DaemonSet" | "ReplicaSet" => {
            let resource = match kind {
                "Deployment" => "deployments",
                "StatefulSet" => "statefulsets",
                "DaemonSet" => "daemonsets",
                _ => "replicasets",
            };
            (
                "apps",
                resource,
                json!({
                    "kind": kind, "apiVersion": "apps/v1", "metadata": meta,
                    "spec": { "replicas": 2, "selector": selector, "template": template(spec) },
                    "status": {}
                }),
            )
        }
        "Job" => (
            "batch",
            "jobs",
            json!({
                "kind": "Job", "apiVersion": "batch/v1", "metadata": meta,
                "spec": { "backoffLimit": 6, "template": template(spec) }, "status": {}
            }),
        ),
        "CronJob" => (
            "batch",
            "cronjobs",
            json!({
                "kind": "CronJob", "apiVersion": "batch/v1", "metadata": meta,
                "spec": {
                    "schedule": "*/5 * * * *",
                    "concurrencyPolicy": "Allow",
                    "jobTemplate": { "metadata": { "creationTimestamp": null }, "spec": { "template": template(spec) } }
                },
                "status": {}
            }),
        ),
        other => panic!("{other}"),
    }
}

/// An AdmissionReview as the API server sends it for `operation` of `object`.
fn review(uid: &str, kind: &str, namespace: &str, operation: &str, spec: Value) -> Value {
    let (group, resource, obj) = object(kind, namespace, spec);
    let version = "v1";
    let (object, old) = match operation {
        "DELETE" => (Value::Null, obj),
        "UPDATE" => (obj.clone(), obj),
        _ => (obj, Value::Null),
    };
    let options = match operation {
        "DELETE" => {
            json!({ "kind": "DeleteOptions", "apiVersion": "meta.k8s.io/v1", "propagationPolicy": "Background" })
        }
        "UPDATE" => {
            json!({ "kind": "UpdateOptions", "apiVersion": "meta.k8s.io/v1", "fieldManager": "kubectl-client-side-apply" })
        }
        _ => {
            json!({ "kind": "CreateOptions", "apiVersion": "meta.k8s.io/v1", "fieldManager": "kubectl-client-side-apply" })
        }
    };
    json!({
        "kind": "AdmissionReview",
        "apiVersion": "admission.k8s.io/v1",
        "request": {
            "uid": uid,
            "kind": { "group": group, "version": version, "kind": kind },
            "resource": { "group": group, "version": version, "resource": resource },
            "requestKind": { "group": group, "version": version, "kind": kind },
            "requestResource": { "group": group, "version": version, "resource": resource },
            "name": "web",
            "namespace": namespace,
            "operation": operation,
            "userInfo": {
                "username": "kubernetes-admin",
                "groups": ["kubeadm:cluster-admins", "system:authenticated"]
            },
            "object": object,
            "oldObject": old,
            "dryRun": false,
            "options": options
        }
    })
}

struct Hook<'a> {
    url: String,
    ca: &'a Path,
}

impl Hook<'_> {
    /// Posts `body`, checks the answer is a v1 AdmissionReview echoing
    /// `uid`, and returns `(allowed, message)`.
    fn send_raw(&self, body: &[u8], uid: &str) -> (bool, String) {
        let (status, text) = https("POST", &self.url, self.ca, Some(body));
        assert_eq!(status, 200, "{text}");
        let answer: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(answer["apiVersion"], "admission.k8s.io/v1", "{answer}");
        assert_eq!(answer["kind"], "AdmissionReview", "{answer}");
        assert_eq!(answer["response"]["uid"], uid, "{answer}");
        let allowed = answer["response"]["allowed"].as_bool().unwrap();
        let message = answer["response"]["status"]["message"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        if !allowed {
            assert_eq!(answer["response"]["status"]["code"], 403, "{answer}");
        }
        (allowed, message)
    }

    fn send(&self, review: &Value) -> (bool, String) {
        let uid = review["request"]["uid"].as_str().unwrap();
        self.send_raw(review.to_string().as_bytes(), uid)
    }

    fn allowed(&self, what: &str, review: &Value) {
        let (allowed, message) = self.send(review);
        assert!(allowed, "{what}: {message}");
        println!("allowed: {what}");
    }

    /// Denied, with every `needle` in the message.
    fn denied(&self, what: &str, review: &Value, needles: &[&str]) {
        let (allowed, message) = self.send(review);
        assert!(!allowed, "{what} was allowed");
        for n in needles {
            assert!(message.contains(n), "{what}: {n:?} not in {message}");
        }
        println!("denied: {what}: {message}");
    }
}

#[test]
fn the_admission_webhook_admits_only_promoted_digests_with_their_vsa() {
    let t = team();
    let f = &t.f;
    // A: promoted to staging through the gate (a PASSED VSA for staging).
    let a = built_image(f, &t.dev);
    let r = as_(f, &t.rita, &["promote", "hello-web", &a, "--to", "staging"]);
    assert_eq!(r.code, 0, "{r:?}");
    // B: to production only by a break-glass override (a FAILED VSA).
    f.write("CHANGELOG", "b\n").commit("b");
    let b = built_image(f, &t.dev);
    assert_ne!(a, b);
    let r = as_(
        f,
        &t.rita,
        &[
            "promote",
            "hello-web",
            &b,
            "--to",
            "production",
            "--override",
            "the incident needs it now",
        ],
    );
    assert_eq!(r.code, 0, "{r:?}");
    let unknown = format!("sha256:{}", "ab".repeat(32));

    let certs = tempfile::tempdir().unwrap();
    let (cert, key) = certificate(certs.path(), "webhook");
    let platform = tempfile::tempdir().unwrap();
    std::fs::write(
        platform.path().join("org.toml"),
        format!(
            "[registries]\nallow = [\"{REGISTRY}\"]\n\n[admission.namespaces]\nshop-staging = \"staging\"\nshop-prod = \"production\"\n"
        ),
    )
    .unwrap();
    let up = Up::start_with(
        &f.data,
        &[
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
        ],
        Some(platform.path()),
    );
    let hook = Hook {
        url: format!("{}/admission/validate", up.url),
        ca: &cert,
    };
    let at = |d: &str| format!("{REGISTRY}/apps/hello-web@{d}");
    let a_ref = at(&a);

    // Allowed: A in staging, through every kind's pod template.
    for kind in [
        "Pod",
        "Deployment",
        "StatefulSet",
        "DaemonSet",
        "ReplicaSet",
        "Job",
        "CronJob",
    ] {
        hook.allowed(
            &format!("{kind} of {a_ref} in shop-staging"),
            &review(
                &format!("uid-{kind}"),
                kind,
                "shop-staging",
                "CREATE",
                pod_spec(&[&a_ref]),
            ),
        );
    }
    // An UPDATE is judged on the new object; a tag and digest together is pinned.
    hook.allowed(
        "UPDATE of a Deployment",
        &review(
            "uid-update",
            "Deployment",
            "shop-staging",
            "UPDATE",
            pod_spec(&[&format!("{REGISTRY}/apps/hello-web:1.0@{a}")]),
        ),
    );

    // Denied, each naming the image and the rule.
    let tag = format!("{REGISTRY}/apps/hello-web:1.0");
    hook.denied(
        "a tag",
        &review(
            "uid-tag",
            "Pod",
            "shop-staging",
            "CREATE",
            pod_spec(&[&tag]),
        ),
        &[&tag, "rule pinned-by-digest", "not pinned by digest"],
    );
    for hub in [
        "nginx".to_owned(),
        "nginx:latest".to_owned(),
        format!("library/nginx@{a}"),
        format!("docker.io/library/nginx@{a}"),
        format!("index.docker.io/library/nginx@{a}"),
        format!("registry-1.docker.io/library/nginx@{a}"),
        format!("DOCKER.IO/library/nginx@{a}"),
    ] {
        hook.denied(
            &format!("Docker Hub `{hub}`"),
            &review(
                "uid-hub",
                "Pod",
                "shop-staging",
                "CREATE",
                pod_spec(&[&hub]),
            ),
            &[&format!("image `{hub}`"), "rule no-docker-hub"],
        );
    }
    let ghcr = format!("ghcr.io/someone/hello-web@{a}");
    hook.denied(
        "a registry not allowed",
        &review(
            "uid-reg",
            "Pod",
            "shop-staging",
            "CREATE",
            pod_spec(&[&ghcr]),
        ),
        &[
            &ghcr,
            "rule allowed-registry",
            "not on the organisation's allow-list",
        ],
    );
    hook.denied(
        "an unknown digest",
        &review(
            "uid-unknown",
            "Pod",
            "shop-staging",
            "CREATE",
            pod_spec(&[&at(&unknown)]),
        ),
        &[&at(&unknown), "rule cairn-vsa", "holds no VSA"],
    );
    hook.denied(
        "a digest with only an override VSA",
        &review(
            "uid-override",
            "Pod",
            "shop-prod",
            "CREATE",
            pod_spec(&[&at(&b)]),
        ),
        &[
            &at(&b),
            "rule cairn-vsa",
            "break-glass override",
            "`production`",
        ],
    );
    hook.denied(
        "a VSA for another environment",
        &review("uid-env", "Pod", "shop-prod", "CREATE", pod_spec(&[&a_ref])),
        &[
            &a_ref,
            "rule cairn-vsa",
            "VSA for `staging` but none for `production`",
        ],
    );
    hook.denied(
        "a namespace org.toml does not map",
        &review("uid-ns", "Pod", "default", "CREATE", pod_spec(&[&a_ref])),
        &["rule namespace-environment", "`default`"],
    );

    // One bad image among good ones, wherever it hides: an init container, an
    // ephemeral container (kubectl debug), a CronJob's job template.
    let mut spec = pod_spec(&[&a_ref]);
    spec["initContainers"] = json!([{ "name": "setup", "image": "busybox" }]);
    hook.denied(
        "an init container from Docker Hub",
        &review("uid-init", "Deployment", "shop-staging", "CREATE", spec),
        &[
            "image `busybox`",
            "container `setup` (initContainers)",
            "rule no-docker-hub",
        ],
    );
    let mut spec = pod_spec(&[&a_ref]);
    spec["ephemeralContainers"] =
        json!([{ "name": "debugger", "image": tag, "targetContainerName": "c0" }]);
    let mut debug = review("uid-eph", "Pod", "shop-staging", "UPDATE", spec);
    debug["request"]["subResource"] = json!("ephemeralcontainers");
    hook.denied(
        "an ephemeral container with a tag",
        &debug,
        &[
            "container `debugger` (ephemeralContainers)",
            "rule pinned-by-digest",
        ],
    );
    hook.denied(
        "a CronJob's second container",
        &review(
            "uid-cron",
            "CronJob",
            "shop-staging",
            "CREATE",
            pod_spec(&[&a_ref, &at(&unknown)]),
        ),
        &["container `c1` (containers)", "rule cairn-vsa"],
    );

    // An image volume (an OCI image the kubelet pulls and mounts) is an image too.
    let mut spec = pod_spec(&[&a_ref]);
    spec["volumes"] = json!([
        { "name": "scratch", "emptyDir": {} },
        { "name": "models", "image": { "reference": "ghcr.io/someone/models:v1", "pullPolicy": "IfNotPresent" } }
    ]);
    hook.denied(
        "an image volume from a registry not allowed",
        &review("uid-vol", "StatefulSet", "shop-staging", "CREATE", spec),
        &[
            "image `ghcr.io/someone/models:v1`",
            "volume `models` (image volume)",
            "rule allowed-registry",
        ],
    );

    // The store says a VSA is about another digest: its signed subject does
    // not agree, so it admits nothing (the attacker can write the database,
    // not the keys).
    let c = format!("sha256:{}", "cd".repeat(32));
    f.tamper(
        "INSERT INTO evidence (run_id, stage_id, predicate_type, subject_name, subject_digest, bundle, created_at_ms) \
         SELECT run_id, stage_id, predicate_type, subject_name, ?1, bundle, created_at_ms FROM evidence \
         WHERE subject_digest = ?2 AND predicate_type = 'https://slsa.dev/verification_summary/v1'",
        &[&c, &a],
    );
    hook.denied(
        "a VSA row filed under another digest",
        &review(
            "uid-moved",
            "Pod",
            "shop-staging",
            "CREATE",
            pod_spec(&[&at(&c)]),
        ),
        &[
            &at(&c),
            "rule cairn-vsa",
            "no VSA about",
            "does not sign one",
        ],
    );

    // DELETE and CONNECT start nothing: allowed.
    hook.allowed(
        "DELETE of a Pod",
        &review(
            "uid-del",
            "Pod",
            "shop-prod",
            "DELETE",
            pod_spec(&["nginx"]),
        ),
    );
    let connect = json!({
        "kind": "AdmissionReview", "apiVersion": "admission.k8s.io/v1",
        "request": {
            "uid": "uid-exec",
            "kind": { "group": "", "version": "v1", "kind": "PodExecOptions" },
            "resource": { "group": "", "version": "v1", "resource": "pods" },
            "subResource": "exec",
            "name": "web", "namespace": "shop-prod", "operation": "CONNECT",
            "userInfo": { "username": "kubernetes-admin" },
            "object": { "kind": "PodExecOptions", "apiVersion": "v1", "stdin": true, "stdout": true, "tty": true, "container": "c0", "command": ["sh"] },
            "oldObject": null, "dryRun": false, "options": null
        }
    });
    hook.allowed("CONNECT (exec)", &connect);

    // Bad input: refused with the reason, never allowed by error.
    let bad = |what: &str, body: &[u8], uid: &str, needle: &str| {
        let (allowed, message) = hook.send_raw(body, uid);
        assert!(!allowed, "{what} was allowed");
        assert!(
            message.contains(needle),
            "{what}: {needle:?} not in {message}"
        );
        println!(
            "denied: {what}: {}",
            message.chars().take(200).collect::<String>()
        );
    };
    bad("not JSON", b"{\"request\": ", "", "not an AdmissionReview");
    let huge = format!(
        "{{\"apiVersion\":\"admission.k8s.io/v1\",\"kind\":\"AdmissionReview\",\"request\":{{\"uid\":\"u\",\"pad\":\"{}\"}}}}",
        "a".repeat(5 << 20)
    );
    bad("a 5 MiB review", huge.as_bytes(), "", "larger than");
    let deep = format!(
        "{{\"request\":{{\"uid\":\"u\",\"object\":{}{}}}}}",
        "[".repeat(10_000),
        "]".repeat(10_000)
    );
    bad("10000 levels deep", deep.as_bytes(), "", "recursion limit");
    let mut v1beta1 = review(
        "uid-beta",
        "Pod",
        "shop-staging",
        "CREATE",
        pod_spec(&[&a_ref]),
    );
    v1beta1["apiVersion"] = json!("admission.k8s.io/v1beta1");
    bad(
        "a v1beta1 review",
        v1beta1.to_string().as_bytes(),
        "uid-beta",
        "only apiVersion admission.k8s.io/v1",
    );
    let mut service = review(
        "uid-svc",
        "Pod",
        "shop-staging",
        "CREATE",
        pod_spec(&[&a_ref]),
    );
    service["request"]["kind"] = json!({ "group": "", "version": "v1", "kind": "Service" });
    service["request"]["object"]["kind"] = json!("Service");
    bad(
        "a Service",
        service.to_string().as_bytes(),
        "uid-svc",
        "does not check kind /Service",
    );
    let mut lying = review(
        "uid-lie",
        "Deployment",
        "shop-staging",
        "CREATE",
        pod_spec(&[&a_ref]),
    );
    lying["request"]["kind"]["kind"] = json!("Pod");
    lying["request"]["kind"]["group"] = json!("");
    bad(
        "a Deployment said to be a Pod",
        lying.to_string().as_bytes(),
        "uid-lie",
        "the object is a Deployment but the request says Pod",
    );
    let mut noimage = review(
        "uid-noimg",
        "Pod",
        "shop-staging",
        "CREATE",
        pod_spec(&[&a_ref]),
    );
    noimage["request"]["object"]["spec"]["containers"][0]
        .as_object_mut()
        .unwrap()
        .remove("image");
    bad(
        "a container without an image",
        noimage.to_string().as_bytes(),
        "uid-noimg",
        "has no image",
    );
    let mut notlist = review(
        "uid-nl",
        "Pod",
        "shop-staging",
        "CREATE",
        pod_spec(&[&a_ref]),
    );
    notlist["request"]["object"]["spec"]["containers"] = json!({ "image": "nginx" });
    bad(
        "containers not a list",
        notlist.to_string().as_bytes(),
        "uid-nl",
        "spec.containers is not a list",
    );
    let mut nouid = review("x", "Pod", "shop-staging", "CREATE", pod_spec(&[&a_ref]));
    nouid["request"].as_object_mut().unwrap().remove("uid");
    bad("no uid", nouid.to_string().as_bytes(), "", "no request.uid");
    let mut op = review(
        "uid-op",
        "Pod",
        "shop-staging",
        "CREATE",
        pod_spec(&[&a_ref]),
    );
    op["request"]["operation"] = json!("PATCH");
    bad(
        "an unknown operation",
        op.to_string().as_bytes(),
        "uid-op",
        "unknown operation PATCH",
    );
    let mut nospec = review(
        "uid-nospec",
        "CronJob",
        "shop-staging",
        "CREATE",
        pod_spec(&[&a_ref]),
    );
    nospec["request"]["object"]["spec"]
        .as_object_mut()
        .unwrap()
        .remove("jobTemplate");
    bad(
        "a CronJob without a job template",
        nospec.to_string().as_bytes(),
        "uid-nospec",
        "no pod spec at spec.jobTemplate.spec.template.spec",
    );

    // A large but legitimate review (an UPDATE carries two objects, each up to
    // etcd's 1.5 MiB) is read whole and decided, not cut at the API's 1 MiB.
    let mut big = review(
        "uid-big",
        "Deployment",
        "shop-staging",
        "UPDATE",
        pod_spec(&[&a_ref]),
    );
    big["request"]["object"]["metadata"]["annotations"] =
        json!({ "example.org/notes": "n".repeat(1_400_000) });
    big["request"]["oldObject"]["metadata"]["annotations"] =
        json!({ "example.org/notes": "o".repeat(1_400_000) });
    let (allowed, message) = hook.send(&big);
    assert!(allowed, "a 2.8 MiB review: {message}");
    println!("allowed: a 2.8 MiB UPDATE review");

    // And the good review is still allowed after all that.
    hook.allowed(
        "the Pod again",
        &review(
            "uid-again",
            "Pod",
            "shop-staging",
            "CREATE",
            pod_spec(&[&a_ref]),
        ),
    );
}
