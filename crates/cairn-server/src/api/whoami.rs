//! Who the caller is and which roles it holds: for a program (a CI job with an
//! OpenID Connect token, a service account) to check what cairn made of its
//! credential, and for the web UI's session.

use axum::Json;
use axum::extract::State;
use axum::http::Method;
use axum::routing::get;
use cairn_policy::Action;
use serde_json::{Value, json};

use crate::auth::{Caller, Via};
use crate::problem::ApiError;
use crate::routes::{Access, Route};
use crate::state::AppState;

pub fn routes() -> Vec<Route> {
    vec![
        Route::new(
            Method::GET,
            "/api/whoami",
            Access::Role(Action::View),
            get(whoami),
        )
        .summary("The caller's identity and its role bindings")
        .tag("identities"),
    ]
}

async fn whoami(State(state): State<AppState>, caller: Caller) -> Result<Json<Value>, ApiError> {
    state
        .read_as(caller, move |s, actor| {
            // Someone no role is bound to may not view anything: 403.
            s.visible(&actor)?;
            let roles: Vec<Value> = s
                .store
                .bindings()?
                .into_iter()
                .filter(|b| b.identity == actor.identity.name)
                .map(|b| json!({"role": b.role, "workload": b.workload, "environment": b.environment}))
                .collect();
            Ok(Json(json!({
                "identity": actor.identity.name,
                "kind": match actor.identity.kind {
                    cairn_policy::IdentityKind::User => "user",
                    cairn_policy::IdentityKind::ServiceAccount => "service-account",
                },
                "via": match actor.via { Via::Token => "token", Via::Session { .. } => "session" },
                "roles": roles,
            })))
        })
        .await
}
