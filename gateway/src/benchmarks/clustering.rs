//! `igny8 bench-clustering`: the offline clustering strategy on the
//! labelled short-text sets of `../shared/bench/clustering/`, scored (NMI,
//! ARI, accuracy) beside the published TF-IDF + k-means figures and the
//! scikit-learn TF-IDF peer measured on the same files; then timings at
//! 10,000 and 100,000 keywords made by sampling and perturbing a real set.

use anyhow::{Context, bail};
use igny8_workers::planner::clustering::{OfflineOptions, cluster_offline_timed, metrics};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use std::path::PathBuf;
use std::time::Instant;

#[derive(clap::Args, Debug)]
pub struct ClusterBenchArgs {
    /// Folder of the labelled sets (CSV `text,label`).
    #[arg(long, default_value = "../shared/bench/clustering")]
    pub data: PathBuf,
    /// Sets to run (file names without .csv); default: all of them.
    #[arg(long, value_delimiter = ',')]
    pub sets: Vec<String>,
    /// k-means restarts.
    #[arg(long, default_value_t = 4)]
    pub restarts: usize,
    /// Weight of the word block (the rest is character n-grams).
    #[arg(long, default_value_t = 0.5)]
    pub word_weight: f32,
    /// Features kept per row (0: all).
    #[arg(long)]
    pub max_per_row: Option<usize>,
    /// Scale timings: sizes to generate (0 to skip).
    #[arg(long, default_value = "10000,100000", value_delimiter = ',')]
    pub scale: Vec<usize>,
    /// Clusters asked for in the scale runs (0: the job's own choice when
    /// the caller gives no number, `auto_k`).
    #[arg(long, default_value_t = 20)]
    pub scale_k: usize,
    /// Row × cluster work above which k-means runs in two levels.
    #[arg(long, default_value_t = igny8_workers::planner::clustering::TWO_LEVEL_WORK)]
    pub two_level_work: usize,
    /// Also write the report (markdown) to this file.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Run the scikit-learn peer (scripts/bench/sklearn_peer.py, needs
    /// python3 with scikit-learn) on the same generated sets, in this run.
    #[arg(long)]
    pub peer: bool,
    /// The peer script.
    #[arg(long, default_value = "scripts/bench/sklearn_peer.py")]
    pub peer_script: PathBuf,
}

/// The peer's variants on one CSV: (variant, NMI %, seconds).
fn run_peer(
    script: &PathBuf,
    csv_path: &std::path::Path,
    k: usize,
) -> anyhow::Result<Vec<(String, f64, f64)>> {
    let out = std::process::Command::new("python3")
        .arg(script)
        .arg(csv_path)
        .arg("--k")
        .arg(k.to_string())
        .stderr(std::process::Stdio::inherit())
        .output()
        .context("python3 (for the scikit-learn peer)")?;
    if !out.status.success() {
        bail!("the peer script failed (is scikit-learn installed? pip install scikit-learn)");
    }
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    Ok(v.as_array()
        .into_iter()
        .flatten()
        .map(|e| {
            (
                e["variant"].as_str().unwrap_or_default().to_string(),
                e["nmi"].as_f64().unwrap_or(0.0),
                e["secs"].as_f64().unwrap_or(0.0),
            )
        })
        .collect())
}

/// (set, published TF-IDF + k-means NMI, scikit-learn TF-IDF peer NMI, peer seconds)
const PEERS: &[(&str, Option<f64>, f64, f64)] = &[
    ("searchsnippets", Some(19.2), 34.0, 43.0),
    ("stackoverflow", Some(58.7), 64.0, 11.0),
    ("biomedical", Some(23.2), 32.1, 24.0),
    ("tweet", Some(80.7), 85.2, 11.0),
    ("agnews", Some(11.9), 38.5, 7.0),
    ("banking77", None, 64.4, 3.0),
    ("clinc150", None, 78.5, 12.0),
];

fn load(path: &PathBuf) -> anyhow::Result<(Vec<String>, Vec<String>)> {
    let mut r = csv::Reader::from_path(path).with_context(|| path.display().to_string())?;
    let (mut texts, mut labels) = (vec![], vec![]);
    for rec in r.records() {
        let rec = rec?;
        texts.push(rec.get(0).unwrap_or_default().to_string());
        labels.push(rec.get(1).unwrap_or_default().to_string());
    }
    Ok((texts, labels))
}

fn peak_rss_mb() -> Option<f64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

/// A keyword-like variant: a typo, a dropped or repeated word, a modifier.
fn perturb(text: &str, rng: &mut SmallRng) -> String {
    const MODS: &[&str] = &[
        "best", "how to", "cheap", "near me", "2025", "online", "free", "guide", "vs", "top",
    ];
    let mut words: Vec<String> = text.split_whitespace().map(str::to_string).collect();
    if words.is_empty() {
        return text.to_string();
    }
    match rng.random_range(0..4) {
        0 => {
            let i = rng.random_range(0..words.len());
            let w: Vec<char> = words[i].chars().collect();
            if w.len() > 3 {
                let j = rng.random_range(1..w.len() - 1);
                let mut w = w;
                w.swap(j, j + 1);
                words[i] = w.into_iter().collect();
            }
        }
        1 if words.len() > 2 => {
            let i = rng.random_range(0..words.len());
            words.remove(i);
        }
        2 => words.insert(0, MODS[rng.random_range(0..MODS.len())].to_string()),
        _ => words.push(MODS[rng.random_range(0..MODS.len())].to_string()),
    }
    words.join(" ")
}

pub fn run(a: ClusterBenchArgs) -> anyhow::Result<()> {
    if cfg!(debug_assertions) {
        eprintln!(
            "warning: debug build; run `cargo run --release -- bench-clustering` for figures"
        );
    }
    if !a.data.is_dir() {
        bail!("no benchmark data at {} (use --data)", a.data.display());
    }
    let mut o = OfflineOptions {
        restarts: a.restarts,
        two_level_work: a.two_level_work,
        ..OfflineOptions::default()
    };
    o.features.word_weight = a.word_weight;
    if let Some(m) = a.max_per_row {
        o.features.max_per_row = m;
    }
    let mut report = String::new();
    let mut line = |s: String| {
        println!("{s}");
        report.push_str(&s);
        report.push('\n');
    };
    line("| set | rows | k | NMI | ARI | ACC | published TF-IDF+k-means NMI | sklearn TF-IDF peer NMI (time) | Δ NMI vs peer | our time (s) | speed-up |".into());
    line("|---|---|---|---|---|---|---|---|---|---|---|".into());
    let (mut sum_ours, mut sum_peer, mut count) = (0.0, 0.0, 0);
    for (name, published, peer, peer_secs) in PEERS {
        if !a.sets.is_empty() && !a.sets.iter().any(|s| s == name) {
            continue;
        }
        let (texts, labels) = load(&a.data.join(format!("{name}.csv")))?;
        let k = labels
            .iter()
            .collect::<std::collections::HashSet<_>>()
            .len();
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        let t = Instant::now();
        let (fs, ks, pred) = cluster_offline_timed(&refs, k, &o);
        let secs = t.elapsed().as_secs_f64();
        eprintln!("{name}: features {fs:.2} s, k-means {ks:.2} s");
        let s = metrics::score(&labels, &pred);
        let nmi = s.nmi * 100.0;
        sum_ours += nmi;
        sum_peer += peer;
        count += 1;
        line(format!(
            "| {name} | {} | {k} | {nmi:.1} | {:.1} | {:.1} | {} | {peer:.1} ({peer_secs:.0} s) | {:+.1} | {secs:.2} | {:.0}× |",
            texts.len(),
            s.ari * 100.0,
            s.acc * 100.0,
            published
                .map(|p| format!("{p:.1}"))
                .unwrap_or_else(|| "—".into()),
            nmi - peer,
            peer_secs / secs.max(1e-9),
        ));
    }
    if count > 0 {
        line(format!(
            "\nmean NMI: ours {:.2}, peer {:.2} ({:+.2})",
            sum_ours / count as f64,
            sum_peer / count as f64,
            (sum_ours - sum_peer) / count as f64
        ));
    }
    // Scale: sample and perturb stackoverflow (20 topics) to n keywords.
    let sizes: Vec<usize> = a.scale.iter().copied().filter(|&n| n > 0).collect();
    if !sizes.is_empty() {
        let (texts, labels) = load(&a.data.join("stackoverflow.csv"))?;
        line("\n| keywords | k | our time (s) | our NMI | peak RSS (MB) | peer best NMI (variant, time) | peer fastest variant time | speed-up vs best / vs fastest |".into());
        line("|---|---|---|---|---|---|---|---|".into());
        for n in sizes {
            let mut rng = SmallRng::seed_from_u64(n as u64);
            let (mut kw, mut lab) = (Vec::with_capacity(n), Vec::with_capacity(n));
            for _ in 0..n {
                let i = rng.random_range(0..texts.len());
                kw.push(perturb(&texts[i], &mut rng));
                lab.push(labels[i].clone());
            }
            let refs: Vec<&str> = kw.iter().map(String::as_str).collect();
            let k = match a.scale_k {
                0 => igny8_workers::planner::strategy::auto_k(n),
                k => k,
            };
            let t = Instant::now();
            let (fs, ks, pred) = cluster_offline_timed(&refs, k, &o);
            let secs = t.elapsed().as_secs_f64();
            eprintln!("{n}: features {fs:.2} s, k-means {ks:.2} s");
            let s = metrics::score(&lab, &pred);
            let rss = peak_rss_mb()
                .map(|m| format!("{m:.0}"))
                .unwrap_or_else(|| "?".into());
            let peer = if a.peer {
                let path = std::env::temp_dir().join(format!("igny8-peer-{n}.csv"));
                let mut w = csv::Writer::from_path(&path)?;
                w.write_record(["text", "label"])?;
                for (t, l) in kw.iter().zip(&lab) {
                    w.write_record([t, l])?;
                }
                w.flush()?;
                let r = run_peer(&a.peer_script, &path, k)?;
                let _ = std::fs::remove_file(&path);
                r
            } else {
                vec![]
            };
            let best = peer.iter().max_by(|a, b| a.1.total_cmp(&b.1));
            let fastest = peer.iter().map(|p| p.2).fold(f64::INFINITY, f64::min);
            line(match best {
                Some((variant, nmi, t)) => format!(
                    "| {n} | {k} | {secs:.2} | {:.1} | {rss} | {nmi:.1} ({variant}, {t:.1} s) | {fastest:.1} s | {:.0}× / {:.0}× |",
                    s.nmi * 100.0,
                    t / secs,
                    fastest / secs
                ),
                None => format!(
                    "| {n} | {k} | {secs:.2} | {:.1} | {rss} | — | — | — |",
                    s.nmi * 100.0
                ),
            });
        }
    }
    if let Some(p) = &a.out {
        std::fs::write(p, &report)?;
    }
    Ok(())
}
