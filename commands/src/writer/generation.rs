//! What a content job commits per article, and how its items settle.
//!
//! [`save_article`]: the content's new version, the task's completion and
//! the article's charge (the capture of its own reservation) in one
//! commit. A second save of the same job's article is refused by the
//! content (a job adds one version), by the task (completed already) and by
//! the account (the reservation is closed), so it is never stored or
//! charged twice, whichever worker or attempt tries. [`fail_article`]:
//! the task failed and its reservation released, together.
//! [`settle_items`]: at the job's end, whatever is left of its items.

use super::tasks::first;
use crate::bus::{CommandBus, CommandContext, CommandError, CommandOutcome};
use crate::uow::{UnitOfWork, retry_hot};
use igny8_domain::billing::{Account, AccountCommand, content_cost_milli};
use igny8_domain::jobs::{Job, item_reservation};
use igny8_domain::writer::{
    Content, ContentBody, ContentCommand, ContentOrigin, Task, TaskCommand, TaskStatus,
    VersionAuthor, content_id,
};
use uuid::Uuid;

/// Store one article of `job_id` for `task_id`, charged by its words
/// (at most its reservation). The body's HTML must be sanitised. Answers
/// the content's outcome, or `Ok(None)` when the task is no longer this
/// job's to write (cancelled, failed, or done by another attempt).
pub async fn save_article(
    bus: &CommandBus,
    ctx: &CommandContext,
    job_id: Uuid,
    task_id: Uuid,
    body: ContentBody,
    author: VersionAuthor,
) -> Result<Option<(CommandOutcome, i64)>, CommandError> {
    let tid = task_id.to_string();
    let cid = content_id(task_id);
    let result = retry_hot(|| async {
        let mut uow = bus.unit(ctx);
        let task: Task = uow.state(&tid).await?;
        if task.status != TaskStatus::InProgress || task.job_id != Some(job_id) {
            return Ok(Some(vec![]));
        }
        let account = task.account_id.unwrap_or_default().to_string();
        let acct: Account = uow.state(&account).await?;
        let reservation = item_reservation(job_id, task_id);
        let Some(&reserved) = acct.reservations.get(&reservation) else {
            return Ok(Some(vec![]));
        };
        let charge =
            content_cost_milli(acct.plan.as_deref(), u64::from(body.word_count)).min(reserved);
        let mut author = author.clone();
        if let VersionAuthor::Ai { credits_milli, .. } = &mut author {
            *credits_milli = charge;
        }
        let content: Content = uow.state(&cid.to_string()).await?;
        let version = content.versions + 1;
        let data = task.data.clone();
        uow.execute::<Content>(
            &cid.to_string(),
            ContentCommand::AddGenerated {
                origin: ContentOrigin {
                    account_id: task.account_id.unwrap_or_default(),
                    site_id: task.site_id.unwrap_or_default(),
                    sector_id: task.sector_id.unwrap_or_default(),
                    task_id,
                    idea_id: data.as_ref().and_then(|d| d.idea_id),
                    cluster_id: data.as_ref().and_then(|d| d.cluster_id),
                },
                body: body.clone(),
                author,
            },
        )
        .await?;
        uow.execute::<Task>(
            &tid,
            TaskCommand::Complete {
                job_id,
                content_id: cid,
                version,
                credits_milli: charge,
            },
        )
        .await?;
        uow.execute::<Account>(
            &account,
            AccountCommand::Capture {
                reservation_id: reservation,
                amount: charge,
            },
        )
        .await?;
        uow.commit().await
    })
    .await?;
    if result.is_empty() {
        return Ok(None);
    }
    let charged = result
        .iter()
        .find(|o| o.aggregate_type == "task")
        .and_then(|o| {
            o.events
                .iter()
                .filter(|e| e.event_type == "TaskCompleted")
                .find_map(|e| e.payload["credits_milli"].as_i64())
        })
        .unwrap_or(0);
    Ok(Some((first(result, "content")?, charged)))
}

/// The article of `task_id` could not be written: the task fails with the
/// reason and its reservation returns, in one commit (nothing when the
/// task is no longer this job's).
pub async fn fail_article(
    bus: &CommandBus,
    ctx: &CommandContext,
    job_id: Uuid,
    task_id: Uuid,
    reason: &str,
) -> Result<(), CommandError> {
    retry_hot(|| async {
        let mut uow = bus.unit(ctx);
        let job: Job = uow.state(&job_id.to_string()).await?;
        fail_item(&mut uow, &job, job_id, task_id, reason).await?;
        uow.commit().await
    })
    .await
    .map(|_| ())
}

async fn fail_item(
    uow: &mut UnitOfWork<'_>,
    job: &Job,
    job_id: Uuid,
    task_id: Uuid,
    reason: &str,
) -> Result<(), CommandError> {
    uow.execute::<Task>(
        &task_id.to_string(),
        TaskCommand::Fail {
            job_id,
            reason: reason.to_string(),
        },
    )
    .await?;
    let account = job.account_id.unwrap_or_default().to_string();
    uow.execute::<Account>(
        &account,
        AccountCommand::Release {
            reservation_id: item_reservation(job_id, task_id),
            reason: "article not written".into(),
        },
    )
    .await?;
    Ok(())
}

/// At a batch job's end (success, failure or cancel): every item still
/// open fails with `reason` and its reservation returns, in the job's own
/// commit. Items already saved or failed change nothing.
pub async fn settle_items(
    uow: &mut UnitOfWork<'_>,
    job: &Job,
    job_id: Uuid,
    reason: &str,
) -> Result<(), CommandError> {
    if job.kind != "auto_generate_content" {
        return super::images::settle_image_items(uow, job, job_id, reason).await;
    }
    for item in &job.items {
        fail_item(uow, job, job_id, *item, reason).await?;
    }
    Ok(())
}
