//! Planner over HTTP: keywords per sector — CSV import and export, list
//! with filters, create, update, delete, bulk delete; clustering jobs and
//! cluster edits.
//!
//! Route → one use case of `igny8_commands::planner` (given the bus and
//! `igny8_projections::planner::Lookup`, the read-model port) →
//! `igny8_domain::planner` (`SectorKeywords` decides) → events →
//! `igny8_projections::planner` (`rm_keywords`, `rm_clusters`) → the list
//! and export queries here. A handler extracts, calls one use case and
//! maps its outcome to the answer types below (the HTTP contract).

use crate::auth::Principal;
use crate::auth::RequestCaller;
use crate::http::both_slashes;
use crate::http::command::{Deleted, Saved};
use crate::http::{
    ApiError, ApiOk, ApiPath, ApiQuery, ApiResult, Command, Empty, Page, PageParams, Paging,
    read_your_writes, resource,
};
use crate::state::AppState;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, FromRequest, Multipart, Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, patch, post};
use igny8_commands::planner as cmd;
use igny8_domain::planner::{Intent, Strategy};
use igny8_projections::planner::{self as rm, KeywordFilter, KeywordRow, ORDERINGS};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

/// Largest CSV accepted by an import (100,000 rows of a keyword tool export
/// are about 5 MB).
pub const MAX_IMPORT_BYTES: usize = 64 * 1024 * 1024;

pub fn routes(r: Router<AppState>) -> Router<AppState> {
    let r = ideas::routes(r);
    let r = both_slashes(r, "/api/v1/planner/keywords/", get(list).post(create));
    let r = both_slashes(
        r,
        "/api/v1/planner/keywords/import_csv/",
        post(import_csv).layer(DefaultBodyLimit::max(MAX_IMPORT_BYTES)),
    );
    let r = both_slashes(r, "/api/v1/planner/keywords/export_csv/", get(export_csv));
    let r = both_slashes(
        r,
        "/api/v1/planner/keywords/bulk_delete/",
        post(bulk_delete),
    );
    let r = both_slashes(
        r,
        "/api/v1/planner/keywords/auto_cluster/",
        post(auto_cluster),
    );
    let r = both_slashes(r, "/api/v1/planner/clusters/", get(clusters));
    let r = both_slashes(r, "/api/v1/planner/clusters/merge/", post(merge_clusters));
    let r = both_slashes(
        r,
        "/api/v1/planner/clusters/move_keywords/",
        post(move_keywords),
    );
    let r = both_slashes(
        r,
        "/api/v1/planner/clusters/{id}/split/",
        post(split_cluster),
    );
    let r = both_slashes(
        r,
        "/api/v1/planner/clusters/{id}/",
        get(get_cluster)
            .patch(rename_cluster)
            .delete(delete_cluster),
    );
    both_slashes(
        r,
        "/api/v1/planner/keywords/{id}/",
        patch(update).delete(remove),
    )
}

/// The planner's use-case dependencies over this state: the bus and the
/// read-model port on its database (a temporary that lives for the
/// statement, or the `let`, it is used in).
macro_rules! planner {
    ($s:expr) => {
        cmd::Planner {
            bus: &$s.bus,
            lookup: &igny8_projections::planner::Lookup(&$s.db),
        }
    };
}

pub mod ideas;

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ImportParams {
    pub sector_id: Uuid,
    /// Optional; when given it must be the sector's site.
    pub site_id: Option<Uuid>,
}

/// Import keywords from a CSV (raw body, `Content-Type: text/csv`, or a
/// multipart field named `file`). Duplicates (after normalisation, in the
/// file or already in the sector) are skipped; each bad line is reported
/// with its number and reason and never stops the good ones.
#[utoipa::path(post, path = "/api/v1/planner/keywords/import_csv/", tag = "planner", params(ImportParams), security(("bearer" = [])),
    request_body(content = CsvFile, content_type = "text/csv"),
    responses((status = 200, description = "imported, duplicates_skipped, rejected (line, reason)", body = ImportResult),
              (status = 404, description = "Unknown or invisible sector", body = crate::http::schema::ErrorEnvelope),
              (status = 413, description = "Larger than 64 MB", body = crate::http::schema::ErrorEnvelope),
              (status = 422, description = "EMPTY_FILE, NOT_A_TEXT_FILE, INVALID_ENCODING, NO_KEYWORD_COLUMN, TOO_MANY_ROWS", body = crate::http::schema::ErrorEnvelope)))]
pub async fn import_csv(
    State(s): State<AppState>,
    p: Principal,
    ApiQuery(q): ApiQuery<ImportParams>,
    req: Request,
) -> ApiResult<Response> {
    // Checked before the file is read.
    let target = cmd::import_target(&s.bus, &p, q.sector_id, q.site_id).await?;
    let multipart = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("multipart/form-data"));
    let too_large = || {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "PAYLOAD_TOO_LARGE",
            "the file is larger than 64 MB",
        )
    };
    let bytes: Bytes = if multipart {
        let mut form = Multipart::from_request(req, &s)
            .await
            .map_err(|e| ApiError::bad_request("INVALID_BODY", e.body_text()))?;
        let mut file = None;
        while let Some(field) = form.next_field().await.map_err(|e| {
            if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                too_large()
            } else {
                ApiError::bad_request("INVALID_BODY", e.body_text())
            }
        })? {
            if field.name() == Some("file") {
                file = Some(field.bytes().await.map_err(|e| {
                    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                        too_large()
                    } else {
                        ApiError::bad_request("INVALID_BODY", e.body_text())
                    }
                })?);
                break;
            }
        }
        file.ok_or_else(|| {
            ApiError::bad_request(
                "INVALID_BODY",
                "the multipart body has no field named `file`",
            )
        })?
    } else {
        Bytes::from_request(req, &s).await.map_err(|e| {
            if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                too_large()
            } else {
                ApiError::bad_request("INVALID_BODY", e.body_text())
            }
        })?
    };
    let done = cmd::import_keywords(&s.bus, &p.context(), target, bytes).await?;
    Ok(ApiOk(ImportResult {
        sector_id: done.sector_id,
        lines: done.lines,
        imported: done.imported,
        duplicates_skipped: done.duplicates_skipped,
        rejected_count: done.rejected_count,
        rejected: done
            .rejected
            .into_iter()
            .map(|r| RejectedLine {
                line: r.line,
                reason: r.reason,
            })
            .collect(),
        position: done.position,
    })
    .into_response())
}

/// A CSV file of keywords (a keyword tool's export): UTF-8 text, a header
/// naming a keyword column, at most 200,000 lines and 64 MB.
pub struct CsvFile;

impl utoipa::PartialSchema for CsvFile {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .min_length(Some(1))
            .description(Some("CSV text with a header line"))
            .into()
    }
}

impl ToSchema for CsvFile {
    fn name() -> std::borrow::Cow<'static, str> {
        "CsvFile".into()
    }
}

/// What an import did.
#[derive(Debug, Serialize, ToSchema)]
pub struct ImportResult {
    pub sector_id: Uuid,
    /// Data lines read (the header not counted).
    pub lines: usize,
    /// Keywords added.
    pub imported: usize,
    /// Valid lines whose keyword the file or the sector had already.
    pub duplicates_skipped: usize,
    /// Lines refused (all of them; `rejected` lists the first 1,000).
    pub rejected_count: usize,
    pub rejected: Vec<RejectedLine>,
    /// Position of the import's last event (`null` when nothing was added).
    pub position: Option<i64>,
}

/// A refused line of an import.
#[derive(Debug, Serialize, ToSchema)]
pub struct RejectedLine {
    /// 1-based line number in the file (the header is line 1).
    pub line: u64,
    pub reason: String,
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct KeywordParams {
    pub site_id: Option<Uuid>,
    pub sector_id: Option<Uuid>,
    /// Part of the keyword (case and width insensitive).
    pub search: Option<String>,
    /// informational, navigational, commercial or transactional.
    #[param(schema_with = intent_schema)]
    pub intent: Option<String>,
    /// active or inactive.
    #[param(schema_with = status_schema)]
    pub status: Option<String>,
    pub volume_min: Option<i64>,
    pub volume_max: Option<i64>,
    pub difficulty_min: Option<i64>,
    pub difficulty_max: Option<i64>,
    pub cluster_id: Option<Uuid>,
    /// Only keywords in no cluster.
    pub unclustered: Option<bool>,
    /// keyword, volume, difficulty, cpc, created_at, updated_at; `-` for descending (default `-volume`).
    #[param(schema_with = keyword_ordering_schema)]
    pub ordering: Option<String>,
}

/// The intents (canonical names; `i`, `info`, … are accepted too).
pub const INTENTS: &[&str] = &[
    "informational",
    "navigational",
    "commercial",
    "transactional",
];

fn intent_schema() -> utoipa::openapi::Object {
    crate::http::schema::string_enum(INTENTS)
}

fn intent_schema_opt() -> utoipa::openapi::Object {
    crate::http::constraints::or_null(intent_schema())
}

fn status_schema_opt() -> utoipa::openapi::Object {
    crate::http::constraints::or_null(status_schema())
}

fn strategy_schema_opt() -> utoipa::openapi::Object {
    crate::http::constraints::or_null(strategy_schema())
}

fn status_schema() -> utoipa::openapi::Object {
    crate::http::schema::string_enum(&["active", "inactive"])
}

fn keyword_ordering_schema() -> utoipa::openapi::Object {
    crate::http::schema::ordering_enum(ORDERINGS)
}

fn cluster_ordering_schema() -> utoipa::openapi::Object {
    crate::http::schema::ordering_enum(rm::CLUSTER_ORDERINGS)
}

async fn filter(
    s: &AppState,
    p: &Principal,
    q: &KeywordParams,
) -> ApiResult<(Uuid, KeywordFilter)> {
    let account = cmd::list_scope(&s.bus, p, q.site_id, q.sector_id).await?;
    if let Some(i) = &q.intent
        && Intent::parse(i).is_none()
    {
        return Err(ApiError::bad_request(
            "INVALID_QUERY",
            "intent must be informational, navigational, commercial or transactional",
        ));
    }
    if let Some(st) = &q.status
        && st != "active"
        && st != "inactive"
    {
        return Err(ApiError::bad_request(
            "INVALID_QUERY",
            "status must be active or inactive",
        ));
    }
    if let Some(o) = &q.ordering
        && !ORDERINGS.contains(&o.trim_start_matches('-'))
    {
        return Err(ApiError::bad_request(
            "INVALID_QUERY",
            format!(
                "ordering must be one of {} (with - for descending)",
                ORDERINGS.join(", ")
            ),
        ));
    }
    Ok((
        account,
        KeywordFilter {
            site_in: p.site_filter(),
            site_id: q.site_id.map(|x| x.to_string()),
            sector_id: q.sector_id.map(|x| x.to_string()),
            search: q.search.clone().filter(|x| !x.trim().is_empty()),
            intent: q
                .intent
                .as_deref()
                .and_then(Intent::parse)
                .map(|i| i.as_str().to_string()),
            status: q.status.clone(),
            volume_min: q.volume_min,
            volume_max: q.volume_max,
            difficulty_min: q.difficulty_min,
            difficulty_max: q.difficulty_max,
            cluster_id: q.cluster_id.map(|x| x.to_string()),
            unclustered: q.unclustered.unwrap_or(false),
            ordering: q.ordering.clone(),
            offset: 0,
            limit: None,
        },
    ))
}

/// Keywords, filtered, ordered and paginated.
#[utoipa::path(get, path = "/api/v1/planner/keywords/", tag = "planner", params(PageParams, KeywordParams), security(("bearer" = [])),
    responses((status = 200, description = "A page of keywords", body = Page<KeywordRow>), (status = 400, description = "INVALID_QUERY", body = crate::http::schema::ErrorEnvelope)))]
pub async fn list(
    State(s): State<AppState>,
    p: Principal,
    paging: Paging,
    ApiQuery(q): ApiQuery<KeywordParams>,
) -> ApiResult<ApiOk<Page<KeywordRow>>> {
    let (account, mut f) = filter(&s, &p, &q).await?;
    paging.read_your_writes(&s, rm::NAME).await?;
    f.offset = paging.offset;
    f.limit = Some(paging.size);
    let pg = rm::page_keywords(&s.db, &account.to_string(), &f).await?;
    Ok(paging.capped(pg.rows, pg.count, pg.capped, pg.more))
}

/// Every keyword matching the list's filters, as CSV (header included).
#[utoipa::path(get, path = "/api/v1/planner/keywords/export_csv/", tag = "planner", params(KeywordParams, crate::http::ReadParams), security(("bearer" = [])),
    responses((status = 200, description = "text/csv: id, keyword, volume, difficulty, intent, cpc, status, cluster_id, cluster_name, site_id, sector_id", content_type = "text/csv")))]
pub async fn export_csv(
    State(s): State<AppState>,
    p: Principal,
    ApiQuery(q): ApiQuery<KeywordParams>,
    ApiQuery(r): ApiQuery<crate::http::ReadParams>,
) -> ApiResult<Response> {
    let (account, f) = filter(&s, &p, &q).await?;
    read_your_writes(&s, rm::NAME, r.min_position).await?;
    let (rows, _) = rm::list_keywords(&s.db, &account.to_string(), &f).await?;
    let mut w = csv::Writer::from_writer(Vec::with_capacity(rows.len() * 80));
    let csv_err = |e: csv::Error| ApiError::internal(e);
    w.write_record([
        "id",
        "keyword",
        "volume",
        "difficulty",
        "intent",
        "cpc",
        "status",
        "cluster_id",
        "cluster_name",
        "site_id",
        "sector_id",
    ])
    .map_err(csv_err)?;
    for r in &rows {
        w.write_record([
            r.keyword_id.as_str(),
            &r.keyword,
            &r.volume.to_string(),
            &r.difficulty.to_string(),
            r.intent.as_deref().unwrap_or(""),
            &r.cpc.map(|c| c.to_string()).unwrap_or_default(),
            &r.status,
            r.cluster_id.as_deref().unwrap_or(""),
            r.cluster_name.as_deref().unwrap_or(""),
            &r.site_id,
            &r.sector_id,
        ])
        .map_err(csv_err)?;
    }
    let body = w
        .into_inner()
        .map_err(|e| ApiError::internal(e.to_string()))?;
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"keywords.csv\"",
            ),
        ],
        body,
    )
        .into_response())
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateKeywordBody {
    pub sector_id: Uuid,
    /// 1 to 200 characters once normalised (NFKC, case, white space), no control characters.
    #[schema(schema_with = crate::http::constraints::name)]
    pub keyword: String,
    /// Monthly searches, 0 to 10^10.
    #[serde(default)]
    #[schema(minimum = 0, maximum = 10_000_000_000_i64)]
    pub volume: i64,
    /// 0 to 100.
    #[serde(default)]
    #[schema(minimum = 0, maximum = 100)]
    pub difficulty: i64,
    /// informational, navigational, commercial or transactional.
    #[schema(schema_with = intent_schema_opt)]
    pub intent: Option<String>,
    /// Cost per click, 0 to 100,000.
    #[schema(minimum = 0, maximum = 100_000)]
    pub cpc: Option<f64>,
}

/// A keyword as a create answers it.
#[derive(Debug, Serialize, ToSchema)]
pub struct KeywordView {
    pub id: Uuid,
    /// The keyword as stored (white space folded).
    pub keyword: String,
    pub volume: i64,
    pub difficulty: i64,
    #[schema(schema_with = intent_schema_opt)]
    pub intent: Option<&'static str>,
    pub cpc: Option<f64>,
    pub status: &'static str,
    pub site_id: Uuid,
    pub sector_id: Uuid,
}

/// `{"id", "sector_id"}` of a changed keyword.
#[derive(Debug, Serialize, ToSchema)]
pub struct KeywordRef {
    pub id: Uuid,
    pub sector_id: String,
}

/// How many keywords a bulk delete removed.
#[derive(Debug, Serialize, ToSchema)]
pub struct BulkDeleted {
    pub sector_id: Uuid,
    pub deleted: usize,
}

/// Add one keyword (409 ALREADY_EXISTS when the sector has it, after normalisation).
#[utoipa::path(post, path = "/api/v1/planner/keywords/", tag = "planner", request_body = CreateKeywordBody, security(("bearer" = [])),
    params(("Idempotency-Key" = Option<String>, Header, description = "A retry with the same key and body answers the first keyword (not ALREADY_EXISTS)")),
    responses((status = 201, description = "Created", body = Saved<KeywordView>), (status = 409, description = "ALREADY_EXISTS", body = crate::http::schema::ErrorEnvelope),
              (status = 422, description = "INVALID_KEYWORD, INVALID_VOLUME, INVALID_DIFFICULTY, INVALID_INTENT, INVALID_CPC", body = crate::http::schema::ErrorEnvelope)))]
pub async fn create(
    State(s): State<AppState>,
    Command {
        principal: p,
        ctx,
        body: b,
        ..
    }: Command<CreateKeywordBody>,
) -> ApiResult<Response> {
    let input = cmd::NewKeyword {
        sector_id: b.sector_id,
        keyword: b.keyword,
        volume: b.volume,
        difficulty: b.difficulty,
        intent: b.intent,
        cpc: b.cpc,
    };
    let done = cmd::create_keyword(planner!(s), &p, &ctx, input).await?;
    let k = done.keyword;
    let data = KeywordView {
        id: k.id,
        keyword: k.keyword,
        volume: k.volume,
        difficulty: k.difficulty,
        intent: k.intent.map(Intent::as_str),
        cpc: k.cpc,
        status: "active",
        site_id: done.site_id,
        sector_id: done.sector_id,
    };
    Ok(resource(data, &done.outcome, true))
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateKeywordBody {
    /// 0 to 10^10.
    #[schema(minimum = 0, maximum = 10_000_000_000_i64)]
    pub volume: Option<i64>,
    /// 0 to 100.
    #[schema(minimum = 0, maximum = 100)]
    pub difficulty: Option<i64>,
    /// `null` clears it.
    #[serde(default, deserialize_with = "crate::http::nullable")]
    #[schema(schema_with = intent_schema_opt)]
    pub intent: Option<Option<String>>,
    /// 0 to 100,000; `null` clears it.
    #[serde(default, deserialize_with = "crate::http::nullable")]
    #[schema(value_type = Option<f64>, minimum = 0, maximum = 100_000)]
    pub cpc: Option<Option<f64>>,
    /// active or inactive.
    #[schema(schema_with = status_schema_opt)]
    pub status: Option<String>,
}

/// Change a keyword's figures or status (`null` clears intent or cpc).
#[utoipa::path(patch, path = "/api/v1/planner/keywords/{id}/", tag = "planner", request_body = UpdateKeywordBody, params(("id" = Uuid, Path)), security(("bearer" = [])),
    responses((status = 200, description = "Updated", body = Saved<KeywordRef>), (status = 404, description = "Unknown or not visible", body = crate::http::schema::ErrorEnvelope)))]
pub async fn update(
    State(s): State<AppState>,
    ApiPath(id): ApiPath<Uuid>,
    Command {
        principal: p,
        ctx,
        body: b,
        ..
    }: Command<UpdateKeywordBody>,
) -> ApiResult<Response> {
    let update = cmd::KeywordUpdate {
        volume: b.volume,
        difficulty: b.difficulty,
        intent: b.intent,
        cpc: b.cpc,
        status: b.status,
    };
    let done = cmd::update_keyword(planner!(s), &p, &ctx, id, update).await?;
    Ok(resource(
        KeywordRef {
            id,
            sector_id: done.sector_id.to_string(),
        },
        &done.outcome,
        false,
    ))
}

/// Delete a keyword.
#[utoipa::path(delete, path = "/api/v1/planner/keywords/{id}/", tag = "planner", params(("id" = Uuid, Path)), security(("bearer" = [])),
    responses((status = 200, description = "Deleted", body = Saved<Deleted>), (status = 404, description = "Unknown or not visible", body = crate::http::schema::ErrorEnvelope)))]
pub async fn remove(
    State(s): State<AppState>,
    ApiPath(id): ApiPath<Uuid>,
    Command {
        principal: p, ctx, ..
    }: Command<Empty>,
) -> ApiResult<Response> {
    let done = cmd::delete_keyword(planner!(s), &p, &ctx, id).await?;
    Ok(resource(Deleted::id(id), &done.outcome, false))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BulkDeleteBody {
    /// Keywords of one sector.
    pub sector_id: Uuid,
    /// At most 100,000 ids; unknown ones are ignored.
    #[schema(max_items = 100_000)]
    pub ids: Vec<Uuid>,
}

/// Delete many keywords of one sector at once.
#[utoipa::path(post, path = "/api/v1/planner/keywords/bulk_delete/", tag = "planner", request_body = BulkDeleteBody, security(("bearer" = [])),
    responses((status = 200, description = "deleted: how many", body = Saved<BulkDeleted>), (status = 404, description = "None of them in this sector", body = crate::http::schema::ErrorEnvelope)))]
pub async fn bulk_delete(
    State(s): State<AppState>,
    Command {
        principal: p,
        ctx,
        body: b,
        ..
    }: Command<BulkDeleteBody>,
) -> ApiResult<Response> {
    let input = cmd::BulkDelete {
        sector_id: b.sector_id,
        ids: b.ids,
    };
    let done = cmd::bulk_delete(planner!(s), &p, &ctx, input).await?;
    Ok(resource(
        BulkDeleted {
            sector_id: done.sector_id,
            deleted: done.deleted,
        },
        &done.outcome,
        false,
    ))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AutoClusterBody {
    /// Every keyword of this sector …
    pub sector_id: Option<Uuid>,
    /// … or these keywords (of one sector).
    #[schema(min_items = 1)]
    pub keyword_ids: Option<Vec<Uuid>>,
    /// `offline` (default; no network), `embeddings` or `llm` (both need the
    /// account's provider settings: `PUT /api/v1/system/settings/integrations/openai/`;
    /// `llm` takes at most 300 keywords).
    #[schema(schema_with = strategy_schema_opt)]
    pub strategy: Option<String>,
    /// Exactly this many clusters (1 to 1000, and at most the number of
    /// keywords); absent: chosen from the number of keywords.
    #[schema(minimum = 1, maximum = 1000)]
    pub num_clusters: Option<u64>,
}

fn strategy_schema() -> utoipa::openapi::Object {
    crate::http::schema::string_enum(&Strategy::ALL.map(Strategy::as_str))
}

/// The answer to `auto_cluster`: the job to follow.
#[derive(Debug, Serialize, ToSchema)]
pub struct JobStarted {
    pub job_id: Uuid,
    /// The same id (the seeds' name).
    pub task_id: Uuid,
    #[schema(value_type = crate::http::schema::JobState)]
    pub state: &'static str,
    /// Keywords selected.
    pub keywords: usize,
    /// Position of the job's first commit.
    pub position: Option<i64>,
    pub progress_url: String,
}

/// Cluster keywords: answers 202 with the job id at once; follow it with
/// `GET /api/v1/system/settings/task_progress/{job_id}/` or the job's event
/// stream. Reserves the run's credits up front (402 when short); a failed or
/// cancelled run releases them.
#[utoipa::path(post, path = "/api/v1/planner/keywords/auto_cluster/", tag = "planner", request_body = AutoClusterBody, security(("bearer" = [])),
    params(("Idempotency-Key" = Option<String>, Header, description = "A retry with the same key answers the first job")),
    responses((status = 202, description = "job_id, state PENDING", body = JobStarted), (status = 402, description = "INSUFFICIENT_CREDITS", body = crate::http::schema::ErrorEnvelope),
              (status = 404, description = "Unknown or invisible sector or keywords", body = crate::http::schema::ErrorEnvelope),
              (status = 422, description = "EMPTY_SELECTION, INVALID_STRATEGY, STRATEGY_UNAVAILABLE, TOO_MANY_KEYWORDS, INVALID_NUM_CLUSTERS", body = crate::http::schema::ErrorEnvelope)))]
pub async fn auto_cluster(
    State(s): State<AppState>,
    // A retry with the same Idempotency-Key answers the first job (nothing reserved twice).
    Command {
        principal: p,
        ctx,
        body: b,
        ..
    }: Command<AutoClusterBody>,
) -> ApiResult<Response> {
    let input = cmd::AutoCluster {
        sector_id: b.sector_id,
        keyword_ids: b.keyword_ids,
        strategy: b.strategy,
        num_clusters: b.num_clusters,
    };
    let job = cmd::auto_cluster(planner!(s), &p, &ctx, input).await?;
    let job_id = job.job_id;
    let mut r = (
        StatusCode::ACCEPTED,
        axum::Json(crate::http::envelope::success_body(
            serde_json::to_value(JobStarted {
                job_id,
                task_id: job_id,
                state: "PENDING",
                keywords: job.keywords,
                position: job.position,
                progress_url: format!("/api/v1/system/settings/task_progress/{job_id}/"),
            })
            .map_err(ApiError::internal)?,
            Some("clustering started"),
        )),
    )
        .into_response();
    if job.replayed {
        r.headers_mut().insert(
            "idempotent-replayed",
            axum::http::HeaderValue::from_static("true"),
        );
    }
    Ok(r)
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ClusterParams {
    pub site_id: Option<Uuid>,
    pub sector_id: Option<Uuid>,
    /// Part of the cluster's name (case-insensitive).
    pub search: Option<String>,
    /// total_volume, keyword_count, avg_difficulty, name, created_at; `-` for
    /// descending (default `-total_volume`).
    #[param(schema_with = cluster_ordering_schema)]
    pub ordering: Option<String>,
}

/// Keywords the caller may count: its sites, and the site or sector asked for.
fn visible_keywords(p: &Principal) -> KeywordFilter {
    KeywordFilter {
        site_in: p.site_filter(),
        ..KeywordFilter::default()
    }
}

/// The current clusters (those keywords point to), with figures counted
/// from the keywords as they are now; filtered, ordered, paginated.
#[utoipa::path(get, path = "/api/v1/planner/clusters/", tag = "planner", params(PageParams, ClusterParams), security(("bearer" = [])),
    responses((status = 200, description = "A page of clusters", body = Page<rm::ClusterRow>), (status = 400, description = "INVALID_QUERY", body = crate::http::schema::ErrorEnvelope)))]
pub async fn clusters(
    State(s): State<AppState>,
    p: Principal,
    paging: Paging,
    ApiQuery(q): ApiQuery<ClusterParams>,
) -> ApiResult<ApiOk<Page<rm::ClusterRow>>> {
    let account = cmd::list_scope(&s.bus, &p, q.site_id, q.sector_id).await?;
    if let Some(o) = &q.ordering
        && !rm::CLUSTER_ORDERINGS.contains(&o.trim_start_matches('-'))
    {
        return Err(ApiError::bad_request(
            "INVALID_QUERY",
            format!(
                "ordering must be one of {} (with - for descending)",
                rm::CLUSTER_ORDERINGS.join(", ")
            ),
        ));
    }
    paging.read_your_writes(&s, rm::NAME).await?;
    let f = rm::ClusterFilter {
        keywords: KeywordFilter {
            site_id: q.site_id.map(|x| x.to_string()),
            sector_id: q.sector_id.map(|x| x.to_string()),
            ..visible_keywords(&p)
        },
        search: q.search.clone().filter(|x| !x.trim().is_empty()),
        ordering: q.ordering.clone(),
        offset: paging.offset,
        limit: paging.size,
        include_empty: false,
    };
    let (rows, count) = rm::page_clusters(&s.db, &account.to_string(), &f).await?;
    Ok(paging.page(rows, count))
}

/// One cluster with its live figures (a cluster its keywords all left
/// shows zeros until it is deleted).
#[utoipa::path(get, path = "/api/v1/planner/clusters/{id}/", tag = "planner", params(("id" = Uuid, Path), crate::http::ReadParams), security(("bearer" = [])),
    responses((status = 200, description = "The cluster", body = rm::ClusterRow), (status = 404, description = "Unknown or not visible", body = crate::http::schema::ErrorEnvelope)))]
pub async fn get_cluster(
    State(s): State<AppState>,
    p: Principal,
    ApiPath(id): ApiPath<Uuid>,
    ApiQuery(q): ApiQuery<crate::http::ReadParams>,
) -> ApiResult<ApiOk<rm::ClusterRow>> {
    read_your_writes(&s, rm::NAME, q.min_position).await?;
    cmd::cluster_scope(&rm::Lookup(&s.db), &p, id).await?;
    let f = rm::ClusterFilter {
        keywords: KeywordFilter {
            cluster_id: Some(id.to_string()),
            ..visible_keywords(&p)
        },
        limit: 1,
        include_empty: true,
        ..rm::ClusterFilter::default()
    };
    let (rows, _) = rm::page_clusters(&s.db, &p.account()?.to_string(), &f).await?;
    rows.into_iter()
        .next()
        .map(ApiOk)
        .ok_or_else(|| ApiError::not_found("cluster"))
}

/// A renamed cluster.
#[derive(Debug, Serialize, ToSchema)]
pub struct ClusterRenamed {
    pub id: Uuid,
    pub name: String,
}

/// The cluster that stayed and those merged into it.
#[derive(Debug, Serialize, ToSchema)]
pub struct ClustersMerged {
    pub id: Uuid,
    pub merged: Vec<Uuid>,
}

/// Keywords moved: their new cluster (`null`: none) and how many were asked.
#[derive(Debug, Serialize, ToSchema)]
pub struct KeywordsMoved {
    pub cluster_id: Option<Uuid>,
    pub requested: usize,
}

/// The new cluster of a split.
#[derive(Debug, Serialize, ToSchema)]
pub struct ClusterSplit {
    pub id: Uuid,
    pub from: Uuid,
    pub name: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RenameClusterBody {
    /// 1 to 200 characters, no control characters.
    #[schema(schema_with = crate::http::constraints::name)]
    pub name: String,
}

/// Rename a cluster.
#[utoipa::path(patch, path = "/api/v1/planner/clusters/{id}/", tag = "planner", request_body = RenameClusterBody, params(("id" = Uuid, Path)), security(("bearer" = [])),
    responses((status = 200, description = "Renamed", body = Saved<ClusterRenamed>), (status = 404, description = "Unknown or not visible", body = crate::http::schema::ErrorEnvelope)))]
pub async fn rename_cluster(
    State(s): State<AppState>,
    ApiPath(id): ApiPath<Uuid>,
    Command {
        principal: p,
        ctx,
        body,
        ..
    }: Command<RenameClusterBody>,
) -> ApiResult<Response> {
    let done = cmd::rename_cluster(planner!(s), &p, &ctx, id, body.name).await?;
    let answer = ClusterRenamed {
        id: done.id,
        name: done.name,
    };
    Ok(resource(answer, &done.outcome, false))
}

/// Delete a cluster: its keywords have no cluster any more.
#[utoipa::path(delete, path = "/api/v1/planner/clusters/{id}/", tag = "planner", params(("id" = Uuid, Path)), security(("bearer" = [])),
    responses((status = 200, description = "Deleted", body = Saved<Deleted>), (status = 404, description = "Unknown or not visible", body = crate::http::schema::ErrorEnvelope)))]
pub async fn delete_cluster(
    State(s): State<AppState>,
    ApiPath(id): ApiPath<Uuid>,
    Command {
        principal: p, ctx, ..
    }: Command<Empty>,
) -> ApiResult<Response> {
    let done = cmd::delete_cluster(planner!(s), &p, &ctx, id).await?;
    Ok(resource(Deleted::id(id), &done.outcome, false))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MergeBody {
    /// The cluster that stays.
    pub into: Uuid,
    /// Clusters whose keywords move into it (they disappear).
    #[schema(min_items = 1)]
    pub from: Vec<Uuid>,
}

/// Merge clusters of one sector.
#[utoipa::path(post, path = "/api/v1/planner/clusters/merge/", tag = "planner", request_body = MergeBody, security(("bearer" = [])),
    responses((status = 200, description = "Merged", body = Saved<ClustersMerged>), (status = 404, description = "Unknown or not visible", body = crate::http::schema::ErrorEnvelope),
              (status = 422, description = "Nothing to merge, or clusters of different sectors", body = crate::http::schema::ErrorEnvelope)))]
pub async fn merge_clusters(
    State(s): State<AppState>,
    Command {
        principal: p,
        ctx,
        body: b,
        ..
    }: Command<MergeBody>,
) -> ApiResult<Response> {
    let done = cmd::merge_clusters(planner!(s), &p, &ctx, b.into, b.from).await?;
    let answer = ClustersMerged {
        id: done.into,
        merged: done.merged,
    };
    Ok(resource(answer, &done.outcome, false))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MoveBody {
    /// Keywords of one sector.
    #[schema(min_items = 1)]
    pub keyword_ids: Vec<Uuid>,
    /// Their new cluster (same sector); `null`: no cluster.
    pub cluster_id: Option<Uuid>,
}

/// Move keywords to another cluster (or out of any).
#[utoipa::path(post, path = "/api/v1/planner/clusters/move_keywords/", tag = "planner", request_body = MoveBody, security(("bearer" = [])),
    responses((status = 200, description = "Moved", body = Saved<KeywordsMoved>), (status = 404, description = "Unknown or not visible", body = crate::http::schema::ErrorEnvelope)))]
pub async fn move_keywords(
    State(s): State<AppState>,
    Command {
        principal: p,
        ctx,
        body: b,
        ..
    }: Command<MoveBody>,
) -> ApiResult<Response> {
    let input = cmd::MoveKeywords {
        keyword_ids: b.keyword_ids,
        cluster_id: b.cluster_id,
    };
    let done = cmd::move_keywords(planner!(s), &p, &ctx, input).await?;
    let answer = KeywordsMoved {
        cluster_id: done.cluster_id,
        requested: done.requested,
    };
    Ok(resource(answer, &done.outcome, false))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SplitBody {
    /// Keywords that leave for the new cluster.
    #[schema(min_items = 1)]
    pub keyword_ids: Vec<Uuid>,
    /// 1 to 200 characters, no control characters.
    #[schema(schema_with = crate::http::constraints::name)]
    pub name: String,
}

/// Split a cluster: a new cluster takes the given keywords.
#[utoipa::path(post, path = "/api/v1/planner/clusters/{id}/split/", tag = "planner", request_body = SplitBody, params(("id" = Uuid, Path)), security(("bearer" = [])),
    responses((status = 200, description = "The new cluster's id", body = Saved<ClusterSplit>), (status = 404, description = "Unknown or not visible", body = crate::http::schema::ErrorEnvelope)))]
pub async fn split_cluster(
    State(s): State<AppState>,
    ApiPath(id): ApiPath<Uuid>,
    Command {
        principal: p,
        ctx,
        body: b,
        ..
    }: Command<SplitBody>,
) -> ApiResult<Response> {
    let done = cmd::split_cluster(planner!(s), &p, &ctx, id, b.keyword_ids, b.name).await?;
    let answer = ClusterSplit {
        id: done.id,
        from: done.from,
        name: done.name,
    };
    Ok(resource(answer, &done.outcome, false))
}
