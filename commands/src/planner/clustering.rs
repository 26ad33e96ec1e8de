//! The `auto_cluster` use case: resolve the selection (a sector, or
//! keywords of one sector), check the strategy (known, its provider
//! configured, the selection within its limit) and the number of clusters,
//! price the run with the account's plan, and create the job that reserves
//! its credits.

use super::Planner;
use super::scope::sector_scope;
use crate::bus::{CommandContext, CommandError};
use crate::caller::Caller;
use igny8_domain::billing::{Account, clustering_cost_milli};
use igny8_domain::planner::{MAX_CLUSTERS, SectorKeywords, Strategy};
use serde_json::json;
use std::collections::BTreeSet;
use uuid::Uuid;

/// What to cluster, and how.
#[derive(Debug, Clone, Default)]
pub struct AutoCluster {
    /// Every keyword of this sector …
    pub sector_id: Option<Uuid>,
    /// … or these keywords (of one sector).
    pub keyword_ids: Option<Vec<Uuid>>,
    /// A [`Strategy`] name; `None`: offline.
    pub strategy: Option<String>,
    /// Exactly this many clusters; `None`: chosen from the selection's size.
    pub num_clusters: Option<u64>,
}

/// The job that runs the clustering.
#[derive(Debug, Clone)]
pub struct ClusterJob {
    pub job_id: Uuid,
    /// Keywords selected.
    pub keywords: usize,
    /// Position of the job's first commit.
    pub position: Option<i64>,
    /// An idempotent retry: the first request's job.
    pub replayed: bool,
}

/// The strategy named (`None`: offline); 422 INVALID_STRATEGY for an unknown one.
pub fn check_strategy(raw: Option<&str>) -> Result<Strategy, CommandError> {
    match raw {
        None => Ok(Strategy::Offline),
        Some(s) => Strategy::parse(s).ok_or_else(|| {
            CommandError::invalid(
                "INVALID_STRATEGY",
                format!("unknown strategy {s:?}: offline, embeddings or llm"),
            )
        }),
    }
}

/// 422 TOO_MANY_KEYWORDS when the selection exceeds the strategy's limit.
pub fn check_size(strategy: Strategy, selected: usize) -> Result<(), CommandError> {
    match strategy.max_keywords() {
        Some(max) if selected > max => Err(CommandError::invalid(
            "TOO_MANY_KEYWORDS",
            format!(
                "the {strategy} strategy takes at most {max} keywords ({selected} selected); the offline strategy takes any number"
            ),
        )),
        _ => Ok(()),
    }
}

/// The number of clusters asked for: 1 to [`MAX_CLUSTERS`] and at most
/// the keywords selected (else 422 INVALID_NUM_CLUSTERS).
pub fn check_num_clusters(k: Option<u64>, selected: usize) -> Result<(), CommandError> {
    match k {
        Some(k) if k == 0 || k > MAX_CLUSTERS as u64 || k > selected as u64 => {
            Err(CommandError::invalid(
                "INVALID_NUM_CLUSTERS",
                format!("num_clusters must be 1 to {}", selected.min(MAX_CLUSTERS)),
            ))
        }
        _ => Ok(()),
    }
}

/// Start clustering: 404 for a sector or keywords the caller cannot see
/// (before any input check), then 422 VALIDATION_ERROR, EMPTY_SELECTION,
/// INVALID_STRATEGY, STRATEGY_UNAVAILABLE, TOO_MANY_KEYWORDS,
/// INVALID_NUM_CLUSTERS; 402 when the account cannot cover the run. A
/// retry with the same idempotency key answers the first job.
pub async fn auto_cluster(
    planner: Planner<'_>,
    caller: &Caller,
    ctx: &CommandContext,
    input: AutoCluster,
) -> Result<ClusterJob, CommandError> {
    caller.require_write()?;
    let account = caller.account()?;
    let (sector, site, selected) = match (input.sector_id, &input.keyword_ids) {
        (Some(_), Some(_)) | (None, None) => {
            return Err(CommandError::invalid(
                "VALIDATION_ERROR",
                "give either sector_id or keyword_ids",
            ));
        }
        (Some(sector), None) => {
            let scope = sector_scope(planner.bus, caller, sector).await?;
            let (state, _) = planner
                .bus
                .load::<SectorKeywords>(&sector.to_string())
                .await?;
            (sector, scope.site_id, state.ids.len())
        }
        (None, Some(ids)) => {
            if ids.is_empty() {
                return Err(CommandError::invalid(
                    "EMPTY_SELECTION",
                    "no keywords to cluster",
                ));
            }
            let distinct: Vec<Uuid> = ids
                .iter()
                .copied()
                .collect::<BTreeSet<_>>()
                .into_iter()
                .collect();
            let found = planner.lookup.keywords(account, &distinct).await?;
            if found.len() != distinct.len() {
                return Err(CommandError::not_found("keyword"));
            }
            let sectors: BTreeSet<Uuid> = found.iter().map(|f| f.sector_id).collect();
            if sectors.len() != 1 {
                return Err(CommandError::invalid(
                    "VALIDATION_ERROR",
                    "the keywords must belong to one sector",
                ));
            }
            let sector = found[0].sector_id;
            let scope = sector_scope(planner.bus, caller, sector)
                .await
                .map_err(|_| CommandError::not_found("keyword"))?;
            (sector, scope.site_id, distinct.len())
        }
    };
    // Input checks come after the ids resolved (another account's ids answer 404 first).
    let strategy = check_strategy(input.strategy.as_deref())?;
    if strategy.needs_provider()
        && crate::tenancy::configured_integration(planner.bus, account)
            .await?
            .is_none()
    {
        return Err(CommandError::invalid(
            "STRATEGY_UNAVAILABLE",
            format!(
                "the {strategy} strategy needs the account's AI provider: PUT /api/v1/system/settings/integrations/openai/"
            ),
        ));
    }
    check_size(strategy, selected)?;
    if selected == 0 {
        return Err(CommandError::invalid(
            "EMPTY_SELECTION",
            "no keywords to cluster",
        ));
    }
    check_num_clusters(input.num_clusters, selected)?;
    // The account's plan prices the run.
    let (acct, _) = planner.bus.load::<Account>(&account.to_string()).await?;
    let cost = clustering_cost_milli(acct.plan.as_deref());
    let job_input = json!({
        "sector_id": sector,
        "site_id": site,
        "keyword_ids": input.keyword_ids,
        "num_clusters": input.num_clusters,
        "strategy": strategy.as_str(),
    });
    let (job_id, outs) =
        crate::jobs::create(planner.bus, account, "auto_cluster", job_input, cost, ctx).await?;
    // A replay answers the first request's job, not the id drawn now.
    let job_id = outs
        .iter()
        .find(|o| o.aggregate_type == "job")
        .and_then(|o| Uuid::parse_str(&o.aggregate_id).ok())
        .unwrap_or(job_id);
    Ok(ClusterJob {
        job_id,
        keywords: selected,
        position: outs.iter().filter_map(|o| o.position).max(),
        replayed: outs.iter().any(|o| o.replayed),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use igny8_domain::ErrorKind;
    use igny8_domain::planner::{MAX_EMBEDDING_KEYWORDS, MAX_LLM_KEYWORDS};

    fn code(r: Result<impl std::fmt::Debug, CommandError>) -> (ErrorKind, &'static str) {
        match r {
            Err(CommandError::Domain { kind, code, .. }) => (kind, code),
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn strategy_defaults_to_offline_and_refuses_unknown_names() {
        assert_eq!(check_strategy(None).unwrap(), Strategy::Offline);
        assert_eq!(check_strategy(Some("llm")).unwrap(), Strategy::Llm);
        assert_eq!(
            code(check_strategy(Some("kmeans"))),
            (ErrorKind::Validation, "INVALID_STRATEGY")
        );
        assert_eq!(
            code(check_strategy(Some("Offline"))),
            (ErrorKind::Validation, "INVALID_STRATEGY")
        );
    }

    #[test]
    fn num_clusters_within_one_and_the_selection() {
        assert!(check_num_clusters(None, 5).is_ok());
        assert!(check_num_clusters(Some(1), 5).is_ok());
        assert!(check_num_clusters(Some(5), 5).is_ok());
        for (k, n) in [(0, 5), (6, 5), (1001, 5000), (u64::MAX, usize::MAX)] {
            assert_eq!(
                code(check_num_clusters(Some(k), n)),
                (ErrorKind::Validation, "INVALID_NUM_CLUSTERS"),
                "k={k} n={n}"
            );
        }
    }

    #[test]
    fn size_limits_per_strategy() {
        assert!(check_size(Strategy::Offline, usize::MAX).is_ok());
        assert!(check_size(Strategy::Llm, MAX_LLM_KEYWORDS).is_ok());
        assert_eq!(
            code(check_size(Strategy::Llm, MAX_LLM_KEYWORDS + 1)),
            (ErrorKind::Validation, "TOO_MANY_KEYWORDS")
        );
        assert_eq!(
            code(check_size(Strategy::Embeddings, MAX_EMBEDDING_KEYWORDS + 1)),
            (ErrorKind::Validation, "TOO_MANY_KEYWORDS")
        );
    }
}
