//! The `generate_images` job: an image per prompt of its input, made by
//! the chosen provider with bounded concurrency. Per prompt: the call is
//! recorded before it is made (`ImageRequested`, with the task id sent to
//! the provider), the answer is checked ([`crate::images::check`]),
//! stored content-addressed in media storage, then the image and its
//! charge are committed together — a second store by the same job is
//! refused, so an attempt that crashed after calling the provider is never
//! charged twice. A prompt that fails releases its credits alone. When
//! every prompt of a content has an image, a new content version places
//! them (`igny8_commands::writer::images::place_images`).

use super::{Attempt, JobEnv, JobFailure, JobOutput};
use crate::images::{ImageProvider, check, parse_size};
use futures::StreamExt;
use igny8_commands::writer::images as img;
use igny8_commands::{CommandContext, CommandError};
use igny8_domain::billing::{Account, image_cost_milli};
use igny8_domain::jobs::{Job, Phase};
use igny8_domain::writer::{ImagePrompt, ImageQuality, StoredImage, image_id};
use serde_json::{Value, json};
use std::collections::BTreeSet;
use uuid::Uuid;

enum Outcome {
    Stored { cost: i64 },
    Failed(String),
    Skipped,
}

/// The provider a job asked for, or the account's: Runware when its
/// settings exist, else OpenAI's, else offline.
pub(crate) async fn image_provider(
    env: &JobEnv,
    account: Option<Uuid>,
    asked: Option<&str>,
) -> Result<ImageProvider, JobFailure> {
    let configured = |name: &'static str| async move {
        let Some(a) = account else { return Ok(false) };
        let id = igny8_domain::tenancy::Integration::id(a, name);
        let (i, _) = env
            .bus
            .load::<igny8_domain::tenancy::Integration>(&id.to_string())
            .await?;
        Ok::<_, JobFailure>(i.configured)
    };
    let name = match asked {
        Some(n) => n.to_string(),
        None if configured("runware").await? => "runware".into(),
        None if configured("openai").await? => "openai".into(),
        None => "offline".into(),
    };
    let fetch = env.fetch.clone();
    Ok(match name.as_str() {
        "offline" => ImageProvider::Offline,
        "openai" | "runware" => {
            let (api, i) = super::cluster::provider_of(env, account, &name).await?;
            let (_, default_model) = igny8_commands::tenancy::providers::defaults(&name);
            let model = if i.image_model.is_empty() {
                default_model.to_string()
            } else {
                i.image_model.clone()
            };
            if name == "openai" {
                ImageProvider::OpenAi { api, model, fetch }
            } else {
                ImageProvider::Runware { api, model, fetch }
            }
        }
        other => {
            return Err(JobFailure::Failed(format!(
                "unknown image provider {other:?}"
            )));
        }
    })
}

struct Plan<'a> {
    provider: &'a ImageProvider,
    quality: ImageQuality,
    size: (u32, u32),
    price: i64,
    attempt: u32,
    commits: &'a tokio::sync::Mutex<()>,
}

async fn one(
    env: &JobEnv,
    ctx: &CommandContext,
    job_id: Uuid,
    plan: &Plan<'_>,
    prompt: Uuid,
) -> Result<Outcome, CommandError> {
    let (p, _) = env.bus.load::<ImagePrompt>(&prompt.to_string()).await?;
    if p.generating != Some(job_id) {
        return Ok(Outcome::Skipped);
    }
    let text = p.text.clone().map(|t| t.prompt).unwrap_or_default();
    let fail = |reason: String| async move {
        let _one = plan.commits.lock().await;
        img::fail_image(&env.bus, ctx, job_id, prompt, &reason).await?;
        Ok::<_, CommandError>(Outcome::Failed(reason))
    };
    let Some(media) = &env.media else {
        return fail("no media storage is configured for the workers".into()).await;
    };
    // The call's id, recorded before the call (one per prompt and attempt).
    let task_uuid = Uuid::new_v5(&image_id(prompt, job_id), &plan.attempt.to_be_bytes());
    match img::start_request(
        &env.bus,
        ctx,
        job_id,
        prompt,
        plan.provider.name(),
        task_uuid,
    )
    .await
    {
        Ok(()) => {}
        Err(CommandError::Domain {
            code: "JOB_SUPERSEDED",
            ..
        }) => return Ok(Outcome::Skipped),
        Err(e) => return Err(e),
    }
    let made = {
        let _permits = env.limits.acquire(p.account_id.unwrap_or_default()).await;
        plan.provider
            .make(&text, plan.size, plan.quality, task_uuid)
            .await
    };
    let made = match made {
        Ok(m) => m,
        Err(e) => return fail(e).await,
    };
    let checked = match check::check(&made.bytes, made.declared.as_deref()) {
        Ok(c) => c,
        Err(e) => return fail(e).await,
    };
    let sha = match media.put(&made.bytes).await {
        Ok(s) => s,
        // Storage is infrastructure: the job is tried again, nothing is settled.
        Err(e) => return Err(CommandError::Unavailable(e.to_string())),
    };
    let image = StoredImage {
        image_id: image_id(prompt, job_id),
        job_id,
        sha256: sha,
        mime_type: checked.mime_type.to_string(),
        width: checked.width,
        height: checked.height,
        bytes: made.bytes.len() as u64,
        provider: plan.provider.name().to_string(),
        model: made.model.clone(),
        quality: plan.quality,
        size: format!("{}x{}", plan.size.0, plan.size.1),
        prompt: text,
        cost_usd_micros: made.cost_usd_micros,
        credits_milli: plan.price,
    };
    let stored = {
        let _one = plan.commits.lock().await;
        img::store_image(&env.bus, ctx, prompt, image).await
    };
    Ok(match stored {
        Ok(Some(_)) => Outcome::Stored {
            cost: made.cost_usd_micros,
        },
        Ok(None)
        | Err(CommandError::Domain {
            code: "ALREADY_GENERATED" | "JOB_SUPERSEDED",
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
    let prompts = super::input_ids(input, "prompt_ids");
    let quality = input["quality"]
        .as_str()
        .and_then(ImageQuality::parse)
        .unwrap_or_default();
    let size = input["size"]
        .as_str()
        .and_then(parse_size)
        .ok_or_else(|| JobFailure::Failed("the job names no valid size".into()))?;
    let total = prompts.len();
    run.progress(Phase::Prep, 10, &format!("{total} images to make"), 0, 0)
        .await?;
    let provider = image_provider(env, job.account_id, input["provider"].as_str()).await?;
    let (acct, _) = env
        .bus
        .load::<Account>(&job.account_id.unwrap_or_default().to_string())
        .await?;
    let commits = tokio::sync::Mutex::new(());
    let plan = Plan {
        provider: &provider,
        quality,
        size,
        price: image_cost_milli(acct.plan.as_deref(), quality == ImageQuality::Premium),
        attempt: run.attempt,
        commits: &commits,
    };
    run.progress(Phase::AiCall, 25, "making images", 0, 0)
        .await?;
    let width = env.ai.max_concurrent_per_account.max(1);
    let mut results = futures::stream::iter(prompts.iter().copied())
        .map(|p| {
            let plan = &plan;
            async move { (p, one(env, run.ctx, job_id, plan, p).await) }
        })
        .buffer_unordered(width);
    let (mut stored, mut skipped, mut cost, mut done) = (0usize, 0usize, 0i64, 0usize);
    let mut failed: Vec<Value> = vec![];
    let mut last_report = std::time::Instant::now();
    while let Some((p, r)) = results.next().await {
        done += 1;
        match r? {
            Outcome::Stored { cost: c, .. } => {
                stored += 1;
                cost += c;
            }
            Outcome::Failed(e) => failed.push(json!({"image_prompt_id": p, "error": e})),
            Outcome::Skipped => skipped += 1,
        }
        if done < total && last_report.elapsed() < std::time::Duration::from_millis(250) {
            continue;
        }
        last_report = std::time::Instant::now();
        let pct = 25 + (35 * done / total.max(1)) as u8;
        run.progress(
            Phase::AiCall,
            pct,
            &format!("{done} of {total} images ({} failed)", failed.len()),
            0,
            cost,
        )
        .await?;
    }
    drop(results);
    run.progress(Phase::Save, 90, "placing images in the articles", 0, cost)
        .await?;
    // What this job stored over every attempt, and the contents to place.
    let (mut images, mut charged, mut contents) = (vec![], 0i64, BTreeSet::new());
    for p in &prompts {
        let (prompt, _) = env.bus.load::<ImagePrompt>(&p.to_string()).await?;
        if prompt.imaged_by.contains(&job_id)
            && let Some(i) = &prompt.image
        {
            images.push(i.image_id);
            charged += i.credits_milli;
            contents.extend(prompt.content_id);
        }
    }
    let mut placed = vec![];
    for c in contents {
        if img::place_images(&env.bus, run.ctx, job_id, c)
            .await?
            .is_some()
        {
            placed.push(c);
        }
    }
    if images.is_empty() && !failed.is_empty() {
        let first = failed[0]["error"].as_str().unwrap_or("").to_string();
        return Err(JobFailure::Failed(format!(
            "no image was made; the first error: {first}"
        )));
    }
    Ok(JobOutput {
        result: json!({"images": images.len(), "stored_now": stored, "skipped": skipped, "failed": failed,
                       "image_ids": images, "contents_placed": placed, "provider": provider.name(),
                       "model": provider.model(), "cost_usd_micros": cost, "credits_charged_milli": charged}),
        save: None,
        charged: Some(charged),
    })
}
