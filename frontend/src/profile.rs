//! The `/profile` page's table: the signed-in user's ID token claims in plain words, as jwt.ms
//! (the seed's inspection tool) shows them. No signature check here either (see [`id_token`]):
//! the token is the one this tab redeemed itself.
//!
//! [`id_token`]: crate::id_token

use crate::id_token;
use crate::json::Json;

/// One row: the claim's name, what it means, and its value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    pub name: &'static str,
    pub meaning: &'static str,
    pub value: ClaimValue,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClaimValue {
    Text(String),
    /// Seconds since the epoch; the page shows it as the browser's local time.
    Time(u64),
}

/// The claims worth reading, in the order shown; absent ones are left out.
const ROWS: [(&str, &str); 11] = [
    ("name", "Display name"),
    ("emails", "Email addresses"),
    ("oid", "Object id of the user"),
    ("sub", "Subject"),
    ("iss", "Issuer"),
    ("aud", "Audience (this app's client id)"),
    ("iat", "Issued at"),
    ("auth_time", "Signed in at"),
    ("exp", "Expires at"),
    ("tfp", "User flow (trust framework policy)"),
    ("acr", "Authentication context (user flow)"),
];

/// The rows of an ID token; `None` if it is not a readable JWT.
pub fn claims(id_token: &str) -> Option<Vec<Claim>> {
    let payload = id_token::decode(id_token)?;
    let rows = ROWS
        .iter()
        .filter_map(|&(name, meaning)| {
            let value = read(name, payload.get(name)?)?;
            Some(Claim {
                name,
                meaning,
                value,
            })
        })
        .collect();
    Some(rows)
}

fn read(name: &str, value: &Json) -> Option<ClaimValue> {
    if matches!(name, "iat" | "exp" | "auth_time") {
        return value.as_u64().map(ClaimValue::Time);
    }
    let text = match value {
        Json::String(text) => text.clone(),
        Json::Array(_) => value.as_strings()?.join(", "),
        _ => return None,
    };
    Some(ClaimValue::Text(text))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::id_token::tests::{NOW, good_claims, jwt};

    #[test]
    fn rows_follow_the_table_order_and_skip_absent_claims() {
        let mut claims_json = good_claims();
        claims_json["tfp"] = "B2C_1_signupsignin".into();
        claims_json["emails"] = serde_json::json!(["alice@example.com", "a@example.org"]);
        let rows = claims(&jwt(claims_json)).unwrap();
        let names: Vec<_> = rows.iter().map(|r| r.name).collect();
        assert_eq!(
            names,
            ["name", "emails", "sub", "iss", "aud", "iat", "exp", "tfp"]
        );
        assert_eq!(
            rows[1].value,
            ClaimValue::Text("alice@example.com, a@example.org".into())
        );
        assert_eq!(rows[6].value, ClaimValue::Time(NOW + 3600));
        assert_eq!(rows[7].value, ClaimValue::Text("B2C_1_signupsignin".into()));
    }

    #[test]
    fn unreadable_tokens_and_claims_of_the_wrong_type() {
        assert!(claims("not-a-jwt").is_none());
        let mut odd = good_claims();
        odd["exp"] = "tomorrow".into();
        odd["name"] = 42.into();
        let rows = claims(&jwt(odd)).unwrap();
        assert!(rows.iter().all(|r| r.name != "exp" && r.name != "name"));
    }
}
