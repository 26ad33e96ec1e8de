//! Which sector, keyword or cluster a caller may act on: the checks every
//! planner use case (and the planner's list queries) starts with. Another
//! account's ids, and those of sites the caller was not granted, answer
//! "not found", exactly like ids that do not exist.

use super::{KeywordPlace, PlannerLookup};
use crate::bus::{CommandBus, CommandError};
use crate::caller::Caller;
use igny8_domain::tenancy::Tenant;
use uuid::Uuid;

/// A sector the caller may see, with its account and site.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SectorScope {
    pub account_id: Uuid,
    pub site_id: Uuid,
    pub sector_id: Uuid,
}

/// The account and site of a sector the caller may see (else 404).
pub async fn sector_scope(
    bus: &CommandBus,
    caller: &Caller,
    sector_id: Uuid,
) -> Result<SectorScope, CommandError> {
    let account_id = caller.account()?;
    let (t, _) = bus.load::<Tenant>(&account_id.to_string()).await?;
    match t.sectors.get(&sector_id) {
        Some(sec) if caller.can_see_site(sec.site_id) => Ok(SectorScope {
            account_id,
            site_id: sec.site_id,
            sector_id,
        }),
        _ => Err(CommandError::not_found("sector")),
    }
}

/// Where a keyword the caller may see lives (else 404).
pub async fn visible_keyword(
    lookup: &dyn PlannerLookup,
    caller: &Caller,
    keyword_id: Uuid,
) -> Result<KeywordPlace, CommandError> {
    let account_id = caller.account()?;
    match lookup.keyword(account_id, keyword_id).await? {
        Some(k) if caller.can_see_site(k.site_id) => Ok(k),
        _ => Err(CommandError::not_found("keyword")),
    }
}

/// The sector of a cluster the caller may see (else 404).
pub async fn cluster_scope(
    lookup: &dyn PlannerLookup,
    caller: &Caller,
    cluster_id: Uuid,
) -> Result<Uuid, CommandError> {
    let account_id = caller.account()?;
    match lookup.cluster(account_id, cluster_id).await? {
        Some(c) if caller.can_see_site(c.site_id) => Ok(c.sector_id),
        _ => Err(CommandError::not_found("cluster")),
    }
}

/// The account a planner list reads, once the sector and the site asked
/// for (when given) are the caller's to see (else 404).
pub async fn list_scope(
    bus: &CommandBus,
    caller: &Caller,
    site_id: Option<Uuid>,
    sector_id: Option<Uuid>,
) -> Result<Uuid, CommandError> {
    let account_id = caller.account()?;
    if let Some(sector) = sector_id {
        sector_scope(bus, caller, sector).await?;
    }
    if let Some(site) = site_id
        && !caller.can_see_site(site)
    {
        return Err(CommandError::not_found("site"));
    }
    Ok(account_id)
}
