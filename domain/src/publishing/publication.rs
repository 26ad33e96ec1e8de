//! The `publication` aggregate: one content on one WordPress. Its id is
//! [`publication_id`] of the connection and the content, so a content has at
//! most one post per WordPress and every publish of it finds that post.
//!
//! Exactly once. A publish (a job; its id is the publish id) takes the
//! publication ([`PublicationCommand::Begin`]). Before it sends a request
//! whose answer it might not get — creating the post, uploading an image —
//! it records the intent ([`PublicationEvent::PostCreateRequested`],
//! [`PublicationEvent::MediaUploadRequested`]). An attempt that finds such an
//! intent without its result (a timeout, a reset connection, a 5xx, a killed
//! worker) asks WordPress first whether it holds the post or the file, and
//! adopts what it finds. Results are recorded once; a superseded publish's
//! are refused.

use super::PublishingError;
use crate::{Aggregate, DomainEvent};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use uuid::Uuid;

/// The post statuses a publish may ask for.
pub const PUBLISH_STATUSES: &[&str] = &["draft", "publish", "future", "pending", "private"];

pub fn publication_id(integration_id: Uuid, content_id: Uuid) -> Uuid {
    Uuid::new_v5(&integration_id, content_id.as_bytes())
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PublicationOrigin {
    pub account_id: Uuid,
    pub site_id: Uuid,
    pub integration_id: Uuid,
    pub content_id: Uuid,
}

/// The post as WordPress holds it after our last write.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WpPost {
    pub post_id: u64,
    pub link: String,
    pub status: String,
    pub slug: String,
    /// WordPress's `modified_gmt` (`YYYY-MM-DDTHH:MM:SS`).
    pub modified_gmt: String,
    /// SHA-256 of the post's raw content as WordPress stored it.
    pub content_sha256: String,
    /// The content version it shows.
    pub version: u32,
}

/// An image uploaded to the media library.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WpMedia {
    pub media_id: u64,
    pub url: String,
}

/// Something WordPress did to our post without us (found by a sync or told
/// by the companion plugin's webhook).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExternalChange {
    /// `edited`, `trashed`, `deleted` or `restored`.
    pub kind: String,
    /// `sync` or `webhook`.
    pub source: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub modified_gmt: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_sha256: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Publication {
    pub created: bool,
    pub origin: Option<PublicationOrigin>,
    /// The publish that holds it now.
    pub publishing: Option<Uuid>,
    /// A create sent (by this publish) whose answer was not recorded.
    pub create_requested: Option<Uuid>,
    pub post: Option<WpPost>,
    /// Uploaded images by SHA-256.
    pub media: BTreeMap<String, WpMedia>,
    /// Uploads sent whose answer was not recorded.
    pub media_requested: BTreeSet<String>,
    /// What changed in WordPress since our last write (`None`: nothing we know of).
    pub external: Option<ExternalChange>,
    pub publishes: u32,
    /// When a request of the publish under way last went unanswered (a
    /// timeout, a cut connection, a 5xx to a create): until WordPress is
    /// asked, its outcome is unknown — never taken for a failure.
    #[serde(default)]
    pub unknown_since: Option<DateTime<Utc>>,
}

impl Publication {
    /// The external change a publish must be forced over.
    pub fn blocking_change(&self) -> Option<&ExternalChange> {
        self.external.as_ref().filter(|c| c.kind != "restored")
    }
    fn holds(&self, publish_id: Uuid) -> Result<(), PublishingError> {
        if self.publishing == Some(publish_id) {
            Ok(())
        } else {
            Err(PublishingError::Superseded)
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum PublicationCommand {
    /// A publish (or unpublish) takes the publication over.
    Begin {
        origin: PublicationOrigin,
        publish_id: Uuid,
        force: bool,
    },
    RequestCreate {
        publish_id: Uuid,
    },
    RequestMedia {
        publish_id: Uuid,
        sha256: String,
    },
    RecordMedia {
        publish_id: Uuid,
        sha256: String,
        media: WpMedia,
        adopted: bool,
    },
    RecordPost {
        publish_id: Uuid,
        post: WpPost,
        /// `created`, `updated` or `adopted`.
        action: String,
        warnings: Vec<String>,
    },
    /// The post moved to draft or to the trash by our request.
    RecordUnpublished {
        publish_id: Uuid,
        post: WpPost,
    },
    Fail {
        publish_id: Uuid,
        error: String,
    },
    /// A request of this publish went unanswered: it may have been done.
    RecordUnknown {
        publish_id: Uuid,
        /// `post`, or `media:<sha256>`.
        request: String,
        error: String,
        at: DateTime<Utc>,
    },
    RecordExternal(ExternalChange),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum PublicationEvent {
    PublishStarted {
        origin: PublicationOrigin,
        publish_id: Uuid,
        #[serde(default)]
        forced: bool,
    },
    PostCreateRequested {
        publish_id: Uuid,
    },
    MediaUploadRequested {
        publish_id: Uuid,
        sha256: String,
    },
    MediaUploaded {
        publish_id: Uuid,
        sha256: String,
        media: WpMedia,
        #[serde(default)]
        adopted: bool,
    },
    PostPublished {
        publish_id: Uuid,
        post: WpPost,
        action: String,
        #[serde(default)]
        warnings: Vec<String>,
    },
    PostUnpublished {
        publish_id: Uuid,
        post: WpPost,
    },
    PublishFailed {
        publish_id: Uuid,
        error: String,
    },
    PublishOutcomeUnknown {
        publish_id: Uuid,
        request: String,
        error: String,
        at: DateTime<Utc>,
    },
    ExternalChangeDetected {
        change: ExternalChange,
    },
}

impl DomainEvent for PublicationEvent {
    fn event_type(&self) -> &'static str {
        use PublicationEvent as E;
        match self {
            E::PublishStarted { .. } => "PublishStarted",
            E::PostCreateRequested { .. } => "PostCreateRequested",
            E::MediaUploadRequested { .. } => "MediaUploadRequested",
            E::MediaUploaded { .. } => "MediaUploaded",
            E::PostPublished { .. } => "PostPublished",
            E::PostUnpublished { .. } => "PostUnpublished",
            E::PublishFailed { .. } => "PublishFailed",
            E::PublishOutcomeUnknown { .. } => "PublishOutcomeUnknown",
            E::ExternalChangeDetected { .. } => "ExternalChangeDetected",
        }
    }
}

impl Aggregate for Publication {
    const TYPE: &'static str = "publication";
    type Command = PublicationCommand;
    type Event = PublicationEvent;
    type Error = PublishingError;

    fn decide(
        &self,
        command: PublicationCommand,
    ) -> Result<Vec<PublicationEvent>, PublishingError> {
        use PublicationCommand as C;
        use PublicationEvent as E;
        match command {
            C::Begin {
                origin,
                publish_id,
                force,
            } => {
                if self.publishing == Some(publish_id) {
                    return Ok(vec![]); // a new attempt of the same publish
                }
                if let Some(c) = self.blocking_change()
                    && !force
                {
                    return Err(PublishingError::ExternalEdit(c.kind.clone()));
                }
                Ok(vec![E::PublishStarted {
                    origin,
                    publish_id,
                    forced: force && self.blocking_change().is_some(),
                }])
            }
            C::RequestCreate { publish_id } => {
                self.holds(publish_id)?;
                if self.create_requested == Some(publish_id) {
                    return Ok(vec![]);
                }
                Ok(vec![E::PostCreateRequested { publish_id }])
            }
            C::RequestMedia { publish_id, sha256 } => {
                self.holds(publish_id)?;
                if self.media_requested.contains(&sha256) || self.media.contains_key(&sha256) {
                    return Ok(vec![]);
                }
                Ok(vec![E::MediaUploadRequested { publish_id, sha256 }])
            }
            C::RecordMedia {
                publish_id,
                sha256,
                media,
                adopted,
            } => {
                self.holds(publish_id)?;
                if self.media.get(&sha256) == Some(&media) {
                    return Ok(vec![]);
                }
                Ok(vec![E::MediaUploaded {
                    publish_id,
                    sha256,
                    media,
                    adopted,
                }])
            }
            C::RecordPost {
                publish_id,
                post,
                action,
                warnings,
            } => {
                self.holds(publish_id)?;
                Ok(vec![E::PostPublished {
                    publish_id,
                    post,
                    action,
                    warnings,
                }])
            }
            C::RecordUnpublished { publish_id, post } => {
                self.holds(publish_id)?;
                Ok(vec![E::PostUnpublished { publish_id, post }])
            }
            C::Fail { publish_id, error } => {
                if self.publishing != Some(publish_id) {
                    return Ok(vec![]);
                }
                Ok(vec![E::PublishFailed { publish_id, error }])
            }
            C::RecordUnknown {
                publish_id,
                request,
                error,
                at,
            } => {
                self.holds(publish_id)?;
                Ok(vec![E::PublishOutcomeUnknown {
                    publish_id,
                    request,
                    error,
                    at,
                }])
            }
            C::RecordExternal(change) => {
                let Some(post) = &self.post else {
                    return Err(PublishingError::NotPublished);
                };
                let ours = change.kind == "edited"
                    && change.content_sha256.as_deref() == Some(post.content_sha256.as_str())
                    && change.modified_gmt.as_deref() == Some(post.modified_gmt.as_str());
                if ours || self.external.as_ref() == Some(&change) {
                    return Ok(vec![]);
                }
                Ok(vec![E::ExternalChangeDetected { change }])
            }
        }
    }

    fn apply(&mut self, event: &PublicationEvent) {
        use PublicationEvent as E;
        match event {
            E::PublishStarted {
                origin, publish_id, ..
            } => {
                self.created = true;
                self.origin = Some(origin.clone());
                self.publishing = Some(*publish_id);
                self.publishes += 1;
            }
            E::PostCreateRequested { publish_id } => self.create_requested = Some(*publish_id),
            E::MediaUploadRequested { sha256, .. } => {
                self.media_requested.insert(sha256.clone());
            }
            E::MediaUploaded { sha256, media, .. } => {
                self.media_requested.remove(sha256);
                self.media.insert(sha256.clone(), media.clone());
            }
            E::PostPublished { post, .. } => {
                self.post = Some(post.clone());
                self.create_requested = None;
                self.publishing = None;
                self.external = None;
                self.unknown_since = None;
            }
            E::PublishOutcomeUnknown { at, .. } => self.unknown_since = Some(*at),
            E::PostUnpublished { post, .. } => {
                self.post = Some(post.clone());
                self.publishing = None;
                self.external = None;
            }
            // A create whose answer we never saw stays recorded: the next
            // publish looks for that post before it creates one.
            E::PublishFailed { .. } => self.publishing = None,
            E::ExternalChangeDetected { change } => {
                if change.kind == "deleted" {
                    // Nothing left to update: a forced publish creates a new post.
                    self.post = None;
                    self.media.clear();
                }
                self.external = Some(change.clone());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origin() -> PublicationOrigin {
        PublicationOrigin {
            account_id: Uuid::nil(),
            site_id: Uuid::nil(),
            integration_id: Uuid::nil(),
            content_id: Uuid::nil(),
        }
    }

    fn post(sha: &str) -> WpPost {
        WpPost {
            post_id: 7,
            link: "http://wp/p".into(),
            status: "publish".into(),
            slug: "p".into(),
            modified_gmt: "2026-01-01T00:00:00".into(),
            content_sha256: sha.into(),
            version: 1,
        }
    }

    fn run(p: &mut Publication, c: PublicationCommand) -> Result<usize, PublishingError> {
        let events = p.decide(c)?;
        events.iter().for_each(|e| p.apply(e));
        Ok(events.len())
    }

    #[test]
    fn a_create_without_an_answer_outlives_its_publish() {
        let (a, b) = (Uuid::from_u128(1), Uuid::from_u128(2));
        let mut p = Publication::default();
        run(
            &mut p,
            PublicationCommand::Begin {
                origin: origin(),
                publish_id: a,
                force: false,
            },
        )
        .unwrap();
        run(&mut p, PublicationCommand::RequestCreate { publish_id: a }).unwrap();
        run(
            &mut p,
            PublicationCommand::Fail {
                publish_id: a,
                error: "timeout".into(),
            },
        )
        .unwrap();
        assert_eq!(
            p.create_requested,
            Some(a),
            "the next publish must look before it creates"
        );
        run(
            &mut p,
            PublicationCommand::Begin {
                origin: origin(),
                publish_id: b,
                force: false,
            },
        )
        .unwrap();
        // The old publish can record nothing any more.
        let e = run(
            &mut p,
            PublicationCommand::RecordPost {
                publish_id: a,
                post: post("x"),
                action: "created".into(),
                warnings: vec![],
            },
        );
        assert_eq!(e.unwrap_err(), PublishingError::Superseded);
        run(
            &mut p,
            PublicationCommand::RecordPost {
                publish_id: b,
                post: post("x"),
                action: "adopted".into(),
                warnings: vec![],
            },
        )
        .unwrap();
        assert_eq!(p.create_requested, None);
        assert_eq!(p.publishing, None);
    }

    #[test]
    fn an_external_edit_needs_force_and_our_own_write_is_not_one() {
        let a = Uuid::from_u128(1);
        let mut p = Publication::default();
        run(
            &mut p,
            PublicationCommand::Begin {
                origin: origin(),
                publish_id: a,
                force: false,
            },
        )
        .unwrap();
        run(
            &mut p,
            PublicationCommand::RecordPost {
                publish_id: a,
                post: post("ours"),
                action: "created".into(),
                warnings: vec![],
            },
        )
        .unwrap();
        let ours = ExternalChange {
            kind: "edited".into(),
            source: "sync".into(),
            status: Some("publish".into()),
            modified_gmt: Some("2026-01-01T00:00:00".into()),
            content_sha256: Some("ours".into()),
        };
        assert_eq!(
            run(&mut p, PublicationCommand::RecordExternal(ours.clone())).unwrap(),
            0
        );
        let theirs = ExternalChange {
            content_sha256: Some("theirs".into()),
            modified_gmt: Some("2026-01-02T00:00:00".into()),
            ..ours
        };
        assert_eq!(
            run(&mut p, PublicationCommand::RecordExternal(theirs.clone())).unwrap(),
            1
        );
        assert_eq!(
            run(&mut p, PublicationCommand::RecordExternal(theirs)).unwrap(),
            0,
            "told twice, recorded once"
        );
        let b = Uuid::from_u128(2);
        let e = run(
            &mut p,
            PublicationCommand::Begin {
                origin: origin(),
                publish_id: b,
                force: false,
            },
        )
        .unwrap_err();
        assert_eq!(e.code_str(), "EXTERNAL_EDIT");
        run(
            &mut p,
            PublicationCommand::Begin {
                origin: origin(),
                publish_id: b,
                force: true,
            },
        )
        .unwrap();
    }

    #[test]
    fn an_upload_is_requested_once_and_recorded_once() {
        let a = Uuid::from_u128(1);
        let mut p = Publication::default();
        run(
            &mut p,
            PublicationCommand::Begin {
                origin: origin(),
                publish_id: a,
                force: false,
            },
        )
        .unwrap();
        assert_eq!(
            run(
                &mut p,
                PublicationCommand::RequestMedia {
                    publish_id: a,
                    sha256: "s".into()
                }
            )
            .unwrap(),
            1
        );
        assert_eq!(
            run(
                &mut p,
                PublicationCommand::RequestMedia {
                    publish_id: a,
                    sha256: "s".into()
                }
            )
            .unwrap(),
            0
        );
        let m = WpMedia {
            media_id: 3,
            url: "u".into(),
        };
        run(
            &mut p,
            PublicationCommand::RecordMedia {
                publish_id: a,
                sha256: "s".into(),
                media: m.clone(),
                adopted: false,
            },
        )
        .unwrap();
        assert!(p.media_requested.is_empty());
        assert_eq!(
            run(
                &mut p,
                PublicationCommand::RecordMedia {
                    publish_id: a,
                    sha256: "s".into(),
                    media: m,
                    adopted: true
                }
            )
            .unwrap(),
            0
        );
    }

    trait CodeStr {
        fn code_str(&self) -> &'static str;
    }
    impl CodeStr for PublishingError {
        fn code_str(&self) -> &'static str {
            crate::DomainError::code(self)
        }
    }
}
