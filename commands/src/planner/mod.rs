//! Planner use cases: keywords per sector and their clusters.
//!
//! - [`scope`]: which sector, keyword or cluster a caller may act on
//!   (another account's, or a site not granted, is "not found").
//! - [`keywords`]: create, update, delete, bulk delete, CSV import.
//! - [`clustering`]: start an `auto_cluster` job.
//! - [`clusters`]: rename, delete, merge, move keywords, split.
//! - [`import`]: the CSV parser behind the import.
//!
//! Each use case takes the [`Planner`] (the bus and the read-model port),
//! the [`Caller`](crate::Caller), the request's [`CommandContext`] and a
//! typed input, and returns a typed outcome or a [`CommandError`].

pub mod clustering;
pub mod clusters;
pub mod ideas;
pub mod import;
pub mod keywords;
pub mod scope;

pub use clustering::{AutoCluster, ClusterJob, auto_cluster, check_num_clusters, check_strategy};
pub use clusters::{
    ClusterChanged, ClusterRenamed, ClusterSplit, ClustersMerged, KeywordsMoved, MoveKeywords,
    delete_cluster, merge_clusters, move_keywords, rename_cluster, split_cluster,
};
pub use ideas::{
    GenerateIdeas, IdeaSaved, IdeasJob, NewIdea, NotQueued, Queued, auto_generate_ideas,
    create_idea, delete_idea, idea_task_id, queue_ideas, update_idea,
};
pub use keywords::{
    BulkDelete, BulkDeleted, ImportTarget, KeywordChanged, KeywordCreated, KeywordUpdate,
    KeywordsImported, MAX_BULK_DELETE, NewKeyword, bulk_delete, create_keyword, delete_keyword,
    import_keywords, import_target, update_keyword,
};
pub use scope::{SectorScope, cluster_scope, list_scope, sector_scope, visible_keyword};

use crate::bus::{CommandBus, CommandContext, CommandError, CommandOutcome};
use async_trait::async_trait;
use igny8_domain::planner::{KeywordData, SectorKeywords, SectorKeywordsCommand};
use uuid::Uuid;

/// Where a keyword lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeywordPlace {
    pub keyword_id: Uuid,
    pub site_id: Uuid,
    pub sector_id: Uuid,
}

/// Where a cluster lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClusterPlace {
    pub site_id: Uuid,
    pub sector_id: Uuid,
}

/// A keyword of a cluster, for the ideas generator.
#[derive(Debug, Clone, PartialEq)]
pub struct ClusterKeyword {
    pub keyword: String,
    pub volume: i64,
}

/// The read-model look-ups the planner's use cases need (implemented by
/// `igny8_projections::planner::Lookup` over `rm_keywords` and
/// `rm_clusters`). Always within one account: another account's ids are
/// absent.
#[async_trait]
pub trait PlannerLookup: Send + Sync {
    /// The place of one keyword of the account.
    async fn keyword(
        &self,
        account_id: Uuid,
        keyword_id: Uuid,
    ) -> Result<Option<KeywordPlace>, CommandError>;

    /// The places of those of `ids` that are keywords of the account.
    async fn keywords(
        &self,
        account_id: Uuid,
        ids: &[Uuid],
    ) -> Result<Vec<KeywordPlace>, CommandError>;

    /// The place of a cluster of the account.
    async fn cluster(
        &self,
        account_id: Uuid,
        cluster_id: Uuid,
    ) -> Result<Option<ClusterPlace>, CommandError>;

    /// The keywords of a cluster of the account, by volume (highest first), at most `limit`.
    async fn cluster_keywords(
        &self,
        account_id: Uuid,
        cluster_id: Uuid,
        limit: usize,
    ) -> Result<Vec<ClusterKeyword>, CommandError>;
}

/// What the planner's use cases work with: the bus (commands and
/// aggregate loads) and the read-model port.
#[derive(Clone, Copy)]
pub struct Planner<'a> {
    pub bus: &'a CommandBus,
    pub lookup: &'a dyn PlannerLookup,
}

/// Add keywords to a sector; repeated ones (after normalisation) are skipped.
/// The outcome's `KeywordsAdded` events tell how many were new.
pub async fn add_keywords(
    bus: &CommandBus,
    account_id: Uuid,
    site_id: Uuid,
    sector_id: Uuid,
    keywords: Vec<KeywordData>,
    source: &str,
    ctx: &CommandContext,
) -> Result<CommandOutcome, CommandError> {
    bus.execute::<SectorKeywords>(
        &sector_id.to_string(),
        SectorKeywordsCommand::Add {
            account_id,
            site_id,
            keywords,
            source: source.to_string(),
        },
        ctx,
    )
    .await
}

/// How many keywords an outcome added.
pub fn added(outcome: &CommandOutcome) -> usize {
    outcome
        .events
        .iter()
        .filter(|e| e.event_type == "KeywordsAdded")
        .map(|e| e.payload["keywords"].as_array().map_or(0, Vec::len))
        .sum()
}

/// One command on a sector's keywords.
async fn sector_command(
    bus: &CommandBus,
    sector_id: Uuid,
    command: SectorKeywordsCommand,
    ctx: &CommandContext,
) -> Result<CommandOutcome, CommandError> {
    bus.execute::<SectorKeywords>(&sector_id.to_string(), command, ctx)
        .await
}
