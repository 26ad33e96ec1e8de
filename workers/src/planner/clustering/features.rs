//! Sparse TF-IDF rows (CSR), L2-normalised: a word block (stemmed words
//! without stop words, and adjacent-word bigrams) and a character block
//! (3- to 5-grams inside word boundaries, like scikit-learn's `char_wb`),
//! each normalised, then weighted and normalised together.

use crate::planner::text::{is_stop_word, normalize, words};
use rust_stemmers::{Algorithm, Stemmer};
use std::collections::HashMap;

#[derive(Debug, Clone)]
pub struct FeatureOptions {
    /// Weight of the word block against the character block (0..=1).
    pub word_weight: f32,
    pub char_min: usize,
    pub char_max: usize,
    /// Features seen in fewer documents are dropped.
    pub min_df: u32,
    pub bigrams: bool,
    /// Keep only this many highest-weighted features per row (0: all):
    /// the rare, telling n-grams stay, the work per row is bounded.
    pub max_per_row: usize,
}

impl Default for FeatureOptions {
    fn default() -> Self {
        Self {
            word_weight: 0.5,
            char_min: 3,
            char_max: 5,
            min_df: 2,
            bigrams: true,
            max_per_row: 0,
        }
    }
}

/// Rows of unit length; `indices` are feature ids `< dims`. Dense rows
/// (embeddings) keep one shared `0..dims` index instead of one per value.
#[derive(Debug, Clone, Default)]
pub struct Matrix {
    pub indptr: Vec<usize>,
    pub indices: Vec<u32>,
    pub data: Vec<f32>,
    pub dims: usize,
    /// Set for dense matrices: every row is `dims` values, indices `0..dims`.
    pub dense: bool,
}

impl Matrix {
    /// An empty matrix of dense rows of `dims` values.
    pub fn dense(dims: usize) -> Matrix {
        Matrix {
            indptr: vec![0],
            indices: (0..dims as u32).collect(),
            dims,
            dense: true,
            ..Matrix::default()
        }
    }
    /// Append a dense row, scaled to unit length (a zero row stays zero).
    pub fn push_dense(&mut self, v: &[f32]) {
        let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        let scale = if norm > 0.0 { 1.0 / norm } else { 0.0 };
        self.data.extend(v.iter().map(|x| x * scale));
        self.indptr.push(self.data.len());
    }
    /// The given rows as a matrix of their own, features renumbered to
    /// those they use (rows stay unit length).
    pub fn subset(&self, rows: &[usize]) -> Matrix {
        if self.dense {
            let mut m = Matrix::dense(self.dims);
            for &r in rows {
                m.data.extend_from_slice(self.row(r).1);
                m.indptr.push(m.data.len());
            }
            return m;
        }
        let mut id: HashMap<u32, u32> = HashMap::new();
        let mut m = Matrix {
            indptr: vec![0],
            ..Matrix::default()
        };
        for &r in rows {
            let (idx, val) = self.row(r);
            let start = m.indices.len();
            for &j in idx {
                let next = id.len() as u32;
                m.indices.push(*id.entry(j).or_insert(next));
            }
            m.data.extend_from_slice(val);
            // Renumbered ids keep each row's order only by chance: sort the row.
            let mut pairs: Vec<(u32, f32)> = m.indices[start..]
                .iter()
                .copied()
                .zip(m.data[start..].iter().copied())
                .collect();
            pairs.sort_unstable_by_key(|p| p.0);
            for (o, (j, v)) in pairs.into_iter().enumerate() {
                m.indices[start + o] = j;
                m.data[start + o] = v;
            }
            m.indptr.push(m.indices.len());
        }
        m.dims = id.len();
        m
    }
    pub fn rows(&self) -> usize {
        self.indptr.len().saturating_sub(1)
    }
    pub fn row(&self, i: usize) -> (&[u32], &[f32]) {
        let (a, b) = (self.indptr[i], self.indptr[i + 1]);
        if self.dense {
            (&self.indices[..b - a], &self.data[a..b])
        } else {
            (&self.indices[a..b], &self.data[a..b])
        }
    }
}

/// Feature keys are FNV hashes already: hashing them again (std's SipHash)
/// was a third of the feature time; the map uses them as they are.
#[derive(Default, Clone, Copy)]
struct Prehashed(u64);

impl std::hash::Hasher for Prehashed {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = v;
    }
}

type FeatureMap<V> = HashMap<u64, V, std::hash::BuildHasherDefault<Prehashed>>;

/// FNV-1a: a fast, stable hash of feature strings.
fn fnv(tag: u8, parts: &[&str]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ u64::from(tag);
    for (i, p) in parts.iter().enumerate() {
        if i > 0 {
            h = (h ^ 0x20).wrapping_mul(0x0000_0100_0000_01b3);
        }
        for b in p.bytes() {
            h = (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    h
}

/// FNV-1a of a run of characters (no allocation).
fn fnv_chars(tag: u8, chars: &[char]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ u64::from(tag);
    let mut buf = [0u8; 4];
    for c in chars {
        for b in c.encode_utf8(&mut buf).bytes() {
            h = (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    h
}

/// Hashed features with their counts, per block (words, characters).
type Counted = Vec<(u64, f32)>;

const WORD: u8 = 1;
const CHAR: u8 = 2;

/// Hashed features of one text, per block, with counts.
fn doc_features(text: &str, o: &FeatureOptions, stemmer: &Stemmer) -> (Counted, Counted) {
    let norm = normalize(text);
    let toks: Vec<&str> = words(&norm).collect();
    let mut w: Vec<u64> = Vec::with_capacity(toks.len() * 2);
    let stems: Vec<String> = toks
        .iter()
        .filter(|t| !is_stop_word(t))
        .map(|t| stemmer.stem(t).into_owned())
        .collect();
    for s in &stems {
        w.push(fnv(WORD, &[s]));
    }
    if o.bigrams {
        for pair in stems.windows(2) {
            w.push(fnv(WORD, &[&pair[0], &pair[1]]));
        }
    }
    let mut c: Vec<u64> = Vec::with_capacity(norm.len() * 3);
    let mut buf: Vec<char> = Vec::with_capacity(32);
    for t in &toks {
        buf.clear();
        buf.push(' ');
        buf.extend(t.chars());
        buf.push(' ');
        for n in o.char_min..=o.char_max {
            if buf.len() < n {
                // sklearn's char_wb keeps a short word whole.
                if n == o.char_min {
                    c.push(fnv_chars(CHAR, &buf));
                }
                break;
            }
            for win in buf.windows(n) {
                c.push(fnv_chars(CHAR, win));
            }
        }
    }
    (counts(w), counts(c))
}

fn counts(mut v: Vec<u64>) -> Counted {
    v.sort_unstable();
    let mut out: Vec<(u64, f32)> = Vec::with_capacity(v.len());
    for h in v {
        match out.last_mut() {
            Some((last, n)) if *last == h => *n += 1.0,
            _ => out.push((h, 1.0)),
        }
    }
    out
}

/// TF-IDF (sublinear tf, smooth idf, `min_df`), blocks normalised and weighted.
pub fn tfidf(texts: &[&str], o: &FeatureOptions) -> Matrix {
    // Per-text features on every core (the stemmer is per thread).
    let threads = std::thread::available_parallelism()
        .map_or(1, |t| t.get())
        .min(8);
    let chunk = texts.len().div_ceil(threads).max(256);
    let docs: Vec<(Counted, Counted)> = std::thread::scope(|sc| {
        let parts: Vec<_> = texts
            .chunks(chunk)
            .map(|part| {
                sc.spawn(move || {
                    let stemmer = Stemmer::create(Algorithm::English);
                    part.iter()
                        .map(|t| doc_features(t, o, &stemmer))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        parts
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_default())
            .collect()
    });
    let mut df: FeatureMap<u32> = FeatureMap::default();
    for (w, c) in &docs {
        for (h, _) in w.iter().chain(c.iter()) {
            *df.entry(*h).or_insert(0) += 1;
        }
    }
    // Feature ids for the features kept, and their idf.
    let n = texts.len() as f32;
    let mut ids: FeatureMap<u32> =
        FeatureMap::with_capacity_and_hasher(df.len() / 2, Default::default());
    let mut idf: Vec<f32> = vec![];
    for (h, d) in &df {
        if *d >= o.min_df {
            ids.insert(*h, idf.len() as u32);
            idf.push(((1.0 + n) / (1.0 + *d as f32)).ln() + 1.0);
        }
    }
    let (ww, cw) = (
        o.word_weight.clamp(0.0, 1.0),
        1.0 - o.word_weight.clamp(0.0, 1.0),
    );
    let mut m = Matrix {
        indptr: vec![0],
        dims: idf.len(),
        ..Matrix::default()
    };
    let mut row: Vec<(u32, f32)> = vec![];
    for (w, c) in &docs {
        row.clear();
        for (block, weight) in [(w, ww), (c, cw)] {
            let start = row.len();
            for (h, tf) in block {
                if let Some(&id) = ids.get(h) {
                    row.push((id, (1.0 + tf.ln()) * idf[id as usize]));
                }
            }
            let norm = row[start..].iter().map(|(_, v)| v * v).sum::<f32>().sqrt();
            if norm > 0.0 {
                for e in &mut row[start..] {
                    e.1 *= weight / norm;
                }
            }
        }
        if o.max_per_row > 0 && row.len() > o.max_per_row {
            row.select_nth_unstable_by(o.max_per_row, |a, b| b.1.total_cmp(&a.1));
            row.truncate(o.max_per_row);
        }
        let norm = row.iter().map(|(_, v)| v * v).sum::<f32>().sqrt();
        row.sort_unstable_by_key(|e| e.0);
        for (id, v) in &row {
            if norm > 0.0 {
                m.indices.push(*id);
                m.data.push(v / norm);
            }
        }
        m.indptr.push(m.indices.len());
    }
    m
}
