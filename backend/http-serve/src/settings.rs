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
