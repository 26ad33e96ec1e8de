//! Cluster use cases: rename, delete, merge clusters of one sector, move
//! keywords between clusters (or out of any), split a cluster. Each
//! resolves the cluster (404 when the caller cannot see it) before the
//! role check.

use super::scope::{cluster_scope, visible_keyword};
use super::{Planner, sector_command};
use crate::bus::{CommandContext, CommandError, CommandOutcome};
use crate::caller::Caller;
use igny8_domain::planner::SectorKeywordsCommand;
use uuid::Uuid;

/// A cluster renamed: the name as stored (trimmed).
#[derive(Debug, Clone)]
pub struct ClusterRenamed {
    pub id: Uuid,
    pub name: String,
    pub outcome: CommandOutcome,
}

/// A cluster deleted (its keywords have no cluster any more).
#[derive(Debug, Clone)]
pub struct ClusterChanged {
    pub id: Uuid,
    pub sector_id: Uuid,
    pub outcome: CommandOutcome,
}

/// The cluster that stayed and those merged into it.
#[derive(Debug, Clone)]
pub struct ClustersMerged {
    pub into: Uuid,
    pub merged: Vec<Uuid>,
    pub outcome: CommandOutcome,
}

/// Keywords of one sector to move, and their new cluster (`None`: none).
#[derive(Debug, Clone)]
pub struct MoveKeywords {
    pub keyword_ids: Vec<Uuid>,
    pub cluster_id: Option<Uuid>,
}

/// Keywords moved: their new cluster and how many were asked.
#[derive(Debug, Clone)]
pub struct KeywordsMoved {
    pub cluster_id: Option<Uuid>,
    pub requested: usize,
    pub outcome: CommandOutcome,
}

/// The new cluster of a split.
#[derive(Debug, Clone)]
pub struct ClusterSplit {
    pub id: Uuid,
    pub from: Uuid,
    /// As stored (trimmed).
    pub name: String,
    pub outcome: CommandOutcome,
}

/// Rename a cluster (the domain checks the name).
pub async fn rename_cluster(
    planner: Planner<'_>,
    caller: &Caller,
    ctx: &CommandContext,
    id: Uuid,
    name: String,
) -> Result<ClusterRenamed, CommandError> {
    let sector = cluster_scope(planner.lookup, caller, id).await?;
    caller.require_write()?;
    let stored = name.trim().to_string();
    let outcome = sector_command(
        planner.bus,
        sector,
        SectorKeywordsCommand::RenameCluster {
            cluster_id: id,
            name,
        },
        ctx,
    )
    .await?;
    Ok(ClusterRenamed {
        id,
        name: stored,
        outcome,
    })
}

/// Delete a cluster.
pub async fn delete_cluster(
    planner: Planner<'_>,
    caller: &Caller,
    ctx: &CommandContext,
    id: Uuid,
) -> Result<ClusterChanged, CommandError> {
    let sector = cluster_scope(planner.lookup, caller, id).await?;
    caller.require_write()?;
    let outcome = sector_command(
        planner.bus,
        sector,
        SectorKeywordsCommand::DeleteCluster { cluster_id: id },
        ctx,
    )
    .await?;
    Ok(ClusterChanged {
        id,
        sector_id: sector,
        outcome,
    })
}

/// Merge `from` into `into`: clusters of one sector only (else 422
/// VALIDATION_ERROR).
pub async fn merge_clusters(
    planner: Planner<'_>,
    caller: &Caller,
    ctx: &CommandContext,
    into: Uuid,
    from: Vec<Uuid>,
) -> Result<ClustersMerged, CommandError> {
    let sector = cluster_scope(planner.lookup, caller, into).await?;
    for f in &from {
        if cluster_scope(planner.lookup, caller, *f).await? != sector {
            return Err(CommandError::invalid(
                "VALIDATION_ERROR",
                "clusters of one sector only",
            ));
        }
    }
    caller.require_write()?;
    let outcome = sector_command(
        planner.bus,
        sector,
        SectorKeywordsCommand::MergeClusters {
            into,
            from: from.clone(),
        },
        ctx,
    )
    .await?;
    Ok(ClustersMerged {
        into,
        merged: from,
        outcome,
    })
}

/// Move keywords (of the first one's sector) to a cluster of that sector,
/// or out of any: 422 EMPTY_SELECTION for none, VALIDATION_ERROR for a
/// cluster of another sector.
pub async fn move_keywords(
    planner: Planner<'_>,
    caller: &Caller,
    ctx: &CommandContext,
    input: MoveKeywords,
) -> Result<KeywordsMoved, CommandError> {
    let first = input
        .keyword_ids
        .first()
        .ok_or_else(|| CommandError::invalid("EMPTY_SELECTION", "no keywords to move"))?;
    let sector = visible_keyword(planner.lookup, caller, *first)
        .await?
        .sector_id;
    if let Some(c) = input.cluster_id
        && cluster_scope(planner.lookup, caller, c).await? != sector
    {
        return Err(CommandError::invalid(
            "VALIDATION_ERROR",
            "the cluster belongs to another sector",
        ));
    }
    caller.require_write()?;
    let requested = input.keyword_ids.len();
    let outcome = sector_command(
        planner.bus,
        sector,
        SectorKeywordsCommand::MoveKeywords {
            keyword_ids: input.keyword_ids,
            cluster_id: input.cluster_id,
        },
        ctx,
    )
    .await?;
    Ok(KeywordsMoved {
        cluster_id: input.cluster_id,
        requested,
        outcome,
    })
}

/// Split a cluster: a new cluster named `name` takes `keyword_ids`.
pub async fn split_cluster(
    planner: Planner<'_>,
    caller: &Caller,
    ctx: &CommandContext,
    id: Uuid,
    keyword_ids: Vec<Uuid>,
    name: String,
) -> Result<ClusterSplit, CommandError> {
    let sector = cluster_scope(planner.lookup, caller, id).await?;
    caller.require_write()?;
    let new_id = Uuid::now_v7();
    let stored = name.trim().to_string();
    let outcome = sector_command(
        planner.bus,
        sector,
        SectorKeywordsCommand::SplitCluster {
            from: id,
            new_cluster_id: new_id,
            name,
            keyword_ids,
        },
        ctx,
    )
    .await?;
    Ok(ClusterSplit {
        id: new_id,
        from: id,
        name: stored,
        outcome,
    })
}
