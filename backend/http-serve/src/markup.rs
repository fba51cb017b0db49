//! Escaping text for HTML and XML, once for every server that writes either: the dev IdP's pages,
//! the function's re-posted form and the gateway's APIM policy.

/// `text` made safe as element content and as a quoted attribute value, in HTML and XML alike
/// (`&#39;` rather than `&apos;`, which HTML 4 lacks).
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_five_markup_characters_and_nothing_else() {
        assert_eq!(
            escape(r#"<a href="x">Tom & 'Jerry'</a> ü"#),
            "&lt;a href=&quot;x&quot;&gt;Tom &amp; &#39;Jerry&#39;&lt;/a&gt; ü"
        );
        assert_eq!(escape("plain"), "plain");
        // Escaped once: an entity in the input is text, not markup.
        assert_eq!(escape("&amp;"), "&amp;amp;");
    }
}
