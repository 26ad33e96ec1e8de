//! Spherical k-means on unit-length sparse rows: assign each row to the
//! centroid of highest cosine, move each centroid to the normalised mean of
//! its rows, until assignments settle. Seeded with k-means++ (distance
//! 1 − cosine); several restarts, the highest total cosine wins.
//!
//! Centroids are dense and stored feature-major (`[feature][cluster]`), so
//! scoring a row against every centroid walks its non-zeros once and
//! updates k contiguous sums — O(nnz · k) per pass, no pairwise step.

use super::features::Matrix;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

pub struct KMeans {
    pub labels: Vec<u32>,
    /// Sum over rows of the cosine to their centroid (higher is better).
    pub objective: f64,
    pub iterations: usize,
}

/// Feature-major dense centroids.
struct Centroids {
    k: usize,
    w: Vec<f32>,
}

impl Centroids {
    fn new(k: usize, dims: usize) -> Self {
        Self {
            k,
            w: vec![0.0; k * dims],
        }
    }

    /// Cosine of `row` with every centroid, into `scores`.
    fn score(&self, idx: &[u32], val: &[f32], scores: &mut [f32]) {
        scores.iter_mut().for_each(|s| *s = 0.0);
        for (&j, &v) in idx.iter().zip(val) {
            let col = &self.w[j as usize * self.k..(j as usize + 1) * self.k];
            for (s, c) in scores.iter_mut().zip(col) {
                *s += v * c;
            }
        }
    }

    fn set_from_row(&mut self, c: usize, idx: &[u32], val: &[f32]) {
        for (&j, &v) in idx.iter().zip(val) {
            self.w[j as usize * self.k + c] = v;
        }
    }
}

fn best(scores: &[f32]) -> (usize, f32) {
    let mut b = (0, f32::NEG_INFINITY);
    for (c, &s) in scores.iter().enumerate() {
        if s > b.1 {
            b = (c, s);
        }
    }
    b
}

/// k-means++ seeding on a random sample of the rows (enough to find k
/// well-spread centres; seeding on every row costs as much as a full pass
/// per centre): each next centre is drawn with probability proportional to
/// 1 − (best cosine to the centres so far).
fn seed(m: &Matrix, k: usize, rng: &mut SmallRng) -> Centroids {
    let n = m.rows();
    let want = (SEED_SAMPLE_PER_K * k).max(SEED_SAMPLE_MIN).min(n);
    let sample: Vec<usize> = if want == n {
        (0..n).collect()
    } else {
        rand::seq::index::sample(rng, n, want).into_vec()
    };
    let mut cent = Centroids::new(k, m.dims);
    let first = sample[rng.random_range(0..sample.len())];
    let (i, v) = m.row(first);
    cent.set_from_row(0, i, v);
    let mut best_cos = vec![f32::NEG_INFINITY; sample.len()];
    let mut last = first;
    // The latest centre, scattered densely (cleared after use).
    let mut centre = vec![0f32; m.dims];
    for c in 1..k {
        let (ci, cv) = m.row(last);
        for (&j, &x) in ci.iter().zip(cv) {
            centre[j as usize] = x;
        }
        let mut total = 0.0f64;
        for (b, &r) in best_cos.iter_mut().zip(&sample) {
            let (ri, rv) = m.row(r);
            let mut dot = 0.0f32;
            for (&j, &x) in ri.iter().zip(rv) {
                dot += x * centre[j as usize];
            }
            if dot > *b {
                *b = dot;
            }
            total += f64::from((1.0 - *b).max(0.0));
        }
        for &j in ci {
            centre[j as usize] = 0.0;
        }
        let pick = if total <= 0.0 {
            sample[rng.random_range(0..sample.len())]
        } else {
            let mut target = rng.random::<f64>() * total;
            let mut pick = sample[sample.len() - 1];
            for (b, &r) in best_cos.iter().zip(&sample) {
                target -= f64::from((1.0 - *b).max(0.0));
                if target <= 0.0 {
                    pick = r;
                    break;
                }
            }
            pick
        };
        last = pick;
        let (i, v) = m.row(pick);
        cent.set_from_row(c, i, v);
    }
    cent
}

/// Seeding sample: this many rows per cluster, at least `SEED_SAMPLE_MIN`.
const SEED_SAMPLE_PER_K: usize = 50;
const SEED_SAMPLE_MIN: usize = 2000;

/// One k-means run: labels, unnormalised centroid sums (feature-major) and
/// their squared norms. A row's cosine to centroid c is (row · sum_c) /
/// |sum_c|; moving a row updates both in O(nnz(row)), so no iteration
/// touches every feature.
struct Run {
    k: usize,
    labels: Vec<u32>,
    sums: Centroids,
    norm2: Vec<f64>,
    sizes: Vec<usize>,
    iterations: usize,
}

/// Threads for the assignment pass (read-only on the centroids).
fn threads(n: usize) -> usize {
    let t = std::thread::available_parallelism()
        .map_or(1, |t| t.get())
        .min(8);
    if n < 4000 { 1 } else { t }
}

impl Run {
    fn new(m: &Matrix, k: usize, rng: &mut SmallRng) -> Run {
        let n = m.rows();
        let seeds = seed(m, k, rng);
        let mut labels = vec![0u32; n];
        let mut scores = vec![0f32; k];
        for (r, l) in labels.iter_mut().enumerate() {
            let (i, v) = m.row(r);
            seeds.score(i, v, &mut scores);
            *l = best(&scores).0 as u32;
        }
        drop(seeds);
        let mut run = Run {
            k,
            labels,
            sums: Centroids::new(k, m.dims),
            norm2: vec![0.0; k],
            sizes: vec![0; k],
            iterations: 0,
        };
        for r in 0..n {
            let l = run.labels[r] as usize;
            let (i, v) = m.row(r);
            for (&j, &x) in i.iter().zip(v) {
                run.sums.w[j as usize * k + l] += x;
            }
            run.sizes[l] += 1;
        }
        run.recompute();
        run
    }

    fn recompute(&mut self) {
        let k = self.k;
        self.norm2.iter_mut().for_each(|x| *x = 0.0);
        for col in self.sums.w.chunks_exact(k) {
            for (c, &x) in col.iter().enumerate() {
                self.norm2[c] += f64::from(x) * f64::from(x);
            }
        }
    }

    /// Σ |sum_c|: the sum over rows of the cosine to their centroid.
    fn objective(&self) -> f64 {
        self.norm2.iter().map(|x| x.sqrt()).sum()
    }

    fn move_row(&mut self, m: &Matrix, r: usize, to: usize) {
        let (k, from) = (self.k, self.labels[r] as usize);
        if from == to {
            return;
        }
        let (i, v) = m.row(r);
        let (mut dot_from, mut dot_to, mut xx) = (0f64, 0f64, 0f64);
        for (&j, &x) in i.iter().zip(v) {
            let base = j as usize * k;
            dot_from += f64::from(self.sums.w[base + from] * x);
            dot_to += f64::from(self.sums.w[base + to] * x);
            xx += f64::from(x * x);
            self.sums.w[base + from] -= x;
            self.sums.w[base + to] += x;
        }
        self.norm2[from] = (self.norm2[from] - 2.0 * dot_from + xx).max(0.0);
        self.norm2[to] += 2.0 * dot_to + xx;
        self.sizes[from] -= 1;
        self.sizes[to] += 1;
        self.labels[r] = to as u32;
    }

    /// Up to `iters` Lloyd passes; true once assignments settled.
    fn lloyd(&mut self, m: &Matrix, iters: usize) -> bool {
        let (n, k) = (m.rows(), self.k);
        let mut next = vec![0u32; n];
        let mut cos = vec![0f32; n];
        for _ in 0..iters {
            self.iterations += 1;
            let inv: Vec<f32> = self
                .norm2
                .iter()
                .map(|&x| {
                    if x > 0.0 {
                        (1.0 / x.sqrt()) as f32
                    } else {
                        0.0
                    }
                })
                .collect();
            let t = threads(n);
            let chunk = n.div_ceil(t).max(1);
            let sums = &self.sums;
            std::thread::scope(|sc| {
                for (part, (nx, cs)) in next
                    .chunks_mut(chunk)
                    .zip(cos.chunks_mut(chunk))
                    .enumerate()
                {
                    let inv = &inv;
                    sc.spawn(move || {
                        let mut scores = vec![0f32; k];
                        for (o, (l, c)) in nx.iter_mut().zip(cs.iter_mut()).enumerate() {
                            let (i, v) = m.row(part * chunk + o);
                            sums.score(i, v, &mut scores);
                            for (s, f) in scores.iter_mut().zip(inv) {
                                *s *= f;
                            }
                            let (b, s) = best(&scores);
                            *l = b as u32;
                            *c = s;
                        }
                    });
                }
            });
            let mut changed = 0usize;
            for (r, &to) in next.iter().enumerate() {
                if to != self.labels[r] {
                    changed += 1;
                    self.move_row(m, r, to as usize);
                }
            }
            // An empty cluster takes the row that fits its centroid worst.
            for c in 0..k {
                if self.sizes[c] == 0 {
                    let worst = (0..n)
                        .filter(|&r| self.sizes[self.labels[r] as usize] > 1)
                        .min_by(|&a, &b| cos[a].total_cmp(&cos[b]));
                    if let Some(w) = worst {
                        self.move_row(m, w, c);
                        cos[w] = 1.0;
                    }
                }
            }
            if self.iterations.is_multiple_of(8) {
                self.recompute();
            }
            if changed * 200 <= n {
                return true;
            }
        }
        false
    }

    /// First-variation refinement: move single rows wherever that raises
    /// Σ|sum_c| (Lloyd stops in local optima that one move escapes; it
    /// matters most with many small clusters).
    fn refine(&mut self, m: &Matrix, sweeps: usize) {
        let (n, k) = (m.rows(), self.k);
        self.recompute();
        let mut scores = vec![0f32; k];
        for _ in 0..sweeps {
            let mut moved = 0usize;
            for r in 0..n {
                let a = self.labels[r] as usize;
                if self.sizes[a] <= 1 {
                    continue;
                }
                let (i, v) = m.row(r);
                self.sums.score(i, v, &mut scores);
                let xx: f64 = v.iter().map(|&x| f64::from(x) * f64::from(x)).sum();
                let na = self.norm2[a];
                let loss = na.sqrt() - (na - 2.0 * f64::from(scores[a]) + xx).max(0.0).sqrt();
                let mut best_gain = 1e-9;
                let mut target = a;
                for (b, (&nb, &sb)) in self.norm2.iter().zip(scores.iter()).enumerate() {
                    if b == a {
                        continue;
                    }
                    let gain = (nb + 2.0 * f64::from(sb) + xx).max(0.0).sqrt() - nb.sqrt() - loss;
                    if gain > best_gain {
                        best_gain = gain;
                        target = b;
                    }
                }
                if target != a {
                    self.move_row(m, r, target);
                    moved += 1;
                }
            }
            if moved * 1000 <= n {
                break;
            }
        }
        self.recompute();
    }
}

/// Passes of single-row moves after Lloyd.
const REFINE_SWEEPS: usize = 8;
/// Lloyd passes every restart gets before the best one is kept.
const TRIAL_ITERS: usize = 4;

/// `restarts` seeds each get a few Lloyd passes; the best continues to
/// convergence and refinement.
pub fn spherical(m: &Matrix, k: usize, restarts: usize, max_iter: usize, seed: u64) -> KMeans {
    let mut rng = SmallRng::seed_from_u64(seed);
    let mut best: Option<Run> = None;
    for _ in 0..restarts.max(1) {
        let mut run = Run::new(m, k, &mut rng);
        run.lloyd(m, TRIAL_ITERS);
        run.recompute();
        if best
            .as_ref()
            .is_none_or(|b| run.objective() > b.objective())
        {
            best = Some(run);
        }
    }
    let Some(mut run) = best else {
        return KMeans {
            labels: vec![],
            objective: 0.0,
            iterations: 0,
        };
    };
    run.lloyd(m, max_iter.saturating_sub(TRIAL_ITERS));
    run.refine(m, REFINE_SWEEPS);
    KMeans {
        objective: run.objective(),
        iterations: run.iterations,
        labels: run.labels,
    }
}
