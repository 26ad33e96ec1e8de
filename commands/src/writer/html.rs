//! Article HTML is untrusted (a model wrote it, or a person pasted it):
//! [`sanitize`] keeps an allow-list of tags and attributes (ammonia), so no
//! `<script>`, event handler or `javascript:` URL reaches a read model or
//! WordPress. [`text`] and [`word_count`] read sanitised HTML.

use std::collections::HashSet;
use std::sync::LazyLock;

static CLEANER: LazyLock<ammonia::Builder<'static>> = LazyLock::new(|| {
    let tags: HashSet<&str> = [
        "a",
        "abbr",
        "b",
        "blockquote",
        "br",
        "caption",
        "cite",
        "code",
        "dd",
        "del",
        "dl",
        "dt",
        "em",
        "figcaption",
        "figure",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "hr",
        "i",
        "img",
        "ins",
        "kbd",
        "li",
        "mark",
        "ol",
        "p",
        "pre",
        "q",
        "s",
        "small",
        "strong",
        "sub",
        "sup",
        "table",
        "tbody",
        "td",
        "tfoot",
        "th",
        "thead",
        "tr",
        "u",
        "ul",
    ]
    .into_iter()
    .collect();
    let mut b = ammonia::Builder::default();
    b.tags(tags)
        .generic_attributes(HashSet::new())
        .tag_attributes(
            [
                ("a", ["href", "title"].into_iter().collect::<HashSet<_>>()),
                (
                    "img",
                    ["src", "alt", "title", "width", "height"]
                        .into_iter()
                        .collect(),
                ),
                ("td", ["colspan", "rowspan"].into_iter().collect()),
                ("th", ["colspan", "rowspan", "scope"].into_iter().collect()),
            ]
            .into_iter()
            .collect(),
        )
        .url_schemes(["http", "https", "mailto"].into_iter().collect())
        .link_rel(Some("noopener noreferrer"))
        .strip_comments(true);
    b
});

/// The HTML with only the allowed tags, attributes and URL schemes.
pub fn sanitize(html: &str) -> String {
    CLEANER.clean(html).to_string()
}

/// The text of sanitised HTML: tags become spaces, the common entities
/// are decoded.
pub fn text(html: &str) -> String {
    let mut out = String::with_capacity(html.len());
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => {
                in_tag = true;
                out.push(' ');
            }
            '>' if in_tag => in_tag = false,
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    out.replace("&nbsp;", " ")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&")
}

/// Words of sanitised HTML (runs of characters with a letter or digit).
pub fn word_count(html: &str) -> u32 {
    text(html)
        .split_whitespace()
        .filter(|w| w.chars().any(char::is_alphanumeric))
        .count() as u32
}

/// The text as lines for a diff: one line per block (paragraph, heading,
/// list item), white space folded.
pub fn lines(html: &str) -> Vec<String> {
    let mut blocks = html.to_string();
    for t in [
        "</p>",
        "</h2>",
        "</h3>",
        "</h4>",
        "</li>",
        "<br>",
        "</tr>",
        "</figcaption>",
        "</blockquote>",
    ] {
        blocks = blocks.replace(t, &format!("{t}\n"));
    }
    blocks
        .lines()
        .map(|l| text(l).split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|l| !l.is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scripts_handlers_and_javascript_urls_never_survive() {
        let dirty = r#"<h2 onclick="x()">Title</h2><script>alert(1)</script><p style="color:red">Hi <a href="javascript:alert(1)">there</a> <a href="https://ex.com/">ok</a></p><img src=x onerror=alert(1)><iframe src="https://evil"></iframe><!-- c -->"#;
        let clean = sanitize(dirty);
        for bad in [
            "script",
            "onclick",
            "onerror",
            "javascript",
            "iframe",
            "style",
            "<!--",
        ] {
            assert!(!clean.contains(bad), "{bad} in {clean}");
        }
        assert!(clean.contains("<h2>Title</h2>"), "{clean}");
        assert!(clean.contains(r#"href="https://ex.com/""#), "{clean}");
        assert_eq!(word_count(&clean), 4, "{clean}");
        assert_eq!(sanitize(&clean), clean, "sanitising is idempotent");
    }

    #[test]
    fn text_lines_and_counts() {
        let h = "<h2>Trail &amp; road</h2><p>one two</p><ul><li>three</li><li>4 !</li></ul>";
        assert_eq!(word_count(h), 6);
        assert_eq!(lines(h), vec!["Trail & road", "one two", "three", "4 !"]);
    }
}
