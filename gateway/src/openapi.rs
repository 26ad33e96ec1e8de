//! OpenAPI 3.1 document and the offline docs page (Swagger UI, vendored).

use crate::app::AppState;
use axum::Router;
use serde::Serialize;
use utoipa::{OpenApi, ToSchema};
use utoipa_swagger_ui::SwaggerUi;

/// Every error answers with this shape.
#[derive(Serialize, ToSchema)]
pub struct ErrorEnvelope {
    /// Always false.
    pub success: bool,
    /// Human-readable message.
    pub error: String,
    /// Stable UPPER_SNAKE code, e.g. VALIDATION_ERROR, NOT_FOUND, VERSION_CONFLICT.
    pub error_code: String,
    pub request_id: String,
    /// RFC 3339.
    pub timestamp: String,
}

#[derive(OpenApi)]
#[openapi(
    info(title = "IGNY8 API", description = "AI SEO content platform. Every answer is an envelope: \
        {success, data, message, request_id, timestamp} or {success:false, error, error_code, request_id, timestamp}. \
        Commands return `position`; pass it as `min_position` to a query to read your own write."),
    paths(
        crate::system::health, crate::system::ready, crate::system::projections,
        crate::billing::open_account, crate::billing::get_account, crate::billing::grant_credits,
        crate::billing::spend_credits, crate::billing::list_ledger, crate::billing::account_events,
    ),
    components(schemas(ErrorEnvelope, crate::billing::OpenAccountBody, crate::billing::CreditsBody, crate::billing::CommandResult)),
    tags((name = "billing", description = "Accounts and credits"), (name = "system", description = "Health and operations"))
)]
pub struct ApiDoc;

pub fn docs() -> Router<AppState> {
    SwaggerUi::new("/api/docs")
        .url("/api/v1/openapi.json", ApiDoc::openapi())
        .into()
}
