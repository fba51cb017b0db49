//! EasyAuth's identity headers: `X-MS-CLIENT-PRINCIPAL` (base64 JSON) and its `-ID`, `-NAME`, `-IDP`.

use axum::http::{HeaderMap, HeaderName, HeaderValue};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use moka::sync::Cache;
use std::borrow::Cow;
use std::sync::{Arc, Weak};
use std::time::Duration;

use serde::ser::SerializeStruct;
use serde::{Deserialize, Serialize, Serializer};
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

/// A claim value as EasyAuth writes it: numbers and booleans as text, `null` left out.
fn claim_text(value: &Value) -> Option<Cow<'_, str>> {
    match value {
        Value::String(s) => Some(Cow::Borrowed(s)),
        Value::Bool(b) => Some(Cow::Borrowed(if *b { "true" } else { "false" })),
        Value::Null => None,
        other => Some(Cow::Owned(other.to_string())),
    }
}

/// Every `(typ, val)` of `claims` in EasyAuth's order: one entry per array item.
fn claim_pairs(claims: &Map<String, Value>) -> impl Iterator<Item = (&str, Cow<'_, str>)> {
    claims.iter().flat_map(|(typ, value)| {
        let items = match value {
            Value::Array(items) => items.as_slice(),
            single => std::slice::from_ref(single),
        };
        items
            .iter()
            .filter_map(move |item| Some((typ.as_str(), claim_text(item)?)))
    })
}

/// Claims as EasyAuth lists them: one entry per array item, numbers and booleans as text.
pub fn claim_list(claims: &Map<String, Value>) -> Vec<Claim> {
    claim_pairs(claims)
        .map(|(typ, val)| Claim {
            typ: typ.to_owned(),
            val: val.into_owned(),
        })
        .collect()
}

/// Serialises a principal as `ClientPrincipal` straight from the token's claims: the header is
/// built on every request, so it borrows instead of copying each claim first.
struct ClientPrincipalView<'a>(&'a Map<String, Value>);

impl Serialize for ClientPrincipalView<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        struct Claims<'a>(&'a Map<String, Value>);
        impl Serialize for Claims<'_> {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.collect_seq(claim_pairs(self.0).map(|(typ, val)| ClaimRef { typ, val }))
            }
        }
        #[derive(Serialize)]
        struct ClaimRef<'a> {
            typ: &'a str,
            val: Cow<'a, str>,
        }
        let mut out = serializer.serialize_struct("ClientPrincipal", 4)?;
        out.serialize_field("auth_typ", IDP)?;
        out.serialize_field("claims", &Claims(self.0))?;
        out.serialize_field("name_typ", "name")?;
        out.serialize_field("role_typ", "roles")?;
        out.end()
    }
}

/// The `X-MS-CLIENT-PRINCIPAL` value for `principal`.
pub fn encode(principal: &Principal) -> String {
    let json = serde_json::to_vec(&ClientPrincipalView(&principal.claims)).unwrap_or_default();
    STANDARD.encode(json)
}

impl ClientPrincipal {
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

/// The four headers for `principal`, each left out when a claim holds bytes a header cannot carry
/// (rather than failing the request).
fn header_values(principal: &Principal) -> [(HeaderName, Option<HeaderValue>); 4] {
    let id = principal.object_id.as_deref().unwrap_or(&principal.subject);
    let name = principal.name.as_deref().unwrap_or(&principal.subject);
    let value = |text: &str| HeaderValue::from_str(text).ok();
    [
        (
            HeaderName::from_static(PRINCIPAL),
            value(&encode(principal)),
        ),
        (HeaderName::from_static(PRINCIPAL_ID), value(id)),
        (HeaderName::from_static(PRINCIPAL_NAME), value(name)),
        (HeaderName::from_static(PRINCIPAL_IDP), value(IDP)),
    ]
}

/// Sets the four headers for the handler.
pub fn inject(headers: &mut HeaderMap, principal: &Principal) {
    insert_all(headers, &header_values(principal));
}

fn insert_all(headers: &mut HeaderMap, values: &[(HeaderName, Option<HeaderValue>); 4]) {
    for (name, value) in values {
        if let Some(value) = value {
            headers.insert(name.clone(), value.clone());
        }
    }
}

/// The headers of principals seen before. The validator's cache hands out the same
/// `Arc<Principal>` for a repeated token, so its JSON + base64 is built once per cached token
/// instead of on every call. Keyed by the principal's address: the entry's `Weak` keeps that
/// allocation from being reused while the entry exists, so an address names one principal only.
pub struct PrincipalHeaders {
    built: Cache<usize, Arc<BuiltHeaders>, foldhash::fast::RandomState>,
}

struct BuiltHeaders {
    principal: Weak<Principal>,
    values: [(HeaderName, Option<HeaderValue>); 4],
}

impl PrincipalHeaders {
    /// At most `capacity` principals (the validator's cache size), each for at most `ttl`.
    pub fn new(capacity: u64, ttl: Duration) -> Self {
        Self {
            built: Cache::builder()
                .max_capacity(capacity)
                .time_to_live(ttl)
                .build_with_hasher(foldhash::fast::RandomState::default()),
        }
    }

    /// Sets the four headers for `principal`, built now or taken from an earlier call.
    pub fn inject(&self, headers: &mut HeaderMap, principal: &Arc<Principal>) {
        let key = Arc::as_ptr(principal) as usize;
        let same = |built: &BuiltHeaders| {
            built
                .principal
                .upgrade()
                .is_some_and(|p| Arc::ptr_eq(&p, principal))
        };
        if let Some(built) = self.built.get(&key).filter(|b| same(b)) {
            insert_all(headers, &built.values);
            return;
        }
        let built = Arc::new(BuiltHeaders {
            principal: Arc::downgrade(principal),
            values: header_values(principal),
        });
        insert_all(headers, &built.values);
        self.built.insert(key, built);
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

    fn named(subject: &str, name: &str) -> Arc<Principal> {
        let claims = json!({"sub": subject, "name": name});
        Arc::new(Principal {
            subject: subject.into(),
            object_id: None,
            name: Some(name.into()),
            scopes: vec![],
            roles: vec![],
            client_app: None,
            issuer: "i".into(),
            audience: "a".into(),
            expires_at: 5,
            claims: claims.as_object().cloned().unwrap(),
        })
    }

    fn injected(cache: &PrincipalHeaders, principal: &Arc<Principal>) -> HeaderMap {
        let mut headers = HeaderMap::new();
        cache.inject(&mut headers, principal);
        headers
    }

    #[test]
    fn built_headers_are_reused_for_the_same_principal_only() {
        let cache = PrincipalHeaders::new(100, Duration::from_secs(60));
        let alice = named("alice", "Alice");
        let first = injected(&cache, &alice);
        assert_eq!(first[PRINCIPAL_NAME], "Alice");
        let mut plain = HeaderMap::new();
        inject(&mut plain, &alice);
        assert_eq!(
            first, plain,
            "the same four headers as building them afresh"
        );
        assert_eq!(injected(&cache, &alice), first, "reused");

        // Principals that come and go never inherit another's headers, whatever addresses the
        // allocator hands out.
        drop(alice);
        for n in 0..200 {
            let other = named(&format!("user-{n}"), &format!("User {n}"));
            let headers = injected(&cache, &other);
            assert_eq!(headers[PRINCIPAL_ID], format!("user-{n}").as_str());
            let decoded = ClientPrincipal::from_headers(&headers).unwrap();
            assert_eq!(decoded.claim("sub"), Some(format!("user-{n}").as_str()));
        }
    }

    #[test]
    fn round_trips_and_flattens_arrays() {
        let claims = json!({"sub": "u", "roles": ["a", "b"], "exp": 5, "name": "N", "ok": true, "gone": null, "obj": {"k": 1}});
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
        // The borrowing encoder writes exactly what the owned type would.
        let owned = ClientPrincipal {
            auth_typ: IDP.into(),
            claims: claim_list(&principal.claims),
            name_typ: "name".into(),
            role_typ: "roles".into(),
        };
        assert_eq!(decoded, owned);
        assert_eq!(
            serde_json::from_slice::<Value>(&STANDARD.decode(encode(&principal)).unwrap()).unwrap(),
            serde_json::to_value(&owned).unwrap()
        );
    }
}
