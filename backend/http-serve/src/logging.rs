//! The one tracing set-up of every server: `RUST_LOG` (a directive the `EnvFilter` cannot parse is
//! a bad setting, like any other), a default level otherwise, colours only on a terminal.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

use crate::settings::{ConfigError, Source, bad, value};

/// Where log lines go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    Stdout,
    /// For processes whose stdout is their answer (`daemon call`) or a line scripts read.
    Stderr,
}

/// `RUST_LOG`'s filter, or `default` when it is unset or blank.
pub fn filter(source: &dyn Source, default: &str) -> Result<EnvFilter, ConfigError> {
    const VAR: &str = "RUST_LOG";
    match value(source, VAR)? {
        None => EnvFilter::try_new(default).map_err(|e| bad(VAR, format!("default: {e}"))),
        Some(directives) => EnvFilter::try_new(&directives).map_err(|e| bad(VAR, e.to_string())),
    }
}

/// Installs the global subscriber; call once, first thing after the settings are read.
pub fn init(filter: EnvFilter, output: Output) {
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    match output {
        Output::Stdout => builder.with_ansi(std::io::stdout().is_terminal()).init(),
        Output::Stderr => builder
            .with_writer(std::io::stderr)
            .with_ansi(std::io::stderr().is_terminal())
            .init(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn a_bad_directive_names_rust_log() {
        let source = HashMap::from([("RUST_LOG", "hello=notalevel".to_owned())]);
        assert_eq!(filter(&source, "info").unwrap_err().var, "RUST_LOG");
        let unset: HashMap<&'static str, String> = HashMap::new();
        assert_eq!(filter(&unset, "warn").unwrap().to_string(), "warn");
    }
}
