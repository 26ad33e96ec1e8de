//! Read queries over the tenancy read models. Every query takes the
//! caller's account id: rows of other accounts are never returned.

use chrono::{DateTime, Utc};
use igny8_commands::db::Db;
use igny8_commands::on_db;
use serde::{Serialize, Serializer};

fn json_ids<S: Serializer>(raw: &str, s: S) -> Result<S::Ok, S::Error> {
    let ids: Vec<String> = serde_json::from_str(raw).unwrap_or_default();
    ids.serialize(s)
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct TenantRow {
    pub account_id: String,
    pub name: String,
    pub slug: String,
    pub owner_id: String,
    pub plan: String,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct UserRow {
    #[serde(rename = "id")]
    pub user_id: String,
    pub account_id: String,
    pub email: String,
    pub name: String,
    pub role: String,
    #[serde(serialize_with = "json_ids")]
    #[schema(value_type = Vec<String>)]
    pub site_ids: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct SiteRow {
    #[serde(rename = "id")]
    pub site_id: String,
    pub account_id: String,
    pub name: String,
    pub slug: String,
    pub industry: Option<String>,
    pub domain: Option<String>,
    pub status: String,
    pub wp_url: Option<String>,
    pub wp_username: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct SectorRow {
    #[serde(rename = "id")]
    pub sector_id: String,
    pub account_id: String,
    pub site_id: String,
    pub name: String,
    pub slug: String,
    pub status: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct ApiKeyRow {
    #[serde(rename = "id")]
    pub key_id: String,
    pub account_id: String,
    pub name: String,
    pub role: String,
    #[serde(serialize_with = "json_ids")]
    #[schema(value_type = Vec<String>)]
    pub site_ids: String,
    /// The first characters of the key, to recognise it; never the secret.
    pub prefix: String,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

pub async fn get_tenant(db: &Db, account_id: &str) -> Result<Option<TenantRow>, sqlx::Error> {
    on_db!(db, p => sqlx::query_as(
        "SELECT account_id, name, slug, owner_id, plan, created_at FROM rm_tenants WHERE account_id = $1")
        .bind(account_id).fetch_optional(p).await)
}

pub async fn list_users(
    db: &Db,
    account_id: &str,
    offset: i64,
    limit: i64,
) -> Result<(Vec<UserRow>, i64), sqlx::Error> {
    let (count,): (i64,) = on_db!(db, p => sqlx::query_as(
        "SELECT count(*) FROM rm_users WHERE account_id = $1").bind(account_id).fetch_one(p).await?);
    let rows = on_db!(db, p => sqlx::query_as(
        "SELECT user_id, account_id, email, name, role, site_ids, created_at, updated_at FROM rm_users \
         WHERE account_id = $1 ORDER BY created_at, user_id LIMIT $2 OFFSET $3")
        .bind(account_id).bind(limit).bind(offset).fetch_all(p).await?);
    Ok((rows, count))
}

/// Every site of the account (accounts have few), oldest first; callers
/// narrow to the sites a user may see.
pub async fn list_sites(db: &Db, account_id: &str) -> Result<Vec<SiteRow>, sqlx::Error> {
    on_db!(db, p => sqlx::query_as(
        "SELECT site_id, account_id, name, slug, industry, domain, status, wp_url, wp_username, created_at, updated_at \
         FROM rm_sites WHERE account_id = $1 ORDER BY created_at, site_id")
        .bind(account_id).fetch_all(p).await)
}

pub async fn list_sectors(
    db: &Db,
    account_id: &str,
    site_id: &str,
) -> Result<Vec<SectorRow>, sqlx::Error> {
    on_db!(db, p => sqlx::query_as(
        "SELECT sector_id, account_id, site_id, name, slug, status, created_at, updated_at FROM rm_sectors \
         WHERE account_id = $1 AND site_id = $2 ORDER BY created_at, sector_id")
        .bind(account_id).bind(site_id).fetch_all(p).await)
}

pub async fn list_api_keys(
    db: &Db,
    account_id: &str,
    offset: i64,
    limit: i64,
) -> Result<(Vec<ApiKeyRow>, i64), sqlx::Error> {
    let (count,): (i64,) = on_db!(db, p => sqlx::query_as(
        "SELECT count(*) FROM rm_api_keys WHERE account_id = $1").bind(account_id).fetch_one(p).await?);
    let rows = on_db!(db, p => sqlx::query_as(
        "SELECT key_id, account_id, name, role, site_ids, prefix, created_by, created_at, last_used_at, revoked_at \
         FROM rm_api_keys WHERE account_id = $1 ORDER BY created_at, key_id LIMIT $2 OFFSET $3")
        .bind(account_id).bind(limit).bind(offset).fetch_all(p).await?);
    Ok((rows, count))
}
