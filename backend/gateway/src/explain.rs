//! `gateway explain`: why the gateway would accept or refuse a token, rule by rule, and which
//! setting to change. APIM and the JWT libraries answer a bare 401; this names the rule.
//!
//! The verdict is the gateway's own validator's, built from the same settings; the rules around
//! it read the token's header and claims (never verified: this is a diagnosis, not a check) to say
//! what differs. Each metadata URL is also asked on its own, so an unknown `kid` can be answered
//! with which URLs were asked and what each said. The signature and the token itself are never
//! printed.

use crate::config::PolicyConfig;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value};
use std::fmt::Write;
use std::time::Duration;
use token_validation::{ValidationError, Validator, ValidatorConfig};

/// How long each metadata URL gets to load.
const FETCH_LIMIT: Duration = Duration::from_secs(10);

/// The settings a validator is built from, as the running gateway builds it.
fn validator_config(policy: &PolicyConfig, urls: &[String]) -> ValidatorConfig {
    ValidatorConfig {
        openid_config_urls: urls.to_vec(),
        issuers: policy.issuers.clone(),
        audiences: policy.audiences.clone(),
        clock_skew: policy.clock_skew,
        required_claims: policy.required_claims.clone(),
        token_cache_capacity: 0,
        ..ValidatorConfig::default()
    }
}

async fn validator(policy: &PolicyConfig, urls: &[String]) -> Validator {
    let validator = Validator::new(validator_config(policy, urls)).await;
    validator.wait_for_first_fetch(FETCH_LIMIT).await;
    validator
}

/// A validator for every configured metadata URL, after its first fetch (at most 10 s): what
/// the one-shot commands read the IdP's endpoints from.
pub async fn metadata_validator(policy: &PolicyConfig) -> Validator {
    let urls: Vec<String> = policy
        .openid_config_urls
        .iter()
        .map(|u| u.to_string())
        .collect();
    validator(policy, &urls).await
}

/// `1h 02m 03s`, `4m 10s`, `7s`.
pub fn span(seconds: u64) -> String {
    let (d, h, m, s) = (
        seconds / 86_400,
        seconds % 86_400 / 3600,
        seconds % 3600 / 60,
        seconds % 60,
    );
    match (d, h, m) {
        (0, 0, 0) => format!("{s}s"),
        (0, 0, _) => format!("{m}m {s:02}s"),
        (0, _, _) => format!("{h}h {m:02}m {s:02}s"),
        _ => format!("{d}d {h}h {m:02}m"),
    }
}

fn segment(part: Option<&str>) -> Option<Map<String, Value>> {
    let bytes = URL_SAFE_NO_PAD.decode(part?).ok()?;
    serde_json::from_slice(&bytes).ok()
}

fn text(value: Option<&Value>) -> String {
    match value {
        None => "(absent)".to_owned(),
        Some(Value::String(s)) => format!("`{s}`"),
        Some(other) => other.to_string(),
    }
}

fn strings(value: Option<&Value>) -> Vec<String> {
    match value {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect(),
        _ => Vec::new(),
    }
}

/// The report being written: one line per rule.
struct Report {
    out: String,
    failed: bool,
}

impl Report {
    fn rule(&mut self, ok: bool, rule: &str, detail: impl AsRef<str>) {
        self.failed |= !ok;
        let mark = if ok { "ok  " } else { "FAIL" };
        let _ = writeln!(self.out, "{mark}  {rule:<12} {}", detail.as_ref());
    }
}

/// The report, and whether the gateway would accept the token.
pub async fn explain(policy: &PolicyConfig, token: &str, now: i64) -> (String, bool) {
    let token = token.trim();
    let token = token.strip_prefix("Bearer ").unwrap_or(token).trim();
    let mut report = Report {
        out: String::new(),
        failed: false,
    };
    let mut parts = token.split('.');
    let header = segment(parts.next());
    let claims = segment(parts.next());
    let signed = parts.next().is_some_and(|s| !s.is_empty()) && parts.next().is_none();
    let (Some(header), Some(claims)) = (header, claims) else {
        report.rule(
            false,
            "format",
            "not a signed JWT (three base64url parts: JSON header, JSON claims, signature)",
        );
        return finish(report, policy, token).await;
    };
    report.rule(
        signed,
        "format",
        if signed {
            "three parts, JSON header and claims"
        } else {
            "no signature: unsigned tokens are never accepted"
        },
    );
    let _ = writeln!(
        report.out,
        "      claims       iss={} aud={} sub={} scp={} roles={} azp={}",
        text(claims.get("iss")),
        text(claims.get("aud")),
        text(claims.get("sub")),
        text(claims.get("scp")),
        text(claims.get("roles")),
        text(claims.get("azp")),
    );
    let alg = header.get("alg").and_then(Value::as_str);
    report.rule(
        alg == Some("RS256"),
        "algorithm",
        match alg {
            Some("RS256") => "RS256".to_owned(),
            other => format!(
                "{} — only RS256 (what B2C and Entra sign with) is accepted; no setting changes this",
                text(other.map(|a| Value::String(a.to_owned())).as_ref())
            ),
        },
    );
    key_rules(&mut report, policy, token, &header, &claims).await;
    audience_rule(&mut report, policy, &claims);
    required_claims_rule(&mut report, policy, &claims);
    time_rules(&mut report, policy, &claims, now);
    finish(report, policy, token).await
}

/// Which metadata URL publishes the `kid`, and whether the issuer is one the gateway accepts.
async fn key_rules(
    report: &mut Report,
    policy: &PolicyConfig,
    token: &str,
    header: &Map<String, Value>,
    claims: &Map<String, Value>,
) {
    let kid = text(header.get("kid"));
    let mut asked = Vec::new();
    let mut publisher = None;
    let mut issuers = Vec::new();
    for url in &policy.openid_config_urls {
        let url = url.to_string();
        let single = validator(policy, std::slice::from_ref(&url)).await;
        let metadata = single.metadata();
        let Some(loaded) = metadata.first() else {
            asked.push(format!(
                "{url} (did not load: unreachable or not a metadata document)"
            ));
            continue;
        };
        issuers.push(loaded.issuer.clone());
        match single.validate(token).await {
            Err(ValidationError::UnknownKey | ValidationError::KeysUnavailable) => {
                asked.push(format!("{url} (issuer `{}`: no such key)", loaded.issuer));
            }
            Err(ValidationError::InvalidSignature) => {
                report.rule(
                    false,
                    "signature",
                    format!("kid {kid} is published by {url}, but the signature does not verify with it (altered or forged token)"),
                );
                publisher = Some(url);
            }
            _ => publisher = Some(url),
        }
    }
    match &publisher {
        Some(url) => report.rule(
            true,
            "signing key",
            format!("kid {kid} is published by {url}"),
        ),
        None => report.rule(
            false,
            "signing key",
            format!(
                "kid {kid} is not published by any URL in GATEWAY_OPENID_CONFIG_URLS; asked: {}",
                asked.join("; ")
            ),
        ),
    }
    let iss = claims
        .get("iss")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let (accepted, setting) = if policy.issuers.is_empty() {
        (
            issuers,
            "the metadata documents' issuers (GATEWAY_ISSUERS is unset)",
        )
    } else {
        (policy.issuers.clone(), "GATEWAY_ISSUERS")
    };
    if accepted.iter().any(|i| i == iss) {
        report.rule(true, "issuer", format!("`{iss}`"));
    } else {
        report.rule(
            false,
            "issuer",
            format!(
                "`{iss}` is not among {setting}: [{}] — add its user flow's metadata URL to GATEWAY_OPENID_CONFIG_URLS or its issuer to GATEWAY_ISSUERS",
                accepted.join(", ")
            ),
        );
    }
}

fn audience_rule(report: &mut Report, policy: &PolicyConfig, claims: &Map<String, Value>) {
    let audiences = strings(claims.get("aud"));
    if audiences.iter().any(|a| policy.audiences.contains(a)) {
        report.rule(true, "audience", format!("{audiences:?}"));
    } else {
        report.rule(
            false,
            "audience",
            format!(
                "GATEWAY_AUDIENCES does not list {} (it lists {:?}); it must be the API app's client id",
                text(claims.get("aud")),
                policy.audiences
            ),
        );
    }
}

/// `GATEWAY_REQUIRED_CLAIMS`, rule by rule: what it wants and what the token has.
fn required_claims_rule(report: &mut Report, policy: &PolicyConfig, claims: &Map<String, Value>) {
    for rule in &policy.required_claims {
        let present: Vec<String> = match (claims.get(&rule.name), rule.separator) {
            (Some(Value::String(s)), Some(separator)) => s
                .split(separator)
                .filter(|v| !v.is_empty())
                .map(str::to_owned)
                .collect(),
            (value, _) => strings(value),
        };
        let found = |v: &String| present.contains(v);
        let holds = claims.contains_key(&rule.name)
            && (rule.values.is_empty()
                || if rule.match_all {
                    rule.values.iter().all(found)
                } else {
                    rule.values.iter().any(found)
                });
        let wants = if rule.values.is_empty() {
            "to be present".to_owned()
        } else {
            format!(
                "{} of {:?}",
                if rule.match_all { "all" } else { "one" },
                rule.values
            )
        };
        report.rule(
            holds,
            "claims",
            format!(
                "GATEWAY_REQUIRED_CLAIMS wants `{}` {wants}; the token has {}",
                rule.name,
                text(claims.get(&rule.name))
            ),
        );
    }
}

fn time_rules(report: &mut Report, policy: &PolicyConfig, claims: &Map<String, Value>, now: i64) {
    let skew = policy.clock_skew.as_secs() as i64;
    match claims.get("exp").and_then(Value::as_i64) {
        None => report.rule(false, "expiry", "no numeric `exp`: tokens must expire"),
        Some(exp) if now > exp + skew => report.rule(
            false,
            "expiry",
            format!(
                "expired {} ago, beyond the {skew} s of GATEWAY_CLOCK_SKEW_SECONDS — get a new token",
                span((now - exp) as u64)
            ),
        ),
        Some(exp) if now > exp => report.rule(
            true,
            "expiry",
            format!("expired {} ago, within the clock skew", span((now - exp) as u64)),
        ),
        Some(exp) => report.rule(true, "expiry", format!("expires in {}", span((exp - now) as u64))),
    }
    if let Some(nbf) = claims.get("nbf").and_then(Value::as_i64)
        && now + skew < nbf
    {
        report.rule(
            false,
            "not before",
            format!(
                "valid only in {} (beyond the {skew} s of GATEWAY_CLOCK_SKEW_SECONDS): is a clock wrong?",
                span((nbf - now) as u64)
            ),
        );
    }
}

/// The gateway's own verdict, with every URL, as it would run.
async fn finish(mut report: Report, policy: &PolicyConfig, token: &str) -> (String, bool) {
    let urls: Vec<String> = policy
        .openid_config_urls
        .iter()
        .map(ToString::to_string)
        .collect();
    let verdict = validator(policy, &urls).await.validate(token).await;
    match &verdict {
        Ok(principal) => {
            let _ = writeln!(
                report.out,
                "verdict: accepted by validate-jwt (subject `{}`)",
                principal.subject
            );
        }
        Err(why) => {
            if !report.failed {
                // A rule the checks above do not cover (an ID token, a forbidden header, …).
                report.rule(false, "token", why.description());
            }
            let _ = writeln!(
                report.out,
                "verdict: refused with 401 ({})",
                why.description()
            );
        }
    }
    if policy.products.is_some() {
        report.out.push_str(
            "note: GATEWAY_PRODUCTS is set: calls also need an Ocp-Apim-Subscription-Key\n",
        );
    }
    (report.out, verdict.is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_read_as_people_say_them() {
        assert_eq!(span(7), "7s");
        assert_eq!(span(250), "4m 10s");
        assert_eq!(span(3723), "1h 02m 03s");
        assert_eq!(span(90_061), "1d 1h 01m");
    }
}
