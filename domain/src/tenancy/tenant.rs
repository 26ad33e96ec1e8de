//! The account's profile with its sites and sectors. One aggregate per
//! account, so "at most 5 sectors per site", "slugs unique per account" and
//! the plan's site limit are decided on one consistent state.

use super::{Slug, TenancyError, check_name, check_status, check_url};
use crate::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use uuid::Uuid;

pub const MAX_SECTORS_PER_SITE: usize = 5;

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Tenant {
    pub created: bool,
    pub name: String,
    pub slug: String,
    pub owner_id: Option<Uuid>,
    pub plan: String,
    /// `None`: unlimited.
    pub max_sites: Option<u32>,
    pub sites: BTreeMap<Uuid, Site>,
    pub sectors: BTreeMap<Uuid, Sector>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Site {
    pub name: String,
    pub slug: String,
    pub industry: Option<String>,
    pub domain: Option<String>,
    pub status: String,
    pub wp_url: Option<String>,
    pub wp_username: Option<String>,
    /// The WordPress application password, sealed (AES-GCM) by the
    /// application layer; never in clear here or in events.
    #[serde(default)]
    pub wp_credential: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Sector {
    pub site_id: Uuid,
    pub name: String,
    pub slug: String,
    pub status: String,
}

/// A partial update: `None` leaves the field as it is; `Some(None)` clears
/// an optional field.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SiteChanges {
    pub name: Option<String>,
    pub slug: Option<Slug>,
    pub industry: Option<Option<String>>,
    pub domain: Option<Option<String>>,
    pub status: Option<String>,
    pub wp_url: Option<Option<String>>,
    pub wp_username: Option<Option<String>>,
    /// Sealed application password (`Some(None)` removes it).
    pub wp_credential: Option<Option<String>>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum TenantCommand {
    Create {
        name: String,
        slug: Slug,
        owner_id: Uuid,
        plan: String,
        max_sites: Option<u32>,
    },
    CreateSite {
        site_id: Uuid,
        name: String,
        slug: Option<Slug>,
        industry: Option<String>,
        domain: Option<String>,
    },
    UpdateSite {
        site_id: Uuid,
        changes: SiteChanges,
    },
    DeleteSite {
        site_id: Uuid,
    },
    CreateSector {
        site_id: Uuid,
        sector_id: Uuid,
        name: String,
        slug: Option<Slug>,
    },
    UpdateSector {
        sector_id: Uuid,
        name: Option<String>,
        status: Option<String>,
    },
    DeleteSector {
        sector_id: Uuid,
    },
    ChangePlan {
        plan: String,
        max_sites: Option<u32>,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum TenantEvent {
    TenantCreated {
        name: String,
        slug: String,
        owner_id: Uuid,
        plan: String,
        max_sites: Option<u32>,
    },
    SiteCreated {
        site_id: Uuid,
        name: String,
        slug: String,
        industry: Option<String>,
        domain: Option<String>,
    },
    /// The site's full state after the change (readers need no merge logic).
    SiteUpdated {
        site_id: Uuid,
        name: String,
        slug: String,
        industry: Option<String>,
        domain: Option<String>,
        status: String,
        wp_url: Option<String>,
        wp_username: Option<String>,
        /// Sealed; absent in events written before it existed.
        #[serde(default)]
        wp_credential: Option<String>,
    },
    /// The site and its sectors are gone.
    SiteDeleted {
        site_id: Uuid,
        sector_ids: Vec<Uuid>,
    },
    SectorCreated {
        site_id: Uuid,
        sector_id: Uuid,
        name: String,
        slug: String,
    },
    SectorUpdated {
        site_id: Uuid,
        sector_id: Uuid,
        name: String,
        status: String,
    },
    SectorDeleted {
        site_id: Uuid,
        sector_id: Uuid,
    },
    PlanChanged {
        plan: String,
        max_sites: Option<u32>,
    },
}

impl DomainEvent for TenantEvent {
    fn event_type(&self) -> &'static str {
        match self {
            TenantEvent::TenantCreated { .. } => "TenantCreated",
            TenantEvent::SiteCreated { .. } => "SiteCreated",
            TenantEvent::SiteUpdated { .. } => "SiteUpdated",
            TenantEvent::SiteDeleted { .. } => "SiteDeleted",
            TenantEvent::SectorCreated { .. } => "SectorCreated",
            TenantEvent::SectorUpdated { .. } => "SectorUpdated",
            TenantEvent::SectorDeleted { .. } => "SectorDeleted",
            TenantEvent::PlanChanged { .. } => "PlanChanged",
        }
    }
}

fn short(raw: Option<String>, what: &'static str) -> Result<Option<String>, TenancyError> {
    match raw.map(|s| s.trim().to_string()) {
        None => Ok(None),
        Some(s) if s.is_empty() => Ok(None),
        Some(s) => check_name(&s, what).map(Some),
    }
}

impl Tenant {
    fn site_slug_taken(&self, slug: &str, except: Option<Uuid>) -> bool {
        self.sites
            .iter()
            .any(|(id, s)| s.slug == slug && Some(*id) != except)
    }

    fn sector_slug_taken(&self, site_id: Uuid, slug: &str, except: Option<Uuid>) -> bool {
        self.sectors
            .iter()
            .any(|(id, s)| s.site_id == site_id && s.slug == slug && Some(*id) != except)
    }

    pub fn sectors_of(&self, site_id: Uuid) -> impl Iterator<Item = (&Uuid, &Sector)> {
        self.sectors
            .iter()
            .filter(move |(_, s)| s.site_id == site_id)
    }
}

impl Aggregate for Tenant {
    const TYPE: &'static str = "tenant";
    type Command = TenantCommand;
    type Event = TenantEvent;
    type Error = TenancyError;

    fn decide(&self, command: TenantCommand) -> Result<Vec<TenantEvent>, TenancyError> {
        if let TenantCommand::Create {
            name,
            slug,
            owner_id,
            plan,
            max_sites,
        } = command
        {
            if self.created {
                return Err(TenancyError::AlreadyExists("account"));
            }
            let name = check_name(&name, "account_name")?;
            let slug = slug.into_string();
            return Ok(vec![TenantEvent::TenantCreated {
                name,
                slug,
                owner_id,
                plan,
                max_sites,
            }]);
        }
        if !self.created {
            return Err(TenancyError::NotFound("account"));
        }
        match command {
            TenantCommand::Create { .. } => unreachable!("handled above"),
            TenantCommand::CreateSite {
                site_id,
                name,
                slug,
                industry,
                domain,
            } => {
                if self.sites.contains_key(&site_id) {
                    return Err(TenancyError::AlreadyExists("site"));
                }
                if let Some(max) = self.max_sites
                    && self.sites.len() >= max as usize
                {
                    return Err(TenancyError::SiteLimit(max));
                }
                let name = check_name(&name, "name")?;
                let slug = slug.unwrap_or_else(|| Slug::from_name(&name)).into_string();
                if self.site_slug_taken(&slug, None) {
                    return Err(TenancyError::SlugTaken(slug));
                }
                let domain = match domain.filter(|d| !d.trim().is_empty()) {
                    Some(d) => Some(check_url(&d, "domain")?),
                    None => None,
                };
                Ok(vec![TenantEvent::SiteCreated {
                    site_id,
                    name,
                    slug,
                    industry: short(industry, "industry")?,
                    domain,
                }])
            }
            TenantCommand::UpdateSite { site_id, changes } => {
                let site = self
                    .sites
                    .get(&site_id)
                    .ok_or(TenancyError::NotFound("site"))?;
                let name = match changes.name {
                    Some(n) => check_name(&n, "name")?,
                    None => site.name.clone(),
                };
                let slug = match changes.slug {
                    Some(s) => s.into_string(),
                    None => site.slug.clone(),
                };
                if self.site_slug_taken(&slug, Some(site_id)) {
                    return Err(TenancyError::SlugTaken(slug));
                }
                let url = |v: Option<Option<String>>, cur: &Option<String>, what| match v {
                    None => Ok(cur.clone()),
                    Some(None) => Ok(None),
                    Some(Some(s)) if s.trim().is_empty() => Ok(None),
                    Some(Some(s)) => check_url(&s, what).map(Some),
                };
                let text = |v: Option<Option<String>>, cur: &Option<String>, what| match v {
                    None => Ok(cur.clone()),
                    Some(v) => short(v, what),
                };
                let updated = TenantEvent::SiteUpdated {
                    site_id,
                    name,
                    slug,
                    industry: text(changes.industry, &site.industry, "industry")?,
                    domain: url(changes.domain, &site.domain, "domain")?,
                    status: match changes.status {
                        Some(s) => check_status(&s)?,
                        None => site.status.clone(),
                    },
                    wp_url: url(changes.wp_url, &site.wp_url, "wp_url")?,
                    wp_username: text(changes.wp_username, &site.wp_username, "wp_username")?,
                    wp_credential: match changes.wp_credential {
                        None => site.wp_credential.clone(),
                        Some(c) => c,
                    },
                };
                let mut after = self.clone();
                after.apply(&updated);
                if after.sites.get(&site_id) == Some(site) {
                    return Ok(vec![]);
                }
                Ok(vec![updated])
            }
            TenantCommand::DeleteSite { site_id } => {
                if !self.sites.contains_key(&site_id) {
                    return Err(TenancyError::NotFound("site"));
                }
                let sector_ids = self.sectors_of(site_id).map(|(id, _)| *id).collect();
                Ok(vec![TenantEvent::SiteDeleted {
                    site_id,
                    sector_ids,
                }])
            }
            TenantCommand::CreateSector {
                site_id,
                sector_id,
                name,
                slug,
            } => {
                if !self.sites.contains_key(&site_id) {
                    return Err(TenancyError::NotFound("site"));
                }
                if self.sectors.contains_key(&sector_id) {
                    return Err(TenancyError::AlreadyExists("sector"));
                }
                if self.sectors_of(site_id).count() >= MAX_SECTORS_PER_SITE {
                    return Err(TenancyError::SectorLimit);
                }
                let name = check_name(&name, "name")?;
                let slug = slug.unwrap_or_else(|| Slug::from_name(&name)).into_string();
                if self.sector_slug_taken(site_id, &slug, None) {
                    return Err(TenancyError::SlugTaken(slug));
                }
                Ok(vec![TenantEvent::SectorCreated {
                    site_id,
                    sector_id,
                    name,
                    slug,
                }])
            }
            TenantCommand::UpdateSector {
                sector_id,
                name,
                status,
            } => {
                let sector = self
                    .sectors
                    .get(&sector_id)
                    .ok_or(TenancyError::NotFound("sector"))?;
                let name = match name {
                    Some(n) => check_name(&n, "name")?,
                    None => sector.name.clone(),
                };
                let status = match status {
                    Some(s) => check_status(&s)?,
                    None => sector.status.clone(),
                };
                if name == sector.name && status == sector.status {
                    return Ok(vec![]);
                }
                Ok(vec![TenantEvent::SectorUpdated {
                    site_id: sector.site_id,
                    sector_id,
                    name,
                    status,
                }])
            }
            TenantCommand::ChangePlan { plan, max_sites } => {
                if plan == self.plan && max_sites == self.max_sites {
                    return Ok(vec![]);
                }
                Ok(vec![TenantEvent::PlanChanged { plan, max_sites }])
            }
            TenantCommand::DeleteSector { sector_id } => {
                let sector = self
                    .sectors
                    .get(&sector_id)
                    .ok_or(TenancyError::NotFound("sector"))?;
                Ok(vec![TenantEvent::SectorDeleted {
                    site_id: sector.site_id,
                    sector_id,
                }])
            }
        }
    }

    fn apply(&mut self, event: &TenantEvent) {
        match event {
            TenantEvent::TenantCreated {
                name,
                slug,
                owner_id,
                plan,
                max_sites,
            } => {
                self.created = true;
                self.name = name.clone();
                self.slug = slug.clone();
                self.owner_id = Some(*owner_id);
                self.plan = plan.clone();
                self.max_sites = *max_sites;
            }
            TenantEvent::SiteCreated {
                site_id,
                name,
                slug,
                industry,
                domain,
            } => {
                self.sites.insert(
                    *site_id,
                    Site {
                        name: name.clone(),
                        slug: slug.clone(),
                        industry: industry.clone(),
                        domain: domain.clone(),
                        status: "active".into(),
                        wp_url: None,
                        wp_username: None,
                        wp_credential: None,
                    },
                );
            }
            TenantEvent::SiteUpdated {
                site_id,
                name,
                slug,
                industry,
                domain,
                status,
                wp_url,
                wp_username,
                wp_credential,
            } => {
                if let Some(s) = self.sites.get_mut(site_id) {
                    s.wp_credential = wp_credential.clone();
                    s.name = name.clone();
                    s.slug = slug.clone();
                    s.industry = industry.clone();
                    s.domain = domain.clone();
                    s.status = status.clone();
                    s.wp_url = wp_url.clone();
                    s.wp_username = wp_username.clone();
                }
            }
            TenantEvent::SiteDeleted { site_id, .. } => {
                self.sites.remove(site_id);
                self.sectors.retain(|_, s| s.site_id != *site_id);
            }
            TenantEvent::SectorCreated {
                site_id,
                sector_id,
                name,
                slug,
            } => {
                self.sectors.insert(
                    *sector_id,
                    Sector {
                        site_id: *site_id,
                        name: name.clone(),
                        slug: slug.clone(),
                        status: "active".into(),
                    },
                );
            }
            TenantEvent::SectorUpdated {
                sector_id,
                name,
                status,
                ..
            } => {
                if let Some(s) = self.sectors.get_mut(sector_id) {
                    s.name = name.clone();
                    s.status = status.clone();
                }
            }
            TenantEvent::SectorDeleted { sector_id, .. } => {
                self.sectors.remove(sector_id);
            }
            TenantEvent::PlanChanged { plan, max_sites } => {
                self.plan = plan.clone();
                self.max_sites = *max_sites;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tenant() -> Tenant {
        let mut t = Tenant::default();
        for e in t
            .decide(TenantCommand::Create {
                name: "Acme".into(),
                slug: Slug::parse("acme").unwrap(),
                owner_id: Uuid::nil(),
                plan: "free".into(),
                max_sites: Some(2),
            })
            .unwrap()
        {
            t.apply(&e);
        }
        t
    }

    fn run(t: &mut Tenant, c: TenantCommand) -> Result<(), TenancyError> {
        for e in t.decide(c)? {
            t.apply(&e);
        }
        Ok(())
    }

    fn site(name: &str) -> (Uuid, TenantCommand) {
        let id = Uuid::new_v4();
        (
            id,
            TenantCommand::CreateSite {
                site_id: id,
                name: name.into(),
                slug: None,
                industry: None,
                domain: None,
            },
        )
    }

    #[test]
    fn at_most_five_sectors_per_site() {
        let mut t = tenant();
        let (s, c) = site("Blog");
        run(&mut t, c).unwrap();
        for i in 0..5 {
            run(
                &mut t,
                TenantCommand::CreateSector {
                    site_id: s,
                    sector_id: Uuid::new_v4(),
                    name: format!("Sector {i}"),
                    slug: None,
                },
            )
            .unwrap();
        }
        let sixth = TenantCommand::CreateSector {
            site_id: s,
            sector_id: Uuid::new_v4(),
            name: "Sixth".into(),
            slug: None,
        };
        assert_eq!(t.decide(sixth).unwrap_err(), TenancyError::SectorLimit);
    }

    #[test]
    fn slugs_unique_and_site_limit() {
        let mut t = tenant();
        run(&mut t, site("Blog").1).unwrap();
        assert_eq!(
            t.decide(site("blog").1).unwrap_err(),
            TenancyError::SlugTaken("blog".into())
        );
        run(&mut t, site("Shop").1).unwrap();
        assert_eq!(
            t.decide(site("Third").1).unwrap_err(),
            TenancyError::SiteLimit(2)
        );
    }
}
