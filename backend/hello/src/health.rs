//! The readiness probe, `GET /healthz`.

use axum::Json;
use serde_json::{Value, json};

/// Ready as soon as the listener is up (keys load in the background).
pub async fn healthz() -> Json<Value> {
    Json(json!({"status": "ok"}))
}
