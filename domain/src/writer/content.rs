//! The `content` aggregate: a task's article and every version of it.
//!
//! One content per task (its id is UUIDv5 of the task id), created by the
//! first generation; regenerations, human edits and reverts add versions
//! (1, 2, …), and no version is ever changed or removed. Each version says
//! who made it: a user, or an AI job (provider, model, prompt type and
//! version, tokens, cost). A job adds at most one version: a retried or
//! concurrent attempt is refused, so an article is never stored twice.
//!
//! The HTML of a version is sanitised before it gets here (the
//! application layer; see `igny8_commands::writer::html`).

use crate::planner::{MAX_TITLE_CHARS, valid_line};
use crate::{Aggregate, DomainError, DomainEvent, ErrorKind};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use uuid::Uuid;

pub const MAX_META_TITLE_CHARS: usize = 60;
pub const MAX_META_DESCRIPTION_CHARS: usize = 160;
/// Largest article HTML (characters).
pub const MAX_HTML_CHARS: usize = 1_000_000;
pub const MAX_LINKS: usize = 20;

/// The content id of a task.
pub fn content_id(task_id: Uuid) -> Uuid {
    Uuid::new_v5(&task_id, b"content")
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum ContentStatus {
    #[default]
    Draft,
    Review,
    Approved,
}

impl ContentStatus {
    pub const ALL: [ContentStatus; 3] = [
        ContentStatus::Draft,
        ContentStatus::Review,
        ContentStatus::Approved,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            ContentStatus::Draft => "draft",
            ContentStatus::Review => "review",
            ContentStatus::Approved => "approved",
        }
    }
    pub fn parse(s: &str) -> Option<ContentStatus> {
        ContentStatus::ALL.into_iter().find(|t| t.as_str() == s)
    }
}

/// A link to another content of the site, placed in the text.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InternalLink {
    pub content_id: Uuid,
    /// The other content's primary keyword, found in this text.
    pub keyword: String,
}

/// Who made a version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum VersionAuthor {
    Ai {
        job_id: Uuid,
        provider: String,
        model: String,
        prompt_type: String,
        /// The account's template version (0: the default template).
        prompt_version: u32,
        /// The strategy whose template override was used, if any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        strategy_id: Option<Uuid>,
        tokens: u64,
        cost_usd_micros: i64,
        /// Milli-credits charged for it.
        credits_milli: i64,
    },
    User {
        user_id: Option<Uuid>,
        /// A revert: the version it copies.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reverted_from: Option<u32>,
    },
    /// An image job placed the article's images (`<figure>`s at their
    /// placements, the featured image as `featured_image_id`).
    Images { job_id: Uuid, image_ids: Vec<Uuid> },
}

/// The text of a version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContentBody {
    pub title: String,
    /// Sanitised HTML.
    pub html: String,
    pub meta_title: String,
    pub meta_description: String,
    pub word_count: u32,
    pub primary_keyword: String,
    pub secondary_keywords: Vec<String>,
    #[serde(default)]
    pub internal_links: Vec<InternalLink>,
    /// The featured image (an image of the content's slot 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub featured_image_id: Option<Uuid>,
}

impl ContentBody {
    pub fn check(&self) -> Result<(), ContentError> {
        if !valid_line(&self.title, MAX_TITLE_CHARS) {
            return Err(ContentError::Invalid(
                "INVALID_TITLE",
                "title must be 1 to 300 characters, without control characters",
            ));
        }
        if self.meta_title.chars().count() > MAX_META_TITLE_CHARS
            || self.meta_title.chars().any(char::is_control)
        {
            return Err(ContentError::Invalid(
                "INVALID_META_TITLE",
                "meta_title must be at most 60 characters, without control characters",
            ));
        }
        if self.meta_description.chars().count() > MAX_META_DESCRIPTION_CHARS
            || self.meta_description.chars().any(char::is_control)
        {
            return Err(ContentError::Invalid(
                "INVALID_META_DESCRIPTION",
                "meta_description must be at most 160 characters, without control characters",
            ));
        }
        if self.html.trim().is_empty() || self.html.chars().count() > MAX_HTML_CHARS {
            return Err(ContentError::Invalid(
                "INVALID_HTML",
                "html_content must be 1 to 1,000,000 characters",
            ));
        }
        if self.internal_links.len() > MAX_LINKS {
            return Err(ContentError::Invalid(
                "VALIDATION_ERROR",
                "at most 20 internal links",
            ));
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Content {
    pub created: bool,
    pub account_id: Option<Uuid>,
    pub site_id: Option<Uuid>,
    pub sector_id: Option<Uuid>,
    pub task_id: Option<Uuid>,
    /// The number of versions (the current one is this).
    pub versions: u32,
    pub status: ContentStatus,
    /// Jobs that added a version.
    pub jobs: BTreeSet<Uuid>,
}

/// Where a new content belongs (from its task).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContentOrigin {
    pub account_id: Uuid,
    pub site_id: Uuid,
    pub sector_id: Uuid,
    pub task_id: Uuid,
    pub idea_id: Option<Uuid>,
    pub cluster_id: Option<Uuid>,
}

// A command lives for one decide; boxing its body would only move the bytes.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum ContentCommand {
    /// An AI job's article: the first version (the content is created), or a new one.
    AddGenerated {
        origin: ContentOrigin,
        body: ContentBody,
        author: VersionAuthor,
    },
    /// A person's edit: a new version.
    Edit {
        body: ContentBody,
        user_id: Option<Uuid>,
    },
    /// A new version equal to version `to` (whose body the caller read).
    Revert {
        to: u32,
        body: ContentBody,
        user_id: Option<Uuid>,
    },
    SetStatus {
        status: ContentStatus,
    },
    /// An image job's placement of the images: a new version (once per job).
    PlaceImages {
        job_id: Uuid,
        image_ids: Vec<Uuid>,
        body: ContentBody,
    },
}

// Events are values read once per apply; boxing the version would only move the bytes.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ContentEvent {
    ContentCreated {
        origin: ContentOrigin,
    },
    ContentVersionAdded {
        version: u32,
        body: ContentBody,
        author: VersionAuthor,
    },
    ContentStatusChanged {
        from: ContentStatus,
        status: ContentStatus,
    },
}

impl DomainEvent for ContentEvent {
    fn event_type(&self) -> &'static str {
        match self {
            ContentEvent::ContentCreated { .. } => "ContentCreated",
            ContentEvent::ContentVersionAdded { .. } => "ContentVersionAdded",
            ContentEvent::ContentStatusChanged { .. } => "ContentStatusChanged",
        }
    }
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ContentError {
    #[error("content not found")]
    NotFound,
    #[error("version {0} does not exist")]
    VersionNotFound(u32),
    #[error("job {0} has already stored its version")]
    AlreadyGenerated(Uuid),
    #[error("{1}")]
    Invalid(&'static str, &'static str),
    #[error("a generated version must name its job")]
    NotGenerated,
}

impl DomainError for ContentError {
    fn code(&self) -> &'static str {
        match self {
            ContentError::NotFound => "NOT_FOUND",
            ContentError::VersionNotFound(_) => "VERSION_NOT_FOUND",
            ContentError::AlreadyGenerated(_) => "ALREADY_GENERATED",
            ContentError::Invalid(code, _) => code,
            ContentError::NotGenerated => "VALIDATION_ERROR",
        }
    }
    fn kind(&self) -> ErrorKind {
        match self {
            ContentError::NotFound | ContentError::VersionNotFound(_) => ErrorKind::NotFound,
            ContentError::AlreadyGenerated(_) => ErrorKind::Conflict,
            _ => ErrorKind::Validation,
        }
    }
}

impl Content {
    fn version(&self, body: ContentBody, author: VersionAuthor) -> ContentEvent {
        ContentEvent::ContentVersionAdded {
            version: self.versions + 1,
            body,
            author,
        }
    }
}

impl Aggregate for Content {
    const TYPE: &'static str = "content";
    type Command = ContentCommand;
    type Event = ContentEvent;
    type Error = ContentError;

    fn decide(&self, command: ContentCommand) -> Result<Vec<ContentEvent>, ContentError> {
        match command {
            ContentCommand::AddGenerated {
                origin,
                body,
                author,
            } => {
                let VersionAuthor::Ai { job_id, .. } = &author else {
                    return Err(ContentError::NotGenerated);
                };
                if self.jobs.contains(job_id) {
                    return Err(ContentError::AlreadyGenerated(*job_id));
                }
                body.check()?;
                let mut events = vec![];
                if !self.created {
                    events.push(ContentEvent::ContentCreated { origin });
                }
                events.push(self.version(body, author));
                Ok(events)
            }
            ContentCommand::Edit { body, user_id } => {
                if !self.created {
                    return Err(ContentError::NotFound);
                }
                body.check()?;
                Ok(vec![self.version(
                    body,
                    VersionAuthor::User {
                        user_id,
                        reverted_from: None,
                    },
                )])
            }
            ContentCommand::Revert { to, body, user_id } => {
                if !self.created {
                    return Err(ContentError::NotFound);
                }
                if to == 0 || to > self.versions {
                    return Err(ContentError::VersionNotFound(to));
                }
                Ok(vec![self.version(
                    body,
                    VersionAuthor::User {
                        user_id,
                        reverted_from: Some(to),
                    },
                )])
            }
            ContentCommand::PlaceImages {
                job_id,
                image_ids,
                body,
            } => {
                if !self.created {
                    return Err(ContentError::NotFound);
                }
                if self.jobs.contains(&job_id) {
                    return Err(ContentError::AlreadyGenerated(job_id));
                }
                body.check()?;
                Ok(vec![self.version(
                    body,
                    VersionAuthor::Images { job_id, image_ids },
                )])
            }
            ContentCommand::SetStatus { status } => {
                if !self.created {
                    return Err(ContentError::NotFound);
                }
                if status == self.status {
                    return Ok(vec![]);
                }
                Ok(vec![ContentEvent::ContentStatusChanged {
                    from: self.status,
                    status,
                }])
            }
        }
    }

    fn apply(&mut self, event: &ContentEvent) {
        match event {
            ContentEvent::ContentCreated { origin } => {
                self.created = true;
                self.account_id = Some(origin.account_id);
                self.site_id = Some(origin.site_id);
                self.sector_id = Some(origin.sector_id);
                self.task_id = Some(origin.task_id);
            }
            ContentEvent::ContentVersionAdded {
                version, author, ..
            } => {
                self.versions = *version;
                match author {
                    VersionAuthor::Ai { job_id, .. } | VersionAuthor::Images { job_id, .. } => {
                        self.jobs.insert(*job_id);
                    }
                    VersionAuthor::User { .. } => {}
                }
            }
            ContentEvent::ContentStatusChanged { status, .. } => self.status = *status,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::given_when;

    fn body() -> ContentBody {
        ContentBody {
            title: "Trail running shoes: a guide".into(),
            html: "<p>trail running shoes</p>".into(),
            meta_title: "Trail running shoes".into(),
            meta_description: "All about trail running shoes.".into(),
            word_count: 3,
            primary_keyword: "trail running shoes".into(),
            secondary_keywords: vec![],
            internal_links: vec![],
            featured_image_id: None,
        }
    }

    fn ai(job: u128) -> VersionAuthor {
        VersionAuthor::Ai {
            job_id: Uuid::from_u128(job),
            provider: "offline".into(),
            model: "offline".into(),
            prompt_type: "content".into(),
            prompt_version: 1,
            strategy_id: None,
            tokens: 0,
            cost_usd_micros: 0,
            credits_milli: 1000,
        }
    }

    fn origin() -> ContentOrigin {
        ContentOrigin {
            account_id: Uuid::nil(),
            site_id: Uuid::nil(),
            sector_id: Uuid::nil(),
            task_id: Uuid::nil(),
            idea_id: None,
            cluster_id: None,
        }
    }

    #[test]
    fn versions_accumulate_a_job_adds_one_and_reverts_name_their_source() {
        let gen_ = |job| ContentCommand::AddGenerated {
            origin: origin(),
            body: body(),
            author: ai(job),
        };
        let mut h = given_when::<Content>(&[], gen_(1)).unwrap();
        assert_eq!(h.len(), 2, "created and version 1");
        assert_eq!(
            given_when::<Content>(&h, gen_(1)).unwrap_err(),
            ContentError::AlreadyGenerated(Uuid::from_u128(1))
        );
        h.extend(given_when::<Content>(&h, gen_(2)).unwrap());
        h.extend(
            given_when::<Content>(
                &h,
                ContentCommand::Edit {
                    body: body(),
                    user_id: None,
                },
            )
            .unwrap(),
        );
        assert_eq!(
            given_when::<Content>(
                &h,
                ContentCommand::Revert {
                    to: 4,
                    body: body(),
                    user_id: None
                }
            )
            .unwrap_err(),
            ContentError::VersionNotFound(4)
        );
        let e = given_when::<Content>(
            &h,
            ContentCommand::Revert {
                to: 1,
                body: body(),
                user_id: None,
            },
        )
        .unwrap();
        assert!(matches!(
            &e[0],
            ContentEvent::ContentVersionAdded {
                version: 4,
                author: VersionAuthor::User {
                    reverted_from: Some(1),
                    ..
                },
                ..
            }
        ));
        let long = ContentBody {
            meta_title: "x".repeat(61),
            ..body()
        };
        assert_eq!(
            given_when::<Content>(
                &h,
                ContentCommand::Edit {
                    body: long,
                    user_id: None
                }
            )
            .unwrap_err()
            .code(),
            "INVALID_META_TITLE"
        );
    }
}
