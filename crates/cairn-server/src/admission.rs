//! `POST /admission/validate`: a Kubernetes validating admission webhook
//! (`AdmissionReview` `admission.k8s.io/v1`). For a Pod, or the pod template
//! of a Deployment, StatefulSet, DaemonSet, ReplicaSet, ReplicationController,
//! Job, CronJob (`spec.jobTemplate.spec.template`) or PodTemplate, every
//! image of its containers, init containers, ephemeral containers and image
//! volumes must
//! pass [`cairn_engine::admission::Admission::check`] for the environment
//! org.toml maps the namespace to. The answer is always an `AdmissionReview`
//! echoing the request's `uid`; it says `allowed: true` only when every image
//! passed. A body that is too large, too deep, not JSON, not a v1 review, of
//! a kind cairn does not check, or shaped wrongly is refused with the reason;
//! so is a review cairn fails to decide. Nothing is ever allowed by error.
//!
//! DELETE and CONNECT (exec, attach, port-forward) start no image: they are
//! allowed, as the API server expects a webhook that does not judge them to
//! answer (the manifests register CREATE and UPDATE only).
//!
//! Who may call it: anyone who reaches it (the API server, over TLS). The
//! decision is read-only — no state changes, nothing is created — and says
//! only whether images may run, which any caller could learn by submitting a
//! Pod; so the route is public like the log's tiles. The body and the number
//! of images are bounded, so a caller cannot make it do unbounded work.

use std::collections::BTreeSet;

use axum::Json;
use axum::extract::{Request, State};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use cairn_engine::admission::{Admission, printable};
use serde_json::{Value, json};

use crate::routes::{Access, Kind, Route};
use crate::state::AppState;

/// The largest review read: an UPDATE carries the object and the old object,
/// each up to etcd's 1.5 MiB.
pub const MAX_REVIEW_BYTES: usize = 4 << 20;
/// The most distinct images one review may name.
pub const MAX_IMAGES: usize = 256;
/// The most containers of one kind (containers, initContainers, ...) read.
const MAX_CONTAINERS: usize = 1024;
/// The longest message returned (the API server shows it to the user).
const MAX_MESSAGE: usize = 8 * 1024;

const API_VERSION: &str = "admission.k8s.io/v1";

/// The (API group, resource) pairs whose objects this webhook judges: what a
/// `ValidatingWebhookConfiguration` should send it (deploy/kubernetes's does;
/// its test compares the two).
pub const RESOURCES: [(&str, &str); 10] = [
    ("", "pods"),
    ("", "pods/ephemeralcontainers"),
    ("", "replicationcontrollers"),
    ("", "podtemplates"),
    ("apps", "deployments"),
    ("apps", "statefulsets"),
    ("apps", "daemonsets"),
    ("apps", "replicasets"),
    ("batch", "jobs"),
    ("batch", "cronjobs"),
];

const EXAMPLE: &str = r#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"705ab4f5-6393-11e8-b7cc-42010a800002","kind":{"group":"","version":"v1","kind":"Pod"},"resource":{"group":"","version":"v1","resource":"pods"},"namespace":"default","operation":"CREATE","userInfo":{"username":"admin"},"object":{"apiVersion":"v1","kind":"Pod","metadata":{"name":"web"},"spec":{"containers":[{"name":"web","image":"registry.example.org/apps/web@sha256:0000000000000000000000000000000000000000000000000000000000000000"}]}},"oldObject":null,"dryRun":false}}"#;

const SCHEMA: &str = r#"{"type":"object","required":["apiVersion","kind","request"],"properties":{"apiVersion":{"const":"admission.k8s.io/v1"},"kind":{"const":"AdmissionReview"},"request":{"type":"object","required":["uid","kind","operation"],"properties":{"uid":{"type":"string"},"kind":{"type":"object"},"namespace":{"type":"string"},"operation":{"enum":["CREATE","UPDATE","DELETE","CONNECT"]},"object":{"type":["object","null"]}}}}}"#;

pub fn routes() -> Vec<Route> {
    let route = Route::new(
        Method::POST,
        "/admission/validate",
        Access::Public,
        post(validate),
    )
    .summary("Kubernetes validating admission (AdmissionReview v1): allowed only for digest-pinned images from allowed registries with a cairn VSA (PASSED, no override) for the namespace's environment")
    .tag("admission")
    .example_body(EXAMPLE)
    .body_schema(SCHEMA);
    // JSON for a machine, documented like the API.
    vec![Route {
        kind: Kind::Api,
        ..route
    }]
}

/// The answer: always 200 with an `AdmissionReview` (the API server reads
/// the decision from the body).
fn review(uid: &str, allowed: bool, message: Option<String>) -> Response {
    let mut response = json!({ "uid": uid, "allowed": allowed });
    if let Some(mut m) = message {
        if m.len() > MAX_MESSAGE {
            let mut cut = MAX_MESSAGE;
            while !m.is_char_boundary(cut) {
                cut -= 1;
            }
            m.truncate(cut);
            m.push('…');
        }
        let code = if allowed { 200 } else { 403 };
        response["status"] = json!({ "code": code, "message": m });
    }
    (
        StatusCode::OK,
        Json(json!({
            "apiVersion": API_VERSION,
            "kind": "AdmissionReview",
            "response": response,
        })),
    )
        .into_response()
}

fn denied(uid: &str, why: impl Into<String>) -> Response {
    review(uid, false, Some(format!("cairn: {}", why.into())))
}

async fn validate(State(state): State<AppState>, request: Request) -> Response {
    let Ok(body) = axum::body::to_bytes(request.into_body(), MAX_REVIEW_BYTES).await else {
        return denied(
            "",
            format!(
                "the AdmissionReview is larger than {MAX_REVIEW_BYTES} bytes or was cut short; not read"
            ),
        );
    };
    // serde_json refuses nesting deeper than 128 levels.
    let doc: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => return denied("", format!("the body is not an AdmissionReview: {e}")),
    };
    drop(body);
    let uid = match doc["request"]["uid"].as_str() {
        Some(u) if !u.is_empty() && u.len() <= 128 && u.bytes().all(|b| b.is_ascii_graphic()) => {
            u.to_owned()
        }
        _ => {
            return denied(
                "",
                "the AdmissionReview has no request.uid (1-128 printable characters)",
            );
        }
    };
    if doc["apiVersion"] != API_VERSION || doc["kind"] != "AdmissionReview" {
        return denied(
            &uid,
            format!(
                "only apiVersion {API_VERSION}, kind AdmissionReview is understood (admissionReviewVersions: [\"v1\"])"
            ),
        );
    }
    let request = &doc["request"];
    match request["operation"].as_str() {
        Some("CREATE" | "UPDATE") => {}
        // Nothing new runs: the object is gone, or an exec/attach/port-forward
        // into a pod that was admitted.
        Some("DELETE" | "CONNECT") => return review(&uid, true, None),
        other => {
            return denied(
                &uid,
                format!(
                    "unknown operation {}",
                    other.map_or_else(|| "(none)".to_owned(), printable)
                ),
            );
        }
    }
    let Some(namespace) = request["namespace"]
        .as_str()
        .or_else(|| request["object"]["metadata"]["namespace"].as_str())
        .filter(|n| !n.is_empty())
        .map(str::to_owned)
    else {
        return denied(&uid, "the request names no namespace");
    };
    let images = match images_of(request) {
        Ok(images) => images,
        Err(why) => return denied(&uid, why),
    };
    let decided = state
        .blocking(move |s| {
            let admission = Admission::load(&s.config.data, s.config.platform_dir.as_deref())
                .map_err(|e| crate::problem::ApiError::internal(&cairn_model::error_chain(&e)))?;
            let environment = match admission.environment_of(&namespace) {
                Ok(env) => env.to_owned(),
                Err(why) => return Ok(vec![why]),
            };
            let mut refusals = Vec::new();
            for (image, containers) in &images {
                let verdict = admission
                    .check(&*s.store, &environment, image)
                    .map_err(|e| {
                        crate::problem::ApiError::internal(&cairn_model::error_chain(&e))
                    })?;
                if let Err(why) = verdict {
                    refusals.push(format!(
                        "image `{}` ({}) in namespace `{}` (environment `{environment}`): {why}",
                        printable(image),
                        containers.join(", "),
                        printable(&namespace),
                    ));
                }
            }
            Ok(refusals)
        })
        .await;
    match decided {
        Ok(refusals) if refusals.is_empty() => review(&uid, true, None),
        Ok(refusals) => denied(&uid, refusals.join("; ")),
        // The detail went to the server's log under an incident id.
        Err(e) => denied(
            &uid,
            format!("cairn could not decide, so it refuses: {}", e.detail),
        ),
    }
}

/// Each distinct image of the request's object, with the containers naming
/// it (`name (containers)`), from the pod spec where its kind keeps it.
fn images_of(request: &Value) -> Result<Vec<(String, Vec<String>)>, String> {
    let kind = &request["kind"];
    let (group, name) = (kind["group"].as_str(), kind["kind"].as_str());
    let object = &request["object"];
    if !object.is_object() {
        return Err("the request carries no object".to_owned());
    }
    if let Some(k) = object["kind"].as_str()
        && Some(k) != name
    {
        return Err(format!(
            "the object is a {} but the request says {}",
            printable(k),
            printable(name.unwrap_or("(nothing)"))
        ));
    }
    let (spec, path) = match (group, name) {
        (Some(""), Some("Pod")) => (&object["spec"], "spec"),
        (Some(""), Some("PodTemplate")) => (&object["template"]["spec"], "template.spec"),
        (Some(""), Some("ReplicationController"))
        | (Some("apps"), Some("Deployment" | "StatefulSet" | "DaemonSet" | "ReplicaSet"))
        | (Some("batch"), Some("Job")) => {
            (&object["spec"]["template"]["spec"], "spec.template.spec")
        }
        (Some("batch"), Some("CronJob")) => (
            &object["spec"]["jobTemplate"]["spec"]["template"]["spec"],
            "spec.jobTemplate.spec.template.spec",
        ),
        _ => {
            return Err(format!(
                "cairn does not check kind {}/{}; the webhook's rules must send only pods and workloads",
                printable(group.unwrap_or("?")),
                printable(name.unwrap_or("?"))
            ));
        }
    };
    if !spec.is_object() {
        return Err(format!(
            "the {} has no pod spec at {path}",
            name.unwrap_or("object")
        ));
    }
    let mut images: Vec<(String, Vec<String>)> = Vec::new();
    let mut seen = BTreeSet::new();
    let mut count = 0;
    for list in ["initContainers", "containers", "ephemeralContainers"] {
        let containers = match &spec[list] {
            Value::Null => continue,
            Value::Array(a) if a.len() <= MAX_CONTAINERS => a,
            Value::Array(_) => {
                return Err(format!(
                    "{path}.{list} has more than {MAX_CONTAINERS} entries"
                ));
            }
            _ => return Err(format!("{path}.{list} is not a list")),
        };
        for (i, c) in containers.iter().enumerate() {
            let cname = c["name"]
                .as_str()
                .map_or_else(|| format!("#{i}"), printable);
            let Some(image) = c["image"].as_str() else {
                return Err(format!(
                    "container `{cname}` ({list}) has no image; every container is checked"
                ));
            };
            count += 1;
            let label = format!("container `{cname}` ({list})");
            if seen.insert(image.to_owned()) {
                if images.len() == MAX_IMAGES {
                    return Err(format!("more than {MAX_IMAGES} distinct images"));
                }
                images.push((image.to_owned(), vec![label]));
            } else if let Some(entry) = images.iter_mut().find(|(i, _)| i == image) {
                entry.1.push(label);
            }
        }
    }
    if count == 0 {
        return Err(format!("the pod spec at {path} has no containers"));
    }
    // Image volumes (`volumes[].image.reference`): an OCI image the kubelet
    // pulls and mounts, held to the same rules as a container's.
    let volumes = match &spec["volumes"] {
        Value::Null => &Vec::new(),
        Value::Array(a) if a.len() <= MAX_CONTAINERS => a,
        Value::Array(_) => {
            return Err(format!(
                "{path}.volumes has more than {MAX_CONTAINERS} entries"
            ));
        }
        _ => return Err(format!("{path}.volumes is not a list")),
    };
    for (i, v) in volumes.iter().enumerate() {
        let source = &v["image"];
        if source.is_null() {
            continue;
        }
        let vname = v["name"]
            .as_str()
            .map_or_else(|| format!("#{i}"), printable);
        let Some(image) = source["reference"].as_str() else {
            return Err(format!("image volume `{vname}` names no image reference"));
        };
        let label = format!("volume `{vname}` (image volume)");
        if seen.insert(image.to_owned()) {
            if images.len() == MAX_IMAGES {
                return Err(format!("more than {MAX_IMAGES} distinct images"));
            }
            images.push((image.to_owned(), vec![label]));
        } else if let Some(entry) = images.iter_mut().find(|(i, _)| i == image) {
            entry.1.push(label);
        }
    }
    Ok(images)
}
