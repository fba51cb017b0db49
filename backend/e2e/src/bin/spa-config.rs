//! Writes the SPA's `config.json` for one environment, validated by the very type the SPA parses it
//! with (`shared::SpaConfig`), so a deployment can never upload a file the page would refuse.
//!
//! `spa-config` reads `SPA_CLIENT_ID`, `SPA_AUTHORITY`, `SPA_KNOWN_AUTHORITIES`, `SPA_SCOPES`,
//! `SPA_API_URL` and the optional `SPA_REDIRECT_URI`, `SPA_POST_LOGOUT_REDIRECT_URI`,
//! `SPA_FORGOT_PASSWORD_POLICY`, `SPA_EDIT_PROFILE_POLICY`, `SPA_CONSOLE_CLIENT_ID` (the developer
//! console's app registration; with it `SPA_CONSOLE_REDIRECT_URI`, `SPA_CONSOLE_OPENAPI_URL`)
//! (lists are comma- or space-separated) and prints the JSON. `spa-config --check FILE` validates a file.
//! Any problem: one line on stderr naming the setting, exit code 2.

use shared::SpaConfig;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.as_slice() {
        [] => from_env().and_then(|config| {
            serde_json::to_string_pretty(&config).map_err(|e| format!("cannot serialise: {e}"))
        }),
        [flag, file] if flag == "--check" => check(file),
        _ => Err("usage: spa-config            (settings from SPA_* variables)\n       spa-config --check FILE".into()),
    };
    match result {
        Ok(text) => {
            println!("{text}");
            ExitCode::SUCCESS
        }
        Err(why) => {
            eprintln!("spa-config: {why}");
            ExitCode::from(2)
        }
    }
}

fn check(file: &str) -> Result<String, String> {
    let text = std::fs::read_to_string(file).map_err(|e| format!("cannot read {file}: {e}"))?;
    SpaConfig::from_json(&text).map_err(|e| format!("{file}: {e}"))?;
    Ok(format!("{file}: valid"))
}

fn from_env() -> Result<SpaConfig, String> {
    let config = SpaConfig {
        client_id: required("SPA_CLIENT_ID")?,
        authority: required("SPA_AUTHORITY")?,
        known_authorities: list(&required("SPA_KNOWN_AUTHORITIES")?),
        redirect_uri: optional("SPA_REDIRECT_URI"),
        post_logout_redirect_uri: optional("SPA_POST_LOGOUT_REDIRECT_URI"),
        scopes: list(&required("SPA_SCOPES")?),
        api_url: required("SPA_API_URL")?,
        policies: user_flows(&required("SPA_AUTHORITY")?),
        console: console()?,
    };
    // The variable names, not the JSON field names, are what the operator sets.
    config.validate().map_err(|e| {
        format!("{e} (settings: SPA_CLIENT_ID, SPA_AUTHORITY, SPA_KNOWN_AUTHORITIES, SPA_SCOPES, SPA_API_URL, SPA_REDIRECT_URI, SPA_POST_LOGOUT_REDIRECT_URI, SPA_FORGOT_PASSWORD_POLICY, SPA_EDIT_PROFILE_POLICY, SPA_CONSOLE_CLIENT_ID, SPA_CONSOLE_REDIRECT_URI, SPA_CONSOLE_OPENAPI_URL)")
    })?;
    Ok(config)
}

/// `SPA_FORGOT_PASSWORD_POLICY` / `SPA_EDIT_PROFILE_POLICY`: the tenant's other user flows; the
/// sign-up/sign-in flow is the authority's last segment.
fn user_flows(authority: &str) -> Option<shared::UserFlows> {
    let (forgot_password, edit_profile) = (
        optional("SPA_FORGOT_PASSWORD_POLICY"),
        optional("SPA_EDIT_PROFILE_POLICY"),
    );
    if forgot_password.is_none() && edit_profile.is_none() {
        return None;
    }
    let sign_up_sign_in = authority.trim_end_matches('/').rsplit('/').next()?;
    Some(shared::UserFlows {
        sign_up_sign_in: sign_up_sign_in.to_owned(),
        forgot_password,
        edit_profile,
    })
}

/// `SPA_CONSOLE_CLIENT_ID`: the developer console's app registration; its other settings alone
/// are a mistake, not a console.
fn console() -> Result<Option<shared::ConsoleConfig>, String> {
    let (redirect_uri, openapi_url) = (
        optional("SPA_CONSOLE_REDIRECT_URI"),
        optional("SPA_CONSOLE_OPENAPI_URL"),
    );
    let Some(client_id) = optional("SPA_CONSOLE_CLIENT_ID") else {
        if redirect_uri.is_some() || openapi_url.is_some() {
            return Err(
                "SPA_CONSOLE_CLIENT_ID is not set, but other SPA_CONSOLE_* settings are".into(),
            );
        }
        return Ok(None);
    };
    Ok(Some(shared::ConsoleConfig {
        client_id,
        redirect_uri,
        openapi_url,
    }))
}

fn required(name: &str) -> Result<String, String> {
    optional(name).ok_or_else(|| format!("{name} is not set"))
}

fn optional(name: &str) -> Option<String> {
    std::env::var(name)
        .ok()
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
}

fn list(value: &str) -> Vec<String> {
    value
        .split([',', ' '])
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}
