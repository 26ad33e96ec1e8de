//! Site and sector use cases: create, change and delete sites (owners and
//! admins; the plan limits how many) and their sectors (1–5 per site), and
//! read one site as the caller may see it. A site the caller was not
//! granted answers "not found", before any role check.

use super::domain;
use crate::bus::{CommandBus, CommandContext, CommandError, CommandOutcome};
use crate::caller::Caller;
use crate::secrets::Keyring;
use igny8_domain::tenancy::{Sector, Site, SiteChanges, Slug, Tenant, TenantCommand};
use uuid::Uuid;

/// A site to create.
#[derive(Debug, Clone, Default)]
pub struct NewSite {
    pub name: String,
    pub slug: Option<String>,
    pub industry: Option<String>,
    pub domain: Option<String>,
    /// An industry template (`igny8_domain::tenancy::INDUSTRIES`): its
    /// name becomes the site's industry unless `industry` is given.
    pub industry_id: Option<String>,
    /// Create the template's suggested sectors with the site (one commit).
    pub with_suggested_sectors: bool,
}

/// Changes to a site: `None` keeps a field, `Some(None)` clears it.
#[derive(Debug, Clone, Default)]
pub struct SiteUpdate {
    pub name: Option<String>,
    pub slug: Option<String>,
    pub industry: Option<Option<String>>,
    pub domain: Option<Option<String>>,
    pub status: Option<String>,
    pub wp_url: Option<Option<String>>,
    pub wp_username: Option<Option<String>>,
    /// In clear: sealed here, bound to the site, before the domain sees it.
    pub wp_app_password: Option<Option<String>>,
}

/// A sector to add to a site.
#[derive(Debug, Clone, Default)]
pub struct NewSector {
    pub name: String,
    pub slug: Option<String>,
}

/// A site (or sector) after a command, as it is now.
#[derive(Debug, Clone)]
pub struct SiteSaved {
    pub account_id: Uuid,
    pub site_id: Uuid,
    pub site: Site,
    /// The account's tenant state after the command (the site's sectors).
    pub tenant: Tenant,
    pub outcome: CommandOutcome,
}

#[derive(Debug, Clone)]
pub struct SectorSaved {
    pub account_id: Uuid,
    pub sector_id: Uuid,
    pub sector: Sector,
    pub outcome: CommandOutcome,
}

/// A site or sector removed.
#[derive(Debug, Clone)]
pub struct Removed {
    pub id: Uuid,
    pub outcome: CommandOutcome,
}

/// The account's tenant state, when the caller may see `site_id`.
pub async fn visible_site(
    bus: &CommandBus,
    caller: &Caller,
    site_id: Uuid,
) -> Result<(Uuid, Tenant), CommandError> {
    let account = caller.account()?;
    let (t, _) = bus.load::<Tenant>(&account.to_string()).await?;
    if !t.sites.contains_key(&site_id) || !caller.can_see_site(site_id) {
        return Err(CommandError::not_found("site"));
    }
    Ok((account, t))
}

/// The account's tenant state, when the caller may see the sector's site.
pub async fn visible_sector(
    bus: &CommandBus,
    caller: &Caller,
    sector_id: Uuid,
) -> Result<(Uuid, Tenant), CommandError> {
    let account = caller.account()?;
    let (t, _) = bus.load::<Tenant>(&account.to_string()).await?;
    match t.sectors.get(&sector_id) {
        Some(sec) if caller.can_see_site(sec.site_id) => Ok((account, t)),
        _ => Err(CommandError::not_found("sector")),
    }
}

/// One site with the account's state (its sectors), as the caller may see it.
pub async fn get_site(
    bus: &CommandBus,
    caller: &Caller,
    site_id: Uuid,
) -> Result<(Uuid, Site, Tenant), CommandError> {
    let (account, t) = visible_site(bus, caller, site_id).await?;
    let mut site = t
        .sites
        .get(&site_id)
        .cloned()
        .ok_or_else(|| CommandError::not_found("site"))?;
    crate::publishing::integrations::overlay(bus, site_id, &mut site).await?;
    Ok((account, site, t))
}

/// A slug given in a request, parsed (422 INVALID_SLUG).
fn slug(given: Option<String>) -> Result<Option<Slug>, CommandError> {
    given
        .as_deref()
        .map(Slug::parse)
        .transpose()
        .map_err(domain)
}

/// The id a create command wrote (from its events: an idempotent replay
/// returns the first request's id, not the one this request minted).
fn created_id(out: &CommandOutcome, field: &str, minted: Uuid) -> Uuid {
    out.events
        .iter()
        .find_map(|e| e.payload.get(field)?.as_str()?.parse().ok())
        .unwrap_or(minted)
}

async fn tenant(
    bus: &CommandBus,
    account: Uuid,
    command: TenantCommand,
    ctx: &CommandContext,
) -> Result<CommandOutcome, CommandError> {
    bus.execute::<Tenant>(&account.to_string(), command, ctx)
        .await
}

async fn site_saved(
    bus: &CommandBus,
    account: Uuid,
    site_id: Uuid,
    outcome: CommandOutcome,
) -> Result<SiteSaved, CommandError> {
    let (tenant, _) = bus.load::<Tenant>(&account.to_string()).await?;
    let mut site = tenant
        .sites
        .get(&site_id)
        .cloned()
        .ok_or_else(|| CommandError::not_found("site"))?;
    crate::publishing::integrations::overlay(bus, site_id, &mut site).await?;
    Ok(SiteSaved {
        account_id: account,
        site_id,
        site,
        tenant,
        outcome,
    })
}

async fn sector_saved(
    bus: &CommandBus,
    account: Uuid,
    sector_id: Uuid,
    outcome: CommandOutcome,
) -> Result<SectorSaved, CommandError> {
    let (t, _) = bus.load::<Tenant>(&account.to_string()).await?;
    let sector = t
        .sectors
        .get(&sector_id)
        .cloned()
        .ok_or_else(|| CommandError::not_found("sector"))?;
    Ok(SectorSaved {
        account_id: account,
        sector_id,
        sector,
        outcome,
    })
}

pub async fn create_site(
    bus: &CommandBus,
    caller: &Caller,
    ctx: &CommandContext,
    input: NewSite,
) -> Result<SiteSaved, CommandError> {
    caller.require_manage()?;
    let account = caller.account()?;
    let template = match input.industry_id.as_deref() {
        None => None,
        Some(id) => Some(igny8_domain::tenancy::industry(id).ok_or_else(|| {
            CommandError::invalid(
                "UNKNOWN_INDUSTRY",
                "industry_id is not one of GET /api/v1/auth/industries/",
            )
        })?),
    };
    let minted = Uuid::now_v7();
    let create = TenantCommand::CreateSite {
        site_id: minted,
        name: input.name,
        slug: slug(input.slug)?,
        industry: input
            .industry
            .or_else(|| template.map(|t| t.name.to_string())),
        domain: input.domain,
    };
    let sectors: Vec<&str> = match template {
        Some(t) if input.with_suggested_sectors => t.sectors.to_vec(),
        _ => vec![],
    };
    if sectors.is_empty() {
        let out = tenant(bus, account, create, ctx).await?;
        let site_id = created_id(&out, "site_id", minted);
        return site_saved(bus, account, site_id, out).await;
    }
    // The site and its suggested sectors in one commit.
    if let Some(done) = crate::uow::replayed(bus, ctx).await? {
        let out = done
            .into_iter()
            .next()
            .ok_or_else(|| CommandError::Internal("a replay without its outcome".into()))?;
        let site_id = created_id(&out, "site_id", minted);
        return site_saved(bus, account, site_id, out).await;
    }
    let aid = account.to_string();
    let outcomes = crate::uow::retry(|| async {
        let mut uow = bus.unit(ctx);
        uow.execute::<Tenant>(&aid, create.clone()).await?;
        for name in &sectors {
            uow.execute::<Tenant>(
                &aid,
                TenantCommand::CreateSector {
                    site_id: minted,
                    sector_id: Uuid::now_v7(),
                    name: name.to_string(),
                    slug: None,
                },
            )
            .await?;
        }
        uow.commit().await
    })
    .await?;
    let out = outcomes
        .into_iter()
        .next()
        .ok_or_else(|| CommandError::Internal("a commit without events".into()))?;
    site_saved(bus, account, minted, out).await
}

pub async fn update_site(
    bus: &CommandBus,
    keyring: &Keyring,
    caller: &Caller,
    ctx: &CommandContext,
    site_id: Uuid,
    input: SiteUpdate,
) -> Result<SiteSaved, CommandError> {
    let (account, _) = visible_site(bus, caller, site_id).await?;
    caller.require_manage()?;
    // The WordPress fields are the site's connection's (publishing): one
    // commit changes both, so neither is half-written.
    if let Some(done) = crate::uow::replayed(bus, ctx).await? {
        let out = done
            .into_iter()
            .next()
            .ok_or_else(|| CommandError::Internal("a replay without its outcome".into()))?;
        return site_saved(bus, account, site_id, out).await;
    }
    let wp_id = igny8_domain::publishing::integration_id(site_id).to_string();
    let changes = SiteChanges {
        name: input.name,
        slug: slug(input.slug)?,
        industry: input.industry,
        domain: input.domain,
        status: input.status,
        wp_url: None,
        wp_username: None,
        wp_credential: None,
    };
    let (aid, input_wp) = (
        account.to_string(),
        (input.wp_url, input.wp_username, input.wp_app_password),
    );
    let outcomes = crate::uow::retry(|| async {
        let mut uow = bus.unit(ctx);
        let current: igny8_domain::publishing::WpIntegration = uow.state(&wp_id).await?;
        let wp = crate::publishing::integrations::site_fields_command(
            &current,
            account,
            site_id,
            keyring,
            input_wp.0.clone(),
            input_wp.1.clone(),
            input_wp.2.clone(),
        )?;
        uow.execute::<Tenant>(
            &aid,
            TenantCommand::UpdateSite {
                site_id,
                changes: changes.clone(),
            },
        )
        .await?;
        if let Some(cmd) = wp {
            uow.execute::<igny8_domain::publishing::WpIntegration>(&wp_id, cmd)
                .await?;
        }
        uow.commit().await
    })
    .await?;
    let out = match outcomes.into_iter().next() {
        Some(out) => out,
        // Nothing changed (an empty PATCH): the site as it is.
        None => {
            let (_, version) = bus.load::<Tenant>(&aid).await?;
            CommandOutcome {
                aggregate_type: <Tenant as igny8_domain::Aggregate>::TYPE.to_string(),
                aggregate_id: aid,
                version: version as i64,
                position: None,
                events: vec![],
                replayed: false,
            }
        }
    };
    site_saved(bus, account, site_id, out).await
}

pub async fn delete_site(
    bus: &CommandBus,
    caller: &Caller,
    ctx: &CommandContext,
    site_id: Uuid,
) -> Result<Removed, CommandError> {
    let (account, _) = visible_site(bus, caller, site_id).await?;
    caller.require_manage()?;
    let outcome = tenant(bus, account, TenantCommand::DeleteSite { site_id }, ctx).await?;
    Ok(Removed {
        id: site_id,
        outcome,
    })
}

pub async fn create_sector(
    bus: &CommandBus,
    caller: &Caller,
    ctx: &CommandContext,
    site_id: Uuid,
    input: NewSector,
) -> Result<SectorSaved, CommandError> {
    let (account, _) = visible_site(bus, caller, site_id).await?;
    caller.require_manage()?;
    let minted = Uuid::now_v7();
    let out = tenant(
        bus,
        account,
        TenantCommand::CreateSector {
            site_id,
            sector_id: minted,
            name: input.name,
            slug: slug(input.slug)?,
        },
        ctx,
    )
    .await?;
    let sector_id = created_id(&out, "sector_id", minted);
    sector_saved(bus, account, sector_id, out).await
}

/// Rename a sector or change its status.
pub async fn update_sector(
    bus: &CommandBus,
    caller: &Caller,
    ctx: &CommandContext,
    sector_id: Uuid,
    name: Option<String>,
    status: Option<String>,
) -> Result<SectorSaved, CommandError> {
    let (account, _) = visible_sector(bus, caller, sector_id).await?;
    caller.require_manage()?;
    let out = tenant(
        bus,
        account,
        TenantCommand::UpdateSector {
            sector_id,
            name,
            status,
        },
        ctx,
    )
    .await?;
    sector_saved(bus, account, sector_id, out).await
}

pub async fn delete_sector(
    bus: &CommandBus,
    caller: &Caller,
    ctx: &CommandContext,
    sector_id: Uuid,
) -> Result<Removed, CommandError> {
    let (account, _) = visible_sector(bus, caller, sector_id).await?;
    caller.require_manage()?;
    let outcome = tenant(bus, account, TenantCommand::DeleteSector { sector_id }, ctx).await?;
    Ok(Removed {
        id: sector_id,
        outcome,
    })
}
