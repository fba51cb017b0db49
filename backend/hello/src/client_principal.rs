//! EasyAuth's identity headers: `X-MS-CLIENT-PRINCIPAL` (base64 JSON) and its `-ID`, `-NAME`, `-IDP`.

use axum::http::{HeaderMap, HeaderName, HeaderValue};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use token_validation::Principal;

pub const PRINCIPAL: &str = "x-ms-client-principal";
pub const PRINCIPAL_ID: &str = "x-ms-client-principal-id";
pub const PRINCIPAL_NAME: &str = "x-ms-client-principal-name";
pub const PRINCIPAL_IDP: &str = "x-ms-client-principal-idp";
/// The identity provider name EasyAuth gives Microsoft Entra / B2C.
pub const IDP: &str = "aad";

/// One `{"typ", "val"}` of EasyAuth's claim lists.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claim {
    pub typ: String,
    pub val: String,
}

/// The decoded `X-MS-CLIENT-PRINCIPAL`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientPrincipal {
    pub auth_typ: String,
    pub claims: Vec<Claim>,
    pub name_typ: String,
    pub role_typ: String,
}

/// Claims as EasyAuth lists them: one entry per array item, numbers and booleans as text.
pub fn claim_list(claims: &Map<String, Value>) -> Vec<Claim> {
    let text = |value: &Value| match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Null => None,
        other => Some(other.to_string()),
    };
    let mut list = Vec::new();
    for (typ, value) in claims {
        let values: Vec<&Value> = match value {
            Value::Array(items) => items.iter().collect(),
            single => vec![single],
        };
        list.extend(values.into_iter().filter_map(text).map(|val| Claim {
            typ: typ.clone(),
            val,
        }));
    }
    list
}

impl ClientPrincipal {
    pub fn from_principal(principal: &Principal) -> Self {
        Self {
            auth_typ: IDP.into(),
            claims: claim_list(&principal.claims),
            name_typ: "name".into(),
            role_typ: "roles".into(),
        }
    }

    /// The first value of claim `typ`.
    pub fn claim(&self, typ: &str) -> Option<&str> {
        self.claims.iter().find(|c| c.typ == typ).map(|c| c.val.as_str())
    }

    /// Every value of claim `typ`.
    pub fn claims_of<'a>(&'a self, typ: &'a str) -> impl Iterator<Item = &'a str> {
        self.claims.iter().filter(move |c| c.typ == typ).map(|c| c.val.as_str())
    }

    pub fn encode(&self) -> String {
        STANDARD.encode(serde_json::to_vec(self).unwrap_or_default())
    }

    /// Reads the header EasyAuth injected (never one from outside: those are stripped first).
    pub fn from_headers(headers: &HeaderMap) -> Option<Self> {
        let encoded = headers.get(PRINCIPAL)?.to_str().ok()?;
        serde_json::from_slice(&STANDARD.decode(encoded).ok()?).ok()
    }
}

/// Removes identity headers a caller may have sent: only EasyAuth may set them.
pub fn strip_incoming(headers: &mut HeaderMap) {
    let forged: Vec<HeaderName> = headers
        .keys()
        .filter(|name| {
            let name = name.as_str();
            name.starts_with("x-ms-client-principal") || name.starts_with("x-ms-token-")
        })
        .cloned()
        .collect();
    for name in forged {
        headers.remove(name);
    }
}

/// Sets the four headers for the handler.
pub fn inject(headers: &mut HeaderMap, principal: &Principal) {
    let id = principal.object_id.as_deref().unwrap_or(&principal.subject);
    let name = principal.name.as_deref().unwrap_or(&principal.subject);
    for (header, value) in [
        (PRINCIPAL, ClientPrincipal::from_principal(principal).encode()),
        (PRINCIPAL_ID, id.to_owned()),
        (PRINCIPAL_NAME, name.to_owned()),
        (PRINCIPAL_IDP, IDP.to_owned()),
    ] {
        // A claim with bytes a header cannot carry is left out rather than failing the request.
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(HeaderName::from_static(header), value);
        }
    }
}
