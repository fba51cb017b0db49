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
        self.claims
            .iter()
            .find(|c| c.typ == typ)
            .map(|c| c.val.as_str())
    }

    /// Every value of claim `typ`.
    pub fn claims_of<'a>(&'a self, typ: &'a str) -> impl Iterator<Item = &'a str> {
        self.claims
            .iter()
            .filter(move |c| c.typ == typ)
            .map(|c| c.val.as_str())
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
        (
            PRINCIPAL,
            ClientPrincipal::from_principal(principal).encode(),
        ),
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    #[test]
    fn strips_every_identity_header_a_caller_could_forge() {
        let mut headers = HeaderMap::new();
        for name in [
            "X-MS-CLIENT-PRINCIPAL",
            "x-ms-client-principal-id",
            "X-Ms-Client-Principal-Name",
            "x-ms-client-principal-idp",
            "x-ms-token-aad-access-token",
        ] {
            headers.append(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_static("forged"),
            );
        }
        headers.insert("x-other", HeaderValue::from_static("kept"));
        strip_incoming(&mut headers);
        assert_eq!(headers.len(), 1);
        assert_eq!(headers["x-other"], "kept");
    }

    #[test]
    fn round_trips_and_flattens_arrays() {
        let claims = json!({"sub": "u", "roles": ["a", "b"], "exp": 5, "name": "N"});
        let principal = Principal {
            subject: "u".into(),
            object_id: None,
            name: Some("N".into()),
            scopes: vec![],
            roles: vec!["a".into(), "b".into()],
            client_app: None,
            issuer: "i".into(),
            audience: "a".into(),
            expires_at: 5,
            claims: claims.as_object().cloned().unwrap(),
        };
        let mut headers = HeaderMap::new();
        inject(&mut headers, &principal);
        assert_eq!(headers[PRINCIPAL_ID], "u");
        assert_eq!(headers[PRINCIPAL_NAME], "N");
        assert_eq!(headers[PRINCIPAL_IDP], "aad");
        let decoded = ClientPrincipal::from_headers(&headers).unwrap();
        assert_eq!(decoded.claims_of("roles").collect::<Vec<_>>(), ["a", "b"]);
        assert_eq!(decoded.claim("exp"), Some("5"));
        assert_eq!(decoded.auth_typ, "aad");
    }
}
