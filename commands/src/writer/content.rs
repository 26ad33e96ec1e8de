//! Content use cases: a person's edit (a new version, its HTML sanitised
//! and counted again), a revert (a new version equal to an old one), the
//! review status, a regeneration (a content job on the content's task),
//! and the versions read back from the content's own events.

use super::html;
use super::tasks::{ContentJob, auto_generate_content, first};
use crate::bus::{CommandBus, CommandContext, CommandError, CommandOutcome};
use crate::caller::Caller;
use chrono::{DateTime, Utc};
use igny8_domain::writer::{
    Content, ContentBody, ContentCommand, ContentEvent, ContentStatus, VersionAuthor,
};
use uuid::Uuid;

/// The content the caller may see (of its account and a visible site), else 404.
pub async fn content_scope(
    bus: &CommandBus,
    caller: &Caller,
    id: Uuid,
) -> Result<Content, CommandError> {
    let account = caller.account()?;
    let (c, _) = bus.load::<Content>(&id.to_string()).await?;
    match (c.created, c.account_id, c.site_id) {
        (true, Some(a), Some(site)) if a == account && caller.can_see_site(site) => Ok(c),
        _ => Err(CommandError::not_found("content")),
    }
}

/// One version as stored.
#[derive(Debug, Clone)]
pub struct VersionView {
    pub version: u32,
    pub body: ContentBody,
    pub author: VersionAuthor,
    pub created_at: DateTime<Utc>,
    pub position: i64,
}

/// Every version of a content, oldest first (read from its events).
pub async fn versions(bus: &CommandBus, id: Uuid) -> Result<Vec<VersionView>, CommandError> {
    let mut out = vec![];
    let mut from = 1;
    loop {
        let events = bus
            .feed()
            .aggregate_events("content", &id.to_string(), from, 500)
            .await
            .map_err(CommandError::db)?;
        let Some(last) = events.last() else { break };
        from = last.sequence + 1;
        for ev in &events {
            if let Ok(ContentEvent::ContentVersionAdded {
                version,
                body,
                author,
            }) = ev.decode::<ContentEvent>()
            {
                out.push(VersionView {
                    version,
                    body,
                    author,
                    created_at: ev.recorded_at,
                    position: ev.global_position,
                });
            }
        }
        if events.len() < 500 {
            break;
        }
    }
    Ok(out)
}

fn pick(all: &[VersionView], n: u32) -> Result<VersionView, CommandError> {
    all.iter().find(|v| v.version == n).cloned().ok_or_else(|| {
        CommandError::refused(
            igny8_domain::ErrorKind::NotFound,
            "VERSION_NOT_FOUND",
            format!("version {n} does not exist"),
        )
    })
}

/// Version `n` (404 VERSION_NOT_FOUND when it does not exist).
pub async fn version(bus: &CommandBus, id: Uuid, n: u32) -> Result<VersionView, CommandError> {
    pick(&versions(bus, id).await?, n)
}

/// Versions `a` and `b`, from one read of the content's events.
pub async fn version_pair(
    bus: &CommandBus,
    id: Uuid,
    a: u32,
    b: u32,
) -> Result<(VersionView, VersionView), CommandError> {
    let all = versions(bus, id).await?;
    Ok((pick(&all, a)?, pick(&all, b)?))
}

/// A person's changes (`None`: as in the current version).
#[derive(Debug, Clone, Default)]
pub struct ContentEdit {
    pub title: Option<String>,
    pub html_content: Option<String>,
    pub meta_title: Option<String>,
    pub meta_description: Option<String>,
    pub secondary_keywords: Option<Vec<String>>,
}

/// A new version: its number, whether the HTML had to be sanitised, the commit.
#[derive(Debug, Clone)]
pub struct ContentSaved {
    pub id: Uuid,
    pub version: u32,
    pub word_count: u32,
    /// The HTML sent was changed by sanitising (tags or attributes dropped).
    pub sanitized: bool,
    pub outcome: CommandOutcome,
}

fn saved(
    id: Uuid,
    version: u32,
    word_count: u32,
    sanitized: bool,
    outcome: CommandOutcome,
) -> ContentSaved {
    ContentSaved {
        id,
        version,
        word_count,
        sanitized,
        outcome,
    }
}

/// A person edits the content: a new version attributed to them (422
/// VALIDATION_ERROR for an edit that changes nothing; the content's rules).
pub async fn edit_content(
    bus: &CommandBus,
    caller: &Caller,
    ctx: &CommandContext,
    id: Uuid,
    edit: ContentEdit,
) -> Result<ContentSaved, CommandError> {
    let content = content_scope(bus, caller, id).await?;
    caller.require_write()?;
    let edit_is_empty = edit.title.is_none()
        && edit.html_content.is_none()
        && edit.meta_title.is_none()
        && edit.meta_description.is_none()
        && edit.secondary_keywords.is_none();
    if edit_is_empty {
        return Err(CommandError::invalid(
            "VALIDATION_ERROR",
            "nothing to change",
        ));
    }
    let current = version(bus, id, content.versions).await?.body;
    let mut body = current.clone();
    let mut sanitized = false;
    if let Some(h) = edit.html_content {
        let clean = html::sanitize(&h);
        sanitized = clean != h;
        body.word_count = html::word_count(&clean);
        body.html = clean;
    }
    if let Some(t) = edit.title {
        body.title = t.trim().to_string();
    }
    if let Some(t) = edit.meta_title {
        body.meta_title = t.trim().to_string();
    }
    if let Some(t) = edit.meta_description {
        body.meta_description = t.trim().to_string();
    }
    if let Some(k) = edit.secondary_keywords {
        body.secondary_keywords = k;
    }
    let words = body.word_count;
    let outcome = bus
        .execute::<Content>(
            &id.to_string(),
            ContentCommand::Edit {
                body,
                user_id: caller.user_id,
            },
            ctx,
        )
        .await?;
    Ok(saved(id, content.versions + 1, words, sanitized, outcome))
}

/// A new version equal to version `to` (404 VERSION_NOT_FOUND).
pub async fn revert(
    bus: &CommandBus,
    caller: &Caller,
    ctx: &CommandContext,
    id: Uuid,
    to: u32,
) -> Result<ContentSaved, CommandError> {
    let content = content_scope(bus, caller, id).await?;
    caller.require_write()?;
    let old = version(bus, id, to).await?.body;
    let words = old.word_count;
    let outcome = bus
        .execute::<Content>(
            &id.to_string(),
            ContentCommand::Revert {
                to,
                body: old,
                user_id: caller.user_id,
            },
            ctx,
        )
        .await?;
    Ok(saved(id, content.versions + 1, words, false, outcome))
}

/// Set the review status (draft, review, approved).
pub async fn set_status(
    bus: &CommandBus,
    caller: &Caller,
    ctx: &CommandContext,
    id: Uuid,
    status: ContentStatus,
) -> Result<CommandOutcome, CommandError> {
    content_scope(bus, caller, id).await?;
    caller.require_write()?;
    let outs = bus
        .execute::<Content>(&id.to_string(), ContentCommand::SetStatus { status }, ctx)
        .await?;
    first(vec![outs], "content")
}

/// A new AI version of the content: a content job on its task (409
/// GENERATION_RUNNING while one runs; the previous versions stay).
pub async fn regenerate(
    bus: &CommandBus,
    caller: &Caller,
    ctx: &CommandContext,
    id: Uuid,
) -> Result<ContentJob, CommandError> {
    let content = content_scope(bus, caller, id).await?;
    let task = content
        .task_id
        .ok_or_else(|| CommandError::not_found("content"))?;
    // The task must still exist to be written again.
    super::task_scope(bus, caller, task).await.map_err(|_| {
        CommandError::refused(
            igny8_domain::ErrorKind::Conflict,
            "TASK_DELETED",
            "the content's task was deleted; create a task to write it again",
        )
    })?;
    auto_generate_content(bus, caller, ctx, vec![task], true).await
}

/// One line of a diff.
#[derive(Debug, Clone, PartialEq)]
pub struct DiffLine {
    /// `equal`, `insert` or `delete`.
    pub tag: &'static str,
    pub text: String,
}

/// A readable diff of two versions' text (one line per block), and a
/// unified diff of the same lines.
#[derive(Debug, Clone)]
pub struct VersionDiff {
    pub lines: Vec<DiffLine>,
    pub unified: String,
    pub added: usize,
    pub removed: usize,
}

/// The diff from `old` to `new` (titles, meta fields and text).
pub fn diff(old: &VersionView, new: &VersionView) -> VersionDiff {
    let text = |v: &VersionView| {
        let mut l = vec![
            format!("title: {}", v.body.title),
            format!("meta_title: {}", v.body.meta_title),
            format!("meta_description: {}", v.body.meta_description),
        ];
        l.extend(html::lines(&v.body.html));
        l
    };
    let (a, b) = (text(old).join("\n") + "\n", text(new).join("\n") + "\n");
    let d = similar::TextDiff::from_lines(&a, &b);
    let mut lines = vec![];
    let (mut added, mut removed) = (0, 0);
    for change in d.iter_all_changes() {
        let tag = match change.tag() {
            similar::ChangeTag::Equal => "equal",
            similar::ChangeTag::Insert => {
                added += 1;
                "insert"
            }
            similar::ChangeTag::Delete => {
                removed += 1;
                "delete"
            }
        };
        lines.push(DiffLine {
            tag,
            text: change.value().trim_end_matches('\n').to_string(),
        });
    }
    let unified = d
        .unified_diff()
        .context_radius(2)
        .header(
            &format!("version {}", old.version),
            &format!("version {}", new.version),
        )
        .to_string();
    VersionDiff {
        lines,
        unified,
        added,
        removed,
    }
}
