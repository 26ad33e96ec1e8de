//! Text generation for the writer: ideas from a cluster's keywords and
//! articles from a brief, by the offline provider (the default) or an
//! OpenAI-compatible chat completions endpoint (the account's integration
//! settings). The jobs that use them are `jobs::ideas` and `jobs::content`.

pub mod offline;
pub mod openai;

use crate::ai::{AiError, Provider};
use igny8_domain::planner::{ContentType, IdeaData, OutlineSection};
use std::collections::HashSet;

/// What an article must be.
#[derive(Debug, Clone, PartialEq)]
pub struct Brief {
    pub title: String,
    pub primary_keyword: String,
    pub secondary_keywords: Vec<String>,
    pub outline: Vec<OutlineSection>,
    pub content_type: ContentType,
    pub target_words: u32,
    /// BCP 47 tag (`en`, `de`, …).
    pub language: String,
    pub tone: String,
    /// The rendered prompt template (the account's, a strategy's or the
    /// default); the provider adds its output rules to it.
    pub instructions: String,
}

/// An article as a provider wrote it (HTML not yet sanitised).
#[derive(Debug, Clone, PartialEq)]
pub struct Draft {
    pub title: String,
    pub html: String,
    pub meta_title: String,
    pub meta_description: String,
    pub provider: String,
    pub model: String,
    pub tokens: u64,
    pub cost_usd_micros: i64,
}

/// A cluster's keywords (by volume) and the normal forms already taken as
/// primary keywords on the site.
#[derive(Debug, Clone, Default)]
pub struct IdeaSeed {
    pub keywords: Vec<String>,
    pub taken: HashSet<String>,
}

/// Who writes.
#[derive(Clone)]
pub enum TextProvider {
    Offline,
    OpenAi { provider: Provider, model: String },
}

impl TextProvider {
    pub fn name(&self) -> &'static str {
        match self {
            TextProvider::Offline => "offline",
            TextProvider::OpenAi { .. } => "openai",
        }
    }

    /// The model that writes (`offline` for the offline provider).
    pub fn model(&self) -> &str {
        match self {
            TextProvider::Offline => "offline",
            TextProvider::OpenAi { model, .. } => model,
        }
    }

    /// One article for `brief`.
    pub async fn article(&self, brief: &Brief) -> Result<Draft, AiError> {
        match self {
            TextProvider::Offline => Ok(offline::article(brief)),
            TextProvider::OpenAi { provider, model } => {
                openai::article(provider, model, brief).await
            }
        }
    }

    /// Up to `n` ideas for one cluster, with the tokens and cost spent.
    /// `instructions`: the rendered `ideas` template (the provider adds the
    /// keywords and its output rules).
    pub async fn ideas(
        &self,
        seed: &IdeaSeed,
        n: usize,
        instructions: &str,
    ) -> Result<(Vec<IdeaData>, u64, i64), AiError> {
        match self {
            TextProvider::Offline => Ok((offline::ideas(seed, n), 0, 0)),
            TextProvider::OpenAi { provider, model } => {
                openai::ideas(provider, model, seed, n, instructions).await
            }
        }
    }
}
