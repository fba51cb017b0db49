//! The one form an email address is stored and looked up in: trimmed, Unicode full case folding
//! on the canonical decomposition, then NFC. Lower-casing in one place and SQLite's ASCII-only
//! `NOCASE` in another once let `Ömer@…` sign up but never sign in, and `ömer@…` become a second
//! account that `Ömer@…` then signed into.

use unicode_normalization::UnicodeNormalization;

/// `Ömer@Example.com`, `ömer@example.com` and `O\u{308}MER@EXAMPLE.COM` all give `ömer@example.com`.
pub fn normalized(email: &str) -> String {
    let decomposed: String = email.trim().nfd().collect();
    caseless::default_case_fold_str(&decomposed).nfc().collect()
}

#[cfg(test)]
mod tests {
    use super::normalized;

    #[test]
    fn one_form_for_case_and_composition() {
        let expected = "ömer@example.com";
        for typed in [
            "Ömer@Example.com",
            " ömer@example.com ",
            "O\u{308}MER@EXAMPLE.COM",
            "o\u{308}mer@example.com",
        ] {
            assert_eq!(normalized(typed), expected, "{typed:?}");
        }
        // Full folding, not lower-casing: ß and ẞ fold to "ss", final sigma to sigma.
        assert_eq!(normalized("Straße@x.de"), normalized("STRASSE@X.DE"));
        assert_eq!(normalized("ΟΔΟΣ@x.gr"), normalized("οδος@x.gr"));
    }
}
