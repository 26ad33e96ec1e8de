//! Keyword clustering. The `offline` strategy needs no network: sparse
//! TF-IDF over stemmed words, word bigrams and character n-grams (two
//! blocks, each normalised), then spherical k-means seeded by sampled
//! k-means++, short trial restarts, Lloyd to convergence and a
//! first-variation refinement (single-row moves that raise the objective).
//! No all-pairs step: time grows linearly with the number of keywords.
//! `metrics` scores a clustering against labels (the benchmark).
//!
//! Choosing k by itself (no `num_clusters`) comes with the planner's
//! clustering job; this module takes k.

pub mod features;
pub mod kmeans;
pub mod metrics;

use features::{FeatureOptions, Matrix};

/// Options of the offline strategy.
#[derive(Debug, Clone)]
pub struct OfflineOptions {
    pub features: FeatureOptions,
    /// k-means runs from different seeds; the best objective wins.
    pub restarts: usize,
    pub max_iter: usize,
    pub seed: u64,
}

impl Default for OfflineOptions {
    fn default() -> Self {
        Self {
            features: FeatureOptions::default(),
            restarts: 4,
            max_iter: 40,
            seed: 0x1619_2024,
        }
    }
}

/// A cluster id (0..k) for every text.
pub fn cluster_offline(texts: &[&str], k: usize, o: &OfflineOptions) -> Vec<u32> {
    if texts.is_empty() {
        return vec![];
    }
    let m: Matrix = features::tfidf(texts, &o.features);
    assign(&m, k, o)
}

fn assign(m: &Matrix, k: usize, o: &OfflineOptions) -> Vec<u32> {
    let k = k.clamp(1, m.rows().max(1));
    kmeans::spherical(m, k, o.restarts, o.max_iter, o.seed).labels
}

/// Where the time goes (for the benchmark): (features s, k-means s, labels).
pub fn cluster_offline_timed(texts: &[&str], k: usize, o: &OfflineOptions) -> (f64, f64, Vec<u32>) {
    let t = std::time::Instant::now();
    let m: Matrix = features::tfidf(texts, &o.features);
    let f = t.elapsed().as_secs_f64();
    let t = std::time::Instant::now();
    let labels = assign(&m, k, o);
    (f, t.elapsed().as_secs_f64(), labels)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn separates_obvious_topics_and_is_deterministic() {
        let mut texts = vec![];
        let mut gold = vec![];
        for (t, words) in [
            (
                0,
                [
                    "running shoes",
                    "trail running shoe",
                    "best running shoes for women",
                    "running shoe sale",
                ],
            ),
            (
                1,
                [
                    "chocolate cake recipe",
                    "easy cake recipes",
                    "vegan chocolate cake",
                    "cake recipe without eggs",
                ],
            ),
            (
                2,
                [
                    "cheap flights to paris",
                    "flight deals paris",
                    "paris flights from london",
                    "last minute flights paris",
                ],
            ),
        ] {
            for w in words {
                texts.push(w);
                gold.push(t);
            }
        }
        let o = OfflineOptions::default();
        let a = cluster_offline(&texts, 3, &o);
        let s = metrics::score(&gold, &a);
        assert_eq!(s.acc, 1.0, "{a:?}");
        assert_eq!(
            cluster_offline(&texts, 3, &o),
            a,
            "same input, same clusters"
        );
        assert!(cluster_offline(&[], 3, &o).is_empty());
        assert_eq!(cluster_offline(&["one"], 5, &o), vec![0]);
    }
}
