//! `GET /api/openapi.json`: an OpenAPI 3.1 document made from the route table,
//! so it names exactly the routes the router serves.

use axum::Json;
use axum::http::Method;
use axum::routing::get;
use serde_json::{Map, Value, json};

use crate::routes::{Access, Kind, Route, table};

pub fn routes() -> Vec<Route> {
    vec![
        Route::new(
            Method::GET,
            "/api/openapi.json",
            Access::Public,
            get(openapi_json),
        )
        .summary("This document: every API route, its access and its answers")
        .tag("meta"),
    ]
}

async fn openapi_json() -> Json<Value> {
    Json(document())
}

/// The path as OpenAPI writes it (`{*rest}` → `{rest}`).
pub fn openapi_path(path: &str) -> String {
    path.replace("{*", "{")
}

fn parameters(path: &str) -> Vec<Value> {
    path.split('/')
        .filter_map(|seg| seg.strip_prefix('{')?.strip_suffix('}'))
        .map(|name| {
            let name = name.trim_start_matches('*');
            let schema = match name {
                "id" => json!({"type": "string", "pattern": "^[1-9][0-9]{0,17}$"}),
                "digest" => json!({"type": "string", "pattern": "^sha256:[0-9a-f]{64}$"}),
                _ => json!({"type": "string"}),
            };
            json!({"name": name, "in": "path", "required": true, "schema": schema})
        })
        .collect()
}

fn problem(description: &str) -> Value {
    json!({
        "description": description,
        "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
    })
}

fn operation(route: &Route) -> Value {
    let mut responses = Map::new();
    let success_type = match route.kind {
        Kind::Text => "text/plain",
        _ => "application/json",
    };
    responses.insert(
        route.success.as_u16().to_string(),
        json!({"description": route.summary, "content": {success_type: {}}}),
    );
    match route.access {
        Access::Public => {}
        Access::Signed => {
            responses.insert(
                "401".into(),
                problem("the delivery's signature or token does not check"),
            );
            responses.insert(
                "409".into(),
                problem("this delivery id was accepted before (a replay)"),
            );
            responses.insert("413".into(), problem("the body is larger than the bound"));
        }
        Access::Role(_) => {
            responses.insert(
                "401".into(),
                problem("no token, or one of no active identity"),
            );
            responses.insert(
                "403".into(),
                problem("the identity's roles do not grant this"),
            );
        }
    }
    responses.insert("400".into(), problem("malformed request"));
    responses.insert("404".into(), problem("not found"));
    responses.insert(
        "500".into(),
        problem("cairn failed; the answer names an incident in the server log"),
    );
    let mut op = json!({
        "summary": route.summary,
        "tags": [route.tag],
        "operationId": operation_id(&route.method, route.path),
        "parameters": parameters(route.path),
        "responses": responses,
    });
    match route.access {
        Access::Role(action) => {
            op["security"] = json!([{"bearer": []}, {"session": []}]);
            op["x-cairn-action"] = json!(action.as_str());
        }
        Access::Signed => op["security"] = json!([{"forgeSignature": []}]),
        Access::Public => op["security"] = json!([]),
    }
    if matches!(route.method, Method::POST | Method::PUT | Method::PATCH) {
        let schema = route
            .body_schema
            .and_then(|b| serde_json::from_str::<Value>(b).ok())
            .unwrap_or_else(|| json!({"type": "object"}));
        let mut media = json!({ "schema": schema });
        if let Some(example) = route
            .example_body
            .and_then(|b| serde_json::from_str::<Value>(b).ok())
        {
            media["example"] = example;
        }
        op["requestBody"] = json!({
            "required": true,
            "content": {"application/json": media}
        });
    }
    op
}

fn operation_id(method: &Method, path: &str) -> String {
    let mut id = method.as_str().to_ascii_lowercase();
    for seg in path.split('/').filter(|s| !s.is_empty()) {
        let seg: String = seg
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect();
        id.push('_');
        id.push_str(seg.trim_matches('_'));
    }
    id
}

/// The OpenAPI 3.1 document of every API and text route.
pub fn document() -> Value {
    let mut paths = Map::new();
    for route in table() {
        if route.kind == Kind::Page {
            continue;
        }
        let entry = paths
            .entry(openapi_path(route.path))
            .or_insert_with(|| json!({}));
        entry[route.method.as_str().to_ascii_lowercase()] = operation(&route);
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "cairn",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "The supply chain's API: workloads, runs and their logs, artifacts and their evidence, environments, promotions, reviews, findings, the audit log, forge webhooks. Errors are RFC 9457 problem details.",
        },
        "paths": paths,
        "components": {
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "description": "an identity's token (cairn identity add)"},
                "session": {"type": "apiKey", "in": "cookie", "name": crate::auth::SESSION_COOKIE},
                "forgeSignature": {"type": "apiKey", "in": "header", "name": "X-Hub-Signature-256", "description": "GitHub: HMAC-SHA256 of the body; GitLab: X-Gitlab-Token; Gitea: X-Gitea-Signature"},
            },
            "schemas": {
                "Problem": {
                    "type": "object",
                    "required": ["type", "title", "status", "detail"],
                    "properties": {
                        "type": {"type": "string"},
                        "title": {"type": "string"},
                        "status": {"type": "integer"},
                        "detail": {"type": "string"},
                    }
                }
            }
        }
    })
}
