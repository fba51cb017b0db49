//! B2C's self-service password reset user flow (`kind = "password_reset"`, built-in
//! `B2C_1_passwordreset`): the email address → "Send verification code" → the six digits from the
//! mail → the new password twice → back to the app with an authorization code, signed in.
//!
//! Every step answers the same whether an account has the address: an unknown address gets a
//! stored verification whose code can never match (and a mail saying there is no account), so
//! the pages, the counters and the work done are those of a known one. Only the mailbox owner
//! learns the difference. The one slow step, hashing the new password, takes a hash slot.
//!
//! A verification is a random id carried as a hidden field (stored hashed): codes are tried per
//! verification, so nobody else's guesses can use up a user's tries.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Path, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;

use crate::authorize::{self, AuthRequest, AuthorizeError, Journey, PostedStep, StepOf};
use crate::config::FlowKind;
use crate::mail::{self, Mail};
use crate::pages;
use crate::store::{CodeCheck, Sent, Verification};
use crate::user_flow::Policy;
use crate::verification::{self, Codes};
use crate::{AppState, email, now, password, random_token, secret_hash};

const SEND_STEP: &str = "/reset/send";
const VERIFY_STEP: &str = "/reset/verify";
const PASSWORD_STEP: &str = "/reset/password";

const INVALID_EMAIL: &str = "Please enter a valid email address.";
const SEND_LIMIT: &str = "There have been too many requests to verify this email address. \
                          Please wait some time, then try again.";
const MALFORMED_CODE: &str = "Please enter the 6-digit verification code from the email.";
const WRONG_CODE: &str = "The verification code you have entered does not match our records. \
                          Please try again, or request a new code.";
const TOO_MANY_TRIES: &str = "You've made too many incorrect attempts. Please request a new code.";
const EXPIRED: &str = "That code is expired. Please request a new code.";
const USED: &str = "That verification is no longer valid. Please request a new code.";
const MISMATCH: &str = "The password entry fields do not match. Please enter the same password \
                        in both fields and try again.";

/// Step 1: the address to send a code to.
pub(crate) fn email_page(
    journey: &Journey,
    status: StatusCode,
    email: &str,
    error: Option<&str>,
) -> Response {
    journey.render(
        status,
        |ctx| pages::reset_email(ctx, email),
        SEND_STEP,
        error,
    )
}

fn code_page(journey: &Journey, email: &str, verification: &str, error: Option<&str>) -> Response {
    journey.render(
        StatusCode::OK,
        |ctx| pages::reset_code(ctx, email, verification),
        VERIFY_STEP,
        error,
    )
}

fn password_page(
    journey: &Journey,
    status: StatusCode,
    verification: &str,
    error: Option<&str>,
) -> Response {
    journey.render(
        status,
        |ctx| pages::reset_password(ctx, verification),
        PASSWORD_STEP,
        error,
    )
}

/// Posts of the reset steps: password-reset flows only.
struct PasswordResetFlow;

impl StepOf for PasswordResetFlow {
    fn admits(state: &AppState, policy: &Policy) -> Result<(), AuthorizeError> {
        let otherwise = "is not a password reset flow";
        authorize::require_kind(state, policy, FlowKind::PasswordReset, otherwise)
    }
}

/// A posted step: the path names a password-reset flow, the form passes CSRF, and the
/// authorization request it carries is still valid.
pub struct Step {
    form: std::collections::HashMap<String, String>,
    req: AuthRequest,
    journey: Journey,
}

impl FromRequest<Arc<AppState>> for Step {
    type Rejection = AuthorizeError;

    async fn from_request(req: Request, state: &Arc<AppState>) -> Result<Self, Self::Rejection> {
        let (mut parts, body) = req.into_parts();
        let Path(path) = Path::<(String, String)>::from_request_parts(&mut parts, state)
            .await
            .map_err(|_| authorize::page(StatusCode::NOT_FOUND, "Not found", "No such page."))?;
        let body = Bytes::from_request(Request::from_parts(parts.clone(), body), state)
            .await
            .map_err(|e| {
                authorize::page(StatusCode::BAD_REQUEST, "Request refused", e.body_text())
            })?;
        Self::parse(state, &path, &parts.headers, &body)
    }
}

impl Step {
    fn parse(
        state: &AppState,
        (tenant, policy_name): &(String, String),
        headers: &HeaderMap,
        body: &Bytes,
    ) -> Result<Self, AuthorizeError> {
        let policy = authorize::policy(state, tenant, policy_name)?;
        let PostedStep {
            form, req, journey, ..
        } = PostedStep::<PasswordResetFlow>::open(state, policy, headers, body)?;
        Ok(Self { form, req, journey })
    }

    fn field(&self, name: &str) -> String {
        self.form
            .get(name)
            .map(|v| v.trim().to_owned())
            .unwrap_or_default()
    }
}

/// `POST …/authorize/reset/send`: stores a verification and mails its code.
pub async fn send_code(
    State(state): State<Arc<AppState>>,
    step: Step,
) -> Result<Response, AuthorizeError> {
    let typed = step.field("email");
    let retry = |status, message| Ok(email_page(&step.journey, status, &typed, Some(message)));
    if !password::plausible_email(&typed) {
        return retry(StatusCode::OK, INVALID_EMAIL);
    }
    let address = email::normalized(&typed);
    let lookup = address.clone();
    let user = state.store.run(move |s| s.user_by_email(&lookup)).await?;
    let code = Codes::draw();
    // An unknown address stores the MAC of something that is not six digits: it never matches.
    let code_mac = match &user {
        Some(_) => state.codes.mac(&code),
        None => state.codes.mac(&random_token()),
    };
    let token = random_token();
    let row = Verification {
        email: address,
        user_id: user.as_ref().map(|u| u.id.clone()),
        code_mac,
        expires_at: now() + state.config.lifetimes.verification_code_seconds as i64,
    };
    let hash = secret_hash(&token);
    let outstanding = state.config.limits.outstanding_verification_codes;
    let sent = state
        .store
        .run(move |s| {
            let per_address = verification::SENDS_PER_MINUTE;
            s.insert_verification(&hash, &row, now(), per_address, outstanding)
        })
        .await?;
    match sent {
        Sent::AddressLimited => return retry(StatusCode::OK, SEND_LIMIT),
        Sent::Full => return retry(StatusCode::SERVICE_UNAVAILABLE, password::BUSY_MESSAGE),
        Sent::Stored => {}
    }
    let known = user.is_some().then(|| code.clone());
    let written = write_mail(&state, typed.clone(), known).await?;
    if user.is_some() {
        tracing::info!(file = %written.display(), %code, "verification mail written");
    } else {
        tracing::info!(file = %written.display(), "mail written: no account has this address, so no code");
    }
    Ok(code_page(&step.journey, &typed, &token, None))
}

/// Writes the mail to `to`: its code, or (no account) why there is none. Returns its file.
async fn write_mail(
    state: &AppState,
    to: String,
    code: Option<String>,
) -> Result<std::path::PathBuf, AuthorizeError> {
    let outbox = mail::dir(&state.config.data_dir);
    let tenant = state.config.tenant.domain();
    tokio::task::spawn_blocking(move || {
        let body = match code {
            Some(code) => format!(
                "Verify your email address\n\nThanks for verifying your {to} account.\n\
                 Your code is: {code}\n\nThe code expires in a few minutes and works once."
            ),
            None => format!(
                "Someone asked to reset the password of {to} at {tenant}, but no account \
                 uses this address, so there is no code.\n\nIf it was not you, ignore this mail."
            ),
        };
        Mail {
            from_name: &tenant,
            from: &format!("no-reply@{tenant}"),
            to: &to,
            subject: &format!("{tenant} account email verification code"),
            body: &body,
        }
        .write(&outbox)
    })
    .await
    .map_err(|e| AuthorizeError::Internal(e.to_string()))?
    .map_err(|e| AuthorizeError::Internal(format!("writing the verification mail: {e}")))
}

/// `POST …/authorize/reset/verify`: the typed code.
pub async fn verify_code(
    State(state): State<Arc<AppState>>,
    step: Step,
) -> Result<Response, AuthorizeError> {
    let (typed_email, token) = (step.field("email"), step.field("verification"));
    let typed = step.field("email_ver_input");
    if !verification::well_formed(&typed) {
        return Ok(code_page(
            &step.journey,
            &typed_email,
            &token,
            Some(MALFORMED_CODE),
        ));
    }
    let hash = secret_hash(&token);
    let checker = Arc::clone(&state);
    let outcome = state
        .store
        .run(move |s| {
            s.check_code(&hash, now(), verification::TRIES_PER_CODE, |mac| {
                checker.codes.matches(mac, &typed)
            })
        })
        .await?;
    let restart = |message| {
        Ok(email_page(
            &step.journey,
            StatusCode::OK,
            &typed_email,
            Some(message),
        ))
    };
    match outcome {
        CodeCheck::Verified => Ok(password_page(&step.journey, StatusCode::OK, &token, None)),
        CodeCheck::Wrong => Ok(code_page(
            &step.journey,
            &typed_email,
            &token,
            Some(WRONG_CODE),
        )),
        CodeCheck::TooManyTries => restart(TOO_MANY_TRIES),
        CodeCheck::Expired => restart(EXPIRED),
        CodeCheck::Used => restart(USED),
    }
}

/// `POST …/authorize/reset/password`: the new password; on success the user is signed in.
pub async fn set_password(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    step: Step,
) -> Result<Response, AuthorizeError> {
    let token = step.field("verification");
    // Passwords are taken as typed: spaces are characters like any other.
    let raw = |name: &str| step.form.get(name).cloned().unwrap_or_default();
    let (new_password, reentered) = (raw("newPassword"), raw("reenterPassword"));
    let retry = |status, message| Ok(password_page(&step.journey, status, &token, Some(message)));
    if let Err(message) = password::check_rules(&new_password) {
        return retry(StatusCode::OK, message);
    }
    if new_password != reentered {
        return retry(StatusCode::OK, MISMATCH);
    }
    let Some(slot) = state.hashing.slot().await else {
        return Ok(authorize::busy(&headers, |status| {
            password_page(&step.journey, status, &token, Some(password::BUSY_MESSAGE))
        }));
    };
    let new_hash = slot
        .hash(new_password)
        .await
        .map_err(|e| AuthorizeError::Internal(e.to_string()))?;
    let hash = secret_hash(&token);
    let user_id = state
        .store
        .run(move |s| s.complete_reset(&hash, now(), &new_hash))
        .await?;
    let Some(user_id) = user_id else {
        return Ok(email_page(&step.journey, StatusCode::OK, "", Some(USED)));
    };
    tracing::info!(user_id = %user_id, "password reset");
    authorize::signed_in(&state, &step.req, &user_id).await
}
