//! The `publish_wordpress` job: one content to one WordPress, exactly once.
//!
//! 1. Terms: each category and tag by name — created, or the existing id
//!    WordPress names in its `term_exists` refusal.
//! 2. Images: the featured image and every figure of the article, each
//!    uploaded once per publication (raw body, `Content-Type`,
//!    `Content-Disposition` with a name derived from its SHA-256, alt text).
//!    The upload is recorded before it is sent; an attempt that finds an
//!    upload recorded without its answer searches the media library for that
//!    name first and adopts what it finds.
//! 3. The post: updated when the publication has one; else, when a create
//!    was sent before without an answer, looked for (the companion plugin's
//!    `igny8_content_id` meta, else the marker comment in the content, else
//!    the deterministic slug) and adopted; else created — the create
//!    recorded first.
//!
//! An unanswered create or upload is *unknown*, never failed: recorded
//! (`PublishOutcomeUnknown`), then WordPress is asked twice, each look a
//! settle time after the last, before the request is sent again — so a
//! WordPress still busy with the first request has stored what it made
//! when asked. While it cannot be asked, the job runs again later.
//! 4. What WordPress stored is checked against what we asked (terms dropped,
//!    `featured_media` 0, a changed slug or status) and recorded with the
//!    post id, link, status, `modified_gmt` and a hash of the stored content.

use super::client::{Body, Idempotent, WpError, WpSite, query};
use crate::jobs::{Attempt, JobEnv, JobFailure, JobOutput};
use igny8_commands::publishing::integrations;
use igny8_commands::publishing::publish as steps;
use igny8_commands::writer::{content as contents, images as img};
use igny8_commands::{CommandContext, CommandError};
use igny8_domain::jobs::{Job, Phase};
use igny8_domain::publishing::{Publication, WpIntegration, WpMedia, WpPost, publication_id};
use igny8_domain::writer::{PromptText, StoredImage};
use reqwest::Method;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use uuid::Uuid;

/// The marker comment a post of ours carries (found by an authenticated search).
pub fn marker(publication: Uuid, publish_id: Uuid) -> String {
    format!(
        "<!-- igny8:publication={} publish={} -->",
        publication.simple(),
        publish_id.simple()
    )
}

/// The part of the marker a search looks for.
pub fn marker_token(publication: Uuid) -> String {
    format!("igny8:publication={}", publication.simple())
}

/// `Best Trail Shoes (2027)!` → `best-trail-shoes-2027`, at most 190 characters.
pub fn slug_of(title: &str) -> String {
    let mut s = String::new();
    for c in title.chars().flat_map(char::to_lowercase) {
        if c.is_alphanumeric() {
            s.push(c);
        } else if !s.is_empty() && !s.ends_with('-') {
            s.push('-');
        }
    }
    let s: String = s.trim_end_matches('-').chars().take(190).collect();
    let s = s.trim_end_matches('-').to_string();
    if s.is_empty() { "post".into() } else { s }
}

/// The name an image is uploaded under (its title in the media library).
pub fn media_name(sha256: &str) -> String {
    format!("igny8-{}", &sha256[..16.min(sha256.len())])
}

fn ext(mime: &str) -> &'static str {
    match mime {
        "image/jpeg" => "jpg",
        "image/webp" => "webp",
        "image/gif" => "gif",
        _ => "png",
    }
}

pub fn sha_hex(s: &str) -> String {
    hex::encode(Sha256::digest(s.as_bytes()))
}

/// What WordPress stored differs from what we asked: each difference named.
pub fn check_stored(asked: &Value, stored: &Value) -> Vec<String> {
    let mut w = vec![];
    for field in ["categories", "tags"] {
        let have: Vec<u64> = stored[field]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_u64).collect())
            .unwrap_or_default();
        for id in asked[field]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_u64)
        {
            if !have.contains(&id) {
                w.push(format!(
                    "TERM_DROPPED: {field} term {id} is not on the post"
                ));
            }
        }
    }
    let asked_media = asked["featured_media"].as_u64().unwrap_or(0);
    if asked_media != 0 && stored["featured_media"].as_u64().unwrap_or(0) != asked_media {
        w.push(format!(
            "FEATURED_MEDIA_DROPPED: featured_media {asked_media} was asked, WordPress holds {}",
            stored["featured_media"]
        ));
    }
    if let (Some(a), Some(s)) = (asked["slug"].as_str(), stored["slug"].as_str())
        && a != s
    {
        w.push(format!(
            "SLUG_CHANGED: the slug {a:?} is taken; WordPress made it {s:?}"
        ));
    }
    if let (Some(a), Some(s)) = (asked["status"].as_str(), stored["status"].as_str())
        && a != s
    {
        w.push(format!(
            "STATUS_CHANGED: status {a:?} was asked, WordPress holds {s:?}"
        ));
    }
    w
}

fn post_of(answer: &Value, version: u32) -> Result<WpPost, WpError> {
    let post_id = answer["id"]
        .as_u64()
        .ok_or_else(|| WpError::Unexpected("a post without an id".into()))?;
    Ok(WpPost {
        post_id,
        link: answer["link"].as_str().unwrap_or("").to_string(),
        status: answer["status"].as_str().unwrap_or("").to_string(),
        slug: answer["slug"].as_str().unwrap_or("").to_string(),
        modified_gmt: answer["modified_gmt"].as_str().unwrap_or("").to_string(),
        content_sha256: sha_hex(answer["content"]["raw"].as_str().unwrap_or("")),
        version,
    })
}

/// Why the job stopped, as the job and the publication say it.
fn failure(e: WpError, what: &str) -> JobFailure {
    match e {
        WpError::Unknown(m) => JobFailure::Failed(format!(
            "OUTCOME_UNKNOWN: WordPress did not answer {what} ({m}); the next publish looks for what it may have made before making it again"
        )),
        other => JobFailure::Failed(format!("{}: {what}: {other}", other.code())),
    }
}

fn cmd(e: CommandError) -> JobFailure {
    JobFailure::from(e)
}

struct Run<'a> {
    env: &'a JobEnv,
    ctx: &'a CommandContext,
    job: &'a Attempt<'a>,
    wp: WpSite,
    publication: Uuid,
    publish_id: Uuid,
    adopted: u32,
    uploaded: u32,
    /// The phase and percentage last reported (looks report under them).
    at: (Phase, u8),
}

/// Attempts of one publish after which an outcome that stays unknown
/// (WordPress cannot be asked) ends the job.
pub const MAX_UNKNOWN_ATTEMPTS: u32 = 10;

/// What may exist in WordPress after a request went unanswered.
enum Look<'x> {
    Post {
        slug: &'x str,
        has_plugin: bool,
        content_id: Uuid,
    },
    Media(&'x str),
}

enum Found {
    Post(Value),
    Media(WpMedia),
}

impl Run<'_> {
    async fn report(&mut self, phase: Phase, pct: u8, message: &str) -> Result<(), JobFailure> {
        self.at = (phase, pct);
        self.job.progress(phase, pct, message, 0, 0).await
    }

    /// A request went unanswered: recorded (the publication reads
    /// `unknown`), never taken for a failure.
    async fn unknown(&mut self, request: &str, error: &str) -> Result<(), JobFailure> {
        steps::record_unknown(
            &self.env.bus,
            self.ctx,
            self.publication,
            self.publish_id,
            request,
            error,
        )
        .await
        .map_err(cmd)?;
        let (phase, pct) = self.at;
        self.job
            .progress(
                phase,
                pct,
                &format!("OUTCOME_UNKNOWN: WordPress did not answer ({error}); asking it before sending again"),
                0,
                0,
            )
            .await
    }

    /// Ask WordPress whether it holds what an unanswered request may have
    /// made: twice, each a settle time after the last (the first a settle
    /// time after `since`), so a WordPress still busy with the request
    /// has finished it. `None`: it surely holds nothing. When WordPress
    /// cannot be asked, the job runs again later (it never sends twice
    /// blind) — until [`MAX_UNKNOWN_ATTEMPTS`].
    async fn settled_look(
        &self,
        since: chrono::DateTime<chrono::Utc>,
        what: &Look<'_>,
    ) -> Result<Option<Found>, JobFailure> {
        let settle = self.env.wp.opts.settle;
        for n in 1..=2u32 {
            let due = since + chrono::Duration::from_std(settle * n).unwrap_or_default();
            if let Ok(wait) = (due - chrono::Utc::now()).to_std() {
                tokio::time::sleep(wait).await;
            }
            match self.look(what).await {
                Ok(Some(f)) => return Ok(Some(f)),
                Ok(None) => {}
                Err(e) if self.job.attempt >= MAX_UNKNOWN_ATTEMPTS => {
                    return Err(JobFailure::Failed(format!(
                        "OUTCOME_UNKNOWN: WordPress could not be asked what it holds after {} attempts ({e}); the next publish looks for it before making it again",
                        self.job.attempt
                    )));
                }
                Err(e) => {
                    return Err(JobFailure::Later(
                        format!("OUTCOME_UNKNOWN: WordPress cannot be asked now ({e})"),
                        settle,
                    ));
                }
            }
        }
        Ok(None)
    }

    async fn look(&self, what: &Look<'_>) -> Result<Option<Found>, WpError> {
        Ok(match what {
            Look::Post {
                slug,
                has_plugin,
                content_id,
            } => self
                .find_post(slug, *has_plugin, *content_id)
                .await?
                .map(Found::Post),
            Look::Media(name) => self.find_media(name).await?.map(Found::Media),
        })
    }

    async fn state(&self) -> Result<Publication, JobFailure> {
        let p = steps::load(&self.env.bus, self.publication)
            .await
            .map_err(cmd)?;
        if p.publishing != Some(self.publish_id) {
            return Err(JobFailure::Superseded);
        }
        Ok(p)
    }

    /// A term's id by name: created, or the existing one.
    async fn term(&self, taxonomy: &str, name: &str) -> Result<u64, JobFailure> {
        let route = format!("/wp/v2/{taxonomy}");
        match self
            .wp
            .call(
                Method::POST,
                &route,
                Body::Json(json!({"name": name})),
                Idempotent::Yes,
            )
            .await
        {
            Ok(a) => a.body["id"].as_u64().ok_or_else(|| {
                JobFailure::Failed(format!(
                    "WordPress answered a {taxonomy} term without an id"
                ))
            }),
            Err(WpError::Refused { code, data, .. }) if code == "term_exists" => {
                // The refusal names the existing term (`data.term_id`); an
                // older WordPress that does not is asked by name.
                if let Some(id) = data["term_id"].as_u64() {
                    return Ok(id);
                }
                let q = query(&[("search", name), ("per_page", "100"), ("context", "edit")]);
                let found = self
                    .wp
                    .call(
                        Method::GET,
                        &format!("{route}?{q}"),
                        Body::Empty,
                        Idempotent::Yes,
                    )
                    .await
                    .map_err(|e| failure(e, &format!("looking up the {taxonomy} term {name:?}")))?;
                found
                    .body
                    .as_array()
                    .into_iter()
                    .flatten()
                    .find(|t| {
                        t["name"].as_str().is_some_and(|n| {
                            html_unescape(n).to_lowercase() == name.to_lowercase()
                        })
                    })
                    .and_then(|t| t["id"].as_u64())
                    .ok_or_else(|| JobFailure::Failed(format!("term_exists: WordPress has the {taxonomy} term {name:?} but does not list it")))
            }
            Err(e) => Err(failure(
                e,
                &format!("creating the {taxonomy} term {name:?}"),
            )),
        }
    }

    async fn find_media(&self, name: &str) -> Result<Option<WpMedia>, WpError> {
        let q = query(&[("search", name), ("context", "edit"), ("per_page", "20")]);
        let a = self
            .wp
            .call(
                Method::GET,
                &format!("/wp/v2/media?{q}"),
                Body::Empty,
                Idempotent::Yes,
            )
            .await?;
        Ok(a.body.as_array().into_iter().flatten().find_map(|m| {
            let title = m["title"]["raw"]
                .as_str()
                .or(m["slug"].as_str())
                .unwrap_or("");
            let url = m["source_url"].as_str().unwrap_or("");
            (title.starts_with(name) || url.contains(name)).then(|| WpMedia {
                media_id: m["id"].as_u64().unwrap_or(0),
                url: url.to_string(),
            })
        }))
    }

    /// One image in the media library (uploaded once).
    async fn media(
        &mut self,
        image: &StoredImage,
        text: &PromptText,
    ) -> Result<WpMedia, JobFailure> {
        let p = self.state().await?;
        if let Some(m) = p.media.get(&image.sha256) {
            return Ok(m.clone());
        }
        let name = media_name(&image.sha256);
        let bus = &self.env.bus;
        // An upload an earlier attempt sent without an answer: asked for first.
        if p.media_requested.contains(&image.sha256) {
            let since = p.unknown_since.unwrap_or_else(chrono::Utc::now);
            if let Some(Found::Media(m)) = self.settled_look(since, &Look::Media(&name)).await? {
                return self.adopt_media(image, m).await;
            }
        }
        let store = self.env.media.as_ref().ok_or_else(|| {
            JobFailure::Failed("no media storage is configured for the workers".into())
        })?;
        let bytes = store
            .get(&image.sha256)
            .await
            .map_err(|e| JobFailure::Retry(format!("media storage: {e}")))?
            .ok_or_else(|| {
                JobFailure::Failed(format!(
                    "image {} is missing from media storage",
                    image.image_id
                ))
            })?;
        for round in 0..3 {
            steps::request_media(
                bus,
                self.ctx,
                self.publication,
                self.publish_id,
                &image.sha256,
            )
            .await
            .map_err(cmd)?;
            let q = query(&[
                ("alt_text", &text.alt_text),
                ("caption", &text.caption),
                ("title", &name),
            ]);
            let sent = self
                .wp
                .call(
                    Method::POST,
                    &format!("/wp/v2/media?{q}"),
                    Body::File {
                        bytes: bytes.clone(),
                        mime: image.mime_type.clone(),
                        filename: format!("{name}.{}", ext(&image.mime_type)),
                    },
                    Idempotent::No,
                )
                .await;
            match sent {
                Ok(a) => {
                    let m = WpMedia {
                        media_id: a.body["id"].as_u64().unwrap_or(0),
                        url: a.body["source_url"].as_str().unwrap_or("").to_string(),
                    };
                    steps::record_media(
                        bus,
                        self.ctx,
                        self.publication,
                        self.publish_id,
                        &image.sha256,
                        m.clone(),
                        false,
                    )
                    .await
                    .map_err(cmd)?;
                    self.uploaded += 1;
                    return Ok(m);
                }
                Err(WpError::Unknown(e)) => {
                    tracing::warn!(error = %e, round, "an upload's outcome is unknown; asking WordPress");
                    self.unknown(&format!("media:{}", image.sha256), &e).await?;
                    let since = chrono::Utc::now();
                    if let Some(Found::Media(m)) =
                        self.settled_look(since, &Look::Media(&name)).await?
                    {
                        return self.adopt_media(image, m).await;
                    }
                }
                Err(e) => return Err(failure(e, &format!("uploading image {}", image.image_id))),
            }
        }
        Err(JobFailure::Failed(format!(
            "OUTCOME_UNKNOWN: uploading image {}: WordPress did not answer three times and holds no such file",
            image.image_id
        )))
    }

    /// An upload found in the media library (made by an unanswered request).
    async fn adopt_media(
        &mut self,
        image: &StoredImage,
        m: WpMedia,
    ) -> Result<WpMedia, JobFailure> {
        steps::record_media(
            &self.env.bus,
            self.ctx,
            self.publication,
            self.publish_id,
            &image.sha256,
            m.clone(),
            true,
        )
        .await
        .map_err(cmd)?;
        self.adopted += 1;
        Ok(m)
    }

    /// The post WordPress holds for this publication, if any.
    async fn find_post(
        &self,
        slug: &str,
        has_plugin: bool,
        content_id: Uuid,
    ) -> Result<Option<Value>, WpError> {
        let token = marker_token(self.publication);
        let mine = |p: &Value| {
            p["content"]["raw"]
                .as_str()
                .is_some_and(|c| c.contains(&token))
        };
        let mut searches = vec![];
        if has_plugin {
            searches.push(query(&[
                ("igny8_content_id", &content_id.to_string()),
                ("status", "any"),
                ("context", "edit"),
            ]));
        }
        searches.push(query(&[
            ("search", &token),
            ("status", "any"),
            ("context", "edit"),
            ("per_page", "20"),
        ]));
        searches.push(query(&[
            ("slug", slug),
            ("status", "any"),
            ("context", "edit"),
        ]));
        for q in searches {
            let a = self
                .wp
                .call(
                    Method::GET,
                    &format!("/wp/v2/posts?{q}"),
                    Body::Empty,
                    Idempotent::Yes,
                )
                .await?;
            if let Some(p) = a.body.as_array().into_iter().flatten().find(|p| mine(p)) {
                return Ok(Some(p.clone()));
            }
        }
        Ok(None)
    }
}

fn html_unescape(s: &str) -> String {
    s.replace("&amp;", "&")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#039;", "'")
}

/// The article's images: (image, its prompt's text), featured first.
async fn images_of(
    env: &JobEnv,
    content_id: Uuid,
) -> Result<Vec<(u32, StoredImage, PromptText)>, JobFailure> {
    let mut out = vec![];
    for (_, p) in img::content_prompts(&env.bus, content_id)
        .await
        .map_err(cmd)?
    {
        if let (Some(i), Some(t)) = (p.image.clone(), p.text.clone()) {
            out.push((p.slot, i, t));
        }
    }
    Ok(out)
}

pub async fn run(
    env: &JobEnv,
    run: &Attempt<'_>,
    job: &Job,
    input: &Value,
) -> Result<JobOutput, JobFailure> {
    let ids = |k: &str| input[k].as_str().and_then(|s| Uuid::parse_str(s).ok());
    let (Some(integration_id), Some(content_id)) = (ids("integration_id"), ids("content_id"))
    else {
        return Err(JobFailure::Failed(
            "the job names no connection or content".into(),
        ));
    };
    let publication = publication_id(integration_id, content_id);
    let publish_id = run.job_id;
    let outcome = publish(
        env,
        run,
        job,
        input,
        integration_id,
        content_id,
        publication,
    )
    .await;
    if let Err(JobFailure::Failed(e)) = &outcome {
        // The publication is free again; a create without an answer stays recorded.
        let _ = steps::fail(&env.bus, run.ctx, publication, publish_id, e).await;
    }
    outcome
}

#[allow(clippy::too_many_arguments)]
async fn publish(
    env: &JobEnv,
    run: &Attempt<'_>,
    _job: &Job,
    input: &Value,
    integration_id: Uuid,
    content_id: Uuid,
    publication: Uuid,
) -> Result<JobOutput, JobFailure> {
    let bus = &env.bus;
    let (i, _) = bus
        .load::<WpIntegration>(&integration_id.to_string())
        .await
        .map_err(cmd)?;
    if !i.live() {
        return Err(JobFailure::Failed(
            "NOT_FOUND: the WordPress connection was removed".into(),
        ));
    }
    let conn = integrations::open(&env.secrets, integration_id, &i).map_err(cmd)?;
    let wp = env
        .wp
        .site(&conn, Some(bus.clone()), Some(run.job_id), Some(content_id));
    let mut r = Run {
        env,
        ctx: run.ctx,
        job: run,
        wp,
        publication,
        publish_id: run.job_id,
        adopted: 0,
        uploaded: 0,
        at: (Phase::Prep, 10),
    };
    let p = r.state().await?;
    r.report(Phase::Prep, 10, "reading the article").await?;
    let versions = contents::versions(bus, content_id).await.map_err(cmd)?;
    let Some(current) = versions.last() else {
        return Err(JobFailure::Failed(
            "NOT_FOUND: the content has no version".into(),
        ));
    };
    let body = &current.body;
    let images = images_of(env, content_id).await?;

    // 1. terms
    r.report(Phase::Prep, 15, "categories and tags").await?;
    let names = |k: &str| -> Vec<String> {
        input[k]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect()
    };
    let mut categories = vec![];
    for n in names("categories") {
        categories.push(r.term("categories", &n).await?);
    }
    let mut tags = vec![];
    for n in names("tags") {
        tags.push(r.term("tags", &n).await?);
    }

    // 2. images: the featured one and every figure the article shows
    let mut html = body.html.clone();
    let mut featured_media = 0u64;
    let shown: Vec<&(u32, StoredImage, PromptText)> = images
        .iter()
        .filter(|(_, i, _)| {
            Some(i.image_id) == body.featured_image_id || html.contains(&img::image_src(i.image_id))
        })
        .collect();
    let total = shown.len().max(1);
    for (n, (_, image, text)) in shown.into_iter().enumerate() {
        let pct = 25 + (35 * n / total) as u8;
        r.report(
            Phase::AiCall,
            pct,
            &format!("uploading image {} of {total}", n + 1),
        )
        .await?;
        let m = r.media(image, text).await?;
        if Some(image.image_id) == body.featured_image_id {
            featured_media = m.media_id;
        }
        html = html.replace(&img::image_src(image.image_id), &m.url);
    }

    // 3. the post
    r.report(Phase::Parse, 65, "writing the post").await?;
    let slug = p
        .post
        .as_ref()
        .map(|x| x.slug.clone())
        .unwrap_or_else(|| slug_of(&body.title));
    let status = input["status"].as_str().unwrap_or("draft");
    let mut asked = json!({
        "title": body.title,
        "content": format!("{}\n{html}", marker(publication, run.job_id)),
        "excerpt": body.meta_description,
        "status": status,
        "slug": slug,
        "categories": categories,
        "tags": tags,
        "featured_media": featured_media,
    });
    if let Some(d) = input["date_gmt"].as_str() {
        asked["date_gmt"] = json!(d);
    }
    if conn.has_plugin {
        asked["meta"] = json!({
            "igny8_publish_id": run.job_id.to_string(),
            "igny8_content_id": content_id.to_string(),
            "igny8_seo_title": if body.meta_title.is_empty() { &body.title } else { &body.meta_title },
            "igny8_seo_description": body.meta_description,
            "igny8_focus_keyword": body.primary_keyword,
        });
    }
    let (answer, action) =
        write_post(&mut r, &p, &asked, &slug, conn.has_plugin, content_id).await?;

    // 4. what WordPress really stored
    r.report(Phase::Save, 85, "checking what WordPress stored")
        .await?;
    let warnings = check_stored(&asked, &answer);
    let post = post_of(&answer, current.version)
        .map_err(|e| failure(e, "reading the post WordPress stored"))?;
    steps::record_post(
        bus,
        run.ctx,
        publication,
        run.job_id,
        post.clone(),
        action,
        warnings.clone(),
    )
    .await
    .map_err(cmd)?;
    let requests = r.wp.sent.load(std::sync::atomic::Ordering::Relaxed);
    Ok(JobOutput {
        result: json!({"post_id": post.post_id, "link": post.link, "status": post.status, "slug": post.slug,
                       "modified_gmt": post.modified_gmt, "action": action, "warnings": warnings,
                       "media_uploaded": r.uploaded, "adopted": r.adopted, "requests": requests,
                       "version": current.version}),
        save: None,
        charged: Some(0),
    })
}

/// Update, adopt or create the post; the answer and what was done.
async fn write_post(
    r: &mut Run<'_>,
    p: &Publication,
    asked: &Value,
    slug: &str,
    has_plugin: bool,
    content_id: Uuid,
) -> Result<(Value, &'static str), JobFailure> {
    let bus = &r.env.bus;
    let update = |id: u64| format!("/wp/v2/posts/{id}?context=edit");
    if let Some(post) = &p.post {
        match r
            .wp
            .call(
                Method::POST,
                &update(post.post_id),
                Body::Json(asked.clone()),
                Idempotent::Yes,
            )
            .await
        {
            Ok(a) => return Ok((a.body, "updated")),
            Err(WpError::Refused { code, .. }) if code == "rest_post_invalid_id" => {
                // Deleted in WordPress without our knowing: say so; a forced publish creates it again.
                let change = igny8_domain::publishing::ExternalChange {
                    kind: "deleted".into(),
                    source: "publish".into(),
                    status: None,
                    modified_gmt: None,
                    content_sha256: None,
                };
                let _ = steps::record_external(bus, r.ctx, r.publication, change).await;
                return Err(JobFailure::Failed(
                    "EXTERNAL_EDIT: the post was deleted in WordPress; publish with force: true to create it again".into(),
                ));
            }
            Err(e) => return Err(failure(e, "updating the post")),
        }
    }
    let look = Look::Post {
        slug,
        has_plugin,
        content_id,
    };
    // A create an earlier attempt (or publish) sent without an answer:
    // WordPress is asked first, after a settle time.
    if p.create_requested.is_some() {
        let since = p.unknown_since.unwrap_or_else(chrono::Utc::now);
        if let Some(Found::Post(found)) = r.settled_look(since, &look).await? {
            return adopt_post(r, &found, asked).await;
        }
    }
    for round in 0..3 {
        steps::request_create(bus, r.ctx, r.publication, r.publish_id)
            .await
            .map_err(cmd)?;
        match r
            .wp
            .call(
                Method::POST,
                "/wp/v2/posts?context=edit",
                Body::Json(asked.clone()),
                Idempotent::No,
            )
            .await
        {
            Ok(a) => return Ok((a.body, "created")),
            Err(WpError::Unknown(e)) => {
                tracing::warn!(error = %e, round, "a post create's outcome is unknown; asking WordPress");
                r.unknown("post", &e).await?;
                let since = chrono::Utc::now();
                if let Some(Found::Post(found)) = r.settled_look(since, &look).await? {
                    return adopt_post(r, &found, asked).await;
                }
            }
            Err(e) => return Err(failure(e, "creating the post")),
        }
    }
    Err(JobFailure::Failed(
        "OUTCOME_UNKNOWN: creating the post: WordPress did not answer three times and holds no such post".into(),
    ))
}

/// A post an unanswered create made: brought up to date and taken as ours.
async fn adopt_post(
    r: &mut Run<'_>,
    found: &Value,
    asked: &Value,
) -> Result<(Value, &'static str), JobFailure> {
    r.adopted += 1;
    let id = found["id"].as_u64().unwrap_or(0);
    let a =
        r.wp.call(
            Method::POST,
            &format!("/wp/v2/posts/{id}?context=edit"),
            Body::Json(asked.clone()),
            Idempotent::Yes,
        )
        .await
        .map_err(|e| failure(e, "updating the post an unanswered create made"))?;
    Ok((a.body, "adopted"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_are_deterministic() {
        assert_eq!(slug_of("Best Trail Shoes (2027)!"), "best-trail-shoes-2027");
        assert_eq!(slug_of("Über Äpfel"), "über-äpfel");
        assert_eq!(slug_of("!!!"), "post");
        assert_eq!(slug_of(&"a".repeat(500)).len(), 190);
    }

    #[test]
    fn what_wordpress_dropped_is_named() {
        let asked = json!({"categories": [3, 4], "tags": [9], "featured_media": 12, "slug": "x", "status": "publish"});
        let stored = json!({"categories": [3], "tags": [9], "featured_media": 0, "slug": "x-2", "status": "publish"});
        let w = check_stored(&asked, &stored);
        assert_eq!(w.len(), 3, "{w:?}");
        assert!(w[0].starts_with("TERM_DROPPED") && w[0].contains("term 4"));
        assert!(w[1].starts_with("FEATURED_MEDIA_DROPPED"));
        assert!(w[2].starts_with("SLUG_CHANGED"));
        assert!(check_stored(&asked, &asked).is_empty());
    }
}
