//! What a [`Validator`](crate::Validator) accepts, fixed at construction.

use std::time::Duration;

/// Settings of one validator. `Default` gives production values; callers fill in the URLs and audiences.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidatorConfig {
    /// OpenID metadata documents (`…/.well-known/openid-configuration`); keys of all are accepted.
    pub openid_config_urls: Vec<String>,
    /// Accepted `iss` values. Empty: the `issuer` of each metadata document.
    pub issuers: Vec<String>,
    /// Accepted `aud` values (any one matches). Empty: every token is refused.
    pub audiences: Vec<String>,
    /// Leeway for `exp` and `nbf`. Default 300 s (the seed's validate-jwt `clock-skew`).
    pub clock_skew: Duration,
    /// Extra claim rules with API Management's `required-claims` semantics.
    pub required_claims: Vec<RequiredClaim>,
    /// Tokens longer than this are refused before any parsing. Default 16 KiB.
    pub max_token_bytes: usize,
    /// A token naming an unknown `kid` refetches the keys at most this often. Default 60 s.
    pub min_refetch_interval: Duration,
    /// Keys are refetched in the background this often. Default 1 hour.
    pub refresh_interval: Duration,
    /// Timeout of each metadata or JWKS request. Default 10 s.
    pub http_timeout: Duration,
    /// Validated tokens remembered (by hash) until they expire; 0 disables the cache. Default 10 000.
    pub token_cache_capacity: u64,
}

impl Default for ValidatorConfig {
    fn default() -> Self {
        Self {
            openid_config_urls: Vec::new(),
            issuers: Vec::new(),
            audiences: Vec::new(),
            clock_skew: Duration::from_secs(300),
            required_claims: Vec::new(),
            max_token_bytes: 16 * 1024,
            min_refetch_interval: Duration::from_secs(60),
            refresh_interval: Duration::from_secs(3600),
            http_timeout: Duration::from_secs(10),
            token_cache_capacity: 10_000,
        }
    }
}

/// One `<claim>` of API Management's `required-claims`: the claim must be present and, when
/// `values` is not empty, contain all (`match_all`) or any of them. With a `separator`, a
/// string claim is split first (`scp` is space-separated).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequiredClaim {
    pub name: String,
    pub values: Vec<String>,
    pub match_all: bool,
    pub separator: Option<char>,
}

impl RequiredClaim {
    /// `<claim name=… match="all">` (APIM's default match).
    pub fn all(
        name: impl Into<String>,
        values: impl IntoIterator<Item = impl Into<String>>,
    ) -> Self {
        Self {
            name: name.into(),
            values: values.into_iter().map(Into::into).collect(),
            match_all: true,
            separator: None,
        }
    }

    /// `<claim name=… match="any">`.
    pub fn any(
        name: impl Into<String>,
        values: impl IntoIterator<Item = impl Into<String>>,
    ) -> Self {
        Self {
            match_all: false,
            ..Self::all(name, values)
        }
    }

    /// `separator="…"`.
    pub fn separated_by(mut self, separator: char) -> Self {
        self.separator = Some(separator);
        self
    }
}
