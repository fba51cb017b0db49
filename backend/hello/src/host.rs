//! What runs before the function's own code, in the order the Functions host and App Service run
//! it: the trigger's methods, the function key, then EasyAuth. One layer whose steps run in that
//! order (three `from_fn` layers cost a boxed future and a boxed service each per call).

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::envelope::Caller;
use crate::{AppState, binding, easyauth};

/// The route layer (`from_fn_with_state`) of `/api/hello`.
pub async fn admit(State(state): State<Arc<AppState>>, request: Request, next: Next) -> Response {
    if let Err(refusal) = binding::allows(request.method()) {
        return refusal.into_response();
    }
    if let Err(refusal) = state.function_keys.check(&request) {
        return refusal.into_response();
    }
    let action = state.config.unauthenticated_action;
    match easyauth::authenticate(&state, request, action).await {
        Ok(request) => {
            let caller = request
                .extensions()
                .get::<easyauth::Authenticated>()
                .map(|authenticated| Caller(authenticated.principal.clone()));
            let mut response = next.run(request).await;
            if let Some(caller) = caller {
                response.extensions_mut().insert(caller);
            }
            response
        }
        Err(refused) => refused,
    }
}
