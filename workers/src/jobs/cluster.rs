//! The `auto_cluster` job: read the sector's keywords from its events,
//! cluster them with the chosen strategy, summarise each cluster, save the run.

use super::{Attempt, JobEnv, JobFailure};
use crate::ai::Provider;
use crate::planner::strategy::{Embeddings, Grouping, Llm, Offline, Strategy};
use igny8_commands::CommandBus;
use igny8_commands::jobs as jobcmd;
use igny8_commands::tenancy::open_api_key;
use igny8_domain::jobs::Phase;
use igny8_domain::planner::{ClusterSummary, Intent, SectorKeywords};
use igny8_domain::tenancy::Integration;
use serde_json::{Value, json};
use std::collections::{HashMap, HashSet};
use uuid::Uuid;

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

/// The account's provider, its key opened (only for the call).
pub(crate) async fn provider(
    env: &JobEnv,
    account: Option<Uuid>,
) -> Result<(Provider, Integration), JobFailure> {
    provider_of(env, account, "openai").await
}

/// The account's settings for `name` (`openai`, `runware`), its key opened.
pub(crate) async fn provider_of(
    env: &JobEnv,
    account: Option<Uuid>,
    name: &str,
) -> Result<(Provider, Integration), JobFailure> {
    let account = account.ok_or(JobFailure::Failed("the job has no account".into()))?;
    let id = Integration::id(account, name);
    let (i, _) = env.bus.load::<Integration>(&id.to_string()).await?;
    if !i.configured {
        return Err(JobFailure::Failed(format!(
            "no {name} provider is configured for this account (PUT /api/v1/system/settings/integrations/{name}/)"
        )));
    }
    let api_key = match &i.api_key_sealed {
        Some(sealed) => Some(open_api_key(&env.secrets, id, sealed).map_err(|e| {
            JobFailure::Failed(format!("cannot open the provider key ({e}); do the workers share IGNY8_SECRET_KEYS with the gateway?"))
        })?),
        None => None,
    };
    Ok((
        Provider {
            http: env.http.clone(),
            base_url: i.base_url.clone(),
            api_key,
            options: env.ai.clone(),
        },
        i,
    ))
}

pub async fn run(
    env: &JobEnv,
    run: &Attempt<'_>,
    account: Option<Uuid>,
    input: &Value,
) -> Result<super::JobOutput, JobFailure> {
    let job_id = run.job_id;
    let sector: Uuid = input["sector_id"]
        .as_str()
        .and_then(|s| Uuid::parse_str(s).ok())
        .ok_or(JobFailure::Failed("no sector".into()))?;
    run.progress(Phase::Prep, 10, "reading the keywords", 0, 0)
        .await?;
    let mut kws = keywords(&env.bus, sector).await?;
    if let Some(ids) = input["keyword_ids"].as_array() {
        let wanted: HashSet<&str> = ids.iter().filter_map(Value::as_str).collect();
        kws.retain(|k| wanted.contains(k.id.to_string().as_str()));
    }
    if kws.is_empty() {
        return Err(JobFailure::Failed("no keywords to cluster".into()));
    }
    kws.sort_by_key(|k| k.id);
    let n = kws.len();
    let k = input["num_clusters"]
        .as_u64()
        .map(|k| (k as usize).clamp(1, n));
    let strategy = input["strategy"].as_str().unwrap_or("offline");
    run.progress(
        Phase::AiCall,
        25,
        &format!("clustering {n} keywords ({strategy})"),
        0,
        0,
    )
    .await?;
    let texts: Vec<String> = kws.iter().map(|k| k.text.clone()).collect();
    let grouping: Grouping = match strategy {
        "offline" => Offline.cluster(texts, k, run).await?,
        "embeddings" => {
            let (provider, i) = provider(env, account).await?;
            let model = i.embedding_model;
            Embeddings { provider, model }
                .cluster(texts, k, run)
                .await?
        }
        "llm" => {
            let (provider, i) = provider(env, account).await?;
            let model = i.chat_model;
            Llm { provider, model }.cluster(texts, k, run).await?
        }
        other => return Err(JobFailure::Failed(format!("unknown strategy {other:?}"))),
    };
    let (tokens, cost) = (grouping.usage.total(), grouping.cost_usd_micros);
    run.progress(Phase::Parse, 60, "summarising the clusters", tokens, cost)
        .await?;
    let mut groups: HashMap<u32, Vec<&Kw>> = HashMap::new();
    for (kw, l) in kws.iter().zip(&grouping.labels) {
        if let Some(l) = l {
            groups.entry(*l).or_default().push(kw);
        }
    }
    let clustered: usize = groups.values().map(Vec::len).sum();
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
            let (name, description) = match grouping.named.get(&label) {
                Some((n, d)) if !n.is_empty() => (n.clone(), d.clone()),
                _ => (
                    head.clone(),
                    format!("{} keywords around \"{head}\"", members.len()),
                ),
            };
            ClusterSummary {
                cluster_id: Uuid::new_v5(&job_id, &label.to_le_bytes()),
                description,
                name,
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
    run.progress(
        Phase::Save,
        80,
        &format!("saving {count} clusters"),
        tokens,
        cost,
    )
    .await?;
    // Saved by the job's success, in the same commit (see `jobs::finish`).
    Ok(super::JobOutput::saving(
        json!({"sector_id": sector, "keywords": n, "clustered": clustered, "clusters": count,
               "cluster_ids": clusters.iter().map(|c| c.cluster_id).collect::<Vec<_>>(),
               "strategy": strategy, "model": grouping.model, "tokens": tokens, "cost_usd_micros": cost}),
        jobcmd::Save::Clusters(jobcmd::SaveClusters {
            sector_id: sector,
            clusters,
        }),
    ))
}
