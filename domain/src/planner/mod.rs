//! Planner context: keywords per sector, their clusters, and content ideas
//! (the `idea` aggregate, one per idea).
//!
//! A sector's keywords are one aggregate (`sector_keywords`, id = the
//! sector id) whose state is only the set of keyword ids: a keyword's id is
//! derived from (sector, normalised text), so "at most once per sector
//! after normalisation" is a set lookup, also under concurrent imports
//! (the store serialises writers of one aggregate). The keywords' data
//! lives in the events and the read model. A large import is one command
//! whose events are chunks of at most [`CHUNK`] keywords (each event stays
//! far below NATS's 1 MB message limit).

mod idea;
mod keywords;
mod strategy;

pub use idea::{
    ContentType, Idea, IdeaChange, IdeaCommand, IdeaData, IdeaError, IdeaEvent, IdeaStatus,
    MAX_DESCRIPTION_CHARS, MAX_KEY_POINTS, MAX_SECONDARY_KEYWORDS, MAX_SECTIONS, MAX_TITLE_CHARS,
    MAX_WORDS, MIN_WORDS, OutlineSection, WriterInputError, check_keywords, check_outline,
    check_word_count, valid_line, valid_text,
};
pub(crate) use keywords::present;
pub use keywords::{
    CHUNK, ClusterSummary, Intent, KeywordChange, KeywordData, MAX_KEYWORD_CHARS, MAX_VOLUME,
    PlannerError, SectorKeywords, SectorKeywordsCommand, SectorKeywordsEvent, keyword_id,
    normalize,
};
pub use strategy::{
    AUTO_CLUSTER_SIZE, MAX_CLUSTERS, MAX_EMBEDDING_KEYWORDS, MAX_LLM_KEYWORDS, Strategy, auto_k,
};
