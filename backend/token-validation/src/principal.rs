//! From verified claims to a typed [`Principal`]: claim types, ID-token refusal, required claims.

use serde::Serialize;
use serde_json::{Map, Value};

use crate::{RequiredClaim, ValidationError};

/// Who a valid token speaks for.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Principal {
    /// `sub`: the user's object id, or the calling app for client credentials.
    pub subject: String,
    /// `oid`.
    pub object_id: Option<String>,
    /// `name` (user tokens).
    pub name: Option<String>,
    /// `scp`, split on spaces (delegated permissions).
    pub scopes: Vec<String>,
    /// `roles` (application permissions).
    pub roles: Vec<String>,
    /// `azp`, or `appid` in v1 tokens: the client application that asked for the token.
    pub client_app: Option<String>,
    /// `iss`.
    pub issuer: String,
    /// The `aud` value that matched an allowed audience.
    pub audience: String,
    /// `exp`, seconds since the Unix epoch.
    pub expires_at: i64,
    /// Every claim as it came, for callers that need more (e.g. EasyAuth's claim list).
    pub claims: Map<String, Value>,
}

impl Principal {
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes.iter().any(|s| s == scope)
    }

    pub fn has_role(&self, role: &str) -> bool {
        self.roles.iter().any(|r| r == role)
    }
}

/// Claims that only ID tokens carry (OpenID Connect Core §2, §3.1.3.6).
const ID_TOKEN_ONLY: [&str; 3] = ["nonce", "at_hash", "c_hash"];

/// Builds the principal from claims whose signature, `exp`, `nbf`, `iss` and `aud` jsonwebtoken
/// already checked; here the types of the claims we read, and that the token is no ID token.
pub(crate) fn principal(
    claims: Map<String, Value>,
    audiences: &[String],
) -> Result<Principal, ValidationError> {
    if ID_TOKEN_ONLY.iter().any(|name| claims.contains_key(*name)) {
        return Err(ValidationError::IdToken);
    }
    let expires_at = match claims.get("exp") {
        Some(Value::Number(n)) => n.as_i64().ok_or(ValidationError::InvalidClaim("exp"))?,
        Some(_) => return Err(ValidationError::InvalidClaim("exp")),
        None => return Err(ValidationError::MissingClaim("exp")),
    };
    for name in ["nbf", "iat", "auth_time"] {
        if claims.get(name).is_some_and(|v| !v.is_i64() && !v.is_u64()) {
            return Err(ValidationError::InvalidClaim(static_name(name)));
        }
    }
    let issuer = required_string(&claims, "iss")?;
    let subject = required_string(&claims, "sub")?;
    if subject.is_empty() {
        return Err(ValidationError::MissingClaim("sub"));
    }
    let audience = match claims.get("aud") {
        Some(Value::String(aud)) => Some(aud.clone()),
        Some(Value::Array(values)) => {
            if values.iter().any(|v| !v.is_string()) {
                return Err(ValidationError::InvalidClaim("aud"));
            }
            values
                .iter()
                .filter_map(Value::as_str)
                .find(|aud| audiences.iter().any(|a| a == aud))
                .map(str::to_owned)
        }
        Some(_) => return Err(ValidationError::InvalidClaim("aud")),
        None => return Err(ValidationError::MissingClaim("aud")),
    };
    let audience = audience
        .filter(|aud| audiences.iter().any(|a| a == aud))
        .ok_or(ValidationError::InvalidAudience)?;
    let scopes = match optional_string(&claims, "scp")? {
        Some(scp) => scp.split_whitespace().map(str::to_owned).collect(),
        None => Vec::new(),
    };
    let roles = match claims.get("roles") {
        None => Vec::new(),
        Some(Value::Array(values)) => values
            .iter()
            .map(|v| v.as_str().map(str::to_owned))
            .collect::<Option<Vec<_>>>()
            .ok_or(ValidationError::InvalidClaim("roles"))?,
        Some(_) => return Err(ValidationError::InvalidClaim("roles")),
    };
    let client_app = match optional_string(&claims, "azp")? {
        Some(azp) => Some(azp),
        None => optional_string(&claims, "appid")?,
    };
    Ok(Principal {
        subject,
        object_id: optional_string(&claims, "oid")?,
        name: optional_string(&claims, "name")?,
        scopes,
        roles,
        client_app,
        issuer,
        audience,
        expires_at,
        claims,
    })
}

/// API Management's `required-claims`: every rule must hold.
pub(crate) fn check_required(
    claims: &Map<String, Value>,
    rules: &[RequiredClaim],
) -> Result<(), ValidationError> {
    for rule in rules {
        let failed = || ValidationError::RequiredClaim {
            claim: rule.name.clone(),
        };
        let present = claim_values(claims.get(&rule.name).ok_or_else(failed)?, rule.separator);
        if rule.values.is_empty() {
            continue;
        }
        let mut wanted = rule.values.iter().map(|v| present.iter().any(|p| p == v));
        let holds = if rule.match_all {
            wanted.all(|found| found)
        } else {
            wanted.any(|found| found)
        };
        if !holds {
            return Err(failed());
        }
    }
    Ok(())
}

/// A claim as a list of strings: an array's items, or a string (split when a separator is set).
fn claim_values(value: &Value, separator: Option<char>) -> Vec<String> {
    let scalar = |v: &Value| match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    };
    match (value, separator) {
        (Value::Array(items), _) => items.iter().filter_map(scalar).collect(),
        (Value::String(s), Some(sep)) => s
            .split(sep)
            .filter(|part| !part.is_empty())
            .map(str::to_owned)
            .collect(),
        (other, _) => scalar(other).into_iter().collect(),
    }
}

fn required_string(
    claims: &Map<String, Value>,
    name: &'static str,
) -> Result<String, ValidationError> {
    optional_string(claims, name)?.ok_or(ValidationError::MissingClaim(name))
}

fn optional_string(
    claims: &Map<String, Value>,
    name: &'static str,
) -> Result<Option<String>, ValidationError> {
    match claims.get(name) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(ValidationError::InvalidClaim(name)),
    }
}

fn static_name(name: &str) -> &'static str {
    match name {
        "nbf" => "nbf",
        "iat" => "iat",
        _ => "auth_time",
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    fn claims(value: Value) -> Map<String, Value> {
        value.as_object().cloned().unwrap()
    }

    fn user() -> Map<String, Value> {
        claims(json!({
            "iss": "https://issuer/", "sub": "u1", "oid": "u1", "aud": "api", "exp": 2000000000,
            "nbf": 1, "iat": 1, "scp": "accessapp read", "azp": "spa", "name": "Alice"
        }))
    }

    #[test]
    fn builds_a_typed_principal() {
        let p = principal(user(), &["api".into()]).unwrap();
        assert_eq!(p.subject, "u1");
        assert_eq!(p.scopes, ["accessapp", "read"]);
        assert_eq!(p.client_app.as_deref(), Some("spa"));
        assert_eq!(p.audience, "api");
        assert_eq!(p.expires_at, 2_000_000_000);
        assert!(p.has_scope("read") && !p.has_role("read"));
    }

    #[test]
    fn picks_the_allowed_audience_from_an_array_and_appid_for_v1() {
        let mut c = user();
        c.insert("aud".into(), json!(["other", "api"]));
        c.remove("azp");
        c.insert("appid".into(), json!("daemon"));
        let p = principal(c, &["api".into()]).unwrap();
        assert_eq!(p.audience, "api");
        assert_eq!(p.client_app.as_deref(), Some("daemon"));
    }

    #[test]
    fn refuses_wrong_types_and_id_tokens() {
        for (name, value, expected) in [
            ("sub", json!(5), ValidationError::InvalidClaim("sub")),
            ("iat", json!("1"), ValidationError::InvalidClaim("iat")),
            (
                "roles",
                json!("admin"),
                ValidationError::InvalidClaim("roles"),
            ),
            ("roles", json!([1]), ValidationError::InvalidClaim("roles")),
            ("scp", json!(["a"]), ValidationError::InvalidClaim("scp")),
            (
                "aud",
                json!([1, "api"]),
                ValidationError::InvalidClaim("aud"),
            ),
            ("aud", json!(["other"]), ValidationError::InvalidAudience),
            ("nonce", json!("n"), ValidationError::IdToken),
            ("at_hash", json!("h"), ValidationError::IdToken),
        ] {
            let mut c = user();
            c.insert(name.into(), value);
            assert_eq!(principal(c, &["api".into()]), Err(expected), "{name}");
        }
        let mut c = user();
        c.remove("sub");
        assert_eq!(
            principal(c, &["api".into()]),
            Err(ValidationError::MissingClaim("sub"))
        );
    }

    #[test]
    fn required_claims_follow_apim() {
        let c = claims(json!({"scp": "read write", "roles": ["a", "b"], "tid": "t1"}));
        let ok = |rules: &[RequiredClaim]| check_required(&c, rules).is_ok();
        assert!(ok(&[
            RequiredClaim::all("scp", ["read", "write"]).separated_by(' ')
        ]));
        assert!(!ok(&[
            RequiredClaim::all("scp", ["read", "admin"]).separated_by(' ')
        ]));
        assert!(ok(&[
            RequiredClaim::any("scp", ["read", "admin"]).separated_by(' ')
        ]));
        // Without a separator the whole string is one value.
        assert!(!ok(&[RequiredClaim::any("scp", ["read"])]));
        assert!(ok(&[RequiredClaim::all("roles", ["b"])]));
        assert!(!ok(&[RequiredClaim::any("roles", ["c"])]));
        assert!(ok(&[RequiredClaim::all("tid", Vec::<String>::new())]));
        assert_eq!(
            check_required(&c, &[RequiredClaim::all("missing", ["x"])]),
            Err(ValidationError::RequiredClaim {
                claim: "missing".into()
            })
        );
    }
}
