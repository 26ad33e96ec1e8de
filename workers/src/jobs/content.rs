//! The `auto_generate_content` job: an article per task of its input,
//! written by the account's text provider with bounded concurrency, each
//! committed as soon as it is done with its own charge
//! (`igny8_commands::writer::save_article`). A task that fails (provider
//! error, truncated or refused answer) fails alone, its credits released;
//! the job's end releases what is left. After a crash the new attempt
//! writes only the tasks still open for this job: an article is never
//! stored or charged twice.

use super::{Attempt, JobEnv, JobFailure, JobOutput};
use crate::writer::{Brief, Draft, TextProvider};
use igny8_commands::writer::{self as w, html};
use igny8_commands::{CommandContext, CommandError};
use igny8_domain::jobs::{Job, Phase};
use igny8_domain::planner::normalize;
use igny8_domain::writer::{
    ContentBody, InternalLink, MAX_META_DESCRIPTION_CHARS, MAX_META_TITLE_CHARS, Task, TaskStatus,
    VersionAuthor, WriterSettings, content_id, render,
};
use serde_json::{Value, json};
use std::sync::Arc;
use uuid::Uuid;

/// Links an article gets at most.
pub const MAX_INTERNAL_LINKS: usize = 3;

/// What every article of one attempt shares.
struct Shared {
    provider: TextProvider,
    targets: Vec<w::LinkTarget>,
    settings: WriterSettings,
    /// Held while an article is committed.
    commits: tokio::sync::Mutex<()>,
}

/// What became of one task.
enum Outcome {
    Written {
        words: u32,
        tokens: u64,
        cost: i64,
    },
    Failed(String),
    /// Not this job's any more (done by an earlier attempt, failed, cancelled).
    Skipped,
}

/// What the provider is asked for, with the task's author profile (its
/// own or its strategy's default) and the effective `content` template;
/// the template's version and the strategy whose override it is.
fn brief(task: &Task, settings: &WriterSettings) -> Option<(Brief, u32, Option<Uuid>)> {
    let d = task.data.as_ref()?;
    let profile = settings.profile_for(d.author_profile_id, d.strategy_id);
    let language = profile.map_or("en".to_string(), |p| p.language.clone());
    let tone = profile.map_or(String::new(), |p| p.tone.clone());
    let (template, version, strategy) = settings.template("content", d.strategy_id);
    let outline: Vec<String> = d
        .outline
        .iter()
        .map(|s| format!("{} {}", "#".repeat(s.level as usize), s.heading))
        .collect();
    let mut keywords = vec![d.primary_keyword.clone()];
    keywords.extend(d.secondary_keywords.iter().cloned());
    let instructions = render(
        &template,
        &[
            ("idea_title", d.title.clone()),
            ("keywords", keywords.join(", ")),
            ("outline", outline.join("\n")),
            ("word_count", d.target_word_count.to_string()),
            (
                "tone",
                if tone.is_empty() {
                    "clear and helpful".into()
                } else {
                    tone.clone()
                },
            ),
            ("language", language.clone()),
            ("content_type", d.content_type.as_str().replace('_', "-")),
        ],
    );
    Some((
        Brief {
            title: d.title.clone(),
            primary_keyword: d.primary_keyword.clone(),
            secondary_keywords: d.secondary_keywords.clone(),
            outline: d.outline.clone(),
            content_type: d.content_type,
            target_words: d.target_word_count,
            language,
            tone,
            instructions,
        },
        version,
        strategy,
    ))
}

/// The other contents of the site whose primary keyword occurs in `text`.
fn links(text: &str, own: Uuid, targets: &[w::LinkTarget]) -> Vec<InternalLink> {
    let hay = normalize(text);
    targets
        .iter()
        .filter(|t| t.content_id != own && !t.primary_keyword.trim().is_empty())
        .filter(|t| hay.contains(&normalize(&t.primary_keyword)))
        .take(MAX_INTERNAL_LINKS)
        .map(|t| InternalLink {
            content_id: t.content_id,
            keyword: t.primary_keyword.clone(),
        })
        .collect()
}

/// The stored body of a draft: sanitised, counted, meta fields within bounds.
fn body(draft: &Draft, task: &Task, own: Uuid, targets: &[w::LinkTarget]) -> ContentBody {
    let d = task.data.as_ref();
    let clean = html::sanitize(&draft.html);
    let text = html::text(&clean);
    let cut = crate::writer::offline::truncate_words;
    ContentBody {
        title: cut(draft.title.trim(), 300),
        meta_title: cut(draft.meta_title.trim(), MAX_META_TITLE_CHARS),
        meta_description: cut(draft.meta_description.trim(), MAX_META_DESCRIPTION_CHARS),
        word_count: html::word_count(&clean),
        html: clean,
        primary_keyword: d.map(|d| d.primary_keyword.clone()).unwrap_or_default(),
        secondary_keywords: d.map(|d| d.secondary_keywords.clone()).unwrap_or_default(),
        internal_links: links(&text, own, targets),
        featured_image_id: None,
    }
}

async fn one(
    env: &JobEnv,
    ctx: &CommandContext,
    job_id: Uuid,
    shared: &Shared,
    task_id: Uuid,
) -> Result<Outcome, CommandError> {
    let (provider, targets, settings) = (&shared.provider, &shared.targets, &shared.settings);
    let (task, _) = env.bus.load::<Task>(&task_id.to_string()).await?;
    if task.status != TaskStatus::InProgress || task.job_id != Some(job_id) {
        return Ok(Outcome::Skipped);
    }
    let Some((brief, prompt_version, strategy_id)) = brief(&task, settings) else {
        return Ok(Outcome::Skipped);
    };
    let draft = {
        let _permits = env
            .limits
            .acquire(task.account_id.unwrap_or_default())
            .await;
        provider.article(&brief).await
    };
    let draft = match draft {
        Ok(d) => d,
        Err(e) => {
            let reason = e.to_string();
            let _one_at_a_time = shared.commits.lock().await;
            w::fail_article(&env.bus, ctx, job_id, task_id, &reason).await?;
            return Ok(Outcome::Failed(reason));
        }
    };
    let body = body(&draft, &task, content_id(task_id), targets);
    if let Err(e) = body.check() {
        let reason = format!("the provider's article is not usable: {e}");
        let _one_at_a_time = shared.commits.lock().await;
        w::fail_article(&env.bus, ctx, job_id, task_id, &reason).await?;
        return Ok(Outcome::Failed(reason));
    }
    let words = body.word_count;
    let author = VersionAuthor::Ai {
        job_id,
        provider: draft.provider.clone(),
        model: draft.model.clone(),
        prompt_type: "content".into(),
        prompt_version,
        strategy_id,
        tokens: draft.tokens,
        cost_usd_micros: draft.cost_usd_micros,
        credits_milli: 0,
    };
    // The job's commits all write the account: one at a time, instead of
    // sixteen optimistic writers retrying against each other.
    let saved = {
        let _one_at_a_time = shared.commits.lock().await;
        w::save_article(&env.bus, ctx, job_id, task_id, body, author).await
    };
    Ok(match saved {
        Ok(Some(_)) => Outcome::Written {
            words,
            tokens: draft.tokens,
            cost: draft.cost_usd_micros,
        },
        Ok(None) => Outcome::Skipped,
        Err(CommandError::Domain {
            code: "ALREADY_GENERATED" | "JOB_SUPERSEDED" | "RESERVATION_NOT_FOUND",
            ..
        }) => Outcome::Skipped,
        Err(e) => return Err(e),
    })
}

pub async fn run(
    env: &JobEnv,
    run: &Attempt<'_>,
    job: &Job,
    input: &Value,
) -> Result<JobOutput, JobFailure> {
    let job_id = run.job_id;
    let tasks = super::input_ids(input, "task_ids");
    let site = input["site_id"]
        .as_str()
        .and_then(|s| Uuid::parse_str(s).ok())
        .unwrap_or_default();
    let n = tasks.len();
    run.progress(Phase::Prep, 10, &format!("{n} articles to write"), 0, 0)
        .await?;
    let provider = super::ideas::text_provider(env, job.account_id).await?;
    let targets = match &env.writer {
        Some(l) => l
            .site_contents(job.account_id.unwrap_or_default(), site, 500)
            .await
            .unwrap_or_default(),
        None => vec![],
    };
    run.progress(Phase::AiCall, 25, "writing", 0, 0).await?;
    // Each article runs as its own task, so one that holds a connection (or
    // SQLite's write lock) is never left unpolled while this loop writes
    // the job's progress.
    let gate = Arc::new(tokio::sync::Semaphore::new(
        env.ai.max_concurrent_per_account.max(1),
    ));
    let (settings, _) = env
        .bus
        .load::<WriterSettings>(&job.account_id.unwrap_or_default().to_string())
        .await?;
    let (provider_name, model) = (provider.name(), provider.model().to_string());
    let shared = Arc::new(Shared {
        provider,
        targets,
        settings,
        commits: tokio::sync::Mutex::new(()),
    });
    let mut set = tokio::task::JoinSet::new();
    for t in tasks.iter().copied() {
        let (env, ctx, shared, gate) = (env.clone(), run.ctx.clone(), shared.clone(), gate.clone());
        set.spawn(async move {
            let _slot = gate.acquire_owned().await;
            (t, one(&env, &ctx, job_id, &shared, t).await)
        });
    }
    let (mut written, mut words, mut skipped) = (0usize, 0u64, 0usize);
    let (mut tokens, mut cost) = (0u64, 0i64);
    let mut failed: Vec<Value> = vec![];
    let mut done = 0usize;
    let mut last_report = std::time::Instant::now();
    while let Some(joined) = set.join_next().await {
        let (task, r) = joined?;
        done += 1;
        match r? {
            Outcome::Written {
                words: w,
                tokens: t,
                cost: c,
            } => {
                written += 1;
                words += u64::from(w);
                tokens += t;
                cost += c;
            }
            Outcome::Failed(reason) => failed.push(json!({"task_id": task, "error": reason})),
            Outcome::Skipped => skipped += 1,
        }
        // Progress at most every 250 ms (and for the last article): a
        // batch of 100 fast articles is not 100 more commits on the job.
        if done < n && last_report.elapsed() < std::time::Duration::from_millis(250) {
            continue;
        }
        last_report = std::time::Instant::now();
        let pct = 25 + (35 * done / n.max(1)) as u8;
        run.progress(
            Phase::AiCall,
            pct,
            &format!("{done} of {n} articles ({} failed)", failed.len()),
            tokens,
            cost,
        )
        .await?;
    }
    // What this job charged, over every attempt (each article's own capture).
    let mut charged = 0i64;
    let mut contents = vec![];
    for t in &tasks {
        let (task, _) = env.bus.load::<Task>(&t.to_string()).await?;
        if let Some((j, c)) = task.completed_by
            && j == job_id
        {
            charged += c;
            contents.push(content_id(*t));
        }
    }
    run.progress(Phase::Save, 90, "settling credits", tokens, cost)
        .await?;
    if contents.is_empty() && !failed.is_empty() {
        let first = failed[0]["error"].as_str().unwrap_or("").to_string();
        return Err(JobFailure::Failed(format!(
            "no article was written; the first error: {first}"
        )));
    }
    Ok(JobOutput {
        result: json!({"articles": contents.len(), "written_now": written, "skipped": skipped,
                       "failed": failed, "words": words, "content_ids": contents,
                       "provider": provider_name, "model": model, "tokens": tokens, "cost_usd_micros": cost,
                       "credits_charged_milli": charged}),
        save: None,
        charged: Some(charged),
    })
}
