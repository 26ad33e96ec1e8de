//! Clustering quality against gold labels, as the literature reports it:
//! NMI (arithmetic normalisation, as scikit-learn), ARI, and accuracy
//! after the best one-to-one mapping of clusters to labels (Hungarian).

use pathfinding::kuhn_munkres::kuhn_munkres;
use pathfinding::matrix::Matrix;
use std::collections::HashMap;

pub struct Scores {
    pub nmi: f64,
    pub ari: f64,
    pub acc: f64,
}

fn dense<T: std::hash::Hash + Eq + Clone>(xs: &[T]) -> (Vec<usize>, usize) {
    let mut ids = HashMap::new();
    let v = xs
        .iter()
        .map(|x| {
            let n = ids.len();
            *ids.entry(x.clone()).or_insert(n)
        })
        .collect();
    (v, ids.len())
}

fn entropy(counts: &[u64], n: f64) -> f64 {
    counts
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let p = c as f64 / n;
            -p * p.ln()
        })
        .sum()
}

fn comb2(x: u64) -> f64 {
    let x = x as f64;
    x * (x - 1.0) / 2.0
}

pub fn score<L: std::hash::Hash + Eq + Clone>(labels: &[L], predicted: &[u32]) -> Scores {
    let n = labels.len();
    assert_eq!(n, predicted.len(), "one prediction per label");
    let (gold, kg) = dense(labels);
    let (pred, kp) = dense(predicted);
    let mut table = vec![0u64; kg * kp];
    for (g, p) in gold.iter().zip(&pred) {
        table[g * kp + p] += 1;
    }
    let gsum: Vec<u64> = (0..kg)
        .map(|g| table[g * kp..(g + 1) * kp].iter().sum())
        .collect();
    let psum: Vec<u64> = (0..kp)
        .map(|p| (0..kg).map(|g| table[g * kp + p]).sum())
        .collect();
    let nf = n as f64;
    let mut mi = 0.0;
    for g in 0..kg {
        for p in 0..kp {
            let c = table[g * kp + p];
            if c > 0 {
                let c = c as f64;
                mi += c / nf * (c * nf / (gsum[g] as f64 * psum[p] as f64)).ln();
            }
        }
    }
    let (hg, hp) = (entropy(&gsum, nf), entropy(&psum, nf));
    let nmi = if hg + hp == 0.0 {
        1.0
    } else {
        2.0 * mi / (hg + hp)
    };
    let index: f64 = table.iter().map(|&c| comb2(c)).sum();
    let (a, b) = (
        gsum.iter().map(|&c| comb2(c)).sum::<f64>(),
        psum.iter().map(|&c| comb2(c)).sum::<f64>(),
    );
    let expected = a * b / comb2(n as u64);
    let max = (a + b) / 2.0;
    let ari = if max == expected {
        1.0
    } else {
        (index - expected) / (max - expected)
    };
    // Hungarian on the contingency table (rows must not outnumber columns).
    let weights = if kp <= kg {
        Matrix::from_fn(kp, kg, |(r, c)| table[c * kp + r] as i64)
    } else {
        Matrix::from_fn(kg, kp, |(r, c)| table[r * kp + c] as i64)
    };
    let (matched, _) = kuhn_munkres(&weights);
    Scores {
        nmi,
        ari,
        acc: matched as f64 / nf,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_values() {
        // Perfect up to renaming.
        let s = score(&["a", "a", "b", "b"], &[1, 1, 0, 0]);
        assert!((s.nmi - 1.0).abs() < 1e-12 && (s.ari - 1.0).abs() < 1e-12 && s.acc == 1.0);
        // scikit-learn: normalized_mutual_info_score([0,0,1,1],[0,0,1,2]) = 0.8, ARI = 0.5714…
        let s = score(&[0, 0, 1, 1], &[0, 0, 1, 2]);
        assert!((s.nmi - 0.8).abs() < 1e-9, "{}", s.nmi);
        assert!((s.ari - 0.571_428_571_4).abs() < 1e-9, "{}", s.ari);
        assert!((s.acc - 0.75).abs() < 1e-12);
    }
}
