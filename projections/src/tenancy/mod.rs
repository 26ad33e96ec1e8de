//! Tenancy read models: accounts (`rm_tenants`), users, sites, sectors and
//! API keys, each row carrying its `account_id` so every query is scoped.
//! Site grants are kept as a JSON array of ids.

mod queries;

pub use queries::*;

use crate::projection::{Applied, Index, Projection, Table, decode_until};
use async_trait::async_trait;
use igny8_commands::db::DbTx;
use igny8_commands::{DecodeError, StoredEvent, on_tx};
use igny8_domain::Aggregate;
use igny8_domain::publishing::{WpIntegration, WpIntegrationEvent};
use igny8_domain::tenancy::{ApiKey, ApiKeyEvent, Tenant, TenantEvent, User, UserEvent};
use uuid::Uuid;

pub struct TenancyProjection;

pub const NAME: &str = "tenancy";

const TABLES: &[Table] = &[
    Table {
        name: "rm_tenants",
        postgres: "CREATE TABLE IF NOT EXISTS {t} (account_id text COLLATE \"C\" PRIMARY KEY, name text NOT NULL,
            slug text NOT NULL, owner_id text NOT NULL, plan text NOT NULL, created_at timestamptz NOT NULL)",
        sqlite: "CREATE TABLE IF NOT EXISTS {t} (account_id TEXT PRIMARY KEY, name TEXT NOT NULL,
            slug TEXT NOT NULL, owner_id TEXT NOT NULL, plan TEXT NOT NULL, created_at TEXT NOT NULL)",
        indexes: &[],
    },
    Table {
        name: "rm_users",
        postgres: "CREATE TABLE IF NOT EXISTS {t} (user_id text COLLATE \"C\" PRIMARY KEY,
            account_id text COLLATE \"C\" NOT NULL, email text NOT NULL, name text NOT NULL, role text NOT NULL,
            site_ids text NOT NULL DEFAULT '[]', created_at timestamptz NOT NULL, updated_at timestamptz NOT NULL)",
        sqlite: "CREATE TABLE IF NOT EXISTS {t} (user_id TEXT PRIMARY KEY, account_id TEXT NOT NULL,
            email TEXT NOT NULL, name TEXT NOT NULL, role TEXT NOT NULL, site_ids TEXT NOT NULL DEFAULT '[]',
            created_at TEXT NOT NULL, updated_at TEXT NOT NULL)",
        indexes: &[Index { name: "rm_users_account_idx", columns: "account_id, email" }],
    },
    Table {
        name: "rm_sites",
        postgres: "CREATE TABLE IF NOT EXISTS {t} (site_id text COLLATE \"C\" PRIMARY KEY,
            account_id text COLLATE \"C\" NOT NULL, name text NOT NULL, slug text NOT NULL, industry text,
            domain text, status text NOT NULL, wp_url text, wp_username text, wp_integration_id text,
            created_at timestamptz NOT NULL, updated_at timestamptz NOT NULL)",
        sqlite: "CREATE TABLE IF NOT EXISTS {t} (site_id TEXT PRIMARY KEY, account_id TEXT NOT NULL,
            name TEXT NOT NULL, slug TEXT NOT NULL, industry TEXT, domain TEXT, status TEXT NOT NULL,
            wp_url TEXT, wp_username TEXT, wp_integration_id TEXT, created_at TEXT NOT NULL, updated_at TEXT NOT NULL)",
        indexes: &[
            Index { name: "rm_sites_account_idx", columns: "account_id, slug" },
            Index { name: "rm_sites_wp_idx", columns: "wp_integration_id" },
        ],
    },
    Table {
        name: "rm_sectors",
        postgres: "CREATE TABLE IF NOT EXISTS {t} (sector_id text COLLATE \"C\" PRIMARY KEY,
            account_id text COLLATE \"C\" NOT NULL, site_id text COLLATE \"C\" NOT NULL, name text NOT NULL,
            slug text NOT NULL, status text NOT NULL, created_at timestamptz NOT NULL, updated_at timestamptz NOT NULL)",
        sqlite: "CREATE TABLE IF NOT EXISTS {t} (sector_id TEXT PRIMARY KEY, account_id TEXT NOT NULL,
            site_id TEXT NOT NULL, name TEXT NOT NULL, slug TEXT NOT NULL, status TEXT NOT NULL,
            created_at TEXT NOT NULL, updated_at TEXT NOT NULL)",
        indexes: &[Index { name: "rm_sectors_site_idx", columns: "site_id, slug" }],
    },
    Table {
        name: "rm_api_keys",
        postgres: "CREATE TABLE IF NOT EXISTS {t} (key_id text COLLATE \"C\" PRIMARY KEY,
            account_id text COLLATE \"C\" NOT NULL, name text NOT NULL, role text NOT NULL,
            site_ids text NOT NULL DEFAULT '[]', prefix text NOT NULL, created_by text NOT NULL,
            created_at timestamptz NOT NULL, last_used_at timestamptz, revoked_at timestamptz)",
        sqlite: "CREATE TABLE IF NOT EXISTS {t} (key_id TEXT PRIMARY KEY, account_id TEXT NOT NULL,
            name TEXT NOT NULL, role TEXT NOT NULL, site_ids TEXT NOT NULL DEFAULT '[]', prefix TEXT NOT NULL,
            created_by TEXT NOT NULL, created_at TEXT NOT NULL, last_used_at TEXT, revoked_at TEXT)",
        indexes: &[Index { name: "rm_api_keys_account_idx", columns: "account_id, created_at" }],
    },
];

/// The events this projection reads.
enum Input {
    Tenant(TenantEvent),
    User(UserEvent),
    ApiKey(ApiKeyEvent),
    /// A site's WordPress fields are its connection's.
    WordPress(WpIntegrationEvent),
}

fn decode(ev: &StoredEvent) -> Result<Option<Input>, DecodeError> {
    Ok(Some(match ev.aggregate_type.as_str() {
        Tenant::TYPE => Input::Tenant(ev.decode()?),
        User::TYPE => Input::User(ev.decode()?),
        ApiKey::TYPE => Input::ApiKey(ev.decode()?),
        WpIntegration::TYPE => Input::WordPress(ev.decode()?),
        _ => return Ok(None),
    }))
}

/// Site grants as stored: a JSON array of ids.
fn ids_json(ids: &[Uuid]) -> anyhow::Result<String> {
    Ok(serde_json::to_string(ids)?)
}

/// Run one statement with text/optional-text parameters in the runner's transaction.
macro_rules! exec {
    ($tx:expr, $sql:expr $(, $arg:expr)* $(,)?) => {{
        let sql: String = $sql;
        on_tx!($tx, c => sqlx::query(&sql)$(.bind($arg))*.execute(&mut *c).await.map(|_| ()))?;
    }};
}

#[async_trait]
impl Projection for TenancyProjection {
    fn name(&self) -> &'static str {
        NAME
    }

    fn tables(&self) -> &'static [Table] {
        TABLES
    }

    fn version(&self) -> u32 {
        // 2: a site's wp_url and wp_username come from its WordPress connection.
        2
    }

    async fn apply_all(
        &self,
        tx: &mut DbTx,
        sfx: &str,
        events: &[&StoredEvent],
    ) -> anyhow::Result<Applied> {
        let (typed, applied) = decode_until(events, decode);
        for (ev, e) in &typed {
            match e {
                Input::Tenant(e) => tenant(tx, sfx, ev, e).await?,
                Input::User(e) => user(tx, sfx, ev, e).await?,
                Input::ApiKey(e) => api_key(tx, sfx, ev, e).await?,
                Input::WordPress(e) => wordpress(tx, sfx, ev, e).await?,
            }
        }
        Ok(applied)
    }
}

async fn wordpress(
    tx: &mut DbTx,
    sfx: &str,
    ev: &StoredEvent,
    e: &WpIntegrationEvent,
) -> anyhow::Result<()> {
    let id = ev.aggregate_id.as_str();
    match e {
        WpIntegrationEvent::WordPressConnected {
            site_id,
            url,
            username,
            ..
        } => exec!(
            tx,
            format!(
                "UPDATE rm_sites{sfx} SET wp_url = $2, wp_username = $3, wp_integration_id = $4 WHERE site_id = $1"
            ),
            site_id.to_string(),
            url,
            username,
            id
        ),
        WpIntegrationEvent::WordPressConnectionChanged { url, username, .. } => exec!(
            tx,
            format!(
                "UPDATE rm_sites{sfx} SET wp_url = $2, wp_username = $3 WHERE wp_integration_id = $1"
            ),
            id,
            url,
            username
        ),
        WpIntegrationEvent::WordPressDisconnected {} => exec!(
            tx,
            format!(
                "UPDATE rm_sites{sfx} SET wp_url = NULL, wp_username = NULL, wp_integration_id = NULL WHERE wp_integration_id = $1"
            ),
            id
        ),
        WpIntegrationEvent::WordPressConnectionTested { .. } => {}
    }
    Ok(())
}

async fn tenant(tx: &mut DbTx, sfx: &str, ev: &StoredEvent, e: &TenantEvent) -> anyhow::Result<()> {
    let at = ev.recorded_at;
    let id = ev.aggregate_id.as_str();
    match e {
        TenantEvent::TenantCreated {
            name,
            slug,
            owner_id,
            plan,
            ..
        } => exec!(
            tx,
            format!(
                "INSERT INTO rm_tenants{sfx} (account_id, name, slug, owner_id, plan, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (account_id) DO NOTHING"
            ),
            id,
            name,
            slug,
            owner_id.to_string(),
            plan,
            at
        ),
        TenantEvent::PlanChanged { plan, .. } => exec!(
            tx,
            format!("UPDATE rm_tenants{sfx} SET plan = $2 WHERE account_id = $1"),
            id,
            plan
        ),
        TenantEvent::SiteCreated {
            site_id,
            name,
            slug,
            industry,
            domain,
        } => exec!(
            tx,
            format!(
                "INSERT INTO rm_sites{sfx} (site_id, account_id, name, slug, industry, domain, status, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, 'active', $7, $7) ON CONFLICT (site_id) DO NOTHING"
            ),
            site_id.to_string(),
            id,
            name,
            slug,
            industry,
            domain,
            at
        ),
        TenantEvent::SiteUpdated {
            site_id,
            name,
            slug,
            industry,
            domain,
            status,
            ..
        } => exec!(
            tx,
            format!(
                "UPDATE rm_sites{sfx} SET name = $2, slug = $3, industry = $4, domain = $5, status = $6, \
                 updated_at = $7 WHERE site_id = $1"
            ),
            site_id.to_string(),
            name,
            slug,
            industry,
            domain,
            status,
            at
        ),
        TenantEvent::SiteDeleted { site_id, .. } => {
            exec!(
                tx,
                format!("DELETE FROM rm_sectors{sfx} WHERE site_id = $1"),
                site_id.to_string()
            );
            exec!(
                tx,
                format!("DELETE FROM rm_sites{sfx} WHERE site_id = $1"),
                site_id.to_string()
            );
        }
        TenantEvent::SectorCreated {
            site_id,
            sector_id,
            name,
            slug,
        } => exec!(
            tx,
            format!(
                "INSERT INTO rm_sectors{sfx} (sector_id, account_id, site_id, name, slug, status, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, 'active', $6, $6) ON CONFLICT (sector_id) DO NOTHING"
            ),
            sector_id.to_string(),
            id,
            site_id.to_string(),
            name,
            slug,
            at
        ),
        TenantEvent::SectorUpdated {
            sector_id,
            name,
            status,
            ..
        } => exec!(
            tx,
            format!(
                "UPDATE rm_sectors{sfx} SET name = $2, status = $3, updated_at = $4 WHERE sector_id = $1"
            ),
            sector_id.to_string(),
            name,
            status,
            at
        ),
        TenantEvent::SectorDeleted { sector_id, .. } => exec!(
            tx,
            format!("DELETE FROM rm_sectors{sfx} WHERE sector_id = $1"),
            sector_id.to_string()
        ),
    }
    Ok(())
}

async fn user(tx: &mut DbTx, sfx: &str, ev: &StoredEvent, e: &UserEvent) -> anyhow::Result<()> {
    let at = ev.recorded_at;
    let id = ev.aggregate_id.as_str();
    match e {
        UserEvent::UserRegistered {
            account_id,
            email,
            name,
            role,
            ..
        } => exec!(
            tx,
            format!(
                "INSERT INTO rm_users{sfx} (user_id, account_id, email, name, role, site_ids, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, '[]', $6, $6) ON CONFLICT (user_id) DO NOTHING"
            ),
            id,
            account_id.to_string(),
            email,
            name,
            role.as_str(),
            at
        ),
        UserEvent::UserRoleChanged { role } => exec!(
            tx,
            format!("UPDATE rm_users{sfx} SET role = $2, updated_at = $3 WHERE user_id = $1"),
            id,
            role.as_str(),
            at
        ),
        UserEvent::UserRenamed { name } => exec!(
            tx,
            format!("UPDATE rm_users{sfx} SET name = $2, updated_at = $3 WHERE user_id = $1"),
            id,
            name,
            at
        ),
        UserEvent::UserSitesSet { site_ids } => exec!(
            tx,
            format!("UPDATE rm_users{sfx} SET site_ids = $2, updated_at = $3 WHERE user_id = $1"),
            id,
            ids_json(site_ids)?,
            at
        ),
        UserEvent::UserDeleted {} => exec!(
            tx,
            format!("DELETE FROM rm_users{sfx} WHERE user_id = $1"),
            id
        ),
        UserEvent::UserCredentialChanged { .. } => {}
    }
    Ok(())
}

async fn api_key(
    tx: &mut DbTx,
    sfx: &str,
    ev: &StoredEvent,
    e: &ApiKeyEvent,
) -> anyhow::Result<()> {
    let at = ev.recorded_at;
    let id = ev.aggregate_id.as_str();
    match e {
        ApiKeyEvent::ApiKeyCreated {
            account_id,
            name,
            role,
            site_ids,
            prefix,
            ..
        } => exec!(
            tx,
            format!(
                "INSERT INTO rm_api_keys{sfx} (key_id, account_id, name, role, site_ids, prefix, created_by, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (key_id) DO NOTHING"
            ),
            id,
            account_id.to_string(),
            name,
            role.as_str(),
            ids_json(site_ids)?,
            prefix,
            ev.meta("actor").unwrap_or("system").to_string(),
            at
        ),
        ApiKeyEvent::ApiKeyUsed { .. } => exec!(
            tx,
            format!("UPDATE rm_api_keys{sfx} SET last_used_at = $2 WHERE key_id = $1"),
            id,
            at
        ),
        ApiKeyEvent::ApiKeyRevoked {} => exec!(
            tx,
            format!("UPDATE rm_api_keys{sfx} SET revoked_at = $2 WHERE key_id = $1"),
            id,
            at
        ),
    }
    Ok(())
}
