//! The outbox: each mail the provider "sends" is an RFC 5322 message written to
//! `$DEVIDP_DATA_DIR/mail/{millis}-{id}.eml`, one file per mail, so a developer opens it in any
//! mail client or reads it as text. Only the newest [`KEPT`] files stay: whoever can ask for
//! codes can make the provider write mails, and the disk must not fill with them.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// Mails kept in the outbox; older ones are deleted as new ones arrive.
pub const KEPT: usize = 500;

pub struct Mail<'a> {
    pub from_name: &'a str,
    pub from: &'a str,
    /// Checked by the caller to hold no whitespace or control characters (no header injection).
    pub to: &'a str,
    pub subject: &'a str,
    pub body: &'a str,
}

/// The outbox directory.
pub fn dir(data_dir: &Path) -> PathBuf {
    data_dir.join("mail")
}

impl Mail<'_> {
    /// The message text: headers, a blank line, the body, CRLF line ends throughout.
    pub fn render(&self, at: SystemTime, id: &str) -> String {
        let date = time::OffsetDateTime::from(at)
            .format(&time::format_description::well_known::Rfc2822)
            .unwrap_or_default();
        let headers = [
            format!(
                "From: \"{}\" <{}>",
                self.from_name.replace('"', ""),
                self.from
            ),
            format!("To: <{}>", self.to),
            format!("Subject: {}", self.subject),
            format!("Date: {date}"),
            format!("Message-ID: <{id}@dev-idp.invalid>"),
            "MIME-Version: 1.0".to_owned(),
            "Content-Type: text/plain; charset=utf-8".to_owned(),
            "Content-Transfer-Encoding: 8bit".to_owned(),
        ];
        let body = self.body.lines().collect::<Vec<_>>().join("\r\n");
        format!("{}\r\n\r\n{body}\r\n", headers.join("\r\n"))
    }

    /// Writes the mail into the outbox (blocking I/O) and prunes old ones; returns its path.
    pub fn write(&self, outbox: &Path) -> std::io::Result<PathBuf> {
        std::fs::create_dir_all(outbox)?;
        let now = SystemTime::now();
        let millis = now
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis());
        let id = uuid::Uuid::new_v4().to_string();
        let path = outbox.join(format!("{millis:015}-{id}.eml"));
        std::fs::write(&path, self.render(now, &id))?;
        prune(outbox, KEPT)?;
        Ok(path)
    }
}

/// Deletes all but the newest `keep` `.eml` files (names start with a zero-padded time).
fn prune(outbox: &Path, keep: usize) -> std::io::Result<()> {
    let mut names: Vec<PathBuf> = std::fs::read_dir(outbox)?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "eml"))
        .collect();
    if names.len() <= keep {
        return Ok(());
    }
    names.sort();
    for old in &names[..names.len() - keep] {
        std::fs::remove_file(old)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn mail() -> Mail<'static> {
        Mail {
            from_name: "devtenant",
            from: "no-reply@devtenant.onmicrosoft.com",
            to: "alice@example.com",
            subject: "Your code",
            body: "line one\nYour code is: 123456",
        }
    }

    #[test]
    fn renders_rfc5322_with_crlf_and_a_numeric_zone() {
        let at = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_000);
        let text = mail().render(at, "id-1");
        assert!(text.starts_with("From: \"devtenant\" <no-reply@devtenant.onmicrosoft.com>\r\nTo: <alice@example.com>\r\n"));
        assert!(
            text.contains("\r\nDate: Tue, 14 Nov 2023 22:13:20 +0000\r\n"),
            "{text}"
        );
        assert!(text.contains("\r\nMessage-ID: <id-1@dev-idp.invalid>\r\n"));
        assert!(text.ends_with("\r\n\r\nline one\r\nYour code is: 123456\r\n"));
        assert!(!text.replace("\r\n", "").contains('\n'), "bare LF");
    }

    #[test]
    fn the_outbox_keeps_only_the_newest() {
        let dir = tempfile::tempdir().unwrap();
        for _ in 0..5 {
            mail().write(dir.path()).unwrap();
        }
        prune(dir.path(), 2).unwrap();
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 2);
    }
}
