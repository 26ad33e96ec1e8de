//! Planner commands: keyword imports (CSV), additions, updates, deletes.

pub mod import;

use crate::bus::{CommandBus, CommandContext, CommandError, CommandOutcome};
use igny8_domain::planner::{KeywordData, SectorKeywords, SectorKeywordsCommand};
use uuid::Uuid;

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
