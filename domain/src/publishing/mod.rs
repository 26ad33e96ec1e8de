//! Publishing context: a site's WordPress connection and what IGNY8 put on
//! that WordPress.
//!
//! - [`wordpress`]: the connection (`wp_integration`, one per site): URL,
//!   user, Application Password and webhook secret — both sealed by the
//!   application layer before they get here — and the last connection test.
//! - [`publication`]: one content on one WordPress (`publication`, id
//!   [`publication_id`]): the post and the media WordPress holds for it, the
//!   publish under way, and what changed there without us. Every request
//!   whose outcome we may not learn (a create, an upload) is recorded
//!   *before* it is sent, so a retry knows to look for what it may have
//!   made before making it again: never a second post or attachment.

mod publication;
mod wordpress;

pub use publication::{
    ExternalChange, PUBLISH_STATUSES, Publication, PublicationCommand, PublicationEvent,
    PublicationOrigin, WpMedia, WpPost, publication_id,
};
pub use wordpress::{
    ConnectionTest, MAX_CONCURRENT_LIMIT, WpIntegration, WpIntegrationCommand, WpIntegrationEvent,
    integration_id,
};

use crate::{DomainError, ErrorKind};

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PublishingError {
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("this site has a WordPress connection already (change it with PATCH)")]
    Exists,
    #[error("{1}")]
    Invalid(&'static str, &'static str),
    #[error("another publish of this content is under way")]
    Running,
    #[error(
        "the post was changed in WordPress after our last write ({0}); publish with force: true to overwrite it"
    )]
    ExternalEdit(String),
    #[error("a newer publish has taken this content over")]
    Superseded,
    #[error("this content has no post on that WordPress")]
    NotPublished,
}

impl DomainError for PublishingError {
    fn code(&self) -> &'static str {
        match self {
            PublishingError::NotFound(_) => "NOT_FOUND",
            PublishingError::Exists => "INTEGRATION_EXISTS",
            PublishingError::Invalid(code, _) => code,
            PublishingError::Running => "PUBLISH_RUNNING",
            PublishingError::ExternalEdit(_) => "EXTERNAL_EDIT",
            PublishingError::Superseded => "PUBLISH_SUPERSEDED",
            PublishingError::NotPublished => "NOT_PUBLISHED",
        }
    }
    fn kind(&self) -> ErrorKind {
        match self {
            PublishingError::NotFound(_) => ErrorKind::NotFound,
            PublishingError::Invalid(..) => ErrorKind::Validation,
            PublishingError::Exists
            | PublishingError::Running
            | PublishingError::ExternalEdit(_)
            | PublishingError::Superseded
            | PublishingError::NotPublished => ErrorKind::Conflict,
        }
    }
}
