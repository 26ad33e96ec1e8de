//! Publish, unpublish and sync: each a job the publisher runs (the job
//! framework: progress, SSE, cancel). Creating a publish job takes the
//! publication in the same commit, so two publishes of one content never
//! run at once (409 PUBLISH_RUNNING) and one over an edit made in
//! WordPress is refused up front (409 EXTERNAL_EDIT without `force`).
//! Publishing is not priced: the job reserves nothing.
//!
//! The publisher's steps ([`request_create`], [`record_post`], …) are the
//! only writers of a publication's results; each is refused once a newer
//! publish has taken the publication (PUBLISH_SUPERSEDED).

use super::integrations::integration_scope;
use crate::bus::{CommandBus, CommandContext, CommandError, CommandOutcome};
use crate::caller::Caller;
use crate::uow::{replayed, retry_hot};
use crate::writer::content::content_scope;
use igny8_domain::ErrorKind;
use igny8_domain::jobs::{Job, JobCommand};
use igny8_domain::publishing::{
    ExternalChange, PUBLISH_STATUSES, Publication, PublicationCommand, PublicationOrigin, WpMedia,
    WpPost, publication_id,
};
use serde_json::json;
use uuid::Uuid;

pub const MAX_TERMS: usize = 20;
pub const MAX_TERM_CHARS: usize = 200;
/// Publications one sync reads back at most.
pub const MAX_SYNC: usize = 1000;

/// A job a request started.
#[derive(Debug, Clone)]
pub struct StartedJob {
    pub job_id: Uuid,
    pub position: Option<i64>,
    pub replayed: bool,
}

/// What to publish and how.
#[derive(Debug, Clone, Default)]
pub struct PublishRequest {
    pub content_id: Uuid,
    pub status: String,
    /// RFC 3339; required for `future`.
    pub date_gmt: Option<String>,
    pub categories: Vec<String>,
    pub tags: Vec<String>,
    pub force: bool,
}

fn terms(names: &[String], what: &'static str) -> Result<Vec<String>, CommandError> {
    if names.len() > MAX_TERMS {
        return Err(CommandError::invalid(
            "INVALID_TERMS",
            format!("at most {MAX_TERMS} {what}"),
        ));
    }
    let mut out: Vec<String> = vec![];
    for n in names {
        let t = n.trim();
        if t.is_empty() || t.chars().count() > MAX_TERM_CHARS || t.chars().any(char::is_control) {
            return Err(CommandError::invalid(
                "INVALID_TERMS",
                format!(
                    "each of {what} must be 1 to {MAX_TERM_CHARS} characters, without control characters"
                ),
            ));
        }
        if !out.iter().any(|o| o.to_lowercase() == t.to_lowercase()) {
            out.push(t.to_string());
        }
    }
    Ok(out)
}

/// `date_gmt` as WordPress takes it (`YYYY-MM-DDTHH:MM:SS`, UTC).
fn wp_date(raw: &str) -> Result<String, CommandError> {
    chrono::DateTime::parse_from_rfc3339(raw.trim())
        .map(|d| {
            d.with_timezone(&chrono::Utc)
                .format("%Y-%m-%dT%H:%M:%S")
                .to_string()
        })
        .map_err(|_| {
            CommandError::invalid(
                "INVALID_DATE",
                "date_gmt must be an RFC 3339 date-time, e.g. 2027-01-31T09:00:00Z",
            )
        })
}

fn job_started(outcomes: Vec<CommandOutcome>) -> Result<StartedJob, CommandError> {
    let job = crate::writer::tasks::first(outcomes.clone(), "job")?;
    Ok(StartedJob {
        job_id: Uuid::parse_str(&job.aggregate_id).map_err(CommandError::internal)?,
        position: outcomes.iter().filter_map(|o| o.position).max(),
        replayed: outcomes.iter().any(|o| o.replayed),
    })
}

async fn running(bus: &CommandBus, p: &Publication) -> Result<Option<Uuid>, CommandError> {
    let Some(j) = p.publishing else {
        return Ok(None);
    };
    let (job, _) = bus.load::<Job>(&j.to_string()).await?;
    Ok((job.created && !job.state.finished()).then_some(j))
}

/// Create a job of `kind` that takes the publication (`force`: over an
/// external change) in one commit.
async fn publication_job(
    bus: &CommandBus,
    ctx: &CommandContext,
    origin: PublicationOrigin,
    kind: &str,
    input: serde_json::Value,
    force: bool,
) -> Result<StartedJob, CommandError> {
    let pid = publication_id(origin.integration_id, origin.content_id).to_string();
    let job_id = Uuid::now_v7();
    let jid = job_id.to_string();
    let outcomes = retry_hot(|| async {
        let mut uow = bus.unit(ctx);
        let p: Publication = uow.state(&pid).await?;
        if let Some(j) = running(bus, &p).await? {
            return Err(CommandError::refused(
                ErrorKind::Conflict,
                "PUBLISH_RUNNING",
                format!("job {j} is publishing this content to that WordPress now"),
            ));
        }
        uow.execute::<Job>(
            &jid,
            JobCommand::Create {
                account_id: origin.account_id,
                kind: kind.to_string(),
                input: input.clone(),
                reserved: 0,
                items: vec![],
            },
        )
        .await?;
        uow.execute::<Publication>(
            &pid,
            PublicationCommand::Begin {
                origin: origin.clone(),
                publish_id: job_id,
                force,
            },
        )
        .await?;
        uow.commit().await
    })
    .await?;
    job_started(outcomes)
}

/// Publish a content to a connection's WordPress: 202 with the job. 404 for
/// a connection or content the caller cannot see; 422 for content of
/// another site, a bad status, date or terms; 409 PUBLISH_RUNNING,
/// EXTERNAL_EDIT (without `force`).
pub async fn publish(
    bus: &CommandBus,
    caller: &Caller,
    ctx: &CommandContext,
    integration_id: Uuid,
    r: PublishRequest,
) -> Result<StartedJob, CommandError> {
    let i = integration_scope(bus, caller, integration_id).await?;
    if let Some(done) = replayed(bus, ctx).await? {
        return job_started(done).map(|j| StartedJob {
            replayed: true,
            ..j
        });
    }
    let c = content_scope(bus, caller, r.content_id).await?;
    caller.require_write()?;
    if i.credential.is_empty() {
        return Err(CommandError::refused(
            igny8_domain::ErrorKind::Conflict,
            "NO_APP_PASSWORD",
            "this connection has no Application Password (it was moved from the site's old fields without one): set wp_app_password first",
        ));
    }
    if c.site_id != i.site_id {
        return Err(CommandError::invalid(
            "VALIDATION_ERROR",
            "the content belongs to another site than this WordPress connection",
        ));
    }
    if !PUBLISH_STATUSES.contains(&r.status.as_str()) {
        return Err(CommandError::invalid(
            "INVALID_STATUS",
            "status must be draft, publish, future, pending or private",
        ));
    }
    let date = match (&r.date_gmt, r.status.as_str()) {
        (None, "future") => {
            return Err(CommandError::invalid(
                "INVALID_DATE",
                "date_gmt is required for status future",
            ));
        }
        (Some(d), "future") => {
            let d = wp_date(d)?;
            let when = chrono::NaiveDateTime::parse_from_str(&d, "%Y-%m-%dT%H:%M:%S")
                .map_err(CommandError::internal)?;
            if when.and_utc() <= chrono::Utc::now() {
                return Err(CommandError::invalid(
                    "INVALID_DATE",
                    "date_gmt of a future post must be in the future",
                ));
            }
            Some(d)
        }
        (Some(d), _) => Some(wp_date(d)?),
        (None, _) => None,
    };
    let categories = terms(&r.categories, "categories")?;
    let tags = terms(&r.tags, "tags")?;
    let origin = PublicationOrigin {
        account_id: i.account_id.unwrap_or_default(),
        site_id: i.site_id.unwrap_or_default(),
        integration_id,
        content_id: r.content_id,
    };
    let input = json!({"site_id": origin.site_id, "integration_id": integration_id, "content_id": r.content_id,
                       "status": r.status, "date_gmt": date, "categories": categories, "tags": tags, "force": r.force});
    publication_job(bus, ctx, origin, "publish_wordpress", input, r.force).await
}

/// Move a published post back to draft or to the trash (a job).
pub async fn unpublish(
    bus: &CommandBus,
    caller: &Caller,
    ctx: &CommandContext,
    integration_id: Uuid,
    content_id: Uuid,
    to: &str,
) -> Result<StartedJob, CommandError> {
    let i = integration_scope(bus, caller, integration_id).await?;
    if let Some(done) = replayed(bus, ctx).await? {
        return job_started(done).map(|j| StartedJob {
            replayed: true,
            ..j
        });
    }
    content_scope(bus, caller, content_id).await?;
    caller.require_write()?;
    if !["draft", "trash"].contains(&to) {
        return Err(CommandError::invalid(
            "INVALID_STATUS",
            "to must be draft or trash",
        ));
    }
    let (p, _) = bus
        .load::<Publication>(&publication_id(integration_id, content_id).to_string())
        .await?;
    if p.post.is_none() {
        return Err(CommandError::refused(
            ErrorKind::Conflict,
            "NOT_PUBLISHED",
            "this content has no post on that WordPress",
        ));
    }
    let origin = PublicationOrigin {
        account_id: i.account_id.unwrap_or_default(),
        site_id: i.site_id.unwrap_or_default(),
        integration_id,
        content_id,
    };
    let input = json!({"site_id": origin.site_id, "integration_id": integration_id, "content_id": content_id, "to": to});
    publication_job(bus, ctx, origin, "unpublish_wordpress", input, true).await
}

/// Read back every post published through a connection (a job): drift is
/// recorded on each publication. `publication_ids` come from the read model.
pub async fn sync(
    bus: &CommandBus,
    caller: &Caller,
    ctx: &CommandContext,
    integration_id: Uuid,
    publication_ids: Vec<Uuid>,
) -> Result<StartedJob, CommandError> {
    let i = integration_scope(bus, caller, integration_id).await?;
    if let Some(done) = replayed(bus, ctx).await? {
        return job_started(done).map(|j| StartedJob {
            replayed: true,
            ..j
        });
    }
    caller.require_write()?;
    let ids: Vec<Uuid> = publication_ids.into_iter().take(MAX_SYNC).collect();
    let (job_id, out) = crate::jobs::create(
        bus,
        i.account_id.unwrap_or_default(),
        "sync_wordpress",
        json!({"site_id": i.site_id, "integration_id": integration_id, "publication_ids": ids}),
        0,
        ctx,
    )
    .await?;
    Ok(StartedJob {
        job_id,
        position: out.iter().filter_map(|o| o.position).max(),
        replayed: false,
    })
}

// --- the publisher's steps ---------------------------------------------------

async fn step(
    bus: &CommandBus,
    ctx: &CommandContext,
    publication: Uuid,
    cmd: PublicationCommand,
) -> Result<CommandOutcome, CommandError> {
    bus.execute::<Publication>(&publication.to_string(), cmd, ctx)
        .await
}

/// The publication before a step.
pub async fn load(bus: &CommandBus, publication: Uuid) -> Result<Publication, CommandError> {
    Ok(bus.load::<Publication>(&publication.to_string()).await?.0)
}

/// The publish takes the publication (a new attempt of the same job: nothing).
pub async fn begin(
    bus: &CommandBus,
    ctx: &CommandContext,
    origin: PublicationOrigin,
    publish_id: Uuid,
    force: bool,
) -> Result<(), CommandError> {
    let id = publication_id(origin.integration_id, origin.content_id);
    step(
        bus,
        ctx,
        id,
        PublicationCommand::Begin {
            origin,
            publish_id,
            force,
        },
    )
    .await
    .map(|_| ())
}

/// Recorded before the create is sent.
pub async fn request_create(
    bus: &CommandBus,
    ctx: &CommandContext,
    publication: Uuid,
    publish_id: Uuid,
) -> Result<(), CommandError> {
    step(
        bus,
        ctx,
        publication,
        PublicationCommand::RequestCreate { publish_id },
    )
    .await
    .map(|_| ())
}

/// Recorded before an upload is sent.
pub async fn request_media(
    bus: &CommandBus,
    ctx: &CommandContext,
    publication: Uuid,
    publish_id: Uuid,
    sha256: &str,
) -> Result<(), CommandError> {
    step(
        bus,
        ctx,
        publication,
        PublicationCommand::RequestMedia {
            publish_id,
            sha256: sha256.into(),
        },
    )
    .await
    .map(|_| ())
}

pub async fn record_media(
    bus: &CommandBus,
    ctx: &CommandContext,
    publication: Uuid,
    publish_id: Uuid,
    sha256: &str,
    media: WpMedia,
    adopted: bool,
) -> Result<(), CommandError> {
    step(
        bus,
        ctx,
        publication,
        PublicationCommand::RecordMedia {
            publish_id,
            sha256: sha256.into(),
            media,
            adopted,
        },
    )
    .await
    .map(|_| ())
}

pub async fn record_post(
    bus: &CommandBus,
    ctx: &CommandContext,
    publication: Uuid,
    publish_id: Uuid,
    post: WpPost,
    action: &str,
    warnings: Vec<String>,
) -> Result<CommandOutcome, CommandError> {
    step(
        bus,
        ctx,
        publication,
        PublicationCommand::RecordPost {
            publish_id,
            post,
            action: action.into(),
            warnings,
        },
    )
    .await
}

pub async fn record_unpublished(
    bus: &CommandBus,
    ctx: &CommandContext,
    publication: Uuid,
    publish_id: Uuid,
    post: WpPost,
) -> Result<CommandOutcome, CommandError> {
    step(
        bus,
        ctx,
        publication,
        PublicationCommand::RecordUnpublished { publish_id, post },
    )
    .await
}

pub async fn fail(
    bus: &CommandBus,
    ctx: &CommandContext,
    publication: Uuid,
    publish_id: Uuid,
    error: &str,
) -> Result<(), CommandError> {
    step(
        bus,
        ctx,
        publication,
        PublicationCommand::Fail {
            publish_id,
            error: error.into(),
        },
    )
    .await
    .map(|_| ())
}

/// A request of the publish went unanswered (`request`: `post` or
/// `media:<sha256>`): its outcome is unknown until WordPress is asked.
pub async fn record_unknown(
    bus: &CommandBus,
    ctx: &CommandContext,
    publication: Uuid,
    publish_id: Uuid,
    request: &str,
    error: &str,
) -> Result<(), CommandError> {
    step(
        bus,
        ctx,
        publication,
        PublicationCommand::RecordUnknown {
            publish_id,
            request: request.into(),
            error: error.into(),
            at: chrono::Utc::now(),
        },
    )
    .await
    .map(|_| ())
}

/// A change made in WordPress (a sync or a webhook); nothing when it is
/// our own last write or already known. 409 NOT_PUBLISHED without a post.
pub async fn record_external(
    bus: &CommandBus,
    ctx: &CommandContext,
    publication: Uuid,
    change: ExternalChange,
) -> Result<bool, CommandError> {
    let out = step(
        bus,
        ctx,
        publication,
        PublicationCommand::RecordExternal(change),
    )
    .await?;
    Ok(!out.events.is_empty())
}
