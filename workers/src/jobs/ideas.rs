//! The `auto_generate_ideas` job: for each cluster of its input, ideas
//! whose primary keywords no live task of the site holds, written by the
//! account's text provider (offline by default), saved with the job's
//! success (ids derived from the job, so a retry saves nothing twice) and
//! charged per idea proposed.

use super::{Attempt, JobEnv, JobFailure, JobOutput};
use crate::writer::{IdeaSeed, TextProvider};
use igny8_commands::jobs as jobcmd;
use igny8_domain::billing::{Account, ideas_cost_milli};
use igny8_domain::jobs::{Job, Phase};
use igny8_domain::planner::normalize;
use igny8_domain::writer::{PrimaryKeyword, WriterSettings, claim_id, render};
use serde_json::{Value, json};
use std::collections::HashSet;
use uuid::Uuid;

/// The account's text provider: its configured OpenAI-compatible endpoint, else offline.
pub(crate) async fn text_provider(
    env: &JobEnv,
    account: Option<Uuid>,
) -> Result<TextProvider, JobFailure> {
    let Some(a) = account else {
        return Ok(TextProvider::Offline);
    };
    if igny8_commands::tenancy::configured_integration(&env.bus, a)
        .await?
        .is_none()
    {
        return Ok(TextProvider::Offline);
    }
    let (provider, i) = super::cluster::provider(env, account).await?;
    Ok(TextProvider::OpenAi {
        provider,
        model: i.chat_model,
    })
}

pub async fn run(
    env: &JobEnv,
    run: &Attempt<'_>,
    job: &Job,
    input: &Value,
) -> Result<JobOutput, JobFailure> {
    let site: Uuid = input["site_id"]
        .as_str()
        .and_then(|s| Uuid::parse_str(s).ok())
        .ok_or_else(|| JobFailure::Failed("the job names no site".into()))?;
    let per = input["ideas_per_cluster"].as_u64().unwrap_or(3) as usize;
    let clusters = input["clusters"].as_array().cloned().unwrap_or_default();
    run.progress(Phase::Prep, 10, "reading the clusters", 0, 0)
        .await?;
    let provider = text_provider(env, job.account_id).await?;
    let (settings, _) = env
        .bus
        .load::<WriterSettings>(&job.account_id.unwrap_or_default().to_string())
        .await?;
    let choice = |k: &str| input[k].as_str().and_then(|s| Uuid::parse_str(s).ok());
    let (strategy_id, author_profile_id) = (choice("strategy_id"), choice("author_profile_id"));
    let (template, prompt_version, _) = settings.template("ideas", strategy_id);
    let profile = settings.profile_for(author_profile_id, strategy_id);
    let language = profile.map_or("en".to_string(), |p| p.language.clone());
    let tone = profile.map_or(String::new(), |p| p.tone.clone());
    let (mut tokens, mut cost) = (0u64, 0i64);
    let mut saved = vec![];
    let n = clusters.len().max(1);
    for (ci, c) in clusters.iter().enumerate() {
        let (Some(cluster), Some(sector)) = (
            c["cluster_id"]
                .as_str()
                .and_then(|s| Uuid::parse_str(s).ok()),
            c["sector_id"]
                .as_str()
                .and_then(|s| Uuid::parse_str(s).ok()),
        ) else {
            continue;
        };
        let keywords: Vec<String> = c["keywords"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
            .iter()
            .filter_map(|k| k["keyword"].as_str().map(str::to_string))
            .collect();
        // Keywords a live task of the site holds are not proposed again.
        let mut taken = HashSet::new();
        for k in &keywords {
            let (claim, _) = env
                .bus
                .load::<PrimaryKeyword>(&claim_id(site, k).to_string())
                .await?;
            if !claim.holders.is_empty() {
                taken.insert(normalize(k));
            }
        }
        let seed = IdeaSeed { keywords, taken };
        let _permits = env.limits.acquire(job.account_id.unwrap_or_default()).await;
        // The cluster's keywords also go in the technical part of the
        // prompt, which the provider adds.
        let instructions = render(
            &template,
            &[
                (
                    "keywords",
                    seed.keywords
                        .iter()
                        .filter(|k| !seed.taken.contains(&normalize(k)))
                        .cloned()
                        .collect::<Vec<_>>()
                        .join(", "),
                ),
                ("count", per.to_string()),
                ("language", language.clone()),
                ("tone", tone.clone()),
            ],
        );
        let (ideas, t, usd) = provider
            .ideas(&seed, per, &instructions)
            .await
            .map_err(|e| JobFailure::Failed(e.to_string()))?;
        tokens += t;
        cost += usd;
        for (i, mut idea) in ideas.into_iter().enumerate() {
            idea.cluster_id = Some(cluster);
            idea.author_profile_id = author_profile_id;
            idea.strategy_id = strategy_id;
            let id = Uuid::new_v5(&run.job_id, format!("{cluster}:{i}").as_bytes());
            saved.push((id, sector, idea));
        }
        let pct = 25 + (35 * (ci + 1) / n) as u8;
        run.progress(
            Phase::AiCall,
            pct,
            &format!("{} of {} clusters", ci + 1, clusters.len()),
            tokens,
            cost,
        )
        .await?;
    }
    let (acct, _) = env
        .bus
        .load::<Account>(&job.account_id.unwrap_or_default().to_string())
        .await?;
    let charged = ideas_cost_milli(acct.plan.as_deref(), saved.len() as u64);
    run.progress(
        Phase::Save,
        80,
        &format!("saving {} ideas", saved.len()),
        tokens,
        cost,
    )
    .await?;
    let ids: Vec<Uuid> = saved.iter().map(|(id, ..)| *id).collect();
    Ok(JobOutput {
        result: json!({"ideas": saved.len(), "idea_ids": ids, "clusters": clusters.len(),
                       "provider": provider.name(), "model": provider.model(), "prompt_version": prompt_version, "tokens": tokens, "cost_usd_micros": cost}),
        save: Some(jobcmd::Save::Ideas(jobcmd::SaveIdeas {
            site_id: site,
            ideas: saved,
        })),
        charged: Some(charged),
    })
}
