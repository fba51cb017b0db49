//! B2C's profile editing user flow (`kind = "profile_edit"`, built-in `B2C_1_profileedit`): a
//! signed-in user (the SSO session cookie, or the sign-in form when there is none) changes the
//! display name and goes back to the app with a code; the tokens it redeems carry the new name.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;

use crate::authorize::{self, AuthorizeError, Journey, PostedStep, StepOf};
use crate::config::FlowKind;
use crate::store::User;
use crate::user_flow::Policy;
use crate::{AppState, pages, password, session};

const PROFILE_STEP: &str = "/profile";
const SIGNED_OUT: &str = "Your session has ended. Please sign in again.";

/// The profile form for `user`; `cookie` starts the session that sign-in just created.
pub(crate) fn page(
    journey: &Journey,
    status: StatusCode,
    user: &User,
    cookie: Option<HeaderValue>,
    error: Option<&str>,
) -> Response {
    page_with(
        journey,
        status,
        &user.email,
        &user.display_name,
        cookie,
        error,
    )
}

fn page_with(
    journey: &Journey,
    status: StatusCode,
    email: &str,
    display_name: &str,
    cookie: Option<HeaderValue>,
    error: Option<&str>,
) -> Response {
    let mut response = journey.render(
        status,
        |ctx| pages::profile(ctx, email, display_name),
        PROFILE_STEP,
        error,
    );
    if let Some(cookie) = cookie {
        response.headers_mut().append(header::SET_COOKIE, cookie);
    }
    response
}

/// Posts of the profile form: profile-edit flows only.
pub struct ProfileEditFlow;

impl StepOf for ProfileEditFlow {
    fn admits(state: &AppState, policy: &Policy) -> Result<(), AuthorizeError> {
        let otherwise = "is not a profile editing flow";
        authorize::require_kind(state, policy, FlowKind::ProfileEdit, otherwise)
    }
}

/// `POST …/authorize/profile`: saves the display name and returns to the app with a code.
pub async fn update(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    PostedStep {
        form, req, journey, ..
    }: PostedStep<ProfileEditFlow>,
) -> Result<Response, AuthorizeError> {
    let session = session::current(&state, &headers).await?;
    let user = match &session {
        Some(s) => {
            let id = s.user_id.clone();
            state.store.run(move |st| st.user_by_id(&id)).await?
        }
        None => None,
    };
    let (Some(session), Some(user)) = (session, user) else {
        return Ok(journey.render(
            StatusCode::OK,
            |ctx| pages::sign_in(ctx, ""),
            authorize::SIGN_IN,
            Some(SIGNED_OUT),
        ));
    };
    let display_name = form
        .get("displayName")
        .map(|n| n.trim().to_owned())
        .unwrap_or_default();
    if let Err(message) = password::check_display_name(&display_name) {
        return Ok(page_with(
            &journey,
            StatusCode::OK,
            &user.email,
            &display_name,
            None,
            Some(message),
        ));
    }
    let id = user.id.clone();
    state
        .store
        .run(move |s| s.set_display_name(&id, &display_name))
        .await?;
    tracing::info!(user_id = %user.id, "profile edited");
    authorize::complete(
        &state,
        &req,
        &user.id,
        session.auth_time,
        None,
        StatusCode::SEE_OTHER,
    )
    .await
}
