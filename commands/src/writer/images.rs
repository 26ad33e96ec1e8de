//! Image use cases: prompts extracted from articles, images made from the
//! prompts, and the content version that places them.
//!
//! Two job kinds, both batch jobs with one reservation per item
//! (`<job>:<item>`, see `igny8_domain::jobs::item_reservation`):
//!
//! - `extract_image_prompts` (items: contents): [`save_prompts`] writes a
//!   content's slots and captures their price in one commit;
//! - `generate_images` (items: prompts): [`start_request`] records each
//!   provider call before it is made, [`store_image`] stores the image and
//!   captures its price in one commit (refused for a second image of the
//!   same job, so a crashed attempt that had already called the provider
//!   is never charged twice), [`fail_image`] releases the item.
//!
//! [`place_images`] adds the content version with the images as
//! `<figure>`s at their placements (once per job).

use super::html;
use super::tasks::{first, task_scope};
use crate::bus::{CommandBus, CommandContext, CommandError, CommandOutcome};
use crate::caller::Caller;
use crate::uow::{UnitOfWork, replayed, retry, retry_hot};
use igny8_domain::ErrorKind;
use igny8_domain::billing::{Account, AccountCommand, image_cost_milli, image_prompts_cost_milli};
use igny8_domain::jobs::{Job, JobCommand, item_reservation};
use igny8_domain::writer::{
    Content, ContentCommand, ImagePrompt, ImagePromptCommand, ImageQuality, MAX_IN_ARTICLE_IMAGES,
    PromptChange, PromptOrigin, PromptText, StoredImage, prompt_id,
};
use serde_json::json;
use std::collections::BTreeSet;
use uuid::Uuid;

/// Most contents one extraction job takes.
pub const MAX_EXTRACT_CONTENTS: usize = 100;
/// Most prompts one image job takes.
pub const MAX_IMAGE_PROMPTS: usize = 500;
/// Sizes an image may be asked in (`WIDTHxHEIGHT`, multiples of 64).
pub const SIZES: &[&str] = &[
    "512x512",
    "768x768",
    "1024x1024",
    "1024x1536",
    "1536x1024",
    "1792x1024",
    "1024x1792",
];
/// Image providers.
pub const IMAGE_PROVIDERS: &[&str] = &["offline", "openai", "runware"];

/// A job an image command started.
#[derive(Debug, Clone)]
pub struct ImageJob {
    pub job_id: Uuid,
    pub items: usize,
    pub reserved: i64,
    pub position: Option<i64>,
    pub replayed: bool,
}

fn refused(kind: ErrorKind, code: &'static str, msg: impl Into<String>) -> CommandError {
    CommandError::refused(kind, code, msg)
}

/// The prompt the caller may see, else 404.
pub async fn prompt_scope(
    bus: &CommandBus,
    caller: &Caller,
    id: Uuid,
) -> Result<ImagePrompt, CommandError> {
    let account = caller.account()?;
    let (p, _) = bus.load::<ImagePrompt>(&id.to_string()).await?;
    match (p.live(), p.account_id, p.site_id) {
        (true, Some(a), Some(site)) if a == account && caller.can_see_site(site) => Ok(p),
        _ => Err(CommandError::not_found("image prompt")),
    }
}

/// The live prompts of a content, by slot.
pub async fn content_prompts(
    bus: &CommandBus,
    content_id: Uuid,
) -> Result<Vec<(Uuid, ImagePrompt)>, CommandError> {
    let mut out = vec![];
    for slot in 0..=MAX_IN_ARTICLE_IMAGES {
        let id = prompt_id(content_id, slot);
        let (p, _) = bus.load::<ImagePrompt>(&id.to_string()).await?;
        if p.live() {
            out.push((id, p));
        }
    }
    Ok(out)
}

fn dedup(ids: &[Uuid]) -> Vec<Uuid> {
    ids.iter()
        .copied()
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect()
}

/// The job a retried request (same `Idempotency-Key`) started the first time.
async fn replayed_job(
    bus: &CommandBus,
    ctx: &CommandContext,
) -> Result<Option<ImageJob>, CommandError> {
    let Some(done) = replayed(bus, ctx).await? else {
        return Ok(None);
    };
    let job = first(done, "job")?;
    let (j, _) = bus.load::<Job>(&job.aggregate_id).await?;
    Ok(Some(ImageJob {
        job_id: Uuid::parse_str(&job.aggregate_id).unwrap_or_default(),
        items: j.items.len(),
        reserved: j.reserved,
        position: job.position,
        replayed: true,
    }))
}

/// Create a batch job of `kind` over the items of `prices` with their
/// reservations in one commit; `take_prompts`: the items are prompts the
/// job takes (the lock).
async fn create_batch(
    bus: &CommandBus,
    ctx: &CommandContext,
    account: Uuid,
    kind: &str,
    input: serde_json::Value,
    prices: &[(Uuid, i64)],
    take_prompts: bool,
) -> Result<ImageJob, CommandError> {
    let reserved: i64 = prices.iter().map(|(_, p)| p).sum();
    let job_id = Uuid::now_v7();
    let (jid, aid) = (job_id.to_string(), account.to_string());
    let items: Vec<Uuid> = prices.iter().map(|(i, _)| *i).collect();
    let outcomes = retry_hot(|| async {
        let mut uow = bus.unit(ctx);
        uow.execute::<Job>(
            &jid,
            JobCommand::Create {
                account_id: account,
                kind: kind.to_string(),
                input: input.clone(),
                reserved,
                items: items.clone(),
            },
        )
        .await?;
        for item in items.iter().filter(|_| take_prompts) {
            uow.execute::<ImagePrompt>(
                &item.to_string(),
                ImagePromptCommand::StartImage { job_id },
            )
            .await?;
        }
        for (item, price) in prices {
            uow.execute::<Account>(
                &aid,
                crate::billing::hold(ctx, item_reservation(job_id, *item), *price, kind),
            )
            .await?;
        }
        uow.commit().await
    })
    .await?;
    let job = first(outcomes.clone(), "job")?;
    Ok(ImageJob {
        job_id: Uuid::parse_str(&job.aggregate_id).unwrap_or(job_id),
        items: items.len(),
        reserved,
        position: outcomes.iter().filter_map(|o| o.position).max(),
        replayed: outcomes.iter().any(|o| o.replayed),
    })
}

/// Extract image prompts from `content_ids` (1 to 100, of one site): one
/// featured prompt and `in_article` (0 to 6) in-article prompts each,
/// reserved at the plan's price per prompt. 422 EMPTY_SELECTION,
/// TOO_MANY_CONTENTS, VALIDATION_ERROR; 404 for content the caller cannot see.
pub async fn extract_image_prompts(
    bus: &CommandBus,
    caller: &Caller,
    ctx: &CommandContext,
    content_ids: Vec<Uuid>,
    in_article: u32,
) -> Result<ImageJob, CommandError> {
    let account = caller.account()?;
    if let Some(job) = replayed_job(bus, ctx).await? {
        return Ok(job);
    }
    if content_ids.is_empty() {
        return Err(CommandError::invalid(
            "EMPTY_SELECTION",
            "no content to extract prompts from",
        ));
    }
    if in_article > MAX_IN_ARTICLE_IMAGES {
        return Err(CommandError::invalid(
            "VALIDATION_ERROR",
            "in_article_images must be 0 to 6",
        ));
    }
    let ids = dedup(&content_ids);
    if ids.len() > MAX_EXTRACT_CONTENTS {
        return Err(CommandError::invalid(
            "TOO_MANY_CONTENTS",
            format!("at most {MAX_EXTRACT_CONTENTS} contents per job"),
        ));
    }
    let mut sites = BTreeSet::new();
    for id in &ids {
        let c = super::content_scope(bus, caller, *id).await?;
        sites.extend(c.site_id);
    }
    if sites.len() != 1 {
        return Err(CommandError::invalid(
            "VALIDATION_ERROR",
            "the contents must belong to one site",
        ));
    }
    caller.require_write()?;
    let (acct, _) = bus.load::<Account>(&account.to_string()).await?;
    let price = image_prompts_cost_milli(acct.plan.as_deref(), u64::from(in_article) + 1);
    let prices: Vec<(Uuid, i64)> = ids.iter().map(|i| (*i, price)).collect();
    let site = sites.into_iter().next().unwrap_or_default();
    let input = json!({"site_id": site, "content_ids": ids, "in_article_images": in_article});
    create_batch(
        bus,
        ctx,
        account,
        "extract_image_prompts",
        input,
        &prices,
        false,
    )
    .await
}

/// What an image job makes.
#[derive(Debug, Clone)]
pub struct ImageRequest {
    pub provider: Option<String>,
    pub quality: ImageQuality,
    pub size: String,
}

/// Make images of `prompt_ids` (1 to 500, of one site), each reserved at
/// the plan's price for `quality`; each prompt is taken by the job (409
/// GENERATION_RUNNING when another job has one). 422 EMPTY_SELECTION,
/// TOO_MANY_PROMPTS, INVALID_PROVIDER, INVALID_SIZE, VALIDATION_ERROR.
pub async fn generate_images(
    bus: &CommandBus,
    caller: &Caller,
    ctx: &CommandContext,
    prompt_ids: Vec<Uuid>,
    request: ImageRequest,
) -> Result<ImageJob, CommandError> {
    let account = caller.account()?;
    if let Some(job) = replayed_job(bus, ctx).await? {
        return Ok(job);
    }
    if prompt_ids.is_empty() {
        return Err(CommandError::invalid(
            "EMPTY_SELECTION",
            "no image prompts to make images of",
        ));
    }
    if let Some(p) = &request.provider
        && !IMAGE_PROVIDERS.contains(&p.as_str())
    {
        return Err(CommandError::invalid(
            "INVALID_PROVIDER",
            "provider must be offline, openai or runware",
        ));
    }
    if !SIZES.contains(&request.size.as_str()) {
        return Err(CommandError::invalid(
            "INVALID_SIZE",
            format!("size must be one of {}", SIZES.join(", ")),
        ));
    }
    let ids = dedup(&prompt_ids);
    if ids.len() > MAX_IMAGE_PROMPTS {
        return Err(CommandError::invalid(
            "TOO_MANY_PROMPTS",
            format!("at most {MAX_IMAGE_PROMPTS} prompts per job"),
        ));
    }
    let mut sites = BTreeSet::new();
    for id in &ids {
        let p = prompt_scope(bus, caller, *id).await?;
        if p.generating.is_some() {
            return Err(refused(
                ErrorKind::Conflict,
                "GENERATION_RUNNING",
                format!("another job makes the image of prompt {id}"),
            ));
        }
        sites.extend(p.site_id);
    }
    if sites.len() != 1 {
        return Err(CommandError::invalid(
            "VALIDATION_ERROR",
            "the prompts must belong to one site",
        ));
    }
    caller.require_write()?;
    let (acct, _) = bus.load::<Account>(&account.to_string()).await?;
    let price = image_cost_milli(
        acct.plan.as_deref(),
        request.quality == ImageQuality::Premium,
    );
    let prices: Vec<(Uuid, i64)> = ids.iter().map(|i| (*i, price)).collect();
    let site = sites.into_iter().next().unwrap_or_default();
    let input = json!({"site_id": site, "prompt_ids": ids, "provider": request.provider,
                       "quality": request.quality.as_str(), "size": request.size});
    create_batch(bus, ctx, account, "generate_images", input, &prices, true).await
}

/// Images for every prompt of the content of `task_ids` (1 to 100): 422
/// NO_PROMPTS when none of them has prompts (extract them first).
pub async fn auto_generate_images(
    bus: &CommandBus,
    caller: &Caller,
    ctx: &CommandContext,
    task_ids: Vec<Uuid>,
    request: ImageRequest,
) -> Result<ImageJob, CommandError> {
    if replayed(bus, ctx).await?.is_some() || task_ids.is_empty() {
        return generate_images(bus, caller, ctx, vec![], request).await;
    }
    let ids = dedup(&task_ids);
    if ids.len() > super::MAX_GENERATE_TASKS {
        return Err(CommandError::invalid(
            "TOO_MANY_TASKS",
            format!("at most {} tasks per job", super::MAX_GENERATE_TASKS),
        ));
    }
    let mut prompts = vec![];
    for id in ids {
        let task = task_scope(bus, caller, id).await?;
        if let Some(content) = task.content_id {
            prompts.extend(
                content_prompts(bus, content)
                    .await?
                    .into_iter()
                    .map(|(id, _)| id),
            );
        }
    }
    if prompts.is_empty() {
        return Err(CommandError::invalid(
            "NO_PROMPTS",
            "the tasks' content has no image prompts: POST /api/v1/writer/content/extract_image_prompts/ first",
        ));
    }
    generate_images(bus, caller, ctx, prompts, request).await
}

/// A prompt as an extraction job wrote it: its slot and text.
#[derive(Debug, Clone)]
pub struct ExtractedPrompt {
    pub slot: u32,
    pub text: PromptText,
}

/// Store the prompts of one content of `job_id` and capture their price
/// (at most the item's reservation), in one commit; slots beyond the new
/// ones are deleted (unless an image job has them). `Ok(false)`: the item
/// was settled already (an earlier attempt saved it, or it was released).
pub async fn save_prompts(
    bus: &CommandBus,
    ctx: &CommandContext,
    job_id: Uuid,
    content_id: Uuid,
    prompts: &[ExtractedPrompt],
) -> Result<bool, CommandError> {
    let cid = content_id.to_string();
    let out = retry_hot(|| async {
        let mut uow = bus.unit(ctx);
        let content: Content = uow.state(&cid).await?;
        let account = content.account_id.unwrap_or_default().to_string();
        let acct: Account = uow.state(&account).await?;
        let reservation = item_reservation(job_id, content_id);
        let Some(&reserved) = acct.reservations.get(&reservation) else {
            return Ok(Some(vec![]));
        };
        let origin = PromptOrigin {
            account_id: content.account_id.unwrap_or_default(),
            site_id: content.site_id.unwrap_or_default(),
            sector_id: content.sector_id.unwrap_or_default(),
            content_id,
            task_id: content.task_id.unwrap_or_default(),
        };
        let each = image_prompts_cost_milli(acct.plan.as_deref(), 1);
        let mut charge = 0;
        let mut written = BTreeSet::new();
        for p in prompts {
            let id = prompt_id(content_id, p.slot).to_string();
            let credits = each.min(reserved - charge).max(0);
            uow.execute::<ImagePrompt>(
                &id,
                ImagePromptCommand::Extract {
                    origin: origin.clone(),
                    slot: p.slot,
                    text: p.text.clone(),
                    job_id,
                    credits_milli: credits,
                },
            )
            .await?;
            charge += credits;
            written.insert(p.slot);
        }
        for slot in 0..=MAX_IN_ARTICLE_IMAGES {
            let id = prompt_id(content_id, slot).to_string();
            let p: ImagePrompt = uow.state(&id).await?;
            if !written.contains(&slot) && p.live() && p.generating.is_none() {
                uow.execute::<ImagePrompt>(&id, ImagePromptCommand::Delete)
                    .await?;
            }
        }
        uow.execute::<Account>(
            &account,
            AccountCommand::Capture {
                reservation_id: reservation,
                amount: charge,
            },
        )
        .await?;
        uow.commit().await
    })
    .await?;
    Ok(!out.is_empty())
}

/// Release one item of a batch job (its reservation), with nothing else.
pub async fn release_item(
    bus: &CommandBus,
    ctx: &CommandContext,
    job: &Job,
    job_id: Uuid,
    item: Uuid,
    reason: &str,
) -> Result<(), CommandError> {
    let account = job.account_id.unwrap_or_default().to_string();
    retry_hot(|| async {
        let mut uow = bus.unit(ctx);
        uow.execute::<Account>(
            &account,
            AccountCommand::Release {
                reservation_id: item_reservation(job_id, item),
                reason: reason.to_string(),
            },
        )
        .await?;
        uow.commit().await
    })
    .await
    .map(|_| ())
}

/// Record that `job_id` calls the provider for `prompt` with `task_uuid`
/// (before the call). JOB_SUPERSEDED when the prompt is no longer the job's.
pub async fn start_request(
    bus: &CommandBus,
    ctx: &CommandContext,
    job_id: Uuid,
    prompt: Uuid,
    provider: &str,
    task_uuid: Uuid,
) -> Result<(), CommandError> {
    bus.execute::<ImagePrompt>(
        &prompt.to_string(),
        ImagePromptCommand::Request {
            job_id,
            provider: provider.to_string(),
            task_uuid,
        },
        ctx,
    )
    .await
    .map(|_| ())
}

/// Store `image` of `prompt` and capture its price (at most the item's
/// reservation) in one commit. `Ok(None)` when the item was settled
/// already; ALREADY_GENERATED / JOB_SUPERSEDED when the prompt refuses.
pub async fn store_image(
    bus: &CommandBus,
    ctx: &CommandContext,
    prompt: Uuid,
    image: StoredImage,
) -> Result<Option<i64>, CommandError> {
    let pid = prompt.to_string();
    let job_id = image.job_id;
    let mut charged = 0;
    let out = retry_hot(|| async {
        let mut uow = bus.unit(ctx);
        let p: ImagePrompt = uow.state(&pid).await?;
        let account = p.account_id.unwrap_or_default().to_string();
        let acct: Account = uow.state(&account).await?;
        let reservation = item_reservation(job_id, prompt);
        let Some(&reserved) = acct.reservations.get(&reservation) else {
            return Ok(Some(vec![]));
        };
        let mut image = image.clone();
        image.credits_milli = image.credits_milli.min(reserved);
        uow.execute::<ImagePrompt>(
            &pid,
            ImagePromptCommand::Store {
                image: image.clone(),
            },
        )
        .await?;
        uow.execute::<Account>(
            &account,
            AccountCommand::Capture {
                reservation_id: reservation,
                amount: image.credits_milli,
            },
        )
        .await?;
        uow.commit().await
    })
    .await?;
    if out.is_empty() {
        return Ok(None);
    }
    for o in &out {
        for e in &o.events {
            if e.event_type == "ImageStored" {
                charged = e.payload["image"]["credits_milli"].as_i64().unwrap_or(0);
            }
        }
    }
    Ok(Some(charged))
}

async fn fail_image_in(
    uow: &mut UnitOfWork<'_>,
    job: &Job,
    job_id: Uuid,
    prompt: Uuid,
    reason: &str,
) -> Result<(), CommandError> {
    uow.execute::<ImagePrompt>(
        &prompt.to_string(),
        ImagePromptCommand::Fail {
            job_id,
            reason: reason.to_string(),
        },
    )
    .await?;
    uow.execute::<Account>(
        &job.account_id.unwrap_or_default().to_string(),
        AccountCommand::Release {
            reservation_id: item_reservation(job_id, prompt),
            reason: "image not made".into(),
        },
    )
    .await?;
    Ok(())
}

/// The image of `prompt` could not be made: the prompt is free again and
/// its reservation returns, in one commit.
pub async fn fail_image(
    bus: &CommandBus,
    ctx: &CommandContext,
    job_id: Uuid,
    prompt: Uuid,
    reason: &str,
) -> Result<(), CommandError> {
    retry_hot(|| async {
        let mut uow = bus.unit(ctx);
        let job: Job = uow.state(&job_id.to_string()).await?;
        fail_image_in(&mut uow, &job, job_id, prompt, reason).await?;
        uow.commit().await
    })
    .await
    .map(|_| ())
}

/// At an image job's end: every prompt still held is freed and every open
/// reservation returns (in the job's own commit).
pub async fn settle_image_items(
    uow: &mut UnitOfWork<'_>,
    job: &Job,
    job_id: Uuid,
    reason: &str,
) -> Result<(), CommandError> {
    for item in &job.items {
        if job.kind == "generate_images" {
            fail_image_in(uow, job, job_id, *item, reason).await?;
        } else {
            uow.execute::<Account>(
                &job.account_id.unwrap_or_default().to_string(),
                AccountCommand::Release {
                    reservation_id: item_reservation(job_id, *item),
                    reason: reason.to_string(),
                },
            )
            .await?;
        }
    }
    Ok(())
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The URL an article's figure points at (the publisher swaps it for the
/// WordPress media URL).
pub fn image_src(image_id: Uuid) -> String {
    format!("/api/v1/writer/images/{image_id}/file")
}

/// `html` without the figures an image job placed earlier.
fn without_our_figures(html: &str) -> String {
    let mut out = String::with_capacity(html.len());
    let mut rest = html;
    while let Some(start) = rest.find("<figure>") {
        let Some(len) = rest[start..].find("</figure>") else {
            break;
        };
        let end = start + len + "</figure>".len();
        out.push_str(&rest[..start]);
        if !rest[start..end].contains("/api/v1/writer/images/") {
            out.push_str(&rest[start..end]);
        }
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

fn normal(s: &str) -> String {
    html::text(s)
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

/// Place `figures` (placement heading, figure HTML) in `html`: each after
/// the first heading whose text is its placement, the rest at the end.
/// Figures placed by an earlier image job are replaced.
pub fn place_figures(html: &str, figures: &[(String, String)]) -> String {
    let base = without_our_figures(html);
    let mut after: Vec<(usize, &str)> = vec![];
    let mut unplaced = vec![];
    for (placement, figure) in figures {
        let want = normal(placement);
        let mut found = None;
        let mut from = 0;
        while let Some(i) = base[from..].find("<h") {
            let at = from + i;
            let level = base[at + 2..].chars().next();
            from = at + 2;
            let Some(level) = level.filter(|c| ('2'..='6').contains(c)) else {
                continue;
            };
            let close = format!("</h{level}>");
            let Some(len) = base[at..].find(&close) else {
                continue;
            };
            let end = at + len + close.len();
            if normal(&base[at..end]) == want {
                found = Some(end);
                break;
            }
        }
        match found {
            Some(end) => after.push((end, figure.as_str())),
            None => unplaced.push(figure.as_str()),
        }
    }
    after.sort_by_key(|(i, _)| *i);
    let mut out = String::with_capacity(base.len() + 512 * figures.len());
    let mut last = 0;
    for (i, figure) in after {
        out.push_str(&base[last..i]);
        out.push_str(figure);
        last = i;
    }
    out.push_str(&base[last..]);
    for f in unplaced {
        out.push_str(f);
    }
    out
}

/// One `<figure>` of an image.
pub fn figure(image: &StoredImage, text: &PromptText) -> String {
    let caption = if text.caption.trim().is_empty() {
        String::new()
    } else {
        format!("<figcaption>{}</figcaption>", escape(&text.caption))
    };
    format!(
        "<figure><img src=\"{}\" alt=\"{}\" width=\"{}\" height=\"{}\">{caption}</figure>",
        image_src(image.image_id),
        escape(&text.alt_text),
        image.width,
        image.height
    )
}

/// When every live prompt of `content_id` has an image: a new version
/// with the in-article images as figures at their placements and the
/// featured image named, attributed to `job_id` (once per job). `Ok(None)`
/// when images are missing or the job placed them already.
pub async fn place_images(
    bus: &CommandBus,
    ctx: &CommandContext,
    job_id: Uuid,
    content_id: Uuid,
) -> Result<Option<CommandOutcome>, CommandError> {
    let prompts = content_prompts(bus, content_id).await?;
    if prompts.is_empty() || prompts.iter().any(|(_, p)| p.image.is_none()) {
        return Ok(None);
    }
    let cid = content_id.to_string();
    let out = retry(|| async {
        let mut uow = bus.unit(ctx);
        let content: Content = uow.state(&cid).await?;
        if !content.created || content.jobs.contains(&job_id) {
            return Ok(Some(vec![]));
        }
        let current = super::version(bus, content_id, content.versions).await?;
        let mut body = current.body.clone();
        let mut figures = vec![];
        let mut ids = vec![];
        for (_, p) in &prompts {
            let (Some(image), Some(text)) = (&p.image, &p.text) else {
                continue;
            };
            ids.push(image.image_id);
            if p.slot == 0 {
                body.featured_image_id = Some(image.image_id);
            } else {
                figures.push((
                    text.placement.clone().unwrap_or_default(),
                    figure(image, text),
                ));
            }
        }
        body.html = html::sanitize(&place_figures(&body.html, &figures));
        body.word_count = html::word_count(&body.html);
        uow.execute::<Content>(
            &cid,
            ContentCommand::PlaceImages {
                job_id,
                image_ids: ids,
                body,
            },
        )
        .await?;
        uow.commit().await
    })
    .await?;
    if out.is_empty() {
        return Ok(None);
    }
    Ok(Some(first(out, "content")?))
}

/// A person writes a prompt for a slot of a content: `slot` given (409
/// SLOT_TAKEN when the slot has a prompt), or the first free in-article
/// slot (422 VALIDATION_ERROR when all six are taken). The prompt's id.
pub async fn create_prompt(
    bus: &CommandBus,
    caller: &Caller,
    ctx: &CommandContext,
    content_id: Uuid,
    slot: Option<u32>,
    text: PromptText,
) -> Result<(Uuid, CommandOutcome), CommandError> {
    let content = super::content_scope(bus, caller, content_id).await?;
    caller.require_write()?;
    let taken: BTreeSet<u32> = content_prompts(bus, content_id)
        .await?
        .into_iter()
        .map(|(_, p)| p.slot)
        .collect();
    let slot = match slot {
        Some(s) => s,
        None => (1..=MAX_IN_ARTICLE_IMAGES)
            .find(|s| !taken.contains(s))
            .ok_or_else(|| {
                CommandError::invalid(
                    "VALIDATION_ERROR",
                    "the article has six in-article prompts already",
                )
            })?,
    };
    let id = prompt_id(content_id, slot);
    let origin = PromptOrigin {
        account_id: content.account_id.unwrap_or_default(),
        site_id: content.site_id.unwrap_or_default(),
        sector_id: content.sector_id.unwrap_or_default(),
        content_id,
        task_id: content.task_id.unwrap_or_default(),
    };
    let user_id = caller.user_id;
    let out = bus
        .execute::<ImagePrompt>(
            &id.to_string(),
            ImagePromptCommand::Create {
                origin,
                slot,
                text,
                user_id,
            },
            ctx,
        )
        .await?;
    Ok((id, out))
}

/// A person rewrites a prompt (409 GENERATION_RUNNING while an image job has it).
pub async fn edit_prompt(
    bus: &CommandBus,
    caller: &Caller,
    ctx: &CommandContext,
    id: Uuid,
    change: PromptChange,
) -> Result<CommandOutcome, CommandError> {
    prompt_scope(bus, caller, id).await?;
    caller.require_write()?;
    bus.execute::<ImagePrompt>(&id.to_string(), ImagePromptCommand::Edit { change }, ctx)
        .await
}

/// Remove a prompt (its images stay in storage; other images may share the bytes).
pub async fn delete_prompt(
    bus: &CommandBus,
    caller: &Caller,
    ctx: &CommandContext,
    id: Uuid,
) -> Result<CommandOutcome, CommandError> {
    prompt_scope(bus, caller, id).await?;
    caller.require_write()?;
    bus.execute::<ImagePrompt>(&id.to_string(), ImagePromptCommand::Delete, ctx)
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_follow_their_headings_and_replace_earlier_ones() {
        let html = "<h2>Intro</h2><p>a</p><h2>Grip &amp; soles</h2><p>b</p>";
        let f = |n: u32| format!("<figure><img src=\"/api/v1/writer/images/{n}/file\"></figure>");
        let once = place_figures(
            html,
            &[
                ("grip & soles".into(), f(1)),
                ("Intro".into(), f(2)),
                ("Missing".into(), f(3)),
            ],
        );
        let (i1, i2, i3) = (
            once.find("images/1/").unwrap(),
            once.find("images/2/").unwrap(),
            once.find("images/3/").unwrap(),
        );
        assert!(once.find("<p>a</p>").unwrap() > i2, "after Intro: {once}");
        assert!(
            i1 > once.find("soles</h2>").unwrap() && i1 < once.find("<p>b</p>").unwrap(),
            "after Grip & soles: {once}"
        );
        assert!(i3 > once.find("<p>b</p>").unwrap(), "unplaced at the end");
        let twice = place_figures(&once, &[("Intro".into(), f(4))]);
        assert!(!twice.contains("images/1/") && twice.contains("images/4/"));
        assert_eq!(twice.matches("<figure>").count(), 1);
    }
}
