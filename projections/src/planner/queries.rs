//! Keyword lists and exports, always scoped to one account.

use chrono::{DateTime, Utc};
use igny8_commands::db::Db;
use igny8_commands::on_db;
use serde::Serialize;

#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct KeywordRow {
    #[serde(rename = "id")]
    pub keyword_id: String,
    pub account_id: String,
    pub site_id: String,
    pub sector_id: String,
    pub keyword: String,
    pub volume: i64,
    pub difficulty: i64,
    pub intent: Option<String>,
    pub cpc: Option<f64>,
    pub status: String,
    pub cluster_id: Option<String>,
    pub cluster_name: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// Sortable columns (`-` prefix: descending).
pub const ORDERINGS: &[&str] = &[
    "keyword",
    "volume",
    "difficulty",
    "cpc",
    "created_at",
    "updated_at",
];

#[derive(Debug, Clone, Default)]
pub struct KeywordFilter {
    /// Only these sites (a caller limited to granted sites); `None`: all.
    pub site_in: Option<Vec<String>>,
    pub site_id: Option<String>,
    pub sector_id: Option<String>,
    /// Substring of the normalised keyword.
    pub search: Option<String>,
    pub intent: Option<String>,
    pub status: Option<String>,
    pub volume_min: Option<i64>,
    pub volume_max: Option<i64>,
    pub difficulty_min: Option<i64>,
    pub difficulty_max: Option<i64>,
    pub cluster_id: Option<String>,
    pub unclustered: bool,
    /// One of [`ORDERINGS`], optionally with `-`.
    pub ordering: Option<String>,
    pub offset: i64,
    /// `None`: every row (exports).
    pub limit: Option<i64>,
}

/// WHERE clause and its text/int parameters, numbered from `$2` (`$1` is the account).
fn clause(f: &KeywordFilter) -> (String, Vec<Param>) {
    let mut sql = String::from("account_id = $1");
    let mut params: Vec<Param> = vec![];
    if let Some(sites) = &f.site_in {
        if sites.is_empty() {
            sql.push_str(" AND 1 = 0");
        } else {
            let marks: Vec<String> = sites
                .iter()
                .map(|s| {
                    params.push(Param::Text(s.clone()));
                    format!("${}", params.len() + 1)
                })
                .collect();
            sql.push_str(&format!(" AND site_id IN ({})", marks.join(", ")));
        }
    }
    let mut add = |col: &str, op: &str, p: Param, sql: &mut String| {
        params.push(p);
        sql.push_str(&format!(" AND {col} {op} ${}", params.len() + 1));
    };
    if let Some(v) = &f.site_id {
        add("site_id", "=", Param::Text(v.clone()), &mut sql);
    }
    if let Some(v) = &f.sector_id {
        add("sector_id", "=", Param::Text(v.clone()), &mut sql);
    }
    if let Some(v) = &f.search {
        let needle = igny8_domain::planner::normalize(v)
            .replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_");
        add(
            "normalized",
            "LIKE",
            Param::Text(format!("%{needle}%")),
            &mut sql,
        );
        sql.push_str(" ESCAPE '\\'");
    }
    if let Some(v) = &f.intent {
        add("intent", "=", Param::Text(v.clone()), &mut sql);
    }
    if let Some(v) = &f.status {
        add("status", "=", Param::Text(v.clone()), &mut sql);
    }
    if let Some(v) = f.volume_min {
        add("volume", ">=", Param::Int(v), &mut sql);
    }
    if let Some(v) = f.volume_max {
        add("volume", "<=", Param::Int(v), &mut sql);
    }
    if let Some(v) = f.difficulty_min {
        add("difficulty", ">=", Param::Int(v), &mut sql);
    }
    if let Some(v) = f.difficulty_max {
        add("difficulty", "<=", Param::Int(v), &mut sql);
    }
    if let Some(v) = &f.cluster_id {
        add("cluster_id", "=", Param::Text(v.clone()), &mut sql);
    }
    if f.unclustered {
        sql.push_str(" AND cluster_id IS NULL");
    }
    (sql, params)
}

#[derive(Debug, Clone)]
enum Param {
    Text(String),
    Int(i64),
}

fn order_by(f: &KeywordFilter) -> String {
    let raw = f.ordering.as_deref().unwrap_or("-volume");
    let (col, dir) = match raw.strip_prefix('-') {
        Some(c) => (c, "DESC"),
        None => (raw, "ASC"),
    };
    let col = if ORDERINGS.contains(&col) {
        col
    } else {
        "volume"
    };
    format!("{col} {dir}, keyword_id")
}

macro_rules! bind_all {
    ($q:expr, $params:expr) => {{
        let mut q = $q;
        for p in $params {
            q = match p {
                Param::Text(t) => q.bind(t.clone()),
                Param::Int(i) => q.bind(*i),
            };
        }
        q
    }};
}

const COLUMNS: &str = "keyword_id, account_id, site_id, sector_id, keyword, volume, difficulty, intent, cpc, \
     status, cluster_id, cluster_name, created_at, updated_at";

/// Totals above this are reported as "at least" (counting a large filtered
/// set costs far more than the page itself).
pub const COUNT_CAP: i64 = 10_000;

pub struct KeywordPage {
    pub rows: Vec<KeywordRow>,
    /// Exact up to [`COUNT_CAP`]; `capped` when there are more.
    pub count: i64,
    pub capped: bool,
    /// A row exists after this page.
    pub more: bool,
}

/// One page, with a total counted up to [`COUNT_CAP`] beyond the page.
pub async fn page_keywords(
    db: &Db,
    account_id: &str,
    f: &KeywordFilter,
) -> Result<KeywordPage, sqlx::Error> {
    let (wh, params) = clause(f);
    let limit = f.limit.unwrap_or(50);
    let cap = f
        .offset
        .saturating_add(limit)
        .clamp(COUNT_CAP, i64::MAX - 1);
    let n = params.len() + 2;
    let count_sql =
        format!("SELECT count(*) FROM (SELECT 1 FROM rm_keywords WHERE {wh} LIMIT ${n}) t");
    let (count,): (i64,) = on_db!(db, p => {
        bind_all!(sqlx::query_as(&count_sql).bind(account_id), &params).bind(cap.saturating_add(1)).fetch_one(p).await?
    });
    let sql = format!(
        "SELECT {COLUMNS} FROM rm_keywords WHERE {wh} ORDER BY {} LIMIT ${n} OFFSET ${}",
        order_by(f),
        n + 1
    );
    let mut rows: Vec<KeywordRow> = on_db!(db, p => {
        bind_all!(sqlx::query_as(&sql).bind(account_id), &params).bind(limit.saturating_add(1)).bind(f.offset).fetch_all(p).await?
    });
    let more = rows.len() as i64 > limit;
    rows.truncate(limit as usize);
    Ok(KeywordPage {
        rows,
        count: count.min(cap),
        capped: count > cap,
        more,
    })
}

/// Every matching row (or one page) and the exact total count.
pub async fn list_keywords(
    db: &Db,
    account_id: &str,
    f: &KeywordFilter,
) -> Result<(Vec<KeywordRow>, i64), sqlx::Error> {
    let (wh, params) = clause(f);
    let count_sql = format!("SELECT count(*) FROM rm_keywords WHERE {wh}");
    let (count,): (i64,) = on_db!(db, p => {
        bind_all!(sqlx::query_as(&count_sql).bind(account_id), &params).fetch_one(p).await?
    });
    let n = params.len() + 2;
    let page = match f.limit {
        Some(_) => format!(" LIMIT ${n} OFFSET ${}", n + 1),
        None => String::new(),
    };
    let sql = format!(
        "SELECT {COLUMNS} FROM rm_keywords WHERE {wh} ORDER BY {}{page}",
        order_by(f)
    );
    let rows = on_db!(db, p => {
        let q = bind_all!(sqlx::query_as(&sql).bind(account_id), &params);
        let q = match f.limit {
            Some(l) => q.bind(l).bind(f.offset),
            None => q,
        };
        q.fetch_all(p).await?
    });
    Ok((rows, count))
}

/// One keyword of this account.
pub async fn get_keyword(
    db: &Db,
    account_id: &str,
    keyword_id: &str,
) -> Result<Option<KeywordRow>, sqlx::Error> {
    let sql =
        format!("SELECT {COLUMNS} FROM rm_keywords WHERE account_id = $1 AND keyword_id = $2");
    on_db!(db, p => sqlx::query_as(&sql).bind(account_id).bind(keyword_id).fetch_optional(p).await)
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct ClusterRow {
    #[serde(rename = "id")]
    pub cluster_id: String,
    pub account_id: String,
    pub site_id: String,
    pub sector_id: String,
    /// The clustering job that made it.
    pub run_id: String,
    pub name: String,
    pub description: String,
    /// Keywords in the cluster now.
    pub keyword_count: i64,
    pub total_volume: i64,
    pub avg_difficulty: f64,
    pub dominant_intent: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// A cluster row with the total of the query it came from.
#[derive(sqlx::FromRow)]
struct Counted {
    #[sqlx(flatten)]
    row: ClusterRow,
    total: i64,
}

/// What the cluster list may be ordered by (`-` for descending).
pub const CLUSTER_ORDERINGS: &[&str] = &[
    "total_volume",
    "keyword_count",
    "avg_difficulty",
    "name",
    "created_at",
];

/// Filters of the cluster list: `keywords` scopes the keywords counted
/// (sites the caller sees, site, sector, one cluster); `search` is part of
/// the cluster's name.
#[derive(Debug, Clone, Default)]
pub struct ClusterFilter {
    pub keywords: KeywordFilter,
    pub search: Option<String>,
    /// One of [`CLUSTER_ORDERINGS`], optionally with `-` (default `-total_volume`).
    pub ordering: Option<String>,
    pub offset: i64,
    pub limit: i64,
    /// Also clusters no keyword points to any more (a single read).
    pub include_empty: bool,
}

fn cluster_order(raw: Option<&str>) -> String {
    let raw = raw.unwrap_or("-total_volume");
    let (col, dir) = match raw.strip_prefix('-') {
        Some(c) => (c, "DESC"),
        None => (raw, "ASC"),
    };
    let col = match col {
        "keyword_count" => "keyword_count",
        "avg_difficulty" => "avg_difficulty",
        "name" => "c.name",
        "created_at" => "c.created_at",
        _ => "total_volume",
    };
    format!("{col} {dir}, c.cluster_id")
}

/// Clusters with their live figures (counted from the keywords as they are
/// now), filtered, ordered and paginated; and how many match. Earlier runs'
/// clusters stay in the log and in `rm_clusters` but are listed only while
/// keywords point to them.
pub async fn page_clusters(
    db: &Db,
    account_id: &str,
    f: &ClusterFilter,
) -> Result<(Vec<ClusterRow>, i64), sqlx::Error> {
    let (wh, mut params) = clause(&f.keywords);
    let mut extra = String::new();
    if let Some(c) = &f.keywords.cluster_id {
        params.push(Param::Text(c.clone()));
        extra.push_str(&format!(" AND c.cluster_id = ${}", params.len() + 1));
    }
    if let Some(v) = &f.search {
        let needle = v
            .trim()
            .to_lowercase()
            .replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_");
        params.push(Param::Text(format!("%{needle}%")));
        extra.push_str(&format!(
            " AND lower(c.name) LIKE ${} ESCAPE '\\'",
            params.len() + 1
        ));
    }
    let join = if f.include_empty { "LEFT JOIN" } else { "JOIN" };
    let base = format!(
        "FROM rm_clusters c {join} (SELECT cluster_id, count(*) AS n, CAST(sum(volume) AS BIGINT) AS vol, \
         CAST(avg(difficulty) AS DOUBLE PRECISION) AS diff FROM rm_keywords \
         WHERE {wh} AND cluster_id IS NOT NULL GROUP BY cluster_id) k ON k.cluster_id = c.cluster_id \
         WHERE c.account_id = $1{extra}"
    );
    // One pass: the page and the total (a window count) together; the
    // aggregate over the sector's keywords is the cost, paid once.
    let n = params.len() + 2;
    let sql = format!(
        "SELECT c.cluster_id, c.account_id, c.site_id, c.sector_id, c.run_id, c.name, c.description, \
         COALESCE(k.n, 0) AS keyword_count, COALESCE(k.vol, 0) AS total_volume, \
         COALESCE(k.diff, 0.0) AS avg_difficulty, c.dominant_intent, c.created_at, count(*) OVER () AS total {base} \
         ORDER BY {} LIMIT ${n} OFFSET ${}",
        cluster_order(f.ordering.as_deref()),
        n + 1
    );
    let counted: Vec<Counted> = on_db!(db, p => {
        bind_all!(sqlx::query_as(&sql).bind(account_id), &params).bind(f.limit).bind(f.offset).fetch_all(p).await?
    });
    let count = match counted.first() {
        Some(c) => c.total,
        None if f.offset == 0 => 0,
        // A page past the end: the total needs its own count.
        None => {
            let count_sql = format!("SELECT count(*) {base}");
            let (count,): (i64,) = on_db!(db, p => {
                bind_all!(sqlx::query_as(&count_sql).bind(account_id), &params).fetch_one(p).await?
            });
            count
        }
    };
    let rows = counted.into_iter().map(|c| c.row).collect();
    Ok((rows, count))
}

/// (keyword id, site id, sector id) of those of `ids` in this account.
pub async fn keyword_places(
    db: &Db,
    account_id: &str,
    ids: &[String],
) -> Result<Vec<(String, String, String)>, sqlx::Error> {
    let mut out = vec![];
    for chunk in ids.chunks(500) {
        let marks: Vec<String> = (0..chunk.len()).map(|i| format!("${}", i + 2)).collect();
        let sql = format!(
            "SELECT keyword_id, site_id, sector_id FROM rm_keywords WHERE account_id = $1 AND keyword_id IN ({})",
            marks.join(", ")
        );
        let rows: Vec<(String, String, String)> = on_db!(db, p => {
            let mut q = sqlx::query_as(&sql).bind(account_id);
            for id in chunk {
                q = q.bind(id);
            }
            q.fetch_all(p).await?
        });
        out.extend(rows);
    }
    Ok(out)
}

/// The sector of a cluster of this account.
pub async fn cluster_sector(
    db: &Db,
    account_id: &str,
    cluster_id: &str,
) -> Result<Option<(String, String)>, sqlx::Error> {
    on_db!(db, p => sqlx::query_as(
        "SELECT site_id, sector_id FROM rm_clusters WHERE account_id = $1 AND cluster_id = $2")
        .bind(account_id).bind(cluster_id).fetch_optional(p).await)
}
