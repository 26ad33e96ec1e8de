//! Small SQL helpers shared by the read models of the later contexts:
//! [`update`] sets some columns of one row (a change event names only what
//! changed), [`Listing`] builds a filtered, ordered, paginated list with
//! its total, on either backend (both take `$n` parameters).

use chrono::{DateTime, Utc};
use igny8_commands::db::{Db, DbTx};
use igny8_commands::{on_db, on_tx};
use sqlx::postgres::PgRow;
use sqlx::sqlite::SqliteRow;

/// A value bound to a statement.
#[derive(Debug, Clone)]
pub enum Val {
    Text(Option<String>),
    Int(Option<i64>),
    Bool(bool),
    At(DateTime<Utc>),
    /// A timestamp that may be missing (NULL).
    MaybeAt(Option<DateTime<Utc>>),
}

impl From<String> for Val {
    fn from(v: String) -> Self {
        Val::Text(Some(v))
    }
}
impl From<&str> for Val {
    fn from(v: &str) -> Self {
        Val::Text(Some(v.to_string()))
    }
}
impl From<Option<String>> for Val {
    fn from(v: Option<String>) -> Self {
        Val::Text(v)
    }
}
impl From<i64> for Val {
    fn from(v: i64) -> Self {
        Val::Int(Some(v))
    }
}
impl From<bool> for Val {
    fn from(v: bool) -> Self {
        Val::Bool(v)
    }
}
impl From<DateTime<Utc>> for Val {
    fn from(v: DateTime<Utc>) -> Self {
        Val::At(v)
    }
}

macro_rules! bind_vals {
    ($q:expr, $vals:expr) => {{
        let mut q = $q;
        for v in $vals {
            q = match v {
                Val::Text(t) => q.bind(t.clone()),
                Val::Int(i) => q.bind(*i),
                Val::Bool(b) => q.bind(*b),
                Val::At(a) => q.bind(*a),
                Val::MaybeAt(a) => q.bind(*a),
            };
        }
        q
    }};
}

/// Run one statement with `vals` as `$1…` in the transaction.
pub async fn exec(tx: &mut DbTx, sql: &str, vals: &[Val]) -> anyhow::Result<()> {
    on_tx!(tx, c => bind_vals!(sqlx::query(sql), vals).execute(&mut *c).await.map(|_| ()))?;
    Ok(())
}

/// `INSERT INTO {table} (cols…) VALUES (…) ON CONFLICT ({key}) DO NOTHING`.
pub async fn insert(
    tx: &mut DbTx,
    table: &str,
    key: &str,
    cols: &[(&str, Val)],
) -> anyhow::Result<()> {
    let names: Vec<&str> = cols.iter().map(|(c, _)| *c).collect();
    let marks: Vec<String> = (1..=cols.len()).map(|i| format!("${i}")).collect();
    let sql = format!(
        "INSERT INTO {table} ({}) VALUES ({}) ON CONFLICT ({key}) DO NOTHING",
        names.join(", "),
        marks.join(", ")
    );
    let vals: Vec<Val> = cols.iter().map(|(_, v)| v.clone()).collect();
    exec(tx, &sql, &vals).await
}

/// `UPDATE {table} SET col = … WHERE {key} = {id}` (nothing when `sets` is empty).
pub async fn update(
    tx: &mut DbTx,
    table: &str,
    key: &str,
    id: &str,
    sets: &[(&str, Val)],
) -> anyhow::Result<()> {
    if sets.is_empty() {
        return Ok(());
    }
    let assign: Vec<String> = sets
        .iter()
        .enumerate()
        .map(|(i, (c, _))| format!("{c} = ${}", i + 2))
        .collect();
    let sql = format!("UPDATE {table} SET {} WHERE {key} = $1", assign.join(", "));
    let mut vals = vec![Val::from(id)];
    vals.extend(sets.iter().map(|(_, v)| v.clone()));
    exec(tx, &sql, &vals).await
}

/// A list query of one table of one account.
pub struct Listing {
    table: &'static str,
    columns: &'static str,
    /// Unique column for a stable order.
    key: &'static str,
    filter: String,
    vals: Vec<Val>,
}

impl Listing {
    pub fn new(
        table: &'static str,
        columns: &'static str,
        key: &'static str,
        account_id: &str,
    ) -> Self {
        Listing {
            table,
            columns,
            key,
            filter: "account_id = $1".into(),
            vals: vec![Val::from(account_id)],
        }
    }

    fn mark(&mut self, v: Val) -> String {
        self.vals.push(v);
        format!("${}", self.vals.len())
    }

    /// `col = v` when `v` is given.
    pub fn eq(mut self, col: &str, v: Option<String>) -> Self {
        if let Some(v) = v {
            let m = self.mark(Val::from(v));
            self.filter.push_str(&format!(" AND {col} = {m}"));
        }
        self
    }

    /// Only rows of these sites (`None`: any).
    pub fn sites(mut self, sites: Option<Vec<String>>) -> Self {
        if let Some(sites) = sites {
            if sites.is_empty() {
                self.filter.push_str(" AND 1 = 0");
            } else {
                let marks: Vec<String> =
                    sites.into_iter().map(|s| self.mark(Val::from(s))).collect();
                self.filter
                    .push_str(&format!(" AND site_id IN ({})", marks.join(", ")));
            }
        }
        self
    }

    /// Any of `cols` contains `needle` (case-insensitive).
    pub fn search(mut self, cols: &[&str], needle: Option<String>) -> Self {
        if let Some(n) = needle.filter(|n| !n.trim().is_empty()) {
            let escaped = n
                .trim()
                .to_lowercase()
                .replace('\\', "\\\\")
                .replace('%', "\\%")
                .replace('_', "\\_");
            let m = self.mark(Val::from(format!("%{escaped}%")));
            let any: Vec<String> = cols
                .iter()
                .map(|c| format!("lower({c}) LIKE {m} ESCAPE '\\'"))
                .collect();
            self.filter
                .push_str(&format!(" AND ({})", any.join(" OR ")));
        }
        self
    }

    /// A page ordered by `ordering` (one of `allowed`, `-` for descending;
    /// else `default`), and the total.
    pub async fn page<R>(
        self,
        db: &Db,
        ordering: Option<&str>,
        allowed: &[&str],
        default: &str,
        offset: i64,
        limit: i64,
    ) -> Result<(Vec<R>, i64), sqlx::Error>
    where
        R: for<'r> sqlx::FromRow<'r, PgRow> + for<'r> sqlx::FromRow<'r, SqliteRow> + Send + Unpin,
    {
        let raw = ordering.unwrap_or(default);
        let (col, dir) = match raw.strip_prefix('-') {
            Some(c) => (c, "DESC"),
            None => (raw, "ASC"),
        };
        let col = if allowed.contains(&col) {
            col
        } else {
            default.trim_start_matches('-')
        };
        let (t, w) = (self.table, &self.filter);
        let count_sql = format!("SELECT count(*) FROM {t} WHERE {w}");
        let (count,): (i64,) =
            on_db!(db, p => bind_vals!(sqlx::query_as(&count_sql), &self.vals).fetch_one(p).await?);
        let n = self.vals.len();
        let sql = format!(
            "SELECT {} FROM {t} WHERE {w} ORDER BY {col} {dir}, {} LIMIT ${} OFFSET ${}",
            self.columns,
            self.key,
            n + 1,
            n + 2
        );
        let rows: Vec<R> = on_db!(db, p => bind_vals!(sqlx::query_as(&sql), &self.vals).bind(limit).bind(offset).fetch_all(p).await?);
        Ok((rows, count))
    }

    /// The first matching row.
    pub async fn one<R>(self, db: &Db) -> Result<Option<R>, sqlx::Error>
    where
        R: for<'r> sqlx::FromRow<'r, PgRow> + for<'r> sqlx::FromRow<'r, SqliteRow> + Send + Unpin,
    {
        let sql = format!(
            "SELECT {} FROM {} WHERE {} LIMIT 1",
            self.columns, self.table, self.filter
        );
        on_db!(db, p => bind_vals!(sqlx::query_as(&sql), &self.vals).fetch_optional(p).await)
    }
}

/// JSON text of a value (read models keep nested data as JSON text).
pub fn json<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "null".into())
}
