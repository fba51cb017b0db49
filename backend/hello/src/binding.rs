//! The function's HTTP trigger binding (function.json): the methods it is bound to.

use axum::http::Method;

use crate::refusal::Refusal;

/// The function is bound to GET only (function.json `methods: ["get"]`); the host answers any
/// other method before anything of the function runs.
pub fn allows(method: &Method) -> Result<(), Refusal> {
    if method == Method::GET {
        Ok(())
    } else {
        Err(Refusal::MethodNotAllowed)
    }
}
