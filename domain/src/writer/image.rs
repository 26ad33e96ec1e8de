//! The `image_prompt` aggregate: one image slot of an article — its
//! featured image (slot 0) or an in-article image (slots 1–6) — with the
//! prompt a person may rewrite, and the images made from it.
//!
//! Ids are [`prompt_id`] of the content and the slot, so a content's
//! prompts are found without a read model and a new extraction rewrites
//! the same slots (a slot that is generating refuses). An image job takes
//! a prompt ([`ImagePromptCommand::StartImage`], the lock), records each
//! provider call before it is made ([`ImagePromptEvent::ImageRequested`],
//! with the client-made task id), and stores at most one image per job: a
//! retried or concurrent attempt is refused, so an image is never stored
//! or charged twice.

use crate::{Aggregate, DomainError, DomainEvent, ErrorKind};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use uuid::Uuid;

/// In-article images per article at most (plus the featured one).
pub const MAX_IN_ARTICLE_IMAGES: u32 = 6;
pub const MAX_PROMPT_CHARS: usize = 4_000;
pub const MAX_ALT_CHARS: usize = 300;
pub const MAX_CAPTION_CHARS: usize = 500;

/// The prompt id of `content_id`'s slot (0: featured).
pub fn prompt_id(content_id: Uuid, slot: u32) -> Uuid {
    Uuid::new_v5(&content_id, format!("image-prompt:{slot}").as_bytes())
}

/// The id of the image `job_id` makes from `prompt_id`.
pub fn image_id(prompt_id: Uuid, job_id: Uuid) -> Uuid {
    Uuid::new_v5(&prompt_id, job_id.as_bytes())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum ImageQuality {
    #[default]
    Basic,
    Premium,
}

impl ImageQuality {
    pub const ALL: [ImageQuality; 2] = [ImageQuality::Basic, ImageQuality::Premium];
    pub fn as_str(self) -> &'static str {
        match self {
            ImageQuality::Basic => "basic",
            ImageQuality::Premium => "premium",
        }
    }
    pub fn parse(s: &str) -> Option<ImageQuality> {
        ImageQuality::ALL.into_iter().find(|q| q.as_str() == s)
    }
}

/// What an image should show, and how the article presents it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PromptText {
    pub prompt: String,
    pub alt_text: String,
    pub caption: String,
    /// The heading the image follows (in-article images; `None`: featured).
    #[serde(default)]
    pub placement: Option<String>,
}

fn line_ok(s: &str, max: usize, may_be_empty: bool) -> bool {
    let n = s.chars().count();
    (may_be_empty || !s.trim().is_empty()) && n <= max && !s.chars().any(char::is_control)
}

impl PromptText {
    pub fn check(&self) -> Result<(), ImageError> {
        if !line_ok(&self.prompt, MAX_PROMPT_CHARS, false) {
            return Err(ImageError::Invalid(
                "INVALID_PROMPT",
                "prompt must be 1 to 4,000 characters, without control characters",
            ));
        }
        if !line_ok(&self.alt_text, MAX_ALT_CHARS, true) {
            return Err(ImageError::Invalid(
                "INVALID_ALT_TEXT",
                "alt_text must be at most 300 characters, without control characters",
            ));
        }
        if !line_ok(&self.caption, MAX_CAPTION_CHARS, true) {
            return Err(ImageError::Invalid(
                "INVALID_CAPTION",
                "caption must be at most 500 characters, without control characters",
            ));
        }
        if let Some(p) = &self.placement
            && !line_ok(p, 300, false)
        {
            return Err(ImageError::Invalid(
                "INVALID_PLACEMENT",
                "placement must be a heading of the article (1 to 300 characters)",
            ));
        }
        Ok(())
    }
}

/// A change a person makes to a prompt (`None`: unchanged).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct PromptChange {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alt_text: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub caption: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub placement: Option<String>,
}

impl PromptChange {
    pub fn is_empty(&self) -> bool {
        self.prompt.is_none()
            && self.alt_text.is_none()
            && self.caption.is_none()
            && self.placement.is_none()
    }
}

/// Where a prompt belongs (from its content).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PromptOrigin {
    pub account_id: Uuid,
    pub site_id: Uuid,
    pub sector_id: Uuid,
    pub content_id: Uuid,
    pub task_id: Uuid,
}

/// An image as stored: its bytes are in media storage under `sha256`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredImage {
    pub image_id: Uuid,
    pub job_id: Uuid,
    pub sha256: String,
    pub mime_type: String,
    pub width: u32,
    pub height: u32,
    pub bytes: u64,
    pub provider: String,
    pub model: String,
    pub quality: ImageQuality,
    /// The size asked for, `WIDTHxHEIGHT`.
    pub size: String,
    /// The prompt the image was made from.
    pub prompt: String,
    /// What the provider reported it cost (micro-dollars; 0 when unknown).
    pub cost_usd_micros: i64,
    pub credits_milli: i64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ImagePrompt {
    pub created: bool,
    pub deleted: bool,
    pub account_id: Option<Uuid>,
    pub site_id: Option<Uuid>,
    pub content_id: Option<Uuid>,
    pub slot: u32,
    pub text: Option<PromptText>,
    /// The job that makes its image now.
    pub generating: Option<Uuid>,
    /// Jobs that stored an image of it.
    pub imaged_by: BTreeSet<Uuid>,
    /// Extraction jobs that wrote it.
    pub extracted_by: BTreeSet<Uuid>,
    /// The current image.
    pub image: Option<StoredImage>,
    /// Provider calls recorded by the generating job.
    pub requests: u32,
}

impl ImagePrompt {
    pub fn live(&self) -> bool {
        self.created && !self.deleted
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum ImagePromptCommand {
    /// An extraction job writes the slot (new, or rewritten when it was
    /// not generating); its image goes.
    Extract {
        origin: PromptOrigin,
        slot: u32,
        text: PromptText,
        job_id: Uuid,
        credits_milli: i64,
    },
    /// A person writes a prompt for a free slot.
    Create {
        origin: PromptOrigin,
        slot: u32,
        text: PromptText,
        user_id: Option<Uuid>,
    },
    Edit {
        change: PromptChange,
    },
    Delete,
    StartImage {
        job_id: Uuid,
    },
    /// The job is about to call the provider with `task_uuid`.
    Request {
        job_id: Uuid,
        provider: String,
        task_uuid: Uuid,
    },
    Store {
        image: StoredImage,
    },
    Fail {
        job_id: Uuid,
        reason: String,
    },
}

// An image is read once per apply; boxing it would only move the bytes.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ImagePromptEvent {
    ImagePromptExtracted {
        origin: PromptOrigin,
        slot: u32,
        text: PromptText,
        job_id: Uuid,
        credits_milli: i64,
    },
    ImagePromptCreated {
        origin: PromptOrigin,
        slot: u32,
        text: PromptText,
        user_id: Option<Uuid>,
    },
    ImagePromptEdited {
        change: PromptChange,
    },
    ImagePromptDeleted {},
    ImageGenerationStarted {
        job_id: Uuid,
    },
    ImageRequested {
        job_id: Uuid,
        provider: String,
        task_uuid: Uuid,
    },
    ImageStored {
        image: StoredImage,
    },
    ImageFailed {
        job_id: Uuid,
        reason: String,
    },
}

impl DomainEvent for ImagePromptEvent {
    fn event_type(&self) -> &'static str {
        match self {
            ImagePromptEvent::ImagePromptExtracted { .. } => "ImagePromptExtracted",
            ImagePromptEvent::ImagePromptCreated { .. } => "ImagePromptCreated",
            ImagePromptEvent::ImagePromptEdited { .. } => "ImagePromptEdited",
            ImagePromptEvent::ImagePromptDeleted { .. } => "ImagePromptDeleted",
            ImagePromptEvent::ImageGenerationStarted { .. } => "ImageGenerationStarted",
            ImagePromptEvent::ImageRequested { .. } => "ImageRequested",
            ImagePromptEvent::ImageStored { .. } => "ImageStored",
            ImagePromptEvent::ImageFailed { .. } => "ImageFailed",
        }
    }
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ImageError {
    #[error("image prompt not found")]
    NotFound,
    #[error("an image job works on this prompt")]
    Running,
    #[error("the article has a prompt in this slot already")]
    SlotTaken,
    #[error("job {0} has already stored its image")]
    AlreadyGenerated(Uuid),
    #[error("job {0} no longer makes this image")]
    Superseded(Uuid),
    #[error("{1}")]
    Invalid(&'static str, &'static str),
}

impl DomainError for ImageError {
    fn code(&self) -> &'static str {
        match self {
            ImageError::NotFound => "NOT_FOUND",
            ImageError::Running => "GENERATION_RUNNING",
            ImageError::SlotTaken => "SLOT_TAKEN",
            ImageError::AlreadyGenerated(_) => "ALREADY_GENERATED",
            ImageError::Superseded(_) => "JOB_SUPERSEDED",
            ImageError::Invalid(code, _) => code,
        }
    }
    fn kind(&self) -> ErrorKind {
        match self {
            ImageError::NotFound => ErrorKind::NotFound,
            ImageError::Running
            | ImageError::SlotTaken
            | ImageError::AlreadyGenerated(_)
            | ImageError::Superseded(_) => ErrorKind::Conflict,
            ImageError::Invalid(..) => ErrorKind::Validation,
        }
    }
}

impl Aggregate for ImagePrompt {
    const TYPE: &'static str = "image_prompt";
    type Command = ImagePromptCommand;
    type Event = ImagePromptEvent;
    type Error = ImageError;

    fn decide(&self, command: ImagePromptCommand) -> Result<Vec<ImagePromptEvent>, ImageError> {
        use ImagePromptEvent as E;
        match command {
            ImagePromptCommand::Extract {
                origin,
                slot,
                text,
                job_id,
                credits_milli,
            } => {
                if self.extracted_by.contains(&job_id) {
                    return Err(ImageError::AlreadyGenerated(job_id));
                }
                if self.live() && self.generating.is_some() {
                    return Err(ImageError::Running);
                }
                if slot > MAX_IN_ARTICLE_IMAGES {
                    return Err(ImageError::Invalid("VALIDATION_ERROR", "slot out of range"));
                }
                text.check()?;
                Ok(vec![E::ImagePromptExtracted {
                    origin,
                    slot,
                    text,
                    job_id,
                    credits_milli,
                }])
            }
            ImagePromptCommand::Create {
                origin,
                slot,
                text,
                user_id,
            } => {
                if self.live() {
                    return Err(ImageError::SlotTaken);
                }
                if slot > MAX_IN_ARTICLE_IMAGES {
                    return Err(ImageError::Invalid(
                        "VALIDATION_ERROR",
                        "slot must be 0 to 6",
                    ));
                }
                if (slot == 0) != text.placement.is_none() {
                    return Err(ImageError::Invalid(
                        "INVALID_PLACEMENT",
                        "an in-article image needs the heading it follows; the featured image (slot 0) has none",
                    ));
                }
                text.check()?;
                Ok(vec![E::ImagePromptCreated {
                    origin,
                    slot,
                    text,
                    user_id,
                }])
            }
            ImagePromptCommand::Edit { change } => {
                if !self.live() {
                    return Err(ImageError::NotFound);
                }
                if self.generating.is_some() {
                    return Err(ImageError::Running);
                }
                if change.is_empty() {
                    return Err(ImageError::Invalid("VALIDATION_ERROR", "nothing to change"));
                }
                let mut next = self.text.clone().unwrap_or(PromptText {
                    prompt: String::new(),
                    alt_text: String::new(),
                    caption: String::new(),
                    placement: None,
                });
                if let Some(v) = &change.prompt {
                    next.prompt = v.trim().to_string();
                }
                if let Some(v) = &change.alt_text {
                    next.alt_text = v.trim().to_string();
                }
                if let Some(v) = &change.caption {
                    next.caption = v.trim().to_string();
                }
                if let Some(v) = &change.placement {
                    if self.slot == 0 {
                        return Err(ImageError::Invalid(
                            "INVALID_PLACEMENT",
                            "the featured image has no placement",
                        ));
                    }
                    next.placement = Some(v.trim().to_string());
                }
                next.check()?;
                Ok(vec![E::ImagePromptEdited { change }])
            }
            ImagePromptCommand::Delete => {
                if !self.live() {
                    return Err(ImageError::NotFound);
                }
                if self.generating.is_some() {
                    return Err(ImageError::Running);
                }
                Ok(vec![E::ImagePromptDeleted {}])
            }
            ImagePromptCommand::StartImage { job_id } => {
                if !self.live() {
                    return Err(ImageError::NotFound);
                }
                match self.generating {
                    Some(j) if j == job_id => Ok(vec![]),
                    Some(_) => Err(ImageError::Running),
                    None => Ok(vec![E::ImageGenerationStarted { job_id }]),
                }
            }
            ImagePromptCommand::Request {
                job_id,
                provider,
                task_uuid,
            } => {
                if self.generating != Some(job_id) {
                    return Err(ImageError::Superseded(job_id));
                }
                Ok(vec![E::ImageRequested {
                    job_id,
                    provider,
                    task_uuid,
                }])
            }
            ImagePromptCommand::Store { image } => {
                if self.imaged_by.contains(&image.job_id) {
                    return Err(ImageError::AlreadyGenerated(image.job_id));
                }
                if self.generating != Some(image.job_id) {
                    return Err(ImageError::Superseded(image.job_id));
                }
                Ok(vec![E::ImageStored { image }])
            }
            ImagePromptCommand::Fail { job_id, reason } => {
                if self.generating != Some(job_id) {
                    return Ok(vec![]);
                }
                Ok(vec![E::ImageFailed { job_id, reason }])
            }
        }
    }

    fn apply(&mut self, event: &ImagePromptEvent) {
        use ImagePromptEvent as E;
        match event {
            E::ImagePromptExtracted {
                origin,
                slot,
                text,
                job_id,
                ..
            } => {
                self.created = true;
                self.deleted = false;
                self.account_id = Some(origin.account_id);
                self.site_id = Some(origin.site_id);
                self.content_id = Some(origin.content_id);
                self.slot = *slot;
                self.text = Some(text.clone());
                self.image = None;
                self.extracted_by.insert(*job_id);
            }
            E::ImagePromptCreated {
                origin, slot, text, ..
            } => {
                self.created = true;
                self.deleted = false;
                self.account_id = Some(origin.account_id);
                self.site_id = Some(origin.site_id);
                self.content_id = Some(origin.content_id);
                self.slot = *slot;
                self.text = Some(text.clone());
                self.image = None;
            }
            E::ImagePromptEdited { change } => {
                if let Some(t) = &mut self.text {
                    if let Some(v) = &change.prompt {
                        t.prompt = v.trim().to_string();
                    }
                    if let Some(v) = &change.alt_text {
                        t.alt_text = v.trim().to_string();
                    }
                    if let Some(v) = &change.caption {
                        t.caption = v.trim().to_string();
                    }
                    if let Some(v) = &change.placement {
                        t.placement = Some(v.trim().to_string());
                    }
                }
            }
            E::ImagePromptDeleted {} => {
                self.deleted = true;
                self.image = None;
            }
            E::ImageGenerationStarted { job_id } => {
                self.generating = Some(*job_id);
                self.requests = 0;
            }
            E::ImageRequested { .. } => self.requests += 1,
            E::ImageStored { image } => {
                self.generating = None;
                self.imaged_by.insert(image.job_id);
                self.image = Some(image.clone());
            }
            E::ImageFailed { .. } => self.generating = None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::given_when;

    fn origin() -> PromptOrigin {
        PromptOrigin {
            account_id: Uuid::nil(),
            site_id: Uuid::nil(),
            sector_id: Uuid::nil(),
            content_id: Uuid::nil(),
            task_id: Uuid::nil(),
        }
    }

    fn text() -> PromptText {
        PromptText {
            prompt: "a trail runner at dawn".into(),
            alt_text: "trail runner".into(),
            caption: String::new(),
            placement: None,
        }
    }

    fn image(job: Uuid) -> StoredImage {
        StoredImage {
            image_id: image_id(Uuid::nil(), job),
            job_id: job,
            sha256: "00".repeat(32),
            mime_type: "image/png".into(),
            width: 64,
            height: 64,
            bytes: 100,
            provider: "offline".into(),
            model: "offline".into(),
            quality: ImageQuality::Basic,
            size: "64x64".into(),
            prompt: "p".into(),
            cost_usd_micros: 0,
            credits_milli: 1000,
        }
    }

    #[test]
    fn a_job_stores_one_image_and_a_generating_prompt_is_locked() {
        let (j1, j2) = (Uuid::from_u128(1), Uuid::from_u128(2));
        let mut h = given_when::<ImagePrompt>(
            &[],
            ImagePromptCommand::Extract {
                origin: origin(),
                slot: 0,
                text: text(),
                job_id: j1,
                credits_milli: 500,
            },
        )
        .unwrap();
        h.extend(
            given_when::<ImagePrompt>(&h, ImagePromptCommand::StartImage { job_id: j2 }).unwrap(),
        );
        assert_eq!(
            given_when::<ImagePrompt>(&h, ImagePromptCommand::StartImage { job_id: j1 })
                .unwrap_err(),
            ImageError::Running
        );
        assert_eq!(
            given_when::<ImagePrompt>(&h, ImagePromptCommand::Delete).unwrap_err(),
            ImageError::Running
        );
        h.extend(
            given_when::<ImagePrompt>(&h, ImagePromptCommand::Store { image: image(j2) }).unwrap(),
        );
        assert_eq!(
            given_when::<ImagePrompt>(&h, ImagePromptCommand::Store { image: image(j2) })
                .unwrap_err(),
            ImageError::AlreadyGenerated(j2)
        );
        assert_eq!(
            given_when::<ImagePrompt>(&h, ImagePromptCommand::Store { image: image(j1) })
                .unwrap_err(),
            ImageError::Superseded(j1)
        );
        let change = PromptChange {
            placement: Some("Intro".into()),
            ..Default::default()
        };
        assert_eq!(
            given_when::<ImagePrompt>(&h, ImagePromptCommand::Edit { change })
                .unwrap_err()
                .code(),
            "INVALID_PLACEMENT"
        );
        let long = PromptText {
            prompt: "x".repeat(4001),
            ..text()
        };
        assert_eq!(long.check().unwrap_err().code(), "INVALID_PROMPT");
    }
}
