//! Keyword text: normalisation (the uniqueness key of a keyword in a
//! sector), tokens, light stemming and stop words.

pub use igny8_domain::planner::normalize;

/// Alphanumeric runs of a normalised text.
pub fn words(norm: &str) -> impl Iterator<Item = &str> {
    norm.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
}

/// Function words that carry no topic (English; keyword tools are mostly English).
pub const STOP_WORDS: &[&str] = &[
    "a", "about", "above", "after", "again", "all", "am", "an", "and", "any", "are", "as", "at",
    "be", "because", "been", "before", "being", "below", "between", "both", "but", "by", "can",
    "could", "did", "do", "does", "doing", "down", "during", "each", "few", "for", "from",
    "further", "had", "has", "have", "having", "he", "her", "here", "hers", "him", "his", "how",
    "i", "if", "in", "into", "is", "it", "its", "itself", "just", "me", "more", "most", "my", "no",
    "nor", "not", "now", "of", "off", "on", "once", "only", "or", "other", "our", "ours", "out",
    "over", "own", "same", "she", "should", "so", "some", "such", "than", "that", "the", "their",
    "theirs", "them", "then", "there", "these", "they", "this", "those", "through", "to", "too",
    "under", "until", "up", "very", "was", "we", "were", "what", "when", "where", "which", "while",
    "who", "whom", "why", "will", "with", "would", "you", "your", "yours",
];

pub fn is_stop_word(w: &str) -> bool {
    STOP_WORDS.binary_search(&w).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normal_forms() {
        assert_eq!(normalize("  Best\tCRM   Software "), "best crm software");
        // NFKC: full-width letters and ligatures fold to their plain forms.
        assert_eq!(normalize("ｂｅｓｔ ﬁle"), "best file");
        assert_eq!(normalize("Straße"), "straße");
        assert_eq!(
            words("seo-tools, 2024!").collect::<Vec<_>>(),
            ["seo", "tools", "2024"]
        );
        let mut sorted = STOP_WORDS.to_vec();
        sorted.sort();
        assert_eq!(sorted, STOP_WORDS, "kept sorted for binary search");
    }
}
