//! Planner read models: `rm_keywords` (one row per keyword, with its
//! account, site and sector) and `rm_keyword_sets` (a sector's account and
//! site, for the rows of later events). Additions arrive in chunks of up
//! to 2000 keywords: PostgreSQL inserts a chunk with one statement.

mod lookup;
mod queries;

pub use lookup::Lookup;
pub use queries::*;

use crate::projection::{Index, Projection, Table};
use async_trait::async_trait;
use igny8_commands::db::DbTx;
use igny8_commands::{StoredEvent, on_tx};
use serde_json::Value;

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

fn s(v: &Value, k: &str) -> Option<String> {
    v.get(k).and_then(Value::as_str).map(str::to_string)
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

fn rows(keywords: &[Value]) -> Rows {
    let mut r = Rows::default();
    for k in keywords {
        let text = k["keyword"].as_str().unwrap_or_default();
        r.id.push(k["id"].as_str().unwrap_or_default().to_string());
        r.keyword.push(text.to_string());
        r.normalized.push(igny8_domain::planner::normalize(text));
        r.volume.push(k["volume"].as_i64().unwrap_or(0));
        r.difficulty.push(k["difficulty"].as_i64().unwrap_or(0));
        r.intent.push(s(k, "intent"));
        r.cpc.push(k["cpc"].as_f64());
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

    async fn apply(&self, tx: &mut DbTx, sfx: &str, ev: &StoredEvent) -> anyhow::Result<()> {
        if ev.aggregate_type == "tenant" {
            // A deleted site or sector takes its keywords and clusters with it.
            let sectors: Vec<String> = match ev.event_type.as_str() {
                "SectorDeleted" => s(ev.body(), "sector_id").into_iter().collect(),
                "SiteDeleted" => ev.body()["sector_ids"]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .filter_map(|v| v.as_str().map(str::to_string))
                            .collect()
                    })
                    .unwrap_or_default(),
                _ => vec![],
            };
            for sector in &sectors {
                for table in ["rm_keywords", "rm_clusters", "rm_keyword_sets"] {
                    let sql = format!("DELETE FROM {table}{sfx} WHERE sector_id = $1");
                    on_tx!(tx, x => sqlx::query(&sql).bind(sector).execute(&mut *x).await.map(|_| ()))?;
                }
            }
            return Ok(());
        }
        if ev.aggregate_type != "sector_keywords" {
            return Ok(());
        }
        let b = ev.body();
        let sector = ev.aggregate_id.as_str();
        let at = ev.recorded_at;
        match ev.event_type.as_str() {
            "KeywordSetOpened" => {
                let sql = format!(
                    "INSERT INTO rm_keyword_sets{sfx} (sector_id, account_id, site_id) VALUES ($1, $2, $3) \
                     ON CONFLICT (sector_id) DO NOTHING"
                );
                on_tx!(tx, c => sqlx::query(&sql).bind(sector).bind(s(b, "account_id")).bind(s(b, "site_id"))
                    .execute(&mut *c).await.map(|_| ()))?;
            }
            "KeywordsAdded" => {
                let r = rows(
                    b["keywords"]
                        .as_array()
                        .map(Vec::as_slice)
                        .unwrap_or_default(),
                );
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
            "KeywordUpdated" => {
                let id = s(b, "id");
                let ch = &b["change"];
                let mut sets = vec!["updated_at = $2".to_string()];
                let mut texts: Vec<Option<String>> = vec![];
                let mut ints: Vec<(String, i64)> = vec![];
                for k in ["volume", "difficulty"] {
                    if let Some(v) = ch.get(k).and_then(Value::as_i64) {
                        ints.push((k.to_string(), v));
                    }
                }
                for k in ["intent", "status"] {
                    if let Some(v) = ch.get(k) {
                        texts.push(v.as_str().map(str::to_string));
                        sets.push(format!("{k} = ${}", 2 + texts.len()));
                    }
                }
                let cpc = ch.get("cpc").map(Value::as_f64);
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
            "ClustersAssigned" => {
                let run = s(b, "run_id");
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
                for c in b["clusters"]
                    .as_array()
                    .map(Vec::as_slice)
                    .unwrap_or_default()
                {
                    let ids: Vec<&str> = c["keyword_ids"]
                        .as_array()
                        .map(|a| a.iter().filter_map(Value::as_str).collect())
                        .unwrap_or_default();
                    let (cid, name) = (s(c, "cluster_id"), s(c, "name"));
                    on_tx!(tx, x => sqlx::query(&insert)
                        .bind(sector).bind(&cid).bind(&run).bind(&name).bind(s(c, "description"))
                        .bind(ids.len() as i64).bind(c["total_volume"].as_i64().unwrap_or(0))
                        .bind(c["avg_difficulty"].as_f64().unwrap_or(0.0)).bind(s(c, "dominant_intent")).bind(at)
                        .execute(&mut *x).await.map(|_| ()))?;
                    for id in ids {
                        kid.push(id.to_string());
                        kcid.push(cid.clone().unwrap_or_default());
                        kname.push(name.clone().unwrap_or_default());
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
            "ClusterRenamed" => {
                let (cid, name) = (s(b, "cluster_id"), s(b, "name"));
                let a = format!("UPDATE rm_clusters{sfx} SET name = $2 WHERE cluster_id = $1");
                let k = format!(
                    "UPDATE rm_keywords{sfx} SET cluster_name = $2, updated_at = $3 WHERE cluster_id = $1"
                );
                on_tx!(tx, x => {
                    sqlx::query(&a).bind(&cid).bind(&name).execute(&mut *x).await?;
                    sqlx::query(&k).bind(&cid).bind(&name).bind(at).execute(&mut *x).await.map(|_| ())
                })?;
            }
            "ClustersMerged" => {
                let into = s(b, "into");
                let sql = format!(
                    "UPDATE rm_keywords{sfx} SET cluster_id = $2, \
                     cluster_name = (SELECT name FROM rm_clusters{sfx} WHERE cluster_id = $2), updated_at = $3 \
                     WHERE cluster_id = $1"
                );
                for f in b["from"].as_array().map(Vec::as_slice).unwrap_or_default() {
                    let from = f.as_str().map(str::to_string);
                    on_tx!(tx, x => sqlx::query(&sql).bind(&from).bind(&into).bind(at).execute(&mut *x).await.map(|_| ()))?;
                }
            }
            "KeywordsMoved" | "ClusterSplit" => {
                let target = if ev.event_type == "ClusterSplit" {
                    let (from, new, name) = (s(b, "from"), s(b, "new_cluster_id"), s(b, "name"));
                    let sql = format!(
                        "INSERT INTO rm_clusters{sfx} (cluster_id, account_id, site_id, sector_id, run_id, name, description, \
                         keyword_count, total_volume, avg_difficulty, dominant_intent, created_at) \
                         SELECT $2, c.account_id, c.site_id, c.sector_id, c.run_id, $3, $3, 0, 0, 0, NULL, $4 \
                         FROM rm_clusters{sfx} c WHERE c.cluster_id = $1 ON CONFLICT (cluster_id) DO NOTHING"
                    );
                    on_tx!(tx, x => sqlx::query(&sql).bind(&from).bind(&new).bind(&name).bind(at)
                        .execute(&mut *x).await.map(|_| ()))?;
                    new
                } else {
                    s(b, "cluster_id")
                };
                let ids: Vec<String> = b["keyword_ids"]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .filter_map(|v| v.as_str().map(str::to_string))
                            .collect()
                    })
                    .unwrap_or_default();
                let set = format!(
                    "UPDATE rm_keywords{sfx} SET cluster_id = $2, \
                     cluster_name = (SELECT name FROM rm_clusters{sfx} WHERE cluster_id = $2), updated_at = $3"
                );
                match tx {
                    DbTx::Postgres(t) => {
                        sqlx::query(&format!("{set} WHERE keyword_id = ANY($1)"))
                            .bind(&ids)
                            .bind(&target)
                            .bind(at)
                            .execute(&mut **t)
                            .await?;
                    }
                    DbTx::Sqlite(t) => {
                        let sql = format!("{set} WHERE keyword_id = $1");
                        for id in &ids {
                            sqlx::query(&sql)
                                .bind(id)
                                .bind(&target)
                                .bind(at)
                                .execute(&mut **t)
                                .await?;
                        }
                    }
                }
            }
            "ClusterDeleted" => {
                let sql = format!(
                    "UPDATE rm_keywords{sfx} SET cluster_id = NULL, cluster_name = NULL, updated_at = $2 WHERE cluster_id = $1"
                );
                on_tx!(tx, x => sqlx::query(&sql).bind(s(b, "cluster_id")).bind(at).execute(&mut *x).await.map(|_| ()))?;
            }
            "KeywordsDeleted" => {
                let ids: Vec<String> = b["ids"]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .filter_map(|v| v.as_str().map(str::to_string))
                            .collect()
                    })
                    .unwrap_or_default();
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
            _ => {}
        }
        Ok(())
    }
}
