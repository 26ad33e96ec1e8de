//! `sync_wordpress` (read back every post we published: status,
//! `modified_gmt`, a hash of the stored content; a post changed, trashed
//! or deleted in WordPress since our last write is recorded on its
//! publication) and `unpublish_wordpress` (back to draft, or to the trash).

use super::client::{Body, Idempotent, WpError, query};
use super::publish::sha_hex;
use crate::jobs::{Attempt, JobEnv, JobFailure, JobOutput};
use igny8_commands::publishing::integrations;
use igny8_commands::publishing::publish as steps;
use igny8_domain::jobs::Phase;
use igny8_domain::publishing::{ExternalChange, WpIntegration, WpPost, publication_id};
use reqwest::Method;
use serde_json::{Value, json};
use std::collections::HashMap;
use uuid::Uuid;

fn fail(e: WpError, what: &str) -> JobFailure {
    JobFailure::Failed(format!("{}: {what}: {e}", e.code()))
}

async fn connection(
    env: &JobEnv,
    input: &Value,
) -> Result<(Uuid, integrations::OpenConnection), JobFailure> {
    let id = input["integration_id"]
        .as_str()
        .and_then(|s| Uuid::parse_str(s).ok())
        .ok_or_else(|| JobFailure::Failed("the job names no connection".into()))?;
    let (i, _) = env.bus.load::<WpIntegration>(&id.to_string()).await?;
    if !i.live() {
        return Err(JobFailure::Failed(
            "NOT_FOUND: the WordPress connection was removed".into(),
        ));
    }
    Ok((id, integrations::open(&env.secrets, id, &i)?))
}

/// What WordPress holds now compared with our last write (`None`: the same).
fn drift(ours: &WpPost, theirs: Option<&Value>) -> Option<ExternalChange> {
    let Some(t) = theirs else {
        return Some(ExternalChange {
            kind: "deleted".into(),
            source: "sync".into(),
            status: None,
            modified_gmt: None,
            content_sha256: None,
        });
    };
    let status = t["status"].as_str().unwrap_or("").to_string();
    let modified = t["modified_gmt"].as_str().unwrap_or("").to_string();
    let sha = sha_hex(t["content"]["raw"].as_str().unwrap_or(""));
    let kind = if status == "trash" && ours.status != "trash" {
        "trashed"
    } else if modified != ours.modified_gmt || sha != ours.content_sha256 {
        "edited"
    } else {
        return None;
    };
    Some(ExternalChange {
        kind: kind.into(),
        source: "sync".into(),
        status: Some(status),
        modified_gmt: Some(modified),
        content_sha256: Some(sha),
    })
}

pub async fn run_sync(
    env: &JobEnv,
    run: &Attempt<'_>,
    input: &Value,
) -> Result<JobOutput, JobFailure> {
    let (integration_id, conn) = connection(env, input).await?;
    let wp = env
        .wp
        .site(&conn, Some(env.bus.clone()), Some(run.job_id), None);
    let ids = crate::jobs::input_ids(input, "publication_ids");
    run.progress(
        Phase::Prep,
        10,
        &format!("{} publications to read back", ids.len()),
        0,
        0,
    )
    .await?;
    let mut ours: Vec<(Uuid, WpPost)> = vec![];
    for id in &ids {
        let p = steps::load(&env.bus, *id).await?;
        let mine = p
            .origin
            .as_ref()
            .is_some_and(|o| o.integration_id == integration_id);
        if let (true, Some(post)) = (mine, p.post) {
            ours.push((*id, post));
        }
    }
    let (mut changed, mut unchanged) = (vec![], 0usize);
    for (n, chunk) in ours.chunks(100).enumerate() {
        let include: Vec<String> = chunk.iter().map(|(_, p)| p.post_id.to_string()).collect();
        let q = query(&[
            ("include", &include.join(",")),
            ("status", "any"),
            ("context", "edit"),
            ("per_page", "100"),
        ]);
        let a = wp
            .call(
                Method::GET,
                &format!("/wp/v2/posts?{q}"),
                Body::Empty,
                Idempotent::Yes,
            )
            .await
            .map_err(|e| fail(e, "reading the posts back"))?;
        let mut found: HashMap<u64, Value> = a
            .body
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|p| p["id"].as_u64().map(|id| (id, p.clone())))
            .collect();
        for (pid, post) in chunk {
            if let std::collections::hash_map::Entry::Vacant(slot) = found.entry(post.post_id) {
                // Not listed under "any": in the trash, or gone.
                match wp
                    .call(
                        Method::GET,
                        &format!("/wp/v2/posts/{}?context=edit", post.post_id),
                        Body::Empty,
                        Idempotent::Yes,
                    )
                    .await
                {
                    Ok(one) => {
                        slot.insert(one.body);
                    }
                    Err(WpError::Refused {
                        status: 404 | 410, ..
                    }) => {}
                    Err(e) => return Err(fail(e, "reading a post back")),
                }
            }
            match drift(post, found.get(&post.post_id)) {
                None => unchanged += 1,
                Some(change) => {
                    let kind = change.kind.clone();
                    if steps::record_external(&env.bus, run.ctx, *pid, change).await? {
                        changed.push(
                            json!({"publication_id": pid, "post_id": post.post_id, "change": kind}),
                        );
                    } else {
                        unchanged += 1;
                    }
                }
            }
        }
        // The calls' phase spans 25–60 %.
        let read = ((n + 1) * 100).min(ours.len());
        let pct = (25 + 35 * read / ours.len().max(1)) as u8;
        run.progress(Phase::AiCall, pct, &format!("{read} posts read back"), 0, 0)
            .await?;
    }
    Ok(JobOutput {
        result: json!({"checked": ours.len(), "unchanged": unchanged, "changed": changed,
                       "requests": wp.sent.load(std::sync::atomic::Ordering::Relaxed)}),
        save: None,
        charged: Some(0),
    })
}

pub async fn run_unpublish(
    env: &JobEnv,
    run: &Attempt<'_>,
    input: &Value,
) -> Result<JobOutput, JobFailure> {
    let (integration_id, conn) = connection(env, input).await?;
    let content_id = input["content_id"]
        .as_str()
        .and_then(|s| Uuid::parse_str(s).ok())
        .ok_or_else(|| JobFailure::Failed("the job names no content".into()))?;
    let publication = publication_id(integration_id, content_id);
    let to = input["to"].as_str().unwrap_or("draft");
    let outcome = async {
        let p = steps::load(&env.bus, publication).await?;
        if p.publishing != Some(run.job_id) {
            return Err(JobFailure::Superseded);
        }
        let post = p
            .post
            .ok_or_else(|| JobFailure::Failed("NOT_PUBLISHED: nothing to unpublish".into()))?;
        let wp = env.wp.site(
            &conn,
            Some(env.bus.clone()),
            Some(run.job_id),
            Some(content_id),
        );
        run.progress(
            Phase::AiCall,
            30,
            &format!("moving post {} to {to}", post.post_id),
            0,
            0,
        )
        .await?;
        let route = format!("/wp/v2/posts/{}?context=edit", post.post_id);
        let a = if to == "trash" {
            wp.call(Method::DELETE, &route, Body::Empty, Idempotent::Yes)
                .await
        } else {
            wp.call(
                Method::POST,
                &route,
                Body::Json(json!({"status": "draft"})),
                Idempotent::Yes,
            )
            .await
        }
        .map_err(|e| fail(e, "unpublishing the post"))?;
        let now = WpPost {
            status: a.body["status"].as_str().unwrap_or(to).to_string(),
            modified_gmt: a.body["modified_gmt"].as_str().unwrap_or("").to_string(),
            content_sha256: sha_hex(a.body["content"]["raw"].as_str().unwrap_or("")),
            ..post
        };
        steps::record_unpublished(&env.bus, run.ctx, publication, run.job_id, now.clone()).await?;
        Ok(JobOutput {
            result: json!({"post_id": now.post_id, "status": now.status, "link": now.link}),
            save: None,
            charged: Some(0),
        })
    }
    .await;
    if let Err(JobFailure::Failed(e)) = &outcome {
        let _ = steps::fail(&env.bus, run.ctx, publication, run.job_id, e).await;
    }
    outcome
}
