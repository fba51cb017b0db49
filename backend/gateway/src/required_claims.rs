//! validate-jwt's `required-claims` from `GATEWAY_REQUIRED_CLAIMS`: `scp=accessapp` or
//! `roles=access:test-api|admin,tid`.
//!
//! Comma-separated rules must all hold; within a rule, `|` separates values of which one must be
//! present (APIM `match="any"`); a single value is `match="all"`, APIM's default; a bare name only
//! requires the claim. `scp` is one space-separated string in B2C and Entra tokens, so its rule
//! carries `separator=" "` as APIM needs to split it; every other claim is compared whole (array
//! claims such as `roles` are compared item by item). The check itself is token-validation's, so a
//! valid token that fails a rule is the same 401 as any other validate-jwt failure.

use crate::config::{ConfigError, bad};
use token_validation::RequiredClaim;

pub const VAR: &str = "GATEWAY_REQUIRED_CLAIMS";

/// Claims whose string value is a space-separated list.
const SPACE_SEPARATED: &[&str] = &["scp"];

/// Claim names are JSON keys in practice short and printable; anything else is a typo.
fn valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b':' | b'/'))
}

pub fn parse(text: &str) -> Result<Vec<RequiredClaim>, ConfigError> {
    let mut rules = Vec::new();
    for item in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let (name, values) = match item.split_once('=') {
            Some((name, values)) => (name.trim(), Some(values)),
            None => (item, None),
        };
        if !valid_name(name) {
            return Err(bad(
                VAR,
                format!("`{name}` is not a claim name (in `{item}`)"),
            ));
        }
        let values: Vec<&str> = match values {
            None => Vec::new(),
            Some(values) => {
                let values: Vec<&str> = values.split('|').map(str::trim).collect();
                if values.iter().any(|v| v.is_empty()) {
                    return Err(bad(VAR, format!("`{item}` has an empty value")));
                }
                values
            }
        };
        let mut rule = if values.len() > 1 {
            RequiredClaim::any(name, values)
        } else {
            RequiredClaim::all(name, values)
        };
        if SPACE_SEPARATED.contains(&name) {
            if rule.values.iter().any(|v| v.contains(' ')) {
                return Err(bad(
                    VAR,
                    format!("`{item}`: {name} values cannot hold spaces"),
                ));
            }
            rule = rule.separated_by(' ');
        }
        if rules.iter().any(|r: &RequiredClaim| r.name == rule.name) {
            return Err(bad(VAR, format!("`{name}` is listed twice")));
        }
        rules.push(rule);
    }
    if rules.is_empty() {
        return Err(bad(VAR, "needs at least one claim"));
    }
    Ok(rules)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn rules_follow_apims_match_and_separator() {
        let rules = parse("scp=accessapp, roles=access:test-api|admin,tid").unwrap();
        assert_eq!(
            rules,
            [
                RequiredClaim::all("scp", ["accessapp"]).separated_by(' '),
                RequiredClaim::any("roles", ["access:test-api", "admin"]),
                RequiredClaim::all("tid", Vec::<String>::new()),
            ]
        );
    }

    #[test]
    fn bad_rules_are_named() {
        for text in [
            " , ",
            "=x",
            "scp=",
            "roles=a||b",
            "a b=c",
            "scp=a b",
            "x=1,x=2",
        ] {
            assert_eq!(parse(text).unwrap_err().var, VAR, "{text}");
        }
    }
}
