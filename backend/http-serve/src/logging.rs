//! The one tracing set-up of every server: `RUST_LOG` (a directive the `EnvFilter` cannot parse is
//! a bad setting, like any other), a default level otherwise, colours only on a terminal.
//!
//! The servers on the request path (gateway, function) write their lines to stdout in batches:
//! a `write` per line was one of the three or four system calls of each request, on each of the
//! two hops. A line waits in [`Batch`] only while other work is ready: the lines are written out
//! when the runtime's thread is about to sleep (the hook in [`crate::startup::runtime`]), when
//! [`BATCH_BYTES`] are waiting, and at exit (the guard [`init`] returns). The price, as with
//! nginx's `access_log … buffer=`: a process killed outright (SIGKILL, the OOM killer) loses the
//! lines of its last moments, at most one batch; SIGTERM, the way the Functions host, container
//! runtimes and `scripts/dev` stop a server, loses none.

use std::fmt::{self, Write as _};
use std::io::{IsTerminal, Write};
use std::sync::{Mutex, PoisonError};

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::fmt::time::FormatTime;

use crate::settings::{ConfigError, Source, bad, value};

/// Where log lines go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    /// Batched (see the module doc): for servers whose runtime is [`crate::startup::runtime`].
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

/// Installs the global subscriber; call once, first thing after the settings are read. Keep the
/// guard until `main` returns: dropping it writes out what is still batched.
pub fn init(filter: EnvFilter, output: Output) -> Flushed {
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    match output {
        Output::Stdout => {
            builder
                .with_writer(Batched)
                .with_ansi(std::io::stdout().is_terminal())
                .init();
            BATCHED.store(true, std::sync::atomic::Ordering::Relaxed);
        }
        Output::Stderr => builder
            .with_writer(std::io::stderr)
            .with_ansi(std::io::stderr().is_terminal())
            .init(),
    }
    Flushed(())
}

/// Writes out the batched lines when dropped (see [`init`]).
#[must_use = "dropping it at once would lose nothing, but keeping it to the end writes out the last lines"]
pub struct Flushed(());

impl Drop for Flushed {
    fn drop(&mut self) {
        flush();
    }
}

/// About this much waits at most (one line more) before it is written out.
pub const BATCH_BYTES: usize = 32 * 1024;

/// Log lines not yet written to stdout.
pub struct Batch {
    lines: Mutex<Vec<u8>>,
}

/// The process's batch: stdout is one per process too.
static BATCH: Batch = Batch {
    lines: Mutex::new(Vec::new()),
};

impl Batch {
    /// Lets `add` append to the waiting lines, then writes them out if they passed
    /// [`BATCH_BYTES`]: the one place the bound is kept, for the fmt layer's lines and
    /// [`info_line!`]'s alike.
    fn append(&self, add: impl FnOnce(&mut Vec<u8>)) {
        // A panic elsewhere while holding the lock leaves whole lines: still fine to write.
        let mut lines = self.lines.lock().unwrap_or_else(PoisonError::into_inner);
        add(&mut lines);
        if lines.len() > BATCH_BYTES {
            write_out(&mut lines);
        }
    }

    fn flush(&self) {
        let mut lines = self.lines.lock().unwrap_or_else(PoisonError::into_inner);
        if !lines.is_empty() {
            write_out(&mut lines);
        }
    }
}

/// One `write` for everything waiting. A failed write loses the lines, as the direct writer
/// would (there is nowhere to report it).
fn write_out(lines: &mut Vec<u8>) {
    let _ = std::io::stdout().lock().write_all(lines);
    lines.clear();
    // Keep the capacity of a usual batch, not of an exceptional one.
    lines.shrink_to(BATCH_BYTES);
}

/// Writes out every waiting line (the runtime's park hook, and `main` before it returns).
pub fn flush() {
    BATCH.flush();
}

/// One INFO line of `$target` (a literal) with `$fields` (a `Display`): the servers' access
/// lines. Through the fmt layer such a line cost the gateway a quarter of its instructions per
/// call (the layer dispatches the event, visits and styles each field, and escapes the message
/// character by character), so in a process logging through [`init`] to [`Output::Stdout`] it
/// goes straight into the batch, as the layer prints a line (`{time}  INFO {target}: {fields}`);
/// elsewhere (a test's own subscriber) through tracing. `$fields` must quote and escape text
/// itself (`{:?}`, as the layer does for text fields). The caller asks `tracing::enabled!` first,
/// so `RUST_LOG` still decides.
#[macro_export]
macro_rules! info_line {
    ($target:literal, $fields:expr) => {
        match $fields {
            fields if $crate::logging::batched() => $crate::logging::append_info($target, fields),
            fields => ::tracing::info!(target: $target, "{}", fields),
        }
    };
}

/// Whether [`init`] installed the batch (see [`info_line!`]).
pub fn batched() -> bool {
    BATCHED.load(std::sync::atomic::Ordering::Relaxed)
}

static BATCHED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// [`info_line!`]'s way into the batch.
pub fn append_info(target: &str, fields: impl fmt::Display) {
    BATCH.append(|lines| {
        let mut out = Text(lines);
        let _ = tracing_subscriber::fmt::time::SystemTime
            .format_time(&mut tracing_subscriber::fmt::format::Writer::new(&mut out));
        let _ = writeln!(out, "  INFO {target}: {fields}");
    });
}

/// A field of an [`info_line!`] line, quoted as the log shows text fields (`"-"` for what is
/// absent: the line always has every field). Only for values that never need escaping (an
/// address, hex digits); text goes through [`Escaped`].
pub struct Quoted<T>(pub Option<T>);

impl<T: fmt::Display> fmt::Display for Quoted<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Some(value) => write!(f, "\"{value}\""),
            None => f.write_str("\"-\""),
        }
    }
}

/// A text field of an [`info_line!`] line: exactly what `{:?}` writes for a `str` (quoted,
/// escaped), but a value with nothing to escape — every path, subject and id the servers see in
/// practice — is copied as it is instead of going through `Debug`'s character-by-character
/// escaping (a few per cent of each server's instructions per request).
pub struct Escaped<'a>(pub &'a str);

impl fmt::Display for Escaped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let plain = self
            .0
            .bytes()
            .all(|b| (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\');
        if plain {
            f.write_str("\"")?;
            f.write_str(self.0)?;
            f.write_str("\"")
        } else {
            write!(f, "{:?}", self.0)
        }
    }
}

/// A duration in milliseconds with microsecond digits (`0.412`, `12.000`): integer formatting,
/// where `as_secs_f64() * 1000.0` printed the float's shortest form (`0.41237`) at several times
/// the cost.
pub struct Millis(pub std::time::Duration);

impl fmt::Display for Millis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let micros = self.0.as_micros();
        write!(f, "{}.{:03}", micros / 1000, micros % 1000)
    }
}

/// `fmt::Write` into the batch's bytes.
struct Text<'a>(&'a mut Vec<u8>);

impl fmt::Write for Text<'_> {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        self.0.extend_from_slice(text.as_bytes());
        Ok(())
    }
}

/// The fmt layer's writer for [`Output::Stdout`]: each formatted line goes into the batch.
#[derive(Debug, Clone, Copy)]
struct Batched;

impl<'a> MakeWriter<'a> for Batched {
    type Writer = Batched;
    fn make_writer(&'a self) -> Batched {
        Batched
    }
}

impl Write for Batched {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        BATCH.append(|lines| lines.extend_from_slice(buf));
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
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

    /// The fast path must never change the line: whatever the text (a forged path or subject
    /// with quotes, escapes, control characters, Unicode), `Escaped` writes what `{:?}` writes.
    #[test]
    fn escaped_writes_exactly_what_debug_writes() {
        for text in [
            "",
            "/api/hello",
            "user-123",
            "a\"b",
            "back\\slash",
            "line\nbreak\r\t",
            "\u{1b}[31mred",
            "caf\u{e9} \u{1F600}",
            "\u{7f}del",
            "\u{200b}zero-width",
            "-",
        ] {
            assert_eq!(Escaped(text).to_string(), format!("{text:?}"), "{text:?}");
        }
    }

    #[test]
    fn millis_keeps_microseconds() {
        use std::time::Duration;
        assert_eq!(Millis(Duration::from_nanos(412_370)).to_string(), "0.412");
        assert_eq!(Millis(Duration::from_millis(12)).to_string(), "12.000");
        assert_eq!(
            Millis(Duration::from_micros(1_234_005)).to_string(),
            "1234.005"
        );
        assert_eq!(Millis(Duration::ZERO).to_string(), "0.000");
    }
}
