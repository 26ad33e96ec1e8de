//! The `extract_image_prompts` job: for each content of its input, a
//! featured-image prompt and up to N in-article prompts from the current
//! version, by the account's text provider (offline by default), each
//! content's prompts committed with their charge as soon as they are
//! written (`igny8_commands::writer::images::save_prompts`). A content
//! that fails releases its credits alone; after a crash the new attempt
//! skips the contents already saved (their reservation is closed).

use super::{Attempt, JobEnv, JobFailure, JobOutput};
use crate::images::prompts::{self, Article};
use crate::writer::TextProvider;
use futures::StreamExt;
use igny8_commands::writer::images as img;
use igny8_commands::{CommandContext, CommandError};
use igny8_domain::billing::Account;
use igny8_domain::jobs::{Job, Phase, item_reservation};
use igny8_domain::writer::Content;
use serde_json::{Value, json};
use uuid::Uuid;

/// What became of one content.
enum Outcome {
    Saved {
        prompts: usize,
        tokens: u64,
        cost: i64,
    },
    Failed(String),
    Skipped,
}

#[allow(clippy::too_many_arguments)]
async fn one(
    env: &JobEnv,
    ctx: &CommandContext,
    job: &Job,
    job_id: Uuid,
    provider: &TextProvider,
    content_id: Uuid,
    n: usize,
    commits: &tokio::sync::Mutex<()>,
) -> Result<Outcome, CommandError> {
    let account = job.account_id.unwrap_or_default();
    let (acct, _) = env.bus.load::<Account>(&account.to_string()).await?;
    if !acct
        .reservations
        .contains_key(&item_reservation(job_id, content_id))
    {
        return Ok(Outcome::Skipped);
    }
    let (content, _) = env.bus.load::<Content>(&content_id.to_string()).await?;
    let fail = |reason: String| async move {
        let _one = commits.lock().await;
        img::release_item(
            &env.bus,
            ctx,
            job,
            job_id,
            content_id,
            "prompts not written",
        )
        .await?;
        Ok::<_, CommandError>(Outcome::Failed(reason))
    };
    if !content.created || content.versions == 0 {
        return fail("the content has no version".into()).await;
    }
    let current = igny8_commands::writer::version(&env.bus, content_id, content.versions).await?;
    let article = Article {
        title: current.body.title.clone(),
        primary_keyword: current.body.primary_keyword.clone(),
        html: current.body.html.clone(),
    };
    let made = {
        let _permits = env.limits.acquire(account).await;
        match provider {
            TextProvider::Offline => Ok((prompts::offline(&article, n), 0, 0)),
            TextProvider::OpenAi { provider, model } => {
                prompts::openai(provider, model, &article, n).await
            }
        }
    };
    let (list, tokens, cost) = match made {
        Ok(x) => x,
        Err(e) => return fail(e.to_string()).await,
    };
    let saved = {
        let _one = commits.lock().await;
        img::save_prompts(&env.bus, ctx, job_id, content_id, &list).await
    };
    match saved {
        Ok(true) => Ok(Outcome::Saved {
            prompts: list.len(),
            tokens,
            cost,
        }),
        Ok(false) => Ok(Outcome::Skipped),
        Err(e @ CommandError::Domain { .. }) => fail(e.to_string()).await,
        Err(e) => Err(e),
    }
}

pub async fn run(
    env: &JobEnv,
    run: &Attempt<'_>,
    job: &Job,
    input: &Value,
) -> Result<JobOutput, JobFailure> {
    let job_id = run.job_id;
    let contents = super::input_ids(input, "content_ids");
    let n = input["in_article_images"].as_u64().unwrap_or(2) as usize;
    let total = contents.len();
    run.progress(Phase::Prep, 10, &format!("{total} articles"), 0, 0)
        .await?;
    let provider = super::ideas::text_provider(env, job.account_id).await?;
    run.progress(Phase::AiCall, 25, "writing image prompts", 0, 0)
        .await?;
    let commits = tokio::sync::Mutex::new(());
    let width = env.ai.max_concurrent_per_account.max(1);
    let mut results = futures::stream::iter(contents.iter().copied())
        .map(|c| {
            let (provider, commits) = (&provider, &commits);
            async move {
                (
                    c,
                    one(env, run.ctx, job, job_id, provider, c, n, commits).await,
                )
            }
        })
        .buffer_unordered(width);
    let (mut saved, mut prompts_made, mut skipped, mut tokens, mut cost) = (0, 0, 0, 0u64, 0i64);
    let mut failed: Vec<Value> = vec![];
    let mut done = 0;
    while let Some((c, r)) = results.next().await {
        done += 1;
        match r? {
            Outcome::Saved {
                prompts: p,
                tokens: t,
                cost: x,
            } => {
                saved += 1;
                prompts_made += p;
                tokens += t;
                cost += x;
            }
            Outcome::Failed(e) => failed.push(json!({"content_id": c, "error": e})),
            Outcome::Skipped => skipped += 1,
        }
        let pct = 25 + (35 * done / total.max(1)) as u8;
        run.progress(
            Phase::AiCall,
            pct,
            &format!("{done} of {total} articles ({} failed)", failed.len()),
            tokens,
            cost,
        )
        .await?;
    }
    drop(results);
    // What this job charged over every attempt: the prompts it wrote.
    let mut prompt_ids = vec![];
    for c in &contents {
        for (id, p) in img::content_prompts(&env.bus, *c).await? {
            if p.extracted_by.contains(&job_id) {
                prompt_ids.push(id);
            }
        }
    }
    let (acct, _) = env
        .bus
        .load::<Account>(&job.account_id.unwrap_or_default().to_string())
        .await?;
    let charged = igny8_domain::billing::image_prompts_cost_milli(
        acct.plan.as_deref(),
        prompt_ids.len() as u64,
    );
    if saved == 0 && skipped == 0 && !failed.is_empty() {
        let first = failed[0]["error"].as_str().unwrap_or("").to_string();
        return Err(JobFailure::Failed(format!(
            "no prompt was written; the first error: {first}"
        )));
    }
    Ok(JobOutput {
        result: json!({"contents": saved + skipped, "saved_now": saved, "skipped": skipped, "failed": failed,
                       "prompts": prompt_ids.len(), "prompts_now": prompts_made, "image_prompt_ids": prompt_ids,
                       "tokens": tokens, "cost_usd_micros": cost, "credits_charged_milli": charged}),
        save: None,
        charged: Some(charged),
    })
}
