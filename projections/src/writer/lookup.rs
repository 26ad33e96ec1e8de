//! The writer's read-model port ([`WriterLookup`]) over `rm_content`.

use async_trait::async_trait;
use igny8_commands::db::Db;
use igny8_commands::writer::{LinkTarget, WriterLookup};
use igny8_commands::{CommandError, on_db};
use uuid::Uuid;

/// [`WriterLookup`] on a database.
#[derive(Debug, Clone)]
pub struct Lookup(pub Db);

#[async_trait]
impl WriterLookup for Lookup {
    async fn site_contents(
        &self,
        account_id: Uuid,
        site_id: Uuid,
        limit: usize,
    ) -> Result<Vec<LinkTarget>, CommandError> {
        let sql = "SELECT content_id, title, primary_keyword FROM rm_content \
                   WHERE account_id = $1 AND site_id = $2 AND version > 0 ORDER BY created_at DESC LIMIT $3";
        let rows: Vec<(String, String, String)> = on_db!(&self.0, p => sqlx::query_as(sql)
            .bind(account_id.to_string()).bind(site_id.to_string()).bind(limit as i64)
            .fetch_all(p).await.map_err(CommandError::db)?);
        Ok(rows
            .into_iter()
            .filter_map(|(id, title, primary_keyword)| {
                Some(LinkTarget {
                    content_id: Uuid::parse_str(&id).ok()?,
                    title,
                    primary_keyword,
                })
            })
            .collect())
    }
}
