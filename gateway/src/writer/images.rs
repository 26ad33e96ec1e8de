//! Images over HTTP: prompts extracted from articles (a job), prompts a
//! person rewrites, image jobs (by prompt or by task), images listed and
//! described, and their bytes — with the caller's credentials, or with a
//! short-lived signed URL for `<img>` tags.
//!
//! Route → `igny8_commands::writer::images` → `igny8_domain::writer::ImagePrompt`
//! → events → `igny8_projections::writer::images` (`rm_image_prompts`,
//! `rm_images`) → the lists here; the bytes are read from media storage
//! (`igny8_workers::images::MediaStore`) by their SHA-256.

use crate::auth::Principal;
use crate::http::command::Saved;
use crate::http::{
    ApiError, ApiOk, ApiPath, ApiQuery, ApiResult, Command, Page, PageParams, Paging, both_slashes,
    read_your_writes, resource,
};
use crate::state::AppState;
use axum::Router;
use axum::extract::{FromRequestParts, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use hmac::{Hmac, Mac};
use igny8_commands::writer::images as cmd;
use igny8_domain::writer::{ImageQuality, PromptChange};
use igny8_projections::writer::images::{self as rm, ImageFilter, ImageRow, PromptRow};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

/// How long a signed image URL stays valid.
pub const SIGNED_URL_TTL_SECS: i64 = 900;

pub fn routes(r: Router<AppState>) -> Router<AppState> {
    let r = both_slashes(
        r,
        "/api/v1/writer/content/extract_image_prompts/",
        post(extract_image_prompts),
    );
    let r = both_slashes(
        r,
        "/api/v1/writer/image-prompts/",
        get(list_image_prompts).post(create_image_prompt),
    );
    let r = both_slashes(
        r,
        "/api/v1/writer/image-prompts/{id}/",
        get(get_image_prompt)
            .patch(edit_image_prompt)
            .delete(delete_image_prompt),
    );
    let r = both_slashes(r, "/api/v1/writer/images/generate/", post(generate_images));
    let r = both_slashes(
        r,
        "/api/v1/writer/tasks/auto_generate_images/",
        post(auto_generate_images),
    );
    let r = both_slashes(r, "/api/v1/writer/images/", get(list_images));
    let r = both_slashes(r, "/api/v1/writer/images/{id}/", get(get_image));
    r.route("/api/v1/writer/images/{id}/file", get(image_file))
}

fn status_schema() -> utoipa::openapi::Object {
    crate::http::schema::string_enum(rm::PROMPT_STATUSES)
}
fn prompt_ordering_schema() -> utoipa::openapi::Object {
    crate::http::schema::ordering_enum(rm::PROMPT_ORDERINGS)
}
fn image_ordering_schema() -> utoipa::openapi::Object {
    crate::http::schema::ordering_enum(rm::IMAGE_ORDERINGS)
}
fn provider_schema() -> utoipa::openapi::Object {
    crate::http::schema::string_enum(cmd::IMAGE_PROVIDERS)
}
fn quality_schema() -> utoipa::openapi::Object {
    crate::http::schema::string_enum(&ImageQuality::ALL.map(ImageQuality::as_str))
}
fn size_schema() -> utoipa::openapi::Object {
    crate::http::schema::string_enum(cmd::SIZES)
}

// --- prompts -----------------------------------------------------------------

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExtractPromptsBody {
    /// 1 to 100 contents of one site.
    #[schema(min_items = 1, max_items = 100)]
    pub content_ids: Vec<Uuid>,
    /// In-article images per article (0 to 6, default 2), besides the featured one.
    #[schema(minimum = 0, maximum = 6)]
    pub in_article_images: Option<u32>,
}

/// Extract image prompts: per article one featured-image prompt and up to
/// `in_article_images` in-article prompts, each after one of its headings,
/// with alt text and a caption. 202 with the job; 0.5 credit per prompt
/// (reserved for the most prompts, charged per prompt written).
#[utoipa::path(post, path = "/api/v1/writer/content/extract_image_prompts/", tag = "writer", request_body = ExtractPromptsBody, security(("bearer" = [])),
    params(("Idempotency-Key" = Option<String>, Header, description = "A retry with the same key answers the first job")),
    responses((status = 202, description = "job_id, state PENDING", body = crate::http::accepted::JobAccepted), (status = 402, description = "INSUFFICIENT_CREDITS", body = crate::http::schema::ErrorEnvelope),
              (status = 403, description = "Read-only role", body = crate::http::schema::ErrorEnvelope),
              (status = 404, description = "Unknown or invisible content", body = crate::http::schema::ErrorEnvelope),
              (status = 422, description = "EMPTY_SELECTION, TOO_MANY_CONTENTS, VALIDATION_ERROR (contents of several sites)", body = crate::http::schema::ErrorEnvelope)))]
pub async fn extract_image_prompts(
    State(s): State<AppState>,
    Command {
        principal: p,
        ctx,
        body: b,
        ..
    }: Command<ExtractPromptsBody>,
) -> ApiResult<Response> {
    let job = cmd::extract_image_prompts(
        &s.bus,
        &p,
        &ctx,
        b.content_ids,
        b.in_article_images.unwrap_or(2),
    )
    .await?;
    crate::http::accepted::accepted(
        job.job_id,
        job.items,
        job.reserved,
        job.position,
        job.replayed,
        "image prompt extraction started",
    )
}

/// One image slot of an article: its prompt, placement and current image.
#[derive(Debug, Serialize, ToSchema)]
pub struct ImagePromptView {
    pub id: Uuid,
    pub content_id: Uuid,
    pub task_id: Uuid,
    pub site_id: Uuid,
    pub sector_id: Uuid,
    /// 0: the featured image; 1 to 6: in-article images in order.
    pub slot: i64,
    /// `featured` or `in_article`.
    #[schema(schema_with = kind_schema)]
    pub kind: &'static str,
    pub prompt: String,
    pub alt_text: String,
    pub caption: String,
    /// The heading the image follows (`null`: the featured image).
    pub placement: Option<String>,
    #[schema(schema_with = status_schema)]
    pub status: String,
    /// The job that extracted the prompt or makes its image now.
    pub job_id: Option<Uuid>,
    /// The current image.
    pub image_id: Option<Uuid>,
    /// Why the last image job failed on it.
    pub error: Option<String>,
    /// Provider calls the current image job recorded.
    pub requests: i64,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub updated_at: chrono::DateTime<chrono::Utc>,
}

fn kind_schema() -> utoipa::openapi::Object {
    crate::http::schema::string_enum(&["featured", "in_article"])
}

impl From<PromptRow> for ImagePromptView {
    fn from(r: PromptRow) -> Self {
        use crate::http::schema::{id, opt_id};
        ImagePromptView {
            id: id(&r.prompt_id),
            content_id: id(&r.content_id),
            task_id: id(&r.task_id),
            site_id: id(&r.site_id),
            sector_id: id(&r.sector_id),
            slot: r.slot,
            kind: if r.slot == 0 {
                "featured"
            } else {
                "in_article"
            },
            prompt: r.prompt,
            alt_text: r.alt_text,
            caption: r.caption,
            placement: r.placement,
            status: r.status,
            job_id: opt_id(&r.job_id),
            image_id: opt_id(&r.image_id),
            error: r.error,
            requests: r.requests,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PromptParams {
    pub site_id: Option<Uuid>,
    pub content_id: Option<Uuid>,
    #[param(schema_with = status_schema)]
    pub status: Option<String>,
    /// created_at, updated_at, slot, status; `-` for descending (default `created_at`).
    #[param(schema_with = prompt_ordering_schema)]
    pub ordering: Option<String>,
}

/// Image prompts, filtered by content, site or status, paginated.
#[utoipa::path(get, path = "/api/v1/writer/image-prompts/", tag = "writer", params(PageParams, PromptParams), security(("bearer" = [])),
    responses((status = 200, description = "A page of image prompts", body = Page<ImagePromptView>), (status = 400, description = "INVALID_QUERY", body = crate::http::schema::ErrorEnvelope)))]
pub async fn list_image_prompts(
    State(s): State<AppState>,
    p: Principal,
    paging: Paging,
    ApiQuery(q): ApiQuery<PromptParams>,
) -> ApiResult<ApiOk<Page<ImagePromptView>>> {
    let account = igny8_commands::planner::list_scope(&s.bus, &p, q.site_id, None).await?;
    if q.status
        .as_deref()
        .is_some_and(|x| !rm::PROMPT_STATUSES.contains(&x))
    {
        return Err(ApiError::bad_request(
            "INVALID_QUERY",
            "status must be new, generating, done or failed",
        ));
    }
    crate::http::check_ordering(q.ordering.as_deref(), rm::PROMPT_ORDERINGS)?;
    paging.read_your_writes(&s, rm::NAME).await?;
    let f = ImageFilter {
        site_in: p.site_filter(),
        site_id: q.site_id.map(|x| x.to_string()),
        content_id: q.content_id.map(|x| x.to_string()),
        status: q.status,
        ordering: q.ordering,
        offset: paging.offset,
        limit: paging.size,
    };
    let (rows, count) = rm::page_prompts(&s.db, &account.to_string(), &f).await?;
    Ok(paging.page(rows.into_iter().map(ImagePromptView::from).collect(), count))
}

async fn prompt_row(s: &AppState, p: &Principal, id: Uuid) -> ApiResult<PromptRow> {
    rm::get_prompt(&s.db, &p.account()?.to_string(), &id.to_string())
        .await?
        .filter(|r| p.can_see_site(crate::http::schema::id(&r.site_id)))
        .ok_or_else(|| ApiError::not_found("image prompt"))
}

/// One image prompt.
#[utoipa::path(get, path = "/api/v1/writer/image-prompts/{id}/", tag = "writer", params(("id" = Uuid, Path), crate::http::ReadParams), security(("bearer" = [])),
    responses((status = 200, description = "The prompt", body = ImagePromptView), (status = 404, description = "Unknown or not visible", body = crate::http::schema::ErrorEnvelope)))]
pub async fn get_image_prompt(
    State(s): State<AppState>,
    p: Principal,
    ApiPath(id): ApiPath<Uuid>,
    ApiQuery(r): ApiQuery<crate::http::ReadParams>,
) -> ApiResult<ApiOk<ImagePromptView>> {
    read_your_writes(&s, rm::NAME, r.min_position).await?;
    Ok(ApiOk(prompt_row(&s, &p, id).await?.into()))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreatePromptBody {
    pub content_id: Uuid,
    /// 0: the featured image; 1 to 6: in-article (default: the first free in-article slot).
    #[schema(minimum = 0, maximum = 6)]
    pub slot: Option<u32>,
    #[schema(schema_with = crate::http::constraints::image_prompt)]
    pub prompt: String,
    #[schema(schema_with = crate::http::constraints::alt_text_or_null)]
    pub alt_text: Option<String>,
    #[schema(schema_with = crate::http::constraints::caption_or_null)]
    pub caption: Option<String>,
    /// The heading the image follows: required for in-article slots, `null` for the featured image.
    #[schema(schema_with = crate::http::constraints::placement_or_null)]
    pub placement: Option<String>,
}

/// A person writes a prompt for a free slot of an article (no credits).
#[utoipa::path(post, path = "/api/v1/writer/image-prompts/", tag = "writer", request_body = CreatePromptBody, security(("bearer" = [])),
    params(("Idempotency-Key" = Option<String>, Header, description = "A retry with the same key answers the first prompt")),
    responses((status = 201, description = "Created", body = Saved<PromptSaved>), (status = 403, description = "Read-only role", body = crate::http::schema::ErrorEnvelope),
              (status = 404, description = "Unknown or invisible content", body = crate::http::schema::ErrorEnvelope),
              (status = 409, description = "SLOT_TAKEN: the slot has a prompt (PATCH it instead)", body = crate::http::schema::ErrorEnvelope),
              (status = 422, description = "VALIDATION_ERROR (no free slot), INVALID_PROMPT, INVALID_ALT_TEXT, INVALID_CAPTION, INVALID_PLACEMENT", body = crate::http::schema::ErrorEnvelope)))]
pub async fn create_image_prompt(
    State(s): State<AppState>,
    Command {
        principal: p,
        ctx,
        body: b,
        ..
    }: Command<CreatePromptBody>,
) -> ApiResult<Response> {
    let text = igny8_domain::writer::PromptText {
        prompt: b.prompt.trim().to_string(),
        alt_text: b.alt_text.unwrap_or_default().trim().to_string(),
        caption: b.caption.unwrap_or_default().trim().to_string(),
        placement: b.placement.map(|x| x.trim().to_string()),
    };
    let (id, out) = cmd::create_prompt(&s.bus, &p, &ctx, b.content_id, b.slot, text).await?;
    Ok(resource(PromptSaved { id }, &out, true))
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EditPromptBody {
    #[schema(schema_with = crate::http::constraints::image_prompt_or_null)]
    pub prompt: Option<String>,
    #[schema(schema_with = crate::http::constraints::alt_text_or_null)]
    pub alt_text: Option<String>,
    #[schema(schema_with = crate::http::constraints::caption_or_null)]
    pub caption: Option<String>,
    /// The heading the image follows (in-article images only).
    #[schema(schema_with = crate::http::constraints::placement_or_null)]
    pub placement: Option<String>,
}

/// A prompt after a change.
#[derive(Debug, Serialize, ToSchema)]
pub struct PromptSaved {
    pub id: Uuid,
}

/// Rewrite a prompt before its image is made (fields left out keep their value).
#[utoipa::path(patch, path = "/api/v1/writer/image-prompts/{id}/", tag = "writer", request_body = EditPromptBody, params(("id" = Uuid, Path)), security(("bearer" = [])),
    responses((status = 200, description = "Saved", body = Saved<PromptSaved>), (status = 403, description = "Read-only role", body = crate::http::schema::ErrorEnvelope),
              (status = 404, description = "Unknown or not visible", body = crate::http::schema::ErrorEnvelope),
              (status = 409, description = "GENERATION_RUNNING: an image job has the prompt", body = crate::http::schema::ErrorEnvelope),
              (status = 422, description = "VALIDATION_ERROR (nothing to change), INVALID_PROMPT, INVALID_ALT_TEXT, INVALID_CAPTION, INVALID_PLACEMENT", body = crate::http::schema::ErrorEnvelope)))]
pub async fn edit_image_prompt(
    State(s): State<AppState>,
    ApiPath(id): ApiPath<Uuid>,
    Command {
        principal: p,
        ctx,
        body: b,
        ..
    }: Command<EditPromptBody>,
) -> ApiResult<Response> {
    let change = PromptChange {
        prompt: b.prompt,
        alt_text: b.alt_text,
        caption: b.caption,
        placement: b.placement,
    };
    let out = cmd::edit_prompt(&s.bus, &p, &ctx, id, change).await?;
    Ok(resource(PromptSaved { id }, &out, false))
}

/// Remove a prompt (its images leave the lists; their bytes stay stored,
/// since another image may share them).
#[utoipa::path(delete, path = "/api/v1/writer/image-prompts/{id}/", tag = "writer", params(("id" = Uuid, Path)), security(("bearer" = [])),
    responses((status = 200, description = "Removed", body = Saved<PromptSaved>), (status = 403, description = "Read-only role", body = crate::http::schema::ErrorEnvelope),
              (status = 404, description = "Unknown or not visible", body = crate::http::schema::ErrorEnvelope),
              (status = 409, description = "GENERATION_RUNNING", body = crate::http::schema::ErrorEnvelope)))]
pub async fn delete_image_prompt(
    State(s): State<AppState>,
    ApiPath(id): ApiPath<Uuid>,
    Command {
        principal: p, ctx, ..
    }: Command<crate::http::Empty>,
) -> ApiResult<Response> {
    let out = cmd::delete_prompt(&s.bus, &p, &ctx, id).await?;
    Ok(resource(PromptSaved { id }, &out, false))
}

// --- image jobs --------------------------------------------------------------

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GenerateImagesBody {
    /// 1 to 500 prompts of one site.
    #[schema(min_items = 1, max_items = 500)]
    pub image_prompt_ids: Vec<Uuid>,
    /// offline, openai or runware (default: Runware when configured, else OpenAI when configured, else offline).
    #[schema(schema_with = provider_schema)]
    pub provider: Option<String>,
    /// basic (default) or premium.
    #[schema(schema_with = quality_schema)]
    pub quality: Option<String>,
    /// WIDTHxHEIGHT (default 1024x1024).
    #[schema(schema_with = size_schema)]
    pub size: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TaskImagesBody {
    /// 1 to 100 tasks of one site: every prompt of their content.
    #[schema(min_items = 1, max_items = 100)]
    pub task_ids: Vec<Uuid>,
    #[schema(schema_with = provider_schema)]
    pub provider: Option<String>,
    #[schema(schema_with = quality_schema)]
    pub quality: Option<String>,
    #[schema(schema_with = size_schema)]
    pub size: Option<String>,
}

fn request(
    provider: Option<String>,
    quality: Option<String>,
    size: Option<String>,
) -> ApiResult<cmd::ImageRequest> {
    let quality = match quality.as_deref() {
        None => ImageQuality::Basic,
        Some(q) => ImageQuality::parse(q).ok_or_else(|| {
            ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "INVALID_QUALITY",
                "quality must be basic or premium",
            )
        })?,
    };
    Ok(cmd::ImageRequest {
        provider,
        quality,
        size: size.unwrap_or_else(|| "1024x1024".into()),
    })
}

/// Make images of prompts: 202 with the job. Each image is reserved at
/// the plan's price (1 credit basic, 4 premium on the default plans) and
/// charged once when it is stored; a prompt that fails releases its
/// credits. When every prompt of an article has an image, a new content
/// version places them as `<figure>`s.
#[utoipa::path(post, path = "/api/v1/writer/images/generate/", tag = "writer", request_body = GenerateImagesBody, security(("bearer" = [])),
    params(("Idempotency-Key" = Option<String>, Header, description = "A retry with the same key answers the first job")),
    responses((status = 202, description = "job_id, state PENDING", body = crate::http::accepted::JobAccepted), (status = 402, description = "INSUFFICIENT_CREDITS", body = crate::http::schema::ErrorEnvelope),
              (status = 403, description = "Read-only role", body = crate::http::schema::ErrorEnvelope),
              (status = 404, description = "Unknown or invisible prompt", body = crate::http::schema::ErrorEnvelope),
              (status = 409, description = "GENERATION_RUNNING: another job makes one of them", body = crate::http::schema::ErrorEnvelope),
              (status = 422, description = "EMPTY_SELECTION, TOO_MANY_PROMPTS, INVALID_PROVIDER, INVALID_QUALITY, INVALID_SIZE, VALIDATION_ERROR (prompts of several sites)", body = crate::http::schema::ErrorEnvelope)))]
pub async fn generate_images(
    State(s): State<AppState>,
    Command {
        principal: p,
        ctx,
        body: b,
        ..
    }: Command<GenerateImagesBody>,
) -> ApiResult<Response> {
    let req = request(b.provider, b.quality, b.size)?;
    let job = cmd::generate_images(&s.bus, &p, &ctx, b.image_prompt_ids, req).await?;
    crate::http::accepted::accepted(
        job.job_id,
        job.items,
        job.reserved,
        job.position,
        job.replayed,
        "image generation started",
    )
}

/// Make images of every prompt of the tasks' content (the seeds' "Auto
/// Generate Images"): 202 with the job, priced as `images/generate`.
#[utoipa::path(post, path = "/api/v1/writer/tasks/auto_generate_images/", tag = "writer", request_body = TaskImagesBody, security(("bearer" = [])),
    params(("Idempotency-Key" = Option<String>, Header, description = "A retry with the same key answers the first job")),
    responses((status = 202, description = "job_id, state PENDING", body = crate::http::accepted::JobAccepted), (status = 402, description = "INSUFFICIENT_CREDITS", body = crate::http::schema::ErrorEnvelope),
              (status = 403, description = "Read-only role", body = crate::http::schema::ErrorEnvelope),
              (status = 404, description = "Unknown or invisible task", body = crate::http::schema::ErrorEnvelope),
              (status = 409, description = "GENERATION_RUNNING", body = crate::http::schema::ErrorEnvelope),
              (status = 422, description = "EMPTY_SELECTION, NO_PROMPTS (extract them first), TOO_MANY_TASKS, INVALID_PROVIDER, INVALID_QUALITY, INVALID_SIZE, VALIDATION_ERROR", body = crate::http::schema::ErrorEnvelope)))]
pub async fn auto_generate_images(
    State(s): State<AppState>,
    Command {
        principal: p,
        ctx,
        body: b,
        ..
    }: Command<TaskImagesBody>,
) -> ApiResult<Response> {
    let req = request(b.provider, b.quality, b.size)?;
    let job = cmd::auto_generate_images(&s.bus, &p, &ctx, b.task_ids, req).await?;
    crate::http::accepted::accepted(
        job.job_id,
        job.items,
        job.reserved,
        job.position,
        job.replayed,
        "image generation started",
    )
}

// --- images ------------------------------------------------------------------

/// A stored image.
#[derive(Debug, Serialize, ToSchema)]
pub struct ImageView {
    pub id: Uuid,
    pub image_prompt_id: Uuid,
    pub content_id: Uuid,
    pub site_id: Uuid,
    pub slot: i64,
    pub job_id: Uuid,
    /// The prompt's latest image (older ones stay listed).
    pub current: bool,
    pub width: i64,
    pub height: i64,
    #[schema(schema_with = mime_schema)]
    pub mime_type: String,
    pub bytes: i64,
    /// Hex SHA-256 of the bytes (also the file's ETag).
    pub sha256: String,
    #[schema(schema_with = provider_schema)]
    pub provider: String,
    pub model: String,
    #[schema(schema_with = quality_schema)]
    pub quality: String,
    pub size: String,
    /// The prompt it was made from.
    pub prompt: String,
    pub alt_text: String,
    /// What the provider reported it cost, in USD.
    pub cost_usd: f64,
    /// Credits charged.
    #[schema(value_type = f64)]
    pub credits: crate::http::CreditAmount,
    /// The bytes, with the caller's credentials.
    pub file_url: String,
    /// The bytes without credentials (for `<img>`), valid for 15 minutes.
    pub signed_url: String,
    pub signed_url_expires_at: chrono::DateTime<chrono::Utc>,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

fn mime_schema() -> utoipa::openapi::Object {
    crate::http::schema::string_enum(&["image/png", "image/jpeg", "image/webp"])
}

type HmacSha256 = Hmac<Sha256>;

fn signature(s: &AppState, kid: &str, account: &str, image: &str, expires: i64) -> Option<String> {
    let key = s.keys.jwt.key(kid)?;
    let mut mac = HmacSha256::new_from_slice(key).ok()?;
    mac.update(format!("image-file|{account}|{image}|{expires}").as_bytes());
    Some(hex::encode(mac.finalize().into_bytes()))
}

fn view(s: &AppState, r: ImageRow) -> ImageView {
    use crate::http::schema::id;
    let expires = chrono::Utc::now() + chrono::Duration::seconds(SIGNED_URL_TTL_SECS);
    let kid = s.keys.jwt.current_kid().to_string();
    let sig =
        signature(s, &kid, &r.account_id, &r.image_id, expires.timestamp()).unwrap_or_default();
    let file_url = format!("/api/v1/writer/images/{}/file", r.image_id);
    ImageView {
        id: id(&r.image_id),
        image_prompt_id: id(&r.prompt_id),
        content_id: id(&r.content_id),
        site_id: id(&r.site_id),
        slot: r.slot,
        job_id: id(&r.job_id),
        current: r.is_current,
        width: r.width,
        height: r.height,
        mime_type: r.mime_type,
        bytes: r.bytes,
        sha256: r.sha256,
        provider: r.provider,
        model: r.model,
        quality: r.quality,
        size: r.size,
        prompt: r.prompt,
        alt_text: r.alt_text,
        cost_usd: r.cost_usd_micros as f64 / 1_000_000.0,
        credits: crate::http::CreditAmount(r.credits_milli),
        signed_url: format!(
            "{file_url}?account={}&expires={}&kid={kid}&signature={sig}",
            r.account_id,
            expires.timestamp()
        ),
        file_url,
        signed_url_expires_at: expires,
        created_at: r.created_at,
    }
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ImageParams {
    pub site_id: Option<Uuid>,
    pub content_id: Option<Uuid>,
    /// created_at, slot, bytes; `-` for descending (default `created_at`).
    #[param(schema_with = image_ordering_schema)]
    pub ordering: Option<String>,
}

/// Images, filtered by content or site, paginated.
#[utoipa::path(get, path = "/api/v1/writer/images/", tag = "writer", params(PageParams, ImageParams), security(("bearer" = [])),
    responses((status = 200, description = "A page of images", body = Page<ImageView>), (status = 400, description = "INVALID_QUERY", body = crate::http::schema::ErrorEnvelope)))]
pub async fn list_images(
    State(s): State<AppState>,
    p: Principal,
    paging: Paging,
    ApiQuery(q): ApiQuery<ImageParams>,
) -> ApiResult<ApiOk<Page<ImageView>>> {
    let account = igny8_commands::planner::list_scope(&s.bus, &p, q.site_id, None).await?;
    crate::http::check_ordering(q.ordering.as_deref(), rm::IMAGE_ORDERINGS)?;
    paging.read_your_writes(&s, rm::NAME).await?;
    let f = ImageFilter {
        site_in: p.site_filter(),
        site_id: q.site_id.map(|x| x.to_string()),
        content_id: q.content_id.map(|x| x.to_string()),
        status: None,
        ordering: q.ordering,
        offset: paging.offset,
        limit: paging.size,
    };
    let (rows, count) = rm::page_images(&s.db, &account.to_string(), &f).await?;
    Ok(paging.page(rows.into_iter().map(|r| view(&s, r)).collect(), count))
}

/// One image: size, type, hash, provider, model, prompt, cost, and a signed URL.
#[utoipa::path(get, path = "/api/v1/writer/images/{id}/", tag = "writer", params(("id" = Uuid, Path), crate::http::ReadParams), security(("bearer" = [])),
    responses((status = 200, description = "The image", body = ImageView), (status = 404, description = "Unknown or not visible", body = crate::http::schema::ErrorEnvelope)))]
pub async fn get_image(
    State(s): State<AppState>,
    p: Principal,
    ApiPath(id): ApiPath<Uuid>,
    ApiQuery(r): ApiQuery<crate::http::ReadParams>,
) -> ApiResult<ApiOk<ImageView>> {
    read_your_writes(&s, rm::NAME, r.min_position).await?;
    let row = rm::get_image(&s.db, &p.account()?.to_string(), &id.to_string())
        .await?
        .filter(|r| p.can_see_site(crate::http::schema::id(&r.site_id)))
        .ok_or_else(|| ApiError::not_found("image"))?;
    Ok(ApiOk(view(&s, row)))
}

/// An image file's bytes (a schema for documents).
pub struct ImageBytes;

impl utoipa::PartialSchema for ImageBytes {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .format(Some(utoipa::openapi::SchemaFormat::KnownFormat(
                utoipa::openapi::KnownFormat::Binary,
            )))
            .into()
    }
}

impl ToSchema for ImageBytes {
    fn name() -> std::borrow::Cow<'static, str> {
        "ImageBytes".into()
    }
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct FileParams {
    /// A signed URL's account.
    pub account: Option<Uuid>,
    /// A signed URL's expiry (Unix seconds).
    #[param(minimum = 0)]
    pub expires: Option<i64>,
    /// A signed URL's key id.
    #[param(max_length = 100)]
    pub kid: Option<String>,
    /// A signed URL's signature (hex HMAC-SHA256).
    #[param(pattern = "^[0-9a-f]{64}$")]
    pub signature: Option<String>,
}

fn forbidden_url(msg: &str) -> ApiError {
    ApiError::new(StatusCode::FORBIDDEN, "INVALID_SIGNATURE", msg)
}

/// The account a signed URL grants, if the request carries a valid one.
fn signed_account(s: &AppState, id: Uuid, q: &FileParams) -> ApiResult<Option<Uuid>> {
    let (Some(account), Some(expires), Some(kid), Some(sig)) = (
        q.account,
        q.expires,
        q.kid.as_deref(),
        q.signature.as_deref(),
    ) else {
        if q.signature.is_some() || q.expires.is_some() {
            return Err(forbidden_url(
                "a signed URL needs account, expires, kid and signature",
            ));
        }
        return Ok(None);
    };
    if expires < chrono::Utc::now().timestamp() {
        return Err(forbidden_url("the signed URL has expired"));
    }
    let want = signature(s, kid, &account.to_string(), &id.to_string(), expires)
        .ok_or_else(|| forbidden_url("unknown key"))?;
    // Constant-time comparison of the two MACs.
    let ok = want.len() == sig.len()
        && want
            .bytes()
            .zip(sig.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0;
    if !ok {
        return Err(forbidden_url("the signature does not match"));
    }
    Ok(Some(account))
}

/// The image's bytes with `Content-Type`, `ETag` (its SHA-256) and
/// caching headers (`If-None-Match` answers 304). Authorised like the
/// image (the caller's credentials), or by a signed URL from the image's
/// answer (no credentials; 15 minutes).
#[utoipa::path(get, path = "/api/v1/writer/images/{id}/file", tag = "writer", params(("id" = Uuid, Path), FileParams, ("If-None-Match" = Option<String>, Header, description = "The ETag of a copy the client has")),
    security(("bearer" = []), ()),
    responses((status = 200, description = "The image (its `mime_type`: PNG, JPEG or WebP)", content(
                   (ImageBytes = "image/png"), (ImageBytes = "image/jpeg"), (ImageBytes = "image/webp")),
                   headers(("ETag" = String, description = "The SHA-256 in quotes"), ("Cache-Control" = String, description = "private, max-age=86400, immutable"))),
              (status = 304, description = "Not modified"),
              (status = 401, description = "No credentials and no signed URL", body = crate::http::schema::ErrorEnvelope),
              (status = 403, description = "INVALID_SIGNATURE (expired or altered signed URL)", body = crate::http::schema::ErrorEnvelope),
              (status = 404, description = "Unknown or not visible", body = crate::http::schema::ErrorEnvelope),
              (status = 503, description = "MEDIA_UNAVAILABLE", body = crate::http::schema::ErrorEnvelope)))]
pub async fn image_file(
    State(s): State<AppState>,
    ApiPath(id): ApiPath<Uuid>,
    ApiQuery(q): ApiQuery<FileParams>,
    req: Request,
) -> ApiResult<Response> {
    let (mut parts, _) = req.into_parts();
    let row = match signed_account(&s, id, &q)? {
        Some(account) => rm::get_image(&s.db, &account.to_string(), &id.to_string()).await?,
        None => {
            let p = Principal::from_request_parts(&mut parts, &s).await?;
            rm::get_image(&s.db, &p.account()?.to_string(), &id.to_string())
                .await?
                .filter(|r| p.can_see_site(crate::http::schema::id(&r.site_id)))
        }
    }
    .ok_or_else(|| ApiError::not_found("image"))?;
    let etag = format!("\"{}\"", row.sha256);
    let cache = HeaderValue::from_static("private, max-age=86400, immutable");
    let matches = parts
        .headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    let etag_value = HeaderValue::from_str(&etag).map_err(ApiError::internal)?;
    if matches {
        return Ok((
            StatusCode::NOT_MODIFIED,
            [(header::ETAG, etag_value), (header::CACHE_CONTROL, cache)],
        )
            .into_response());
    }
    let media = s.media.as_ref().ok_or_else(|| {
        ApiError::unavailable("MEDIA_UNAVAILABLE", "no media storage is configured", 30)
    })?;
    let bytes = match media.get(&row.sha256).await {
        Ok(Some(b)) => b,
        Ok(None) => return Err(ApiError::not_found("image file")),
        Err(e) => {
            tracing::warn!(error = %e, "media storage unavailable");
            return Err(ApiError::unavailable(
                "MEDIA_UNAVAILABLE",
                "media storage is unavailable",
                5,
            ));
        }
    };
    let mime = HeaderValue::from_str(&row.mime_type).map_err(ApiError::internal)?;
    Ok((
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, mime),
            (header::ETAG, etag_value),
            (header::CACHE_CONTROL, cache),
        ],
        bytes,
    )
        .into_response())
}
