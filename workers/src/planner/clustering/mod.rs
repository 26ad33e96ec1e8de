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
    /// Above this many row × cluster scores per pass, cluster in two levels.
    pub two_level_work: usize,
}

impl Default for OfflineOptions {
    fn default() -> Self {
        Self {
            features: FeatureOptions::default(),
            restarts: 4,
            max_iter: 40,
            seed: 0x1619_2024,
            two_level_work: TWO_LEVEL_WORK,
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
    cluster_matrix(m, k, o)
}

/// Default of [`OfflineOptions::two_level_work`].
pub const TWO_LEVEL_WORK: usize = 2_000_000;

/// A cluster id (0..k) for every unit row: spherical k-means; for many
/// clusters over many rows (n × k above `two_level_work`) in two levels —
/// about √k coarse clusters, then each split into its share of k (by
/// size) — so the work grows with √k instead of k: 100,000 keywords into
/// 1,000 clusters take seconds, not minutes, and centroid memory stays small.
pub fn cluster_matrix(m: &Matrix, k: usize, o: &OfflineOptions) -> Vec<u32> {
    let n = m.rows();
    let k = k.clamp(1, n.max(1));
    if n.saturating_mul(k) <= o.two_level_work || k < 4 {
        return kmeans::spherical(m, k, o.restarts, o.max_iter, o.seed).labels;
    }
    two_level(m, k, o)
}

/// √k coarse clusters, then each split into its share of `k` (4 ≤ k ≤ rows).
fn two_level(m: &Matrix, k: usize, o: &OfflineOptions) -> Vec<u32> {
    let n = m.rows();
    let k1 = ((k as f64).sqrt().ceil() as usize).clamp(2, k);
    let top = kmeans::spherical(m, k1, o.restarts, o.max_iter, o.seed).labels;
    let mut groups: Vec<Vec<usize>> = vec![vec![]; k1];
    for (r, &l) in top.iter().enumerate() {
        groups[l as usize].push(r);
    }
    let sizes: Vec<usize> = groups.iter().map(Vec::len).collect();
    let shares = shares(&sizes, k);
    let mut first = vec![0u32; k1];
    for g in 1..k1 {
        first[g] = first[g - 1] + shares[g - 1] as u32;
    }
    // Sub-problems on every core; each a smaller matrix of its own rows.
    let next = std::sync::atomic::AtomicUsize::new(0);
    let threads = std::thread::available_parallelism()
        .map_or(1, |t| t.get())
        .min(8);
    let parts: Vec<Vec<(usize, Vec<u32>)>> = std::thread::scope(|sc| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                sc.spawn(|| {
                    let mut done = vec![];
                    loop {
                        let g = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        if g >= k1 {
                            return done;
                        }
                        let labels = if shares[g] <= 1 || groups[g].len() <= 1 {
                            vec![0; groups[g].len()]
                        } else {
                            let sub = m.subset(&groups[g]);
                            let restarts = o.restarts.clamp(1, 2);
                            kmeans::spherical(
                                &sub,
                                shares[g],
                                restarts,
                                o.max_iter,
                                o.seed ^ g as u64,
                            )
                            .labels
                        };
                        done.push((g, labels));
                    }
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_default())
            .collect()
    });
    let mut labels = vec![0u32; n];
    for (g, sub) in parts.into_iter().flatten() {
        for (&r, l) in groups[g].iter().zip(sub) {
            labels[r] = first[g] + l;
        }
    }
    labels
}

/// `k` split over groups of these sizes, in proportion (largest
/// remainder), each at least 1 and at most its size; the shares sum to `k`
/// (callers ensure k ≤ the total size).
fn shares(sizes: &[usize], k: usize) -> Vec<usize> {
    let n: usize = sizes.iter().sum::<usize>().max(1);
    let ideal: Vec<f64> = sizes
        .iter()
        .map(|&s| k as f64 * s as f64 / n as f64)
        .collect();
    let mut out: Vec<usize> = sizes
        .iter()
        .zip(&ideal)
        .map(|(&s, &i)| (i.floor() as usize).clamp(s.min(1), s))
        .collect();
    let mut total: usize = out.iter().sum();
    while total < k {
        let Some(g) = (0..sizes.len())
            .filter(|&g| out[g] < sizes[g])
            .max_by(|&a, &b| (ideal[a] - out[a] as f64).total_cmp(&(ideal[b] - out[b] as f64)))
        else {
            break;
        };
        out[g] += 1;
        total += 1;
    }
    while total > k {
        let Some(g) = (0..sizes.len())
            .filter(|&g| out[g] > 1)
            .min_by(|&a, &b| (ideal[a] - out[a] as f64).total_cmp(&(ideal[b] - out[b] as f64)))
        else {
            break;
        };
        out[g] -= 1;
        total -= 1;
    }
    out
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
    fn shares_sum_to_k_within_sizes() {
        assert_eq!(shares(&[50, 30, 20], 10), vec![5, 3, 2]);
        assert_eq!(shares(&[98, 1, 1], 10), vec![8, 1, 1]);
        assert_eq!(shares(&[3, 3], 6), vec![3, 3]);
        let s = shares(&[7, 11, 13, 1, 0], 17);
        assert_eq!(s.iter().sum::<usize>(), 17);
        assert!(s.iter().zip([7, 11, 13, 1, 0]).all(|(a, b)| *a <= b));
    }

    #[test]
    fn many_clusters_go_in_two_levels_and_keep_exactly_k() {
        // 3,000 rows × 1,000 clusters is above TWO_LEVEL_WORK.
        let texts: Vec<String> = (0..3000)
            .map(|i| format!("topic{} word{} extra{}", i % 700, i % 13, i % 7))
            .collect();
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        let o = OfflineOptions::default();
        let m = features::tfidf(&refs, &o.features);
        for labels in [two_level(&m, 1000, &o), cluster_offline(&refs, 1000, &o)] {
            let distinct: std::collections::HashSet<u32> = labels.iter().copied().collect();
            assert_eq!((labels.len(), distinct.len()), (3000, 1000));
            assert!(labels.iter().all(|&l| l < 1000));
        }
        // Both levels keep clear topics apart: no cluster mixes two.
        let topics = [
            "running shoes trainers",
            "chocolate cake recipe",
            "paris flights cheap",
        ];
        let texts: Vec<String> = (0..600)
            .map(|i| format!("{} size{}", topics[i % 3], i % 20))
            .collect();
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        let m = features::tfidf(&refs, &o.features);
        let labels = two_level(&m, 9, &o);
        let mut topic_of: std::collections::HashMap<u32, usize> = Default::default();
        for (i, l) in labels.iter().enumerate() {
            assert_eq!(
                *topic_of.entry(*l).or_insert(i % 3),
                i % 3,
                "cluster {l} mixes topics"
            );
        }
        assert_eq!(topic_of.len(), 9);
    }

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
