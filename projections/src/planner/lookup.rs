//! The planner's read-model port ([`PlannerLookup`]) over `rm_keywords`
//! and `rm_clusters`: where a keyword or a cluster of an account lives.

use super::queries::{cluster_sector, get_keyword, keyword_places};
use async_trait::async_trait;
use igny8_commands::CommandError;
use igny8_commands::db::Db;
use igny8_commands::on_db;
use igny8_commands::planner::{ClusterKeyword, ClusterPlace, KeywordPlace, PlannerLookup};
use uuid::Uuid;

/// [`PlannerLookup`] on a database.
#[derive(Debug, Clone, Copy)]
pub struct Lookup<'a>(pub &'a Db);

fn db_error(e: sqlx::Error) -> CommandError {
    CommandError::db(e)
}

fn place(keyword: &str, site: &str, sector: &str) -> Option<KeywordPlace> {
    Some(KeywordPlace {
        keyword_id: Uuid::parse_str(keyword).ok()?,
        site_id: Uuid::parse_str(site).ok()?,
        sector_id: Uuid::parse_str(sector).ok()?,
    })
}

#[async_trait]
impl PlannerLookup for Lookup<'_> {
    async fn keyword(
        &self,
        account_id: Uuid,
        keyword_id: Uuid,
    ) -> Result<Option<KeywordPlace>, CommandError> {
        let row = get_keyword(self.0, &account_id.to_string(), &keyword_id.to_string())
            .await
            .map_err(db_error)?;
        Ok(row.and_then(|r| place(&r.keyword_id, &r.site_id, &r.sector_id)))
    }

    async fn keywords(
        &self,
        account_id: Uuid,
        ids: &[Uuid],
    ) -> Result<Vec<KeywordPlace>, CommandError> {
        let ids: Vec<String> = ids.iter().map(Uuid::to_string).collect();
        let rows = keyword_places(self.0, &account_id.to_string(), &ids)
            .await
            .map_err(db_error)?;
        Ok(rows
            .iter()
            .filter_map(|(k, site, sector)| place(k, site, sector))
            .collect())
    }

    async fn cluster(
        &self,
        account_id: Uuid,
        cluster_id: Uuid,
    ) -> Result<Option<ClusterPlace>, CommandError> {
        let row = cluster_sector(self.0, &account_id.to_string(), &cluster_id.to_string())
            .await
            .map_err(db_error)?;
        Ok(row.and_then(|(site, sector)| {
            Some(ClusterPlace {
                site_id: Uuid::parse_str(&site).ok()?,
                sector_id: Uuid::parse_str(&sector).ok()?,
            })
        }))
    }

    async fn cluster_keywords(
        &self,
        account_id: Uuid,
        cluster_id: Uuid,
        limit: usize,
    ) -> Result<Vec<ClusterKeyword>, CommandError> {
        let sql = "SELECT keyword, volume FROM rm_keywords WHERE account_id = $1 AND cluster_id = $2 \
                   ORDER BY volume DESC, keyword LIMIT $3";
        let rows: Vec<(String, i64)> = on_db!(self.0, p => sqlx::query_as(sql)
            .bind(account_id.to_string()).bind(cluster_id.to_string()).bind(limit as i64)
            .fetch_all(p).await.map_err(db_error)?);
        Ok(rows
            .into_iter()
            .map(|(keyword, volume)| ClusterKeyword { keyword, volume })
            .collect())
    }
}

/// [`PlannerLookup`] owning its database handle (for long-lived tasks
/// such as the scheduler).
#[derive(Debug, Clone)]
pub struct OwnedLookup(pub Db);

#[async_trait]
impl PlannerLookup for OwnedLookup {
    async fn keyword(
        &self,
        account_id: Uuid,
        keyword_id: Uuid,
    ) -> Result<Option<KeywordPlace>, CommandError> {
        Lookup(&self.0).keyword(account_id, keyword_id).await
    }
    async fn keywords(
        &self,
        account_id: Uuid,
        ids: &[Uuid],
    ) -> Result<Vec<KeywordPlace>, CommandError> {
        Lookup(&self.0).keywords(account_id, ids).await
    }
    async fn cluster(
        &self,
        account_id: Uuid,
        cluster_id: Uuid,
    ) -> Result<Option<ClusterPlace>, CommandError> {
        Lookup(&self.0).cluster(account_id, cluster_id).await
    }
    async fn cluster_keywords(
        &self,
        account_id: Uuid,
        cluster_id: Uuid,
        limit: usize,
    ) -> Result<Vec<ClusterKeyword>, CommandError> {
        Lookup(&self.0)
            .cluster_keywords(account_id, cluster_id, limit)
            .await
    }
}
