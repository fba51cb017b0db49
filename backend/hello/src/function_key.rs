//! Function keys (authLevel `function`): `x-functions-key` header, else `?code=`; several keys
//! accepted; compared in constant time; missing or wrong → 401 with an empty body, like the host.

use axum::extract::Request;
use sha2::{Digest, Sha256};
use subtle::{Choice, ConstantTimeEq};

use crate::config::FunctionKey;
use crate::refusal::Refusal;

pub const HEADER: &str = "x-functions-key";

/// The accepted keys, kept as SHA-256 digests so every comparison is over 32 bytes whatever
/// the candidate's length.
pub struct FunctionKeys {
    digests: Vec<[u8; 32]>,
}

impl FunctionKeys {
    pub fn new(keys: &[FunctionKey]) -> Self {
        Self {
            digests: keys
                .iter()
                .map(|k| Sha256::digest(k.secret().as_bytes()).into())
                .collect(),
        }
    }

    /// Compares against every key without stopping at a match, so timing says nothing about which.
    pub fn accepts(&self, candidate: &str) -> bool {
        let digest: [u8; 32] = Sha256::digest(candidate.as_bytes()).into();
        let mut found = Choice::from(0);
        for key in &self.digests {
            found |= key.ct_eq(&digest);
        }
        found.into()
    }
}

/// The key the caller sent: the header wins over the query string, as in the Functions host.
fn presented_key(request: &Request) -> Option<String> {
    if let Some(value) = request.headers().get(HEADER) {
        return value.to_str().ok().map(str::to_owned);
    }
    let query = request.uri().query()?;
    url::form_urlencoded::parse(query.as_bytes())
        .find(|(name, _)| name == "code")
        .map(|(_, value)| value.into_owned())
}

impl FunctionKeys {
    /// 401 unless the request presents one of the keys.
    pub fn check(&self, request: &Request) -> Result<(), Refusal> {
        match presented_key(request) {
            Some(key) if self.accepts(&key) => Ok(()),
            presented => {
                tracing::info!(
                    presented = presented.is_some(),
                    "function key missing or wrong"
                );
                Err(Refusal::FunctionKey)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_any_configured_key_and_nothing_else() {
        let keys = FunctionKeys::new(&[
            FunctionKey::new("first-key-0123456789".into()),
            FunctionKey::new("second-key-0123456789".into()),
        ]);
        assert!(keys.accepts("first-key-0123456789"));
        assert!(keys.accepts("second-key-0123456789"));
        assert!(!keys.accepts("first-key-012345678"));
        assert!(!keys.accepts(""));
        assert!(!keys.accepts("FIRST-KEY-0123456789"));
    }
}
