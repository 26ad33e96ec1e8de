//! The `auto_cluster` job: read the sector's keywords from its events,
//! cluster them (offline strategy), summarise each cluster, save the run.

use crate::planner::clustering::{OfflineOptions, cluster_offline};
use igny8_commands::jobs as jobcmd;
use igny8_commands::{CommandBus, CommandContext};
use igny8_domain::jobs::Phase;
use igny8_domain::planner::{ClusterSummary, Intent, SectorKeywords};
use serde_json::{Value, json};
use std::collections::{HashMap, HashSet};
use uuid::Uuid;

/// Why the work stopped: it failed (the job ends as failed, its credits
/// released), or a newer attempt took the job over (this worker just stops).
pub enum JobFailure {
    Failed(String),
    Superseded,
}

impl From<igny8_commands::CommandError> for JobFailure {
    fn from(e: igny8_commands::CommandError) -> Self {
        match e {
            igny8_commands::CommandError::Domain {
                code: "JOB_SUPERSEDED",
                ..
            } => JobFailure::Superseded,
            other => JobFailure::Failed(other.to_string()),
        }
    }
}

impl From<sqlx::Error> for JobFailure {
    fn from(e: sqlx::Error) -> Self {
        JobFailure::Failed(e.to_string())
    }
}

impl From<tokio::task::JoinError> for JobFailure {
    fn from(e: tokio::task::JoinError) -> Self {
        JobFailure::Failed(e.to_string())
    }
}

/// Largest number of clusters (memory grows with clusters × features).
pub const MAX_CLUSTERS: usize = 1000;
/// Keywords per cluster aimed at when the caller does not give a number.
pub const AUTO_CLUSTER_SIZE: usize = 10;

struct Kw {
    id: Uuid,
    text: String,
    volume: i64,
    difficulty: i64,
    intent: Option<Intent>,
}

/// Current keywords of a sector, rebuilt from its events (the source of truth).
async fn keywords(bus: &CommandBus, sector: Uuid) -> Result<Vec<Kw>, JobFailure> {
    let (state, _) = bus.load::<SectorKeywords>(&sector.to_string()).await?;
    let mut by_id: HashMap<Uuid, Kw> = HashMap::new();
    let mut from = 1;
    loop {
        let events = bus
            .feed()
            .aggregate_events("sector_keywords", &sector.to_string(), from, 200)
            .await?;
        let Some(last) = events.last() else { break };
        from = last.sequence + 1;
        for e in &events {
            let b = e.body();
            match e.event_type.as_str() {
                "KeywordsAdded" => {
                    for k in b["keywords"]
                        .as_array()
                        .map(Vec::as_slice)
                        .unwrap_or_default()
                    {
                        let Some(id) = k["id"].as_str().and_then(|i| Uuid::parse_str(i).ok())
                        else {
                            continue;
                        };
                        by_id.insert(
                            id,
                            Kw {
                                id,
                                text: k["keyword"].as_str().unwrap_or_default().to_string(),
                                volume: k["volume"].as_i64().unwrap_or(0),
                                difficulty: k["difficulty"].as_i64().unwrap_or(0),
                                intent: k["intent"].as_str().and_then(Intent::parse),
                            },
                        );
                    }
                }
                "KeywordUpdated" => {
                    let ch = &b["change"];
                    if let Some(k) = b["id"]
                        .as_str()
                        .and_then(|i| Uuid::parse_str(i).ok())
                        .and_then(|i| by_id.get_mut(&i))
                    {
                        if let Some(v) = ch["volume"].as_i64() {
                            k.volume = v;
                        }
                        if let Some(v) = ch["difficulty"].as_i64() {
                            k.difficulty = v;
                        }
                        if let Some(v) = ch.get("intent") {
                            k.intent = v.as_str().and_then(Intent::parse);
                        }
                    }
                }
                _ => {}
            }
        }
        if events.len() < 200 {
            break;
        }
    }
    Ok(by_id
        .into_values()
        .filter(|k| state.ids.contains(&k.id))
        .collect())
}

pub async fn run(
    bus: &CommandBus,
    job_id: Uuid,
    attempt: u32,
    input: &Value,
    ctx: &CommandContext,
) -> Result<(Value, Option<jobcmd::SaveClusters>), JobFailure> {
    let sector: Uuid = input["sector_id"]
        .as_str()
        .and_then(|s| Uuid::parse_str(s).ok())
        .ok_or(JobFailure::Failed("no sector".into()))?;
    jobcmd::progress(
        bus,
        job_id,
        attempt,
        Phase::Prep,
        10,
        "reading the keywords",
        0,
        0,
        ctx,
    )
    .await?;
    let mut kws = keywords(bus, sector).await?;
    if let Some(ids) = input["keyword_ids"].as_array() {
        let wanted: HashSet<&str> = ids.iter().filter_map(Value::as_str).collect();
        kws.retain(|k| wanted.contains(k.id.to_string().as_str()));
    }
    if kws.is_empty() {
        return Err(JobFailure::Failed("no keywords to cluster".into()));
    }
    kws.sort_by_key(|k| k.id);
    let n = kws.len();
    let k = match input["num_clusters"].as_u64() {
        Some(k) => (k as usize).clamp(1, n),
        None => n.div_ceil(AUTO_CLUSTER_SIZE).clamp(1, MAX_CLUSTERS),
    };
    jobcmd::progress(
        bus,
        job_id,
        attempt,
        Phase::AiCall,
        25,
        &format!("clustering {n} keywords into {k} clusters"),
        0,
        0,
        ctx,
    )
    .await?;
    let texts: Vec<String> = kws.iter().map(|k| k.text.clone()).collect();
    let labels = tokio::task::spawn_blocking(move || {
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        cluster_offline(&refs, k, &OfflineOptions::default())
    })
    .await?;
    jobcmd::progress(
        bus,
        job_id,
        attempt,
        Phase::Parse,
        60,
        "summarising the clusters",
        0,
        0,
        ctx,
    )
    .await?;
    let mut groups: HashMap<u32, Vec<&Kw>> = HashMap::new();
    for (kw, l) in kws.iter().zip(&labels) {
        groups.entry(*l).or_default().push(kw);
    }
    let mut clusters: Vec<ClusterSummary> = groups
        .into_iter()
        .map(|(label, members)| {
            let head = members
                .iter()
                .max_by_key(|m| (m.volume, std::cmp::Reverse(m.text.clone())))
                .map(|m| m.text.clone())
                .unwrap_or_default();
            let mut intents: HashMap<Intent, usize> = HashMap::new();
            for m in &members {
                if let Some(i) = m.intent {
                    *intents.entry(i).or_default() += 1;
                }
            }
            let dominant = intents
                .into_iter()
                .max_by_key(|(i, c)| (*c, i.as_str()))
                .map(|(i, _)| i);
            ClusterSummary {
                cluster_id: Uuid::new_v5(&job_id, &label.to_le_bytes()),
                description: format!("{} keywords around \"{head}\"", members.len()),
                name: head,
                total_volume: members.iter().map(|m| m.volume).sum(),
                avg_difficulty: members.iter().map(|m| m.difficulty as f64).sum::<f64>()
                    / members.len() as f64,
                dominant_intent: dominant,
                keyword_ids: members.iter().map(|m| m.id).collect(),
            }
        })
        .collect();
    clusters.sort_by(|a, b| {
        b.total_volume
            .cmp(&a.total_volume)
            .then(a.cluster_id.cmp(&b.cluster_id))
    });
    let count = clusters.len();
    jobcmd::progress(
        bus,
        job_id,
        attempt,
        Phase::Save,
        80,
        &format!("saving {count} clusters"),
        0,
        0,
        ctx,
    )
    .await?;
    // Saved by the job's success, in the same commit (see `jobs::finish`).
    Ok((
        json!({"sector_id": sector, "keywords": n, "clusters": count, "strategy": "offline"}),
        Some(jobcmd::SaveClusters {
            sector_id: sector,
            clusters,
        }),
    ))
}
