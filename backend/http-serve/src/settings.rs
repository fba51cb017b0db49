//! Where a server's settings come from, and the one error a bad one makes: the variable's name and
//! why. Each server's `config.rs` parses its own variables through these, so all of them read the
//! environment the same way (a value that is not UTF-8 is an error, never silently unset).

/// A setting that cannot be used: the variable's name and why. `Display` is the one line `main`
/// prints before exiting with status 2. Values of secrets are never part of it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{var}: {reason}")]
pub struct ConfigError {
    pub var: &'static str,
    pub reason: String,
}

/// `ConfigError` for `var`.
pub fn bad(var: &'static str, reason: impl Into<String>) -> ConfigError {
    ConfigError {
        var,
        reason: reason.into(),
    }
}

/// Where settings come from: the process environment, or a map in tests.
pub trait Source {
    /// `Ok(None)` when unset; an error when set but not UTF-8.
    fn get(&self, var: &'static str) -> Result<Option<String>, ConfigError>;
}

/// The process environment.
pub struct Env;

impl Source for Env {
    fn get(&self, var: &'static str) -> Result<Option<String>, ConfigError> {
        match std::env::var_os(var) {
            None => Ok(None),
            Some(value) => value
                .into_string()
                .map(Some)
                .map_err(|_| bad(var, "is not valid UTF-8")),
        }
    }
}

impl<S: std::hash::BuildHasher> Source for std::collections::HashMap<&'static str, String, S> {
    fn get(&self, var: &'static str) -> Result<Option<String>, ConfigError> {
        Ok(std::collections::HashMap::get(self, var).cloned())
    }
}

/// Set and not blank: an Azure app setting left empty counts as unset. Trimmed.
pub fn value(source: &dyn Source, var: &'static str) -> Result<Option<String>, ConfigError> {
    Ok(source
        .get(var)?
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty()))
}

/// [`value`], or "is required".
pub fn required(source: &dyn Source, var: &'static str) -> Result<String, ConfigError> {
    value(source, var)?.ok_or_else(|| bad(var, "is required"))
}

/// An absolute http(s) URL with a host and no credentials in it (they would end up in logs).
pub fn http_url(var: &'static str, text: &str) -> Result<url::Url, ConfigError> {
    let url = url::Url::parse(text).map_err(|e| bad(var, format!("`{text}` is not a URL: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(bad(var, format!("`{text}` is not an http(s) URL")));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(bad(var, "URLs must not carry credentials"));
    }
    Ok(url)
}

/// Declares a newtype over `String` for a secret setting, whose `Debug` never shows the value (as
/// oauth2-rs's `new_secret_type!`): a config struct can derive `Debug` and be logged whole.
///
/// ```
/// http_serve::secret_type!(
///     /// A key.
///     pub struct ApiKey
/// );
/// let key = ApiKey::new("s3cret".to_owned());
/// assert_eq!(format!("{key:?}"), "ApiKey(<redacted>)");
/// assert_eq!(key.secret(), "s3cret");
/// ```
#[macro_export]
macro_rules! secret_type {
    ($(#[$attr:meta])* $vis:vis struct $name:ident) => {
        $(#[$attr])*
        #[derive(Clone, PartialEq, Eq)]
        $vis struct $name(String);

        impl $name {
            $vis fn new(secret: String) -> Self {
                Self(secret)
            }

            /// The value itself: only for the place that uses it, never for a log line.
            $vis fn secret(&self) -> &str {
                &self.0
            }
        }

        impl ::std::fmt::Debug for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(concat!(stringify!($name), "(<redacted>)"))
            }
        }
    };
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn blank_is_unset_and_required_names_the_variable() {
        let source = HashMap::from([("A", "  x ".to_owned()), ("B", "  ".to_owned())]);
        assert_eq!(value(&source, "A").unwrap().as_deref(), Some("x"));
        assert_eq!(value(&source, "B").unwrap(), None);
        assert_eq!(required(&source, "B").unwrap_err().var, "B");
    }

    #[test]
    fn urls_must_be_http_with_a_host_and_no_credentials() {
        assert!(http_url("U", "https://idp.example/x").is_ok());
        for text in ["ftp://idp/", "https://user:pw@idp/", "not a url"] {
            assert_eq!(http_url("U", text).unwrap_err().var, "U");
        }
    }
}
