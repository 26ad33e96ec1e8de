//! The automation read-model port ([`AutomationLookup`]) over the `rm_`
//! tables: what conditions count, what stages take, what the scheduler
//! finds due.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use igny8_commands::automation::{AutomationLookup, DueRule, PendingEvent, SiteCounts, TaskPick};
use igny8_commands::db::Db;
use igny8_commands::{CommandError, on_db};
use uuid::Uuid;

/// [`AutomationLookup`] on a database (and its feed, to know how far the
/// read models are).
#[derive(Clone)]
pub struct Lookup {
    db: Db,
    feed: igny8_commands::Feed,
}

impl Lookup {
    pub fn new(bus: &igny8_commands::CommandBus) -> Self {
        Lookup {
            db: bus.db().clone(),
            feed: bus.feed(),
        }
    }
}

/// The read models a stage's use cases read.
const READ_BY_STAGES: &[&str] = &[
    "tenancy",
    "planner",
    "ideas",
    "writer",
    "images",
    "publishing",
];

fn ids(rows: Vec<String>) -> Vec<Uuid> {
    rows.iter()
        .filter_map(|s| Uuid::parse_str(s).ok())
        .collect()
}

/// `$from, $from+1, …` for `n` values (an `IN` list).
fn marks(from: usize, n: usize) -> String {
    (from..from + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

impl Lookup {
    async fn strings(
        &self,
        sql: &str,
        binds: &[String],
        limit: i64,
    ) -> Result<Vec<String>, CommandError> {
        let rows: Vec<String> = on_db!(&self.db, p => {
            let mut q = sqlx::query_scalar(sql);
            for b in binds {
                q = q.bind(b.clone());
            }
            q.bind(limit).fetch_all(p).await.map_err(CommandError::db)?
        });
        Ok(rows)
    }
}

#[async_trait]
impl AutomationLookup for Lookup {
    async fn caught_up(&self, global_position: i64) -> Result<bool, CommandError> {
        for name in READ_BY_STAGES {
            let reached = crate::checkpoint::wait_for(
                &self.db,
                &self.feed,
                name,
                global_position,
                std::time::Duration::from_millis(250),
            )
            .await
            .map_err(CommandError::db)?;
            if matches!(reached, crate::checkpoint::WaitOutcome::TimedOut) {
                return Ok(false);
            }
        }
        Ok(true)
    }

    async fn counts(&self, account: Uuid, site: Uuid) -> Result<SiteCounts, CommandError> {
        let sql = "SELECT \
            (SELECT count(*) FROM rm_keywords WHERE account_id = $1 AND site_id = $2), \
            (SELECT count(*) FROM rm_keywords WHERE account_id = $1 AND site_id = $2 AND cluster_id IS NULL), \
            (SELECT count(*) FROM rm_clusters WHERE account_id = $1 AND site_id = $2), \
            (SELECT count(*) FROM rm_ideas WHERE account_id = $1 AND site_id = $2 AND status = 'new'), \
            (SELECT count(*) FROM rm_tasks WHERE account_id = $1 AND site_id = $2 AND status = 'queued' AND content_id IS NULL), \
            (SELECT count(*) FROM rm_content WHERE account_id = $1 AND site_id = $2 AND status = 'draft'), \
            (SELECT count(*) FROM rm_content WHERE account_id = $1 AND site_id = $2 AND status = 'review'), \
            (SELECT count(*) FROM rm_content WHERE account_id = $1 AND site_id = $2 AND status = 'approved'), \
            (SELECT count(*) FROM rm_publications WHERE account_id = $1 AND site_id = $2 AND state = 'published'), \
            (SELECT industry FROM rm_sites WHERE account_id = $1 AND site_id = $2)";
        type Row = (i64, i64, i64, i64, i64, i64, i64, i64, i64, Option<String>);
        let r: Row = on_db!(&self.db, p => sqlx::query_as(sql)
            .bind(account.to_string()).bind(site.to_string())
            .fetch_one(p).await.map_err(CommandError::db)?);
        Ok(SiteCounts {
            keywords: r.0,
            unclustered_keywords: r.1,
            clusters: r.2,
            new_ideas: r.3,
            queued_tasks: r.4,
            draft_content: r.5,
            review_content: r.6,
            approved_content: r.7,
            published_content: r.8,
            industry: r.9,
        })
    }

    async fn unclustered(
        &self,
        account: Uuid,
        site: Uuid,
        limit: usize,
    ) -> Result<Vec<(Uuid, Vec<Uuid>)>, CommandError> {
        let sectors: Vec<String> = on_db!(&self.db, p => sqlx::query_scalar(
            "SELECT sector_id FROM rm_keyword_sets WHERE account_id = $1 AND site_id = $2 ORDER BY sector_id")
            .bind(account.to_string()).bind(site.to_string())
            .fetch_all(p).await.map_err(CommandError::db)?);
        let mut out = vec![];
        for sector in sectors {
            let kws = self
                .strings(
                    "SELECT keyword_id FROM rm_keywords WHERE sector_id = $1 AND cluster_id IS NULL \
                     ORDER BY volume DESC, keyword_id LIMIT $2",
                    std::slice::from_ref(&sector),
                    limit as i64,
                )
                .await?;
            if let Ok(s) = Uuid::parse_str(&sector)
                && !kws.is_empty()
            {
                out.push((s, ids(kws)));
            }
        }
        Ok(out)
    }

    async fn clusters_without_ideas(
        &self,
        account: Uuid,
        site: Uuid,
        limit: usize,
    ) -> Result<Vec<Uuid>, CommandError> {
        Ok(ids(self
            .strings(
                "SELECT c.cluster_id FROM rm_clusters c WHERE c.account_id = $1 AND c.site_id = $2 \
                 AND NOT EXISTS (SELECT 1 FROM rm_ideas i WHERE i.cluster_id = c.cluster_id) \
                 ORDER BY c.created_at, c.cluster_id LIMIT $3",
                &[account.to_string(), site.to_string()],
                limit as i64,
            )
            .await?))
    }

    async fn new_ideas(
        &self,
        account: Uuid,
        site: Uuid,
        limit: usize,
    ) -> Result<Vec<Uuid>, CommandError> {
        Ok(ids(self
            .strings(
                "SELECT idea_id FROM rm_ideas WHERE account_id = $1 AND site_id = $2 AND status = 'new' \
                 ORDER BY created_at, idea_id LIMIT $3",
                &[account.to_string(), site.to_string()],
                limit as i64,
            )
            .await?))
    }

    async fn queued_tasks(
        &self,
        account: Uuid,
        site: Uuid,
        limit: usize,
    ) -> Result<Vec<TaskPick>, CommandError> {
        let rows: Vec<(String, i64)> = on_db!(&self.db, p => sqlx::query_as(
            "SELECT task_id, target_word_count FROM rm_tasks WHERE account_id = $1 AND site_id = $2 \
             AND status = 'queued' AND content_id IS NULL ORDER BY created_at, task_id LIMIT $3")
            .bind(account.to_string()).bind(site.to_string()).bind(limit as i64)
            .fetch_all(p).await.map_err(CommandError::db)?);
        Ok(rows
            .into_iter()
            .filter_map(|(id, w)| {
                Some(TaskPick {
                    task_id: Uuid::parse_str(&id).ok()?,
                    target_word_count: w.clamp(0, u32::MAX as i64) as u32,
                })
            })
            .collect())
    }

    async fn contents_without_prompts(
        &self,
        account: Uuid,
        site: Uuid,
        limit: usize,
    ) -> Result<Vec<Uuid>, CommandError> {
        Ok(ids(self
            .strings(
                "SELECT c.content_id FROM rm_content c WHERE c.account_id = $1 AND c.site_id = $2 \
                 AND NOT EXISTS (SELECT 1 FROM rm_image_prompts p WHERE p.content_id = c.content_id) \
                 ORDER BY c.created_at, c.content_id LIMIT $3",
                &[account.to_string(), site.to_string()],
                limit as i64,
            )
            .await?))
    }

    async fn prompts_without_images(
        &self,
        account: Uuid,
        site: Uuid,
        contents: Option<&[Uuid]>,
        limit: usize,
    ) -> Result<Vec<Uuid>, CommandError> {
        let base = "SELECT prompt_id FROM rm_image_prompts WHERE account_id = $1 AND site_id = $2 \
                    AND image_id IS NULL AND status <> 'generating'";
        let Some(contents) = contents.filter(|c| !c.is_empty()) else {
            return Ok(ids(self
                .strings(
                    &format!("{base} ORDER BY created_at, slot, prompt_id LIMIT $3"),
                    &[account.to_string(), site.to_string()],
                    limit as i64,
                )
                .await?));
        };
        let sql = format!(
            "{base} AND content_id IN ({}) ORDER BY created_at, slot, prompt_id LIMIT ${}",
            marks(3, contents.len()),
            3 + contents.len()
        );
        let mut binds = vec![account.to_string(), site.to_string()];
        binds.extend(contents.iter().map(Uuid::to_string));
        Ok(ids(self.strings(&sql, &binds, limit as i64).await?))
    }

    async fn publishable(
        &self,
        account: Uuid,
        site: Uuid,
        limit: usize,
    ) -> Result<Vec<Uuid>, CommandError> {
        Ok(ids(self
            .strings(
                "SELECT c.content_id FROM rm_content c WHERE c.account_id = $1 AND c.site_id = $2 \
                 AND c.status = 'approved' AND NOT EXISTS (SELECT 1 FROM rm_publications p \
                 WHERE p.content_id = c.content_id AND p.state IN ('published', 'publishing', 'unknown')) \
                 ORDER BY c.updated_at, c.content_id LIMIT $3",
                &[account.to_string(), site.to_string()],
                limit as i64,
            )
            .await?))
    }

    async fn site_integration(
        &self,
        account: Uuid,
        site: Uuid,
    ) -> Result<Option<Uuid>, CommandError> {
        let row: Option<String> = on_db!(&self.db, p => sqlx::query_scalar(
            "SELECT integration_id FROM rm_wp_integrations WHERE account_id = $1 AND site_id = $2")
            .bind(account.to_string()).bind(site.to_string())
            .fetch_optional(p).await.map_err(CommandError::db)?);
        Ok(row.and_then(|s| Uuid::parse_str(&s).ok()))
    }

    async fn planned_posts(
        &self,
        _account: Uuid,
        site: Uuid,
        after: DateTime<Utc>,
    ) -> Result<Vec<DateTime<Utc>>, CommandError> {
        let rows: Vec<DateTime<Utc>> = on_db!(&self.db, p => sqlx::query_scalar(
            "SELECT slot FROM rm_automation_slots WHERE site_id = $1 AND slot > $2 ORDER BY slot")
            .bind(site.to_string()).bind(after)
            .fetch_all(p).await.map_err(CommandError::db)?);
        Ok(rows)
    }

    async fn due_rules(
        &self,
        now: DateTime<Utc>,
        after: Option<&DueRule>,
        limit: usize,
    ) -> Result<Vec<DueRule>, CommandError> {
        // Keyset pages: the read model moves a fired rule's slot only when
        // it has caught up, so a pass walks past the rules it fired.
        let (slot, rule) = match after {
            Some(d) => (d.slot, d.rule_id.to_string()),
            None => (DateTime::<Utc>::UNIX_EPOCH, String::new()),
        };
        let rows: Vec<(String, DateTime<Utc>, String, String)> = on_db!(&self.db, p => sqlx::query_as(
            "SELECT rule_id, next_slot, account_id, site_id FROM rm_automation_rules WHERE status = 'active' \
             AND trigger_type = 'schedule' AND next_slot <= $1 \
             AND (next_slot > $2 OR (next_slot = $2 AND rule_id > $3)) \
             ORDER BY next_slot, rule_id LIMIT $4")
            .bind(now).bind(slot).bind(rule).bind(limit as i64)
            .fetch_all(p).await.map_err(CommandError::db)?);
        Ok(rows
            .into_iter()
            .filter_map(|(id, slot, account, site)| {
                Some(DueRule {
                    rule_id: Uuid::parse_str(&id).ok()?,
                    slot,
                    account_id: Uuid::parse_str(&account).ok()?,
                    site_id: Uuid::parse_str(&site).ok()?,
                })
            })
            .collect())
    }

    async fn settled_events(
        &self,
        now: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<PendingEvent>, CommandError> {
        let rows: Vec<(String, i64, String)> = on_db!(&self.db, p => sqlx::query_as(
            "SELECT rule_id, burst, last_event_type FROM rm_automation_pending WHERE due_at <= $1 \
             ORDER BY due_at LIMIT $2")
            .bind(now).bind(limit as i64)
            .fetch_all(p).await.map_err(CommandError::db)?);
        Ok(rows
            .into_iter()
            .filter_map(|(id, burst, event_type)| {
                Some(PendingEvent {
                    rule_id: Uuid::parse_str(&id).ok()?,
                    burst,
                    event_type,
                })
            })
            .collect())
    }

    async fn running(&self, limit: usize) -> Result<Vec<Uuid>, CommandError> {
        let rows: Vec<String> = on_db!(&self.db, p => sqlx::query_scalar(
            "SELECT run_id FROM rm_automation_runs WHERE status = 'running' ORDER BY created_at LIMIT $1")
            .bind(limit as i64)
            .fetch_all(p).await.map_err(CommandError::db)?);
        Ok(ids(rows))
    }

    async fn due_renewals(
        &self,
        now: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<(Uuid, DateTime<Utc>)>, CommandError> {
        let rows: Vec<(String, DateTime<Utc>)> = on_db!(&self.db, p => sqlx::query_as(
            "SELECT account_id, period_end FROM rm_accounts WHERE period_end IS NOT NULL AND period_end <= $1 \
             ORDER BY period_end LIMIT $2")
            .bind(now).bind(limit as i64)
            .fetch_all(p).await.map_err(CommandError::db)?);
        Ok(rows
            .into_iter()
            .filter_map(|(id, end)| Some((Uuid::parse_str(&id).ok()?, end)))
            .collect())
    }
}
