//! Server-rendered HTML: sign-in, sign-up, password reset, profile edit, signed-out and error
//! pages. No JavaScript; every
//! input has a label; element ids follow B2C's (`signInName`, `password`, `next`,
//! `createAccount`, `forgotPassword`, `email`, `displayName`, `newPassword`, `reenterPassword`,
//! `continue`, `cancel`, `email_ver_but_send`, `email_ver_input`, `email_ver_but_verify`) so
//! browser tests written for B2C find them.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::user_flow::UnknownFlow;

const STYLE: &str = "
*{box-sizing:border-box}
body{margin:0;min-height:100vh;display:flex;align-items:center;justify-content:center;
 font:16px/1.5 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;background:#f3f5f8;color:#1b1f24}
main{background:#fff;width:100%;max-width:26rem;margin:1rem;padding:2rem 2.25rem;border-radius:10px;
 box-shadow:0 4px 24px rgba(20,30,50,.12)}
h1{font-size:1.5rem;margin:0 0 .25rem}
.tenant{color:#5a6472;font-size:.9rem;margin:0 0 1.5rem}
label{display:block;font-weight:600;margin:1rem 0 .3rem}
input[type=email],input[type=password],input[type=text]{width:100%;padding:.6rem .7rem;font:inherit;
 border:1px solid #9aa5b1;border-radius:6px}
input:focus{outline:3px solid #8ab4f8;outline-offset:1px;border-color:#0b62d6}
.hint{color:#5a6472;font-size:.85rem;margin:.3rem 0 0}
.error{background:#fdecea;color:#8a1c12;border:1px solid #f5c2bd;border-radius:6px;padding:.6rem .8rem;margin:1rem 0 0}
.row{display:flex;justify-content:space-between;align-items:center;margin-top:1.5rem;gap:1rem}
button{font:inherit;font-weight:600;padding:.6rem 1.4rem;border-radius:6px;border:0;background:#0b62d6;color:#fff;cursor:pointer}
button:hover{background:#0950b0}
a{color:#0b62d6}
.footer{margin-top:1.5rem;font-size:.95rem}
";

const PASSWORD_RULES: &str = "8 to 64 characters, with at least 3 of: a lowercase letter, an uppercase letter, a digit, a symbol.";

pub use http_serve::markup::escape;

fn document(title: &str, body: &str) -> String {
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <title>{title}</title><style>{STYLE}</style></head>\
         <body><main>{body}</main></body></html>",
        title = escape(title),
    )
}

/// An HTML response that may not be framed (clickjacking) or cached.
pub fn html(status: StatusCode, body: String) -> Response {
    let mut response = (status, body).into_response();
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    // No `form-action`: Chrome applies it to the redirect after a post, which goes to the app.
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'",
        ),
    );
    // The page's URL (the authorization request) never leaves for another origin; `same-origin`
    // rather than `no-referrer` because with the latter browsers post the form with `Origin:
    // null`, which the forms refuse (csrf::same_origin).
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    response
}

fn hidden_inputs(fields: &[(String, String)]) -> String {
    fields.iter().map(|(k, v)| hidden_input(k, v)).collect()
}

fn error_box(error: Option<&str>) -> String {
    error
        .map(|e| {
            format!(
                "<div class=\"error\" role=\"alert\" id=\"error\">{}</div>",
                escape(e)
            )
        })
        .unwrap_or_default()
}

/// What the sign-in and sign-up pages need to render.
pub struct FormContext<'a> {
    pub tenant: &'a str,
    /// Where the form posts (a path without query).
    pub action: &'a str,
    /// The authorization request and CSRF token, carried as hidden fields.
    pub hidden: &'a [(String, String)],
    /// Empty when the flow has no sign-up page.
    pub signup_href: &'a str,
    pub forgot_href: &'a str,
    pub cancel_href: &'a str,
    pub error: Option<&'a str>,
}

/// "Sign up now", unless the flow has no sign-up page (`href` empty).
fn sign_up_footer(href: &str) -> String {
    if href.is_empty() {
        return String::new();
    }
    format!(
        "<p class=\"footer\">Don't have an account? <a id=\"createAccount\" href=\"{}\">Sign up now</a></p>",
        escape(href)
    )
}

pub fn sign_in(ctx: &FormContext<'_>, sign_in_name: &str) -> String {
    let body = format!(
        "<h1>Sign in</h1><p class=\"tenant\">{tenant}</p>\
         <form method=\"post\" action=\"{action}\" id=\"localAccountForm\">{hidden}{error}\
         <label for=\"signInName\">Email Address</label>\
         <input type=\"email\" id=\"signInName\" name=\"signInName\" autocomplete=\"username\" required \
          autofocus value=\"{name}\">\
         <label for=\"password\">Password</label>\
         <input type=\"password\" id=\"password\" name=\"password\" autocomplete=\"current-password\" required>\
         <div class=\"row\"><a id=\"forgotPassword\" href=\"{forgot}\">Forgot your password?</a>\
         <button type=\"submit\" id=\"next\">Sign in</button></div></form>\
{footer}",
        tenant = escape(ctx.tenant),
        action = escape(ctx.action),
        hidden = hidden_inputs(ctx.hidden),
        error = error_box(ctx.error),
        name = escape(sign_in_name),
        forgot = escape(ctx.forgot_href),
        footer = sign_up_footer(ctx.signup_href),
    );
    document("Sign in", &body)
}

pub fn sign_up(ctx: &FormContext<'_>, email: &str, display_name: &str) -> String {
    let body = format!(
        "<h1>Create your account</h1><p class=\"tenant\">{tenant}</p>\
         <form method=\"post\" action=\"{action}\" id=\"attributeVerification\">{hidden}{error}\
         <label for=\"email\">Email Address</label>\
         <input type=\"email\" id=\"email\" name=\"email\" autocomplete=\"email\" required value=\"{email}\">\
         <label for=\"displayName\">Display Name</label>\
         <input type=\"text\" id=\"displayName\" name=\"displayName\" autocomplete=\"name\" required \
          maxlength=\"100\" value=\"{display}\">\
         <label for=\"newPassword\">New Password</label>\
         <input type=\"password\" id=\"newPassword\" name=\"newPassword\" autocomplete=\"new-password\" required \
          aria-describedby=\"passwordRules\">\
         <p class=\"hint\" id=\"passwordRules\">{rules}</p>\
         <label for=\"reenterPassword\">Confirm New Password</label>\
         <input type=\"password\" id=\"reenterPassword\" name=\"reenterPassword\" autocomplete=\"new-password\" required>\
         <div class=\"row\"><a id=\"cancel\" href=\"{cancel}\">Cancel</a>\
         <button type=\"submit\" id=\"continue\">Create</button></div></form>",
        tenant = escape(ctx.tenant),
        action = escape(ctx.action),
        hidden = hidden_inputs(ctx.hidden),
        error = error_box(ctx.error),
        email = escape(email),
        display = escape(display_name),
        cancel = escape(ctx.cancel_href),
        rules = PASSWORD_RULES,
    );
    document("Sign up", &body)
}

fn hidden_input(name: &str, value: &str) -> String {
    format!(
        "<input type=\"hidden\" name=\"{}\" value=\"{}\">",
        escape(name),
        escape(value)
    )
}

/// A form of the password-reset and profile-edit flows: heading, fields, submit and cancel.
fn flow_form(
    ctx: &FormContext<'_>,
    title: &str,
    id: &str,
    fields: &str,
    submit: (&str, &str),
) -> String {
    let body = format!(
        "<h1>{title}</h1><p class=\"tenant\">{tenant}</p>\
         <form method=\"post\" action=\"{action}\" id=\"{id}\">{hidden}{error}{fields}\
         <div class=\"row\"><a id=\"cancel\" href=\"{cancel}\">Cancel</a>\
         <button type=\"submit\" id=\"{submit_id}\">{submit_label}</button></div></form>",
        title = escape(title),
        tenant = escape(ctx.tenant),
        action = escape(ctx.action),
        hidden = hidden_inputs(ctx.hidden),
        error = error_box(ctx.error),
        cancel = escape(ctx.cancel_href),
        submit_id = submit.0,
        submit_label = escape(submit.1),
    );
    document(title, &body)
}

/// Password reset, step 1: the address to verify.
pub fn reset_email(ctx: &FormContext<'_>, email: &str) -> String {
    let fields = format!(
        "<label for=\"email\">Email Address</label>\
         <input type=\"email\" id=\"email\" name=\"email\" autocomplete=\"email\" required autofocus \
          value=\"{}\">",
        escape(email)
    );
    flow_form(
        ctx,
        "Reset your password",
        "attributeVerification",
        &fields,
        ("email_ver_but_send", "Send verification code"),
    )
}

/// Password reset, step 2: the code from the mail.
pub fn reset_code(ctx: &FormContext<'_>, email: &str, verification: &str) -> String {
    let fields = format!(
        "{hidden}<p id=\"email_info\">Verification code has been sent to your inbox. Please copy it to the \
          input box below.</p>\
         <label for=\"email\">Email Address</label>\
         <input type=\"email\" id=\"email\" readonly value=\"{email}\">\
         <label for=\"email_ver_input\">Verification code</label>\
         <input type=\"text\" id=\"email_ver_input\" name=\"email_ver_input\" inputmode=\"numeric\" \
          autocomplete=\"one-time-code\" maxlength=\"6\" required autofocus>",
        hidden = hidden_input("verification", verification) + &hidden_input("email", email),
        email = escape(email),
    );
    flow_form(
        ctx,
        "Reset your password",
        "attributeVerification",
        &fields,
        ("email_ver_but_verify", "Verify code"),
    )
}

/// Password reset, step 3: the new password, twice.
pub fn reset_password(ctx: &FormContext<'_>, verification: &str) -> String {
    let fields = format!(
        "{}<label for=\"newPassword\">New Password</label>\
         <input type=\"password\" id=\"newPassword\" name=\"newPassword\" autocomplete=\"new-password\" \
          required autofocus aria-describedby=\"passwordRules\">\
         <p class=\"hint\" id=\"passwordRules\">{PASSWORD_RULES}</p>\
         <label for=\"reenterPassword\">Confirm New Password</label>\
         <input type=\"password\" id=\"reenterPassword\" name=\"reenterPassword\" \
          autocomplete=\"new-password\" required>",
        hidden_input("verification", verification),
    );
    flow_form(
        ctx,
        "Choose a new password",
        "attributeVerification",
        &fields,
        ("continue", "Continue"),
    )
}

/// Profile edit: the signed-in user's display name.
pub fn profile(ctx: &FormContext<'_>, email: &str, display_name: &str) -> String {
    let fields = format!(
        "<label for=\"email\">Email Address</label>\
         <input type=\"email\" id=\"email\" readonly value=\"{email}\">\
         <label for=\"displayName\">Display Name</label>\
         <input type=\"text\" id=\"displayName\" name=\"displayName\" autocomplete=\"name\" required \
          autofocus maxlength=\"100\" value=\"{display}\">",
        email = escape(email),
        display = escape(display_name),
    );
    flow_form(
        ctx,
        "Edit your profile",
        "attributeVerification",
        &fields,
        ("continue", "Continue"),
    )
}

/// An error shown to the user instead of redirecting (unknown client, unregistered URI, …).
pub fn error(status: StatusCode, title: &str, message: &str) -> Response {
    let body = format!(
        "<h1>{}</h1><div class=\"error\" role=\"alert\" id=\"error\">{}</div>",
        escape(title),
        escape(message)
    );
    html(status, document(title, &body))
}

pub fn signed_out() -> String {
    document(
        "Signed out",
        "<h1>You have signed out</h1><p>You can close this window.</p>",
    )
}

/// The page for an address where nothing is: unknown routes, tenants and user flows.
pub struct NotFound;

impl IntoResponse for NotFound {
    fn into_response(self) -> Response {
        error(
            StatusCode::NOT_FOUND,
            "Not found",
            "There is nothing at this address.",
        )
    }
}

impl UnknownFlow for NotFound {
    fn unknown(_tenant: &str, _policy: &str) -> Self {
        Self
    }
}

pub async fn not_found() -> Response {
    NotFound.into_response()
}
