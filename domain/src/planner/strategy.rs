//! How a clustering run groups keywords, and the size limits of each way.

use serde::{Deserialize, Serialize};

/// Largest number of clusters (memory grows with clusters × features).
pub const MAX_CLUSTERS: usize = 1000;
/// Keywords per cluster aimed at when the caller does not give a number.
pub const AUTO_CLUSTER_SIZE: usize = 10;

/// The number of clusters when the caller does not give one.
pub fn auto_k(n: usize) -> usize {
    n.div_ceil(AUTO_CLUSTER_SIZE).clamp(1, MAX_CLUSTERS)
}
/// Largest selection the `llm` strategy takes (one prompt).
pub const MAX_LLM_KEYWORDS: usize = 300;
/// Largest selection the `embeddings` strategy takes: its vectors are held
/// in memory (1536 dimensions × 4 bytes × 50,000 = 307 MB).
pub const MAX_EMBEDDING_KEYWORDS: usize = 50_000;

/// A clustering strategy: `offline` (ours, no network), `embeddings`
/// (vectors from the account's provider) or `llm` (a chat model; small
/// selections only).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Strategy {
    Offline,
    Embeddings,
    Llm,
}

impl Strategy {
    pub const ALL: [Strategy; 3] = [Strategy::Offline, Strategy::Embeddings, Strategy::Llm];

    pub fn as_str(self) -> &'static str {
        match self {
            Strategy::Offline => "offline",
            Strategy::Embeddings => "embeddings",
            Strategy::Llm => "llm",
        }
    }

    /// The exact name (`offline`, `embeddings`, `llm`); anything else is `None`.
    pub fn parse(s: &str) -> Option<Strategy> {
        Strategy::ALL.into_iter().find(|x| x.as_str() == s)
    }

    /// Whether it calls the account's AI provider.
    pub fn needs_provider(self) -> bool {
        self != Strategy::Offline
    }

    /// The largest selection it takes (`None`: any number).
    pub fn max_keywords(self) -> Option<usize> {
        match self {
            Strategy::Offline => None,
            Strategy::Embeddings => Some(MAX_EMBEDDING_KEYWORDS),
            Strategy::Llm => Some(MAX_LLM_KEYWORDS),
        }
    }
}

impl std::fmt::Display for Strategy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_exact_names_only() {
        for s in Strategy::ALL {
            assert_eq!(Strategy::parse(s.as_str()), Some(s));
        }
        assert_eq!(Strategy::parse("LLM"), None);
        assert_eq!(Strategy::parse(""), None);
        assert_eq!(Strategy::parse("kmeans"), None);
    }

    #[test]
    fn limits() {
        assert_eq!(Strategy::Offline.max_keywords(), None);
        assert_eq!(Strategy::Llm.max_keywords(), Some(MAX_LLM_KEYWORDS));
        assert!(!Strategy::Offline.needs_provider());
        assert!(Strategy::Embeddings.needs_provider());
    }
}
