//! Tenancy read models: accounts (`rm_tenants`), users, sites, sectors and
//! API keys, each row carrying its `account_id` so every query is scoped.
//! Site grants are kept as a JSON array of ids.

mod queries;

pub use queries::*;

use crate::projection::{Index, Projection, Table};
use async_trait::async_trait;
use igny8_commands::db::DbTx;
use igny8_commands::{StoredEvent, on_tx};
use serde_json::Value;

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
            domain text, status text NOT NULL, wp_url text, wp_username text,
            created_at timestamptz NOT NULL, updated_at timestamptz NOT NULL)",
        sqlite: "CREATE TABLE IF NOT EXISTS {t} (site_id TEXT PRIMARY KEY, account_id TEXT NOT NULL,
            name TEXT NOT NULL, slug TEXT NOT NULL, industry TEXT, domain TEXT, status TEXT NOT NULL,
            wp_url TEXT, wp_username TEXT, created_at TEXT NOT NULL, updated_at TEXT NOT NULL)",
        indexes: &[Index { name: "rm_sites_account_idx", columns: "account_id, slug" }],
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

fn s(v: &Value, k: &str) -> Option<String> {
    v.get(k).and_then(Value::as_str).map(str::to_string)
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

    async fn apply(&self, tx: &mut DbTx, sfx: &str, ev: &StoredEvent) -> anyhow::Result<()> {
        let b = ev.body();
        let at = ev.recorded_at;
        let id = ev.aggregate_id.as_str();
        match (ev.aggregate_type.as_str(), ev.event_type.as_str()) {
            ("tenant", "TenantCreated") => exec!(
                tx,
                format!(
                    "INSERT INTO rm_tenants{sfx} (account_id, name, slug, owner_id, plan, created_at) \
                     VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (account_id) DO NOTHING"
                ),
                id,
                s(b, "name"),
                s(b, "slug"),
                s(b, "owner_id"),
                s(b, "plan"),
                at
            ),
            ("tenant", "PlanChanged") => exec!(
                tx,
                format!("UPDATE rm_tenants{sfx} SET plan = $2 WHERE account_id = $1"),
                id,
                s(b, "plan")
            ),
            ("tenant", "SiteCreated") => exec!(
                tx,
                format!(
                    "INSERT INTO rm_sites{sfx} (site_id, account_id, name, slug, industry, domain, status, created_at, updated_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, 'active', $7, $7) ON CONFLICT (site_id) DO NOTHING"
                ),
                s(b, "site_id"),
                id,
                s(b, "name"),
                s(b, "slug"),
                s(b, "industry"),
                s(b, "domain"),
                at
            ),
            ("tenant", "SiteUpdated") => exec!(
                tx,
                format!(
                    "UPDATE rm_sites{sfx} SET name = $2, slug = $3, industry = $4, domain = $5, status = $6, \
                     wp_url = $7, wp_username = $8, updated_at = $9 WHERE site_id = $1"
                ),
                s(b, "site_id"),
                s(b, "name"),
                s(b, "slug"),
                s(b, "industry"),
                s(b, "domain"),
                s(b, "status"),
                s(b, "wp_url"),
                s(b, "wp_username"),
                at
            ),
            ("tenant", "SiteDeleted") => {
                exec!(
                    tx,
                    format!("DELETE FROM rm_sectors{sfx} WHERE site_id = $1"),
                    s(b, "site_id")
                );
                exec!(
                    tx,
                    format!("DELETE FROM rm_sites{sfx} WHERE site_id = $1"),
                    s(b, "site_id")
                );
            }
            ("tenant", "SectorCreated") => exec!(
                tx,
                format!(
                    "INSERT INTO rm_sectors{sfx} (sector_id, account_id, site_id, name, slug, status, created_at, updated_at) \
                     VALUES ($1, $2, $3, $4, $5, 'active', $6, $6) ON CONFLICT (sector_id) DO NOTHING"
                ),
                s(b, "sector_id"),
                id,
                s(b, "site_id"),
                s(b, "name"),
                s(b, "slug"),
                at
            ),
            ("tenant", "SectorUpdated") => exec!(
                tx,
                format!(
                    "UPDATE rm_sectors{sfx} SET name = $2, status = $3, updated_at = $4 WHERE sector_id = $1"
                ),
                s(b, "sector_id"),
                s(b, "name"),
                s(b, "status"),
                at
            ),
            ("tenant", "SectorDeleted") => exec!(
                tx,
                format!("DELETE FROM rm_sectors{sfx} WHERE sector_id = $1"),
                s(b, "sector_id")
            ),
            ("user", "UserRegistered") => exec!(
                tx,
                format!(
                    "INSERT INTO rm_users{sfx} (user_id, account_id, email, name, role, site_ids, created_at, updated_at) \
                     VALUES ($1, $2, $3, $4, $5, '[]', $6, $6) ON CONFLICT (user_id) DO NOTHING"
                ),
                id,
                s(b, "account_id"),
                s(b, "email"),
                s(b, "name"),
                s(b, "role"),
                at
            ),
            ("user", "UserRoleChanged") => exec!(
                tx,
                format!("UPDATE rm_users{sfx} SET role = $2, updated_at = $3 WHERE user_id = $1"),
                id,
                s(b, "role"),
                at
            ),
            ("user", "UserRenamed") => exec!(
                tx,
                format!("UPDATE rm_users{sfx} SET name = $2, updated_at = $3 WHERE user_id = $1"),
                id,
                s(b, "name"),
                at
            ),
            ("user", "UserSitesSet") => exec!(
                tx,
                format!(
                    "UPDATE rm_users{sfx} SET site_ids = $2, updated_at = $3 WHERE user_id = $1"
                ),
                id,
                b["site_ids"].to_string(),
                at
            ),
            ("user", "UserDeleted") => exec!(
                tx,
                format!("DELETE FROM rm_users{sfx} WHERE user_id = $1"),
                id
            ),
            ("api_key", "ApiKeyCreated") => exec!(
                tx,
                format!(
                    "INSERT INTO rm_api_keys{sfx} (key_id, account_id, name, role, site_ids, prefix, created_by, created_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (key_id) DO NOTHING"
                ),
                id,
                s(b, "account_id"),
                s(b, "name"),
                s(b, "role"),
                b["site_ids"].to_string(),
                s(b, "prefix"),
                ev.meta("actor").unwrap_or("system").to_string(),
                at
            ),
            ("api_key", "ApiKeyUsed") => exec!(
                tx,
                format!("UPDATE rm_api_keys{sfx} SET last_used_at = $2 WHERE key_id = $1"),
                id,
                at
            ),
            ("api_key", "ApiKeyRevoked") => exec!(
                tx,
                format!("UPDATE rm_api_keys{sfx} SET revoked_at = $2 WHERE key_id = $1"),
                id,
                at
            ),
            _ => {}
        }
        Ok(())
    }
}
