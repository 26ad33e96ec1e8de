//! Publishing read models: `rm_wp_integrations` (a site's WordPress
//! connection and what its last test found — never a credential) and
//! `rm_publications` (one content on one WordPress: the post, its state,
//! the warnings of the last publish and what changed there without us).
//! Filled from `wp_integration` and `publication` events; a publish job
//! cancelled before it recorded anything leaves its publication `cancelled`.

use crate::projection::{Applied, Index, Projection, Table, decode_until};
use crate::sql::{Listing, Val, exec, insert, json, update};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use igny8_commands::db::{Db, DbTx};
use igny8_commands::{DecodeError, StoredEvent};
use igny8_domain::Aggregate;
use igny8_domain::jobs::{Job, JobEvent};
use igny8_domain::publishing::{Publication, PublicationEvent, WpIntegration, WpIntegrationEvent};

pub struct PublishingProjection;

pub const NAME: &str = "publishing";

const TABLES: &[Table] = &[
    Table {
        name: "rm_wp_integrations",
        postgres: "CREATE TABLE IF NOT EXISTS {t} (integration_id text COLLATE \"C\" PRIMARY KEY,
            account_id text COLLATE \"C\" NOT NULL, site_id text COLLATE \"C\" NOT NULL, url text NOT NULL,
            username text NOT NULL, app_password_set boolean NOT NULL, max_concurrent bigint NOT NULL,
            status text NOT NULL, last_test text, tested_at timestamptz,
            created_at timestamptz NOT NULL, updated_at timestamptz NOT NULL)",
        sqlite: "CREATE TABLE IF NOT EXISTS {t} (integration_id TEXT PRIMARY KEY, account_id TEXT NOT NULL,
            site_id TEXT NOT NULL, url TEXT NOT NULL, username TEXT NOT NULL, app_password_set INTEGER NOT NULL,
            max_concurrent INTEGER NOT NULL, status TEXT NOT NULL, last_test TEXT, tested_at TEXT,
            created_at TEXT NOT NULL, updated_at TEXT NOT NULL)",
        indexes: &[Index { name: "rm_wp_integrations_account_idx", columns: "account_id, created_at" }],
    },
    Table {
        name: "rm_publications",
        postgres: "CREATE TABLE IF NOT EXISTS {t} (publication_id text COLLATE \"C\" PRIMARY KEY,
            account_id text COLLATE \"C\" NOT NULL, site_id text COLLATE \"C\" NOT NULL,
            integration_id text COLLATE \"C\" NOT NULL, content_id text COLLATE \"C\" NOT NULL,
            state text NOT NULL, publish_id text, post_id bigint, link text, wp_status text, slug text,
            modified_gmt text, version bigint, warnings text NOT NULL, error text, external_change text,
            external_at timestamptz, media bigint NOT NULL, publishes bigint NOT NULL, published_at timestamptz,
            created_at timestamptz NOT NULL, updated_at timestamptz NOT NULL)",
        sqlite: "CREATE TABLE IF NOT EXISTS {t} (publication_id TEXT PRIMARY KEY, account_id TEXT NOT NULL,
            site_id TEXT NOT NULL, integration_id TEXT NOT NULL, content_id TEXT NOT NULL, state TEXT NOT NULL,
            publish_id TEXT, post_id INTEGER, link TEXT, wp_status TEXT, slug TEXT, modified_gmt TEXT,
            version INTEGER, warnings TEXT NOT NULL, error TEXT, external_change TEXT, external_at TEXT,
            media INTEGER NOT NULL, publishes INTEGER NOT NULL, published_at TEXT,
            created_at TEXT NOT NULL, updated_at TEXT NOT NULL)",
        indexes: &[
            Index { name: "rm_publications_integration_idx", columns: "integration_id, created_at" },
            Index { name: "rm_publications_content_idx", columns: "content_id" },
            Index { name: "rm_publications_publish_idx", columns: "publish_id" },
        ],
    },
];

enum Input {
    Integration(WpIntegrationEvent),
    Publication(PublicationEvent),
    Job(JobEvent),
}

fn decode(ev: &StoredEvent) -> Result<Option<Input>, DecodeError> {
    Ok(Some(match ev.aggregate_type.as_str() {
        WpIntegration::TYPE => Input::Integration(ev.decode()?),
        Publication::TYPE => Input::Publication(ev.decode()?),
        Job::TYPE if matches!(ev.event_type.as_str(), "JobCancelled" | "JobFailed") => {
            Input::Job(ev.decode()?)
        }
        _ => return Ok(None),
    }))
}

#[async_trait]
impl Projection for PublishingProjection {
    fn name(&self) -> &'static str {
        NAME
    }
    fn tables(&self) -> &'static [Table] {
        TABLES
    }
    fn version(&self) -> u32 {
        // 2: `unknown` (a request WordPress did not answer, not yet asked about).
        2
    }
    async fn apply_all(
        &self,
        tx: &mut DbTx,
        sfx: &str,
        events: &[&StoredEvent],
    ) -> anyhow::Result<Applied> {
        let (typed, applied) = decode_until(events, decode);
        let (ints, pubs) = (
            format!("rm_wp_integrations{sfx}"),
            format!("rm_publications{sfx}"),
        );
        for (ev, e) in &typed {
            match e {
                Input::Integration(e) => integration(tx, &ints, ev, e).await?,
                Input::Publication(e) => publication(tx, &pubs, ev, e).await?,
                Input::Job(e) => {
                    let state = if matches!(e, JobEvent::JobCancelled { .. }) {
                        "cancelled"
                    } else {
                        "failed"
                    };
                    let sql = format!(
                        "UPDATE {pubs} SET state = $2, updated_at = $3 WHERE publish_id = $1 AND state = 'publishing'"
                    );
                    exec(
                        tx,
                        &sql,
                        &[
                            ev.aggregate_id.clone().into(),
                            state.into(),
                            ev.recorded_at.into(),
                        ],
                    )
                    .await?;
                }
            }
        }
        Ok(applied)
    }
}

async fn integration(
    tx: &mut DbTx,
    t: &str,
    ev: &StoredEvent,
    e: &WpIntegrationEvent,
) -> anyhow::Result<()> {
    let id = ev.aggregate_id.as_str();
    let at = ev.recorded_at;
    match e {
        WpIntegrationEvent::WordPressConnected {
            account_id,
            site_id,
            url,
            username,
            credential,
            max_concurrent,
            ..
        } => {
            exec(
                tx,
                &format!("DELETE FROM {t} WHERE integration_id = $1"),
                &[id.into()],
            )
            .await?;
            insert(
                tx,
                t,
                "integration_id",
                &[
                    ("integration_id", id.into()),
                    ("account_id", account_id.to_string().into()),
                    ("site_id", site_id.to_string().into()),
                    ("url", url.clone().into()),
                    ("username", username.clone().into()),
                    ("app_password_set", (!credential.is_empty()).into()),
                    ("max_concurrent", i64::from(*max_concurrent).into()),
                    ("status", "untested".into()),
                    ("last_test", Val::Text(None)),
                    ("tested_at", Val::MaybeAt(None)),
                    ("created_at", at.into()),
                    ("updated_at", at.into()),
                ],
            )
            .await
        }
        WpIntegrationEvent::WordPressConnectionChanged {
            url,
            username,
            credential,
            max_concurrent,
        } => {
            let mut sets: Vec<(&str, Val)> = vec![
                ("url", url.clone().into()),
                ("username", username.clone().into()),
                ("max_concurrent", i64::from(*max_concurrent).into()),
                ("updated_at", at.into()),
            ];
            if credential.is_some() {
                sets.push(("app_password_set", true.into()));
            }
            // The test spoke of another site or user.
            exec(
                tx,
                &format!("UPDATE {t} SET status = 'untested', last_test = NULL, tested_at = NULL WHERE integration_id = $1 AND (url <> $2 OR username <> $3 OR $4)"),
                &[id.into(), url.clone().into(), username.clone().into(), credential.is_some().into()],
            )
            .await?;
            update(tx, t, "integration_id", id, &sets).await
        }
        WpIntegrationEvent::WordPressConnectionTested { test } => {
            let status = if test.ok { "connected" } else { "failing" };
            update(
                tx,
                t,
                "integration_id",
                id,
                &[
                    ("status", status.into()),
                    ("last_test", json(test).into()),
                    ("tested_at", Val::MaybeAt(Some(at))),
                    ("updated_at", at.into()),
                ],
            )
            .await
        }
        WpIntegrationEvent::WordPressDisconnected {} => {
            exec(
                tx,
                &format!("DELETE FROM {t} WHERE integration_id = $1"),
                &[id.into()],
            )
            .await
        }
    }
}

async fn publication(
    tx: &mut DbTx,
    t: &str,
    ev: &StoredEvent,
    e: &PublicationEvent,
) -> anyhow::Result<()> {
    let id = ev.aggregate_id.as_str();
    let at = ev.recorded_at;
    let post_sets = |p: &igny8_domain::publishing::WpPost| -> Vec<(&'static str, Val)> {
        vec![
            ("post_id", (p.post_id as i64).into()),
            ("link", p.link.clone().into()),
            ("wp_status", p.status.clone().into()),
            ("slug", p.slug.clone().into()),
            ("modified_gmt", p.modified_gmt.clone().into()),
            ("version", i64::from(p.version).into()),
            ("updated_at", at.into()),
        ]
    };
    match e {
        PublicationEvent::PublishStarted {
            origin, publish_id, ..
        } => {
            insert(
                tx,
                t,
                "publication_id",
                &[
                    ("publication_id", id.into()),
                    ("account_id", origin.account_id.to_string().into()),
                    ("site_id", origin.site_id.to_string().into()),
                    ("integration_id", origin.integration_id.to_string().into()),
                    ("content_id", origin.content_id.to_string().into()),
                    ("state", "publishing".into()),
                    ("publish_id", publish_id.to_string().into()),
                    ("warnings", "[]".into()),
                    ("media", 0i64.into()),
                    ("publishes", 0i64.into()),
                    ("created_at", at.into()),
                    ("updated_at", at.into()),
                ],
            )
            .await?;
            exec(
                tx,
                &format!("UPDATE {t} SET state = 'publishing', publish_id = $2, error = NULL, publishes = publishes + 1, updated_at = $3 WHERE publication_id = $1"),
                &[id.into(), publish_id.to_string().into(), at.into()],
            )
            .await
        }
        PublicationEvent::MediaUploaded { .. } => {
            exec(
                tx,
                &format!(
                    "UPDATE {t} SET media = media + 1, updated_at = $2 WHERE publication_id = $1"
                ),
                &[id.into(), at.into()],
            )
            .await
        }
        PublicationEvent::PostPublished { post, warnings, .. } => {
            let mut sets = post_sets(post);
            sets.extend([
                ("state", Val::from("published")),
                ("warnings", json(warnings).into()),
                ("error", Val::Text(None)),
                ("external_change", Val::Text(None)),
                ("external_at", Val::MaybeAt(None)),
                ("published_at", Val::MaybeAt(Some(at))),
            ]);
            update(tx, t, "publication_id", id, &sets).await
        }
        PublicationEvent::PostUnpublished { post, .. } => {
            let mut sets = post_sets(post);
            sets.extend([
                ("state", Val::from("unpublished")),
                ("external_change", Val::Text(None)),
                ("external_at", Val::MaybeAt(None)),
            ]);
            update(tx, t, "publication_id", id, &sets).await
        }
        PublicationEvent::PublishFailed { error, .. } => {
            // A publish that ended without learning what WordPress did
            // leaves the publication unknown (the next publish looks first).
            let state = if error.starts_with("OUTCOME_UNKNOWN") {
                "unknown"
            } else {
                "failed"
            };
            update(
                tx,
                t,
                "publication_id",
                id,
                &[
                    ("state", state.into()),
                    ("error", error.clone().into()),
                    ("updated_at", at.into()),
                ],
            )
            .await
        }
        PublicationEvent::PublishOutcomeUnknown { request, error, .. } => {
            update(
                tx,
                t,
                "publication_id",
                id,
                &[
                    ("state", "unknown".into()),
                    (
                        "error",
                        format!("OUTCOME_UNKNOWN ({request}): {error}").into(),
                    ),
                    ("updated_at", at.into()),
                ],
            )
            .await
        }
        PublicationEvent::ExternalChangeDetected { change } => {
            let mut sets: Vec<(&str, Val)> = vec![
                ("external_change", json(change).into()),
                ("external_at", Val::MaybeAt(Some(at))),
                ("updated_at", at.into()),
            ];
            if let Some(s) = &change.status {
                sets.push(("wp_status", s.clone().into()));
            }
            if change.kind == "deleted" {
                // The post is gone (and the aggregate forgot it and its
                // media): the next publish makes a new one.
                sets.extend([
                    ("wp_status", "deleted".into()),
                    ("post_id", Val::Int(None)),
                    ("link", Val::Text(None)),
                    ("media", 0i64.into()),
                ]);
            }
            update(tx, t, "publication_id", id, &sets).await
        }
        PublicationEvent::PostCreateRequested { .. }
        | PublicationEvent::MediaUploadRequested { .. } => Ok(()),
    }
}

// --- queries -------------------------------------------------------------------

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct IntegrationRow {
    pub integration_id: String,
    pub account_id: String,
    pub site_id: String,
    pub url: String,
    pub username: String,
    pub app_password_set: bool,
    pub max_concurrent: i64,
    pub status: String,
    pub last_test: Option<String>,
    pub tested_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

const INTEGRATION_COLUMNS: &str = "integration_id, account_id, site_id, url, username, app_password_set, max_concurrent, \
    status, last_test, tested_at, created_at, updated_at";

pub const INTEGRATION_ORDERINGS: &[&str] = &["created_at", "updated_at", "url", "status"];
pub const INTEGRATION_STATUSES: &[&str] = &["untested", "connected", "failing"];

#[derive(Debug, Clone, Default)]
pub struct IntegrationFilter {
    pub site_in: Option<Vec<String>>,
    pub site_id: Option<String>,
    pub status: Option<String>,
    pub ordering: Option<String>,
    pub offset: i64,
    pub limit: i64,
}

pub async fn page_integrations(
    db: &Db,
    account: &str,
    f: &IntegrationFilter,
) -> Result<(Vec<IntegrationRow>, i64), sqlx::Error> {
    Listing::new(
        "rm_wp_integrations",
        INTEGRATION_COLUMNS,
        "integration_id",
        account,
    )
    .sites(f.site_in.clone())
    .eq("site_id", f.site_id.clone())
    .eq("status", f.status.clone())
    .page(
        db,
        f.ordering.as_deref(),
        INTEGRATION_ORDERINGS,
        "created_at",
        f.offset,
        f.limit,
    )
    .await
}

pub async fn get_integration(
    db: &Db,
    account: &str,
    id: &str,
) -> Result<Option<IntegrationRow>, sqlx::Error> {
    Listing::new(
        "rm_wp_integrations",
        INTEGRATION_COLUMNS,
        "integration_id",
        account,
    )
    .eq("integration_id", Some(id.to_string()))
    .one(db)
    .await
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct PublicationRow {
    pub publication_id: String,
    pub account_id: String,
    pub site_id: String,
    pub integration_id: String,
    pub content_id: String,
    pub state: String,
    pub publish_id: Option<String>,
    pub post_id: Option<i64>,
    pub link: Option<String>,
    pub wp_status: Option<String>,
    pub slug: Option<String>,
    pub modified_gmt: Option<String>,
    pub version: Option<i64>,
    pub warnings: String,
    pub error: Option<String>,
    pub external_change: Option<String>,
    pub external_at: Option<DateTime<Utc>>,
    pub media: i64,
    pub publishes: i64,
    pub published_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

const PUBLICATION_COLUMNS: &str = "publication_id, account_id, site_id, integration_id, content_id, state, publish_id, \
    post_id, link, wp_status, slug, modified_gmt, version, warnings, error, external_change, external_at, media, publishes, \
    published_at, created_at, updated_at";

pub const PUBLICATION_ORDERINGS: &[&str] = &["created_at", "updated_at", "published_at", "state"];
pub const PUBLICATION_STATES: &[&str] = &[
    "publishing",
    "unknown",
    "published",
    "unpublished",
    "failed",
    "cancelled",
];

#[derive(Debug, Clone, Default)]
pub struct PublicationFilter {
    pub site_in: Option<Vec<String>>,
    pub integration_id: Option<String>,
    pub content_id: Option<String>,
    pub state: Option<String>,
    /// Only those with (true) or without (false) a change made in WordPress.
    pub external: Option<bool>,
    pub ordering: Option<String>,
    pub offset: i64,
    pub limit: i64,
}

pub async fn page_publications(
    db: &Db,
    account: &str,
    f: &PublicationFilter,
) -> Result<(Vec<PublicationRow>, i64), sqlx::Error> {
    let external = f
        .external
        .map(|e| if e { "changed" } else { "unchanged" }.to_string());
    Listing::new(
        "rm_publications",
        PUBLICATION_COLUMNS,
        "publication_id",
        account,
    )
    .sites(f.site_in.clone())
    .eq("integration_id", f.integration_id.clone())
    .eq("content_id", f.content_id.clone())
    .eq("state", f.state.clone())
    .eq(
        "CASE WHEN external_change IS NULL THEN 'unchanged' ELSE 'changed' END",
        external,
    )
    .page(
        db,
        f.ordering.as_deref(),
        PUBLICATION_ORDERINGS,
        "created_at",
        f.offset,
        f.limit,
    )
    .await
}

pub async fn get_publication(
    db: &Db,
    account: &str,
    id: &str,
) -> Result<Option<PublicationRow>, sqlx::Error> {
    Listing::new(
        "rm_publications",
        PUBLICATION_COLUMNS,
        "publication_id",
        account,
    )
    .eq("publication_id", Some(id.to_string()))
    .one(db)
    .await
}

/// Every publication of a connection that has a post (for a sync).
pub async fn published_ids(
    db: &Db,
    account: &str,
    integration_id: &str,
) -> Result<Vec<String>, sqlx::Error> {
    let sql = "SELECT publication_id FROM rm_publications WHERE account_id = $1 AND integration_id = $2 AND post_id IS NOT NULL ORDER BY created_at";
    igny8_commands::on_db!(db, p => sqlx::query_scalar(sql).bind(account).bind(integration_id).fetch_all(p).await)
}
