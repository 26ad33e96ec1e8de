//! Clustering strategies behind one trait: `offline` (ours, no network),
//! `embeddings` (vectors from an OpenAI-compatible `/embeddings` endpoint,
//! then the same spherical k-means) and `llm` (the seeds' approach: a chat
//! model returns the clusters as JSON-schema output; small sets only).

use crate::ai::{AiError, Provider, Usage, cost_usd_micros};
use crate::jobs::{Attempt, JobFailure};
use crate::planner::clustering::features::Matrix;
use crate::planner::clustering::{OfflineOptions, cluster_matrix, cluster_offline};
use igny8_domain::jobs::Phase;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::future::Future;

pub use igny8_domain::planner::{AUTO_CLUSTER_SIZE, auto_k};
/// The limits live in the domain (the planner's use cases check them
/// before a job is created).
pub use igny8_domain::planner::{MAX_CLUSTERS, MAX_EMBEDDING_KEYWORDS, MAX_LLM_KEYWORDS};

/// Name and description per cluster label.
pub type Names = HashMap<u32, (String, String)>;

/// A strategy's answer: a cluster per text (`None`: left unclustered),
/// optional names and descriptions per cluster, and what the calls used.
#[derive(Debug, Default)]
pub struct Grouping {
    pub labels: Vec<Option<u32>>,
    pub named: Names,
    pub usage: Usage,
    pub cost_usd_micros: i64,
    /// The model, or `offline`.
    pub model: String,
}

pub trait Strategy {
    /// Cluster `texts` into `k` clusters (or as many as the strategy chooses).
    fn cluster(
        &self,
        texts: Vec<String>,
        k: Option<usize>,
        run: &Attempt<'_>,
    ) -> impl Future<Output = Result<Grouping, JobFailure>> + Send;
}

/// `n`, when a strategy takes that many keywords (the gateway refuses
/// larger selections up front; this guards the workers too).
fn within(n: usize, max: usize, strategy: &str) -> Result<usize, JobFailure> {
    if n > max {
        return Err(JobFailure::Failed(format!(
            "the {strategy} strategy takes at most {max} keywords"
        )));
    }
    Ok(n)
}

impl From<AiError> for JobFailure {
    fn from(e: AiError) -> Self {
        JobFailure::Failed(e.to_string())
    }
}

pub struct Offline;

impl Strategy for Offline {
    async fn cluster(
        &self,
        texts: Vec<String>,
        k: Option<usize>,
        _run: &Attempt<'_>,
    ) -> Result<Grouping, JobFailure> {
        let k = k.unwrap_or_else(|| auto_k(texts.len()));
        let labels = tokio::task::spawn_blocking(move || {
            let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
            cluster_offline(&refs, k, &OfflineOptions::default())
        })
        .await?;
        Ok(Grouping {
            labels: labels.into_iter().map(Some).collect(),
            model: "offline".into(),
            ..Grouping::default()
        })
    }
}

pub struct Embeddings {
    pub provider: Provider,
    pub model: String,
}

impl Strategy for Embeddings {
    async fn cluster(
        &self,
        texts: Vec<String>,
        k: Option<usize>,
        run: &Attempt<'_>,
    ) -> Result<Grouping, JobFailure> {
        let n = within(texts.len(), MAX_EMBEDDING_KEYWORDS, "embeddings")?;
        let batch = self.provider.options.embed_batch.max(1);
        // Unit rows, stored once (4 bytes per dimension and keyword).
        let mut m: Option<Matrix> = None;
        let mut usage = Usage::default();
        for chunk in texts.chunks(batch) {
            let (vectors, u) = self.provider.embed(&self.model, chunk).await?;
            usage.prompt_tokens += u.prompt_tokens;
            usage.completion_tokens += u.completion_tokens;
            let m = m.get_or_insert_with(|| Matrix::dense(vectors[0].len()));
            for v in &vectors {
                if v.len() != m.dims {
                    return Err(JobFailure::Failed(
                        "the provider's answer is malformed: vectors of different widths".into(),
                    ));
                }
                m.push_dense(v);
            }
            let done = m.rows();
            run.progress(
                Phase::AiCall,
                (25 + 30 * done / n) as u8,
                &format!("embedded {done} of {n} keywords"),
                usage.total(),
                cost_usd_micros(&self.model, usage),
            )
            .await?;
        }
        let k = k.unwrap_or_else(|| auto_k(n));
        let m = m.unwrap_or_default();
        let labels =
            tokio::task::spawn_blocking(move || cluster_matrix(&m, k, &OfflineOptions::default()))
                .await?;
        Ok(Grouping {
            labels: labels.into_iter().map(Some).collect(),
            named: HashMap::new(),
            usage,
            cost_usd_micros: cost_usd_micros(&self.model, usage),
            model: self.model.clone(),
        })
    }
}

pub struct Llm {
    pub provider: Provider,
    pub model: String,
}

const LLM_SYSTEM: &str = "You are an SEO strategist. Group search keywords into topical clusters: \
keywords in one cluster share one search intent and could be answered by one article. Every keyword \
belongs to exactly one cluster. Name each cluster after its most representative keyword and describe \
it in one sentence. Refer to keywords by their number.";

fn llm_schema() -> Value {
    json!({
        "type": "object", "additionalProperties": false, "required": ["clusters"],
        "properties": {"clusters": {"type": "array", "items": {
            "type": "object", "additionalProperties": false,
            "required": ["name", "description", "keywords"],
            "properties": {
                "name": {"type": "string"},
                "description": {"type": "string"},
                "keywords": {"type": "array", "items": {"type": "integer"}}
            }}}}
    })
}

/// The model's clusters, checked: keyword numbers in range, each keyword
/// in one cluster only (first wins), empty clusters dropped; keywords the
/// model left out stay unclustered.
pub fn parse_llm_clusters(
    v: &Value,
    n: usize,
    k: Option<usize>,
) -> Result<(Vec<Option<u32>>, Names), JobFailure> {
    let bad = |m: &str| JobFailure::Failed(format!("the model's answer is malformed: {m}"));
    let clusters = v["clusters"]
        .as_array()
        .ok_or_else(|| bad("no `clusters` array"))?;
    let mut labels = vec![None; n];
    let mut named = HashMap::new();
    let mut next = 0u32;
    for c in clusters {
        let members: Vec<usize> = c["keywords"]
            .as_array()
            .ok_or_else(|| bad("a cluster without `keywords`"))?
            .iter()
            .filter_map(Value::as_u64)
            .map(|i| i as usize)
            .filter(|&i| i < n && labels[i].is_none())
            .collect();
        if members.is_empty() {
            continue;
        }
        for i in members {
            labels[i] = Some(next);
        }
        let text = |f: &str| -> String {
            c[f].as_str()
                .unwrap_or_default()
                .trim()
                .chars()
                .filter(|c| !c.is_control())
                .take(200)
                .collect()
        };
        named.insert(next, (text("name"), text("description")));
        next += 1;
    }
    if next == 0 {
        return Err(bad("no cluster with a known keyword"));
    }
    if let Some(k) = k
        && next as usize != k
    {
        return Err(JobFailure::Failed(format!(
            "the model returned {next} clusters where {k} were asked for"
        )));
    }
    Ok((labels, named))
}

impl Strategy for Llm {
    async fn cluster(
        &self,
        texts: Vec<String>,
        k: Option<usize>,
        run: &Attempt<'_>,
    ) -> Result<Grouping, JobFailure> {
        let n = within(texts.len(), MAX_LLM_KEYWORDS, "llm")?;
        let mut prompt = match k {
            Some(k) => format!("Group these keywords into exactly {k} clusters.\n"),
            None => "Group these keywords into as many clusters as their topics need.\n".into(),
        };
        for (i, t) in texts.iter().enumerate() {
            prompt.push_str(&format!("{i}: {t}\n"));
        }
        run.progress(
            Phase::AiCall,
            30,
            &format!("asking {} to cluster {n} keywords", self.model),
            0,
            0,
        )
        .await?;
        let (v, usage) = self
            .provider
            .chat_json(
                &self.model,
                LLM_SYSTEM,
                &prompt,
                "keyword_clusters",
                &llm_schema(),
            )
            .await?;
        let (labels, named) = parse_llm_clusters(&v, n, k)?;
        Ok(Grouping {
            labels,
            named,
            usage,
            cost_usd_micros: cost_usd_micros(&self.model, usage),
            model: self.model.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn llm_answers_are_checked() {
        let v = json!({"clusters": [
            {"name": "a", "description": "d", "keywords": [0, 1, 9]},
            {"name": "b", "description": "d", "keywords": [1, 2]},
            {"name": "empty", "description": "d", "keywords": []}
        ]});
        let (labels, named) = parse_llm_clusters(&v, 4, None).unwrap();
        assert_eq!(labels, vec![Some(0), Some(0), Some(1), None]);
        assert_eq!(named.len(), 2);
        assert!(parse_llm_clusters(&v, 4, Some(3)).is_err());
        assert!(parse_llm_clusters(&json!({"x": 1}), 4, None).is_err());
        assert!(parse_llm_clusters(&json!({"clusters": []}), 4, None).is_err());
    }

    #[test]
    fn dense_rows_are_unit_length() {
        let mut m = Matrix::dense(2);
        m.push_dense(&[3.0, 4.0]);
        m.push_dense(&[0.0, 0.0]);
        assert_eq!(m.rows(), 2);
        assert_eq!(m.row(0), (&[0u32, 1][..], &[0.6f32, 0.8][..]));
        assert_eq!(m.row(1).1, &[0.0, 0.0]);
    }
}
