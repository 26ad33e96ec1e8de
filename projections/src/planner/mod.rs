//! Planner read models: `rm_keywords` (one row per keyword, with its
//! account, site and sector) and `rm_keyword_sets` (a sector's account and
//! site, for the rows of later events). Additions arrive in chunks of up
//! to 2000 keywords: PostgreSQL inserts a chunk with one statement.

pub mod ideas;
mod lookup;
mod queries;

pub use lookup::{Lookup, OwnedLookup};
pub use queries::*;

use crate::projection::{Applied, Index, Projection, Table, decode_until};
use async_trait::async_trait;
use igny8_commands::db::DbTx;
use igny8_commands::{DecodeError, StoredEvent, on_tx};
use igny8_domain::Aggregate;
use igny8_domain::planner::{Intent, KeywordData, SectorKeywords, SectorKeywordsEvent};
use igny8_domain::tenancy::{Tenant, TenantEvent};
use uuid::Uuid;

pub struct PlannerProjection;

pub const NAME: &str = "planner";

const TABLES: &[Table] = &[
    Table {
        name: "rm_keyword_sets",
        postgres: "CREATE TABLE IF NOT EXISTS {t} (sector_id text COLLATE \"C\" PRIMARY KEY,
            account_id text COLLATE \"C\" NOT NULL, site_id text COLLATE \"C\" NOT NULL)",
        sqlite: "CREATE TABLE IF NOT EXISTS {t} (sector_id TEXT PRIMARY KEY, account_id TEXT NOT NULL,
            site_id TEXT NOT NULL)",
        indexes: &[],
    },
    Table {
        name: "rm_keywords",
        postgres: "CREATE TABLE IF NOT EXISTS {t} (keyword_id text COLLATE \"C\" PRIMARY KEY,
            account_id text COLLATE \"C\" NOT NULL, site_id text COLLATE \"C\" NOT NULL,
            sector_id text COLLATE \"C\" NOT NULL, keyword text NOT NULL, normalized text NOT NULL,
            volume bigint NOT NULL, difficulty bigint NOT NULL, intent text, cpc double precision,
            status text NOT NULL DEFAULT 'active', cluster_id text, cluster_name text,
            created_at timestamptz NOT NULL, updated_at timestamptz NOT NULL)",
        sqlite: "CREATE TABLE IF NOT EXISTS {t} (keyword_id TEXT PRIMARY KEY, account_id TEXT NOT NULL,
            site_id TEXT NOT NULL, sector_id TEXT NOT NULL, keyword TEXT NOT NULL, normalized TEXT NOT NULL,
            volume INTEGER NOT NULL, difficulty INTEGER NOT NULL, intent TEXT, cpc REAL,
            status TEXT NOT NULL DEFAULT 'active', cluster_id TEXT, cluster_name TEXT,
            created_at TEXT NOT NULL, updated_at TEXT NOT NULL)",
        indexes: &[
            Index { name: "rm_keywords_sector_volume_idx", columns: "sector_id, volume" },
            Index { name: "rm_keywords_account_idx", columns: "account_id, site_id" },
            Index { name: "rm_keywords_sector_norm_idx", columns: "sector_id, normalized" },
            Index { name: "rm_keywords_cluster_idx", columns: "cluster_id" },
        ],
    },
    Table {
        name: "rm_clusters",
        postgres: "CREATE TABLE IF NOT EXISTS {t} (cluster_id text COLLATE \"C\" PRIMARY KEY,
            account_id text COLLATE \"C\" NOT NULL, site_id text COLLATE \"C\" NOT NULL,
            sector_id text COLLATE \"C\" NOT NULL, run_id text COLLATE \"C\" NOT NULL, name text NOT NULL,
            description text NOT NULL, keyword_count bigint NOT NULL, total_volume bigint NOT NULL,
            avg_difficulty double precision NOT NULL, dominant_intent text, created_at timestamptz NOT NULL)",
        sqlite: "CREATE TABLE IF NOT EXISTS {t} (cluster_id TEXT PRIMARY KEY, account_id TEXT NOT NULL,
            site_id TEXT NOT NULL, sector_id TEXT NOT NULL, run_id TEXT NOT NULL, name TEXT NOT NULL,
            description TEXT NOT NULL, keyword_count INTEGER NOT NULL, total_volume INTEGER NOT NULL,
            avg_difficulty REAL NOT NULL, dominant_intent TEXT, created_at TEXT NOT NULL)",
        indexes: &[Index { name: "rm_clusters_sector_idx", columns: "sector_id, run_id" }],
    },
];

/// The events this projection reads.
enum Input {
    /// Deleted sites and sectors take their keywords along.
    Tenant(TenantEvent),
    Keywords(SectorKeywordsEvent),
}

fn decode(ev: &StoredEvent) -> Result<Option<Input>, DecodeError> {
    Ok(Some(match ev.aggregate_type.as_str() {
        Tenant::TYPE => Input::Tenant(ev.decode()?),
        SectorKeywords::TYPE => Input::Keywords(ev.decode()?),
        _ => return Ok(None),
    }))
}

fn ids(v: &[Uuid]) -> Vec<String> {
    v.iter().map(Uuid::to_string).collect()
}

fn intent(i: Option<Intent>) -> Option<String> {
    i.map(|i| i.as_str().to_string())
}

#[derive(Default)]
struct Rows {
    id: Vec<String>,
    keyword: Vec<String>,
    normalized: Vec<String>,
    volume: Vec<i64>,
    difficulty: Vec<i64>,
    intent: Vec<Option<String>>,
    cpc: Vec<Option<f64>>,
}

fn rows(keywords: &[KeywordData]) -> Rows {
    let mut r = Rows::default();
    for k in keywords {
        r.id.push(k.id.to_string());
        r.keyword.push(k.keyword.clone());
        r.normalized
            .push(igny8_domain::planner::normalize(&k.keyword));
        r.volume.push(k.volume);
        r.difficulty.push(k.difficulty);
        r.intent.push(intent(k.intent));
        r.cpc.push(k.cpc);
    }
    r
}

#[async_trait]
impl Projection for PlannerProjection {
    fn name(&self) -> &'static str {
        NAME
    }

    fn tables(&self) -> &'static [Table] {
        TABLES
    }

    fn version(&self) -> u32 {
        1
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
                Input::Tenant(e) => tenant(tx, sfx, e).await?,
                Input::Keywords(e) => keywords(tx, sfx, ev, e).await?,
            }
        }
        Ok(applied)
    }
}

async fn tenant(tx: &mut DbTx, sfx: &str, e: &TenantEvent) -> anyhow::Result<()> {
    let sectors: Vec<String> = match e {
        TenantEvent::SectorDeleted { sector_id, .. } => vec![sector_id.to_string()],
        TenantEvent::SiteDeleted { sector_ids, .. } => ids(sector_ids),
        _ => vec![],
    };
    for sector in &sectors {
        for table in ["rm_keywords", "rm_clusters", "rm_keyword_sets"] {
            let sql = format!("DELETE FROM {table}{sfx} WHERE sector_id = $1");
            on_tx!(tx, x => sqlx::query(&sql).bind(sector).execute(&mut *x).await.map(|_| ()))?;
        }
    }
    Ok(())
}

async fn keywords(
    tx: &mut DbTx,
    sfx: &str,
    ev: &StoredEvent,
    e: &SectorKeywordsEvent,
) -> anyhow::Result<()> {
    let sector = ev.aggregate_id.as_str();
    let at = ev.recorded_at;
    match e {
        SectorKeywordsEvent::KeywordSetOpened {
            account_id,
            site_id,
        } => {
            let sql = format!(
                "INSERT INTO rm_keyword_sets{sfx} (sector_id, account_id, site_id) VALUES ($1, $2, $3) \
                 ON CONFLICT (sector_id) DO NOTHING"
            );
            on_tx!(tx, c => sqlx::query(&sql).bind(sector).bind(account_id.to_string()).bind(site_id.to_string())
                .execute(&mut *c).await.map(|_| ()))?;
        }
        SectorKeywordsEvent::KeywordsAdded { keywords, .. } => {
            let r = rows(keywords);
            match tx {
                DbTx::Postgres(t) => {
                    sqlx::query(&format!(
                        "INSERT INTO rm_keywords{sfx} (keyword_id, account_id, site_id, sector_id, keyword, normalized, \
                         volume, difficulty, intent, cpc, created_at, updated_at) \
                         SELECT u.id, s.account_id, s.site_id, s.sector_id, u.keyword, u.norm, u.volume, u.difficulty, \
                         u.intent, u.cpc, $9, $9 \
                         FROM UNNEST($2::text[], $3::text[], $4::text[], $5::int8[], $6::int8[], $7::text[], $8::float8[]) \
                         AS u(id, keyword, norm, volume, difficulty, intent, cpc) \
                         JOIN rm_keyword_sets{sfx} s ON s.sector_id = $1 \
                         ON CONFLICT (keyword_id) DO NOTHING"
                    ))
                    .bind(sector)
                    .bind(&r.id)
                    .bind(&r.keyword)
                    .bind(&r.normalized)
                    .bind(&r.volume)
                    .bind(&r.difficulty)
                    .bind(&r.intent)
                    .bind(&r.cpc)
                    .bind(at)
                    .execute(&mut **t)
                    .await?;
                }
                DbTx::Sqlite(t) => {
                    // Multi-row INSERTs of 500 rows (9 parameters each, under
                    // SQLite's parameter limit).
                    let (account, site): (Option<String>, Option<String>) = sqlx::query_as(&format!(
                        "SELECT account_id, site_id FROM rm_keyword_sets{sfx} WHERE sector_id = $1"
                    ))
                    .bind(sector)
                    .fetch_optional(&mut **t)
                    .await?
                    .unwrap_or((None, None));
                    let (Some(account), Some(site)) = (account, site) else {
                        return Ok(());
                    };
                    for start in (0..r.id.len()).step_by(500) {
                        let end = (start + 500).min(r.id.len());
                        let values: Vec<String> = (0..end - start)
                            .map(|i| {
                                let b = i * 7;
                                format!(
                                    "(${}, $1, $2, $3, ${}, ${}, ${}, ${}, ${}, ${}, $4, $4)",
                                    b + 5,
                                    b + 6,
                                    b + 7,
                                    b + 8,
                                    b + 9,
                                    b + 10,
                                    b + 11
                                )
                            })
                            .collect();
                        let sql = format!(
                            "INSERT INTO rm_keywords{sfx} (keyword_id, account_id, site_id, sector_id, keyword, \
                             normalized, volume, difficulty, intent, cpc, created_at, updated_at) VALUES {} \
                             ON CONFLICT (keyword_id) DO NOTHING",
                            values.join(", ")
                        );
                        let mut q = sqlx::query(&sql)
                            .bind(&account)
                            .bind(&site)
                            .bind(sector)
                            .bind(at);
                        for i in start..end {
                            q = q
                                .bind(&r.id[i])
                                .bind(&r.keyword[i])
                                .bind(&r.normalized[i])
                                .bind(r.volume[i])
                                .bind(r.difficulty[i])
                                .bind(&r.intent[i])
                                .bind(r.cpc[i]);
                        }
                        q.execute(&mut **t).await?;
                    }
                }
            }
        }
        SectorKeywordsEvent::KeywordUpdated { id, change: ch } => {
            let id = id.to_string();
            let mut sets = vec!["updated_at = $2".to_string()];
            let mut texts: Vec<Option<String>> = vec![];
            let mut ints: Vec<(&str, i64)> = vec![];
            for (k, v) in [("volume", ch.volume), ("difficulty", ch.difficulty)] {
                if let Some(v) = v {
                    ints.push((k, v));
                }
            }
            // `Some(None)`: cleared.
            for (k, v) in [
                ("intent", ch.intent.map(intent)),
                ("status", ch.status.clone().map(Some)),
            ] {
                if let Some(v) = v {
                    texts.push(v);
                    sets.push(format!("{k} = ${}", 2 + texts.len()));
                }
            }
            let cpc = ch.cpc;
            let base = 2 + texts.len();
            for (i, (k, _)) in ints.iter().enumerate() {
                sets.push(format!("{k} = ${}", base + i + 1));
            }
            let cpc_at = base + ints.len() + 1;
            if cpc.is_some() {
                sets.push(format!("cpc = ${cpc_at}"));
            }
            let sql = format!(
                "UPDATE rm_keywords{sfx} SET {} WHERE keyword_id = $1",
                sets.join(", ")
            );
            on_tx!(tx, c => {
                let mut q = sqlx::query(&sql).bind(&id).bind(at);
                for t in &texts {
                    q = q.bind(t);
                }
                for (_, v) in &ints {
                    q = q.bind(v);
                }
                if let Some(v) = cpc {
                    q = q.bind(v);
                }
                q.execute(&mut *c).await.map(|_| ())
            })?;
        }
        SectorKeywordsEvent::ClustersAssigned {
            run_id, clusters, ..
        } => {
            let run = run_id.to_string();
            let insert = format!(
                "INSERT INTO rm_clusters{sfx} (cluster_id, account_id, site_id, sector_id, run_id, name, description, \
                 keyword_count, total_volume, avg_difficulty, dominant_intent, created_at) \
                 SELECT $2, s.account_id, s.site_id, s.sector_id, $3, $4, $5, $6, $7, $8, $9, $10 \
                 FROM rm_keyword_sets{sfx} s WHERE s.sector_id = $1 ON CONFLICT (cluster_id) DO NOTHING"
            );
            let assign = format!(
                "UPDATE rm_keywords{sfx} SET cluster_id = $2, cluster_name = $3, updated_at = $4 WHERE keyword_id = $1"
            );
            // Every keyword of the run: (keyword, cluster, cluster name).
            let (mut kid, mut kcid, mut kname) = (vec![], vec![], vec![]);
            for c in clusters {
                let cid = c.cluster_id.to_string();
                on_tx!(tx, x => sqlx::query(&insert)
                    .bind(sector).bind(&cid).bind(&run).bind(&c.name).bind(&c.description)
                    .bind(c.keyword_ids.len() as i64).bind(c.total_volume)
                    .bind(c.avg_difficulty).bind(intent(c.dominant_intent)).bind(at)
                    .execute(&mut *x).await.map(|_| ()))?;
                for id in &c.keyword_ids {
                    kid.push(id.to_string());
                    kcid.push(cid.clone());
                    kname.push(c.name.clone());
                }
            }
            match tx {
                // One statement for the whole run (100,000 keywords are
                // one UPDATE, not 100,000 round trips).
                DbTx::Postgres(t) => {
                    sqlx::query(&format!(
                        "UPDATE rm_keywords{sfx} k SET cluster_id = u.cid, cluster_name = u.name, updated_at = $4 \
                         FROM UNNEST($1::text[], $2::text[], $3::text[]) AS u(kid, cid, name) WHERE k.keyword_id = u.kid"
                    ))
                    .bind(&kid)
                    .bind(&kcid)
                    .bind(&kname)
                    .bind(at)
                    .execute(&mut **t)
                    .await?;
                }
                // In-process: a prepared statement per row is cheap.
                DbTx::Sqlite(t) => {
                    for ((id, cid), name) in kid.iter().zip(&kcid).zip(&kname) {
                        sqlx::query(&assign)
                            .bind(id)
                            .bind(cid)
                            .bind(name)
                            .bind(at)
                            .execute(&mut **t)
                            .await?;
                    }
                }
            }
        }
        SectorKeywordsEvent::ClusterRenamed { cluster_id, name } => {
            let cid = cluster_id.to_string();
            let a = format!("UPDATE rm_clusters{sfx} SET name = $2 WHERE cluster_id = $1");
            let k = format!(
                "UPDATE rm_keywords{sfx} SET cluster_name = $2, updated_at = $3 WHERE cluster_id = $1"
            );
            on_tx!(tx, x => {
                sqlx::query(&a).bind(&cid).bind(name).execute(&mut *x).await?;
                sqlx::query(&k).bind(&cid).bind(name).bind(at).execute(&mut *x).await.map(|_| ())
            })?;
        }
        SectorKeywordsEvent::ClustersMerged { into, from } => {
            let into = into.to_string();
            let sql = format!(
                "UPDATE rm_keywords{sfx} SET cluster_id = $2, \
                 cluster_name = (SELECT name FROM rm_clusters{sfx} WHERE cluster_id = $2), updated_at = $3 \
                 WHERE cluster_id = $1"
            );
            for from in ids(from) {
                on_tx!(tx, x => sqlx::query(&sql).bind(&from).bind(&into).bind(at).execute(&mut *x).await.map(|_| ()))?;
            }
        }
        SectorKeywordsEvent::KeywordsMoved {
            keyword_ids,
            cluster_id,
        } => {
            let target = cluster_id.map(|c| c.to_string());
            move_keywords(tx, sfx, &ids(keyword_ids), target.as_deref(), at).await?;
        }
        SectorKeywordsEvent::ClusterSplit {
            from,
            new_cluster_id,
            name,
            keyword_ids,
        } => {
            let (from, new) = (from.to_string(), new_cluster_id.to_string());
            let sql = format!(
                "INSERT INTO rm_clusters{sfx} (cluster_id, account_id, site_id, sector_id, run_id, name, description, \
                 keyword_count, total_volume, avg_difficulty, dominant_intent, created_at) \
                 SELECT $2, c.account_id, c.site_id, c.sector_id, c.run_id, $3, $3, 0, 0, 0, NULL, $4 \
                 FROM rm_clusters{sfx} c WHERE c.cluster_id = $1 ON CONFLICT (cluster_id) DO NOTHING"
            );
            on_tx!(tx, x => sqlx::query(&sql).bind(&from).bind(&new).bind(name).bind(at)
                .execute(&mut *x).await.map(|_| ()))?;
            move_keywords(tx, sfx, &ids(keyword_ids), Some(&new), at).await?;
        }
        SectorKeywordsEvent::ClusterDeleted { cluster_id } => {
            let sql = format!(
                "UPDATE rm_keywords{sfx} SET cluster_id = NULL, cluster_name = NULL, updated_at = $2 WHERE cluster_id = $1"
            );
            on_tx!(tx, x => sqlx::query(&sql).bind(cluster_id.to_string()).bind(at).execute(&mut *x).await.map(|_| ()))?;
        }
        SectorKeywordsEvent::KeywordsDeleted { ids: deleted } => {
            let ids = ids(deleted);
            match tx {
                DbTx::Postgres(t) => {
                    sqlx::query(&format!(
                        "DELETE FROM rm_keywords{sfx} WHERE keyword_id = ANY($1)"
                    ))
                    .bind(&ids)
                    .execute(&mut **t)
                    .await?;
                }
                DbTx::Sqlite(t) => {
                    let sql = format!("DELETE FROM rm_keywords{sfx} WHERE keyword_id = $1");
                    for id in &ids {
                        sqlx::query(&sql).bind(id).execute(&mut **t).await?;
                    }
                }
            }
        }
    }
    Ok(())
}

/// Put keywords into a cluster (`None`: out of any).
async fn move_keywords(
    tx: &mut DbTx,
    sfx: &str,
    ids: &[String],
    target: Option<&str>,
    at: chrono::DateTime<chrono::Utc>,
) -> anyhow::Result<()> {
    let set = format!(
        "UPDATE rm_keywords{sfx} SET cluster_id = $2, \
         cluster_name = (SELECT name FROM rm_clusters{sfx} WHERE cluster_id = $2), updated_at = $3"
    );
    match tx {
        DbTx::Postgres(t) => {
            sqlx::query(&format!("{set} WHERE keyword_id = ANY($1)"))
                .bind(ids)
                .bind(target)
                .bind(at)
                .execute(&mut **t)
                .await?;
        }
        DbTx::Sqlite(t) => {
            let sql = format!("{set} WHERE keyword_id = $1");
            for id in ids {
                sqlx::query(&sql)
                    .bind(id)
                    .bind(target)
                    .bind(at)
                    .execute(&mut **t)
                    .await?;
            }
        }
    }
    Ok(())
}
