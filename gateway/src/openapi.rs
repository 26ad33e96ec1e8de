//! OpenAPI 3.1 document and the offline docs page (Swagger UI, vendored).

use crate::state::AppState;
use axum::Router;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_swagger_ui::SwaggerUi;

#[derive(OpenApi)]
#[openapi(
    info(title = "IGNY8 API", description = "AI SEO content platform. Every answer is an envelope: \
        {success, data, message, request_id, timestamp} or {success:false, error, error_code, request_id, timestamp}. \
        Authenticate with `Authorization: Bearer <access token or API key>` (or `X-API-Key`). \
        Commands return `position`; pass it as `min_position` to a list query to read your own write."),
    paths(
        crate::system::health, crate::system::ready, crate::system::projections, crate::system::my_projections, crate::system::audit_events,
        crate::tenancy::auth::signup, crate::tenancy::auth::login, crate::tenancy::auth::refresh,
        crate::tenancy::auth::logout, crate::tenancy::auth::me, crate::tenancy::auth::change_password,
        crate::tenancy::users::list, crate::tenancy::users::create, crate::tenancy::users::get_one,
        crate::tenancy::users::update, crate::tenancy::users::remove, crate::tenancy::users::set_sites,
        crate::tenancy::sites::list, crate::tenancy::sites::industries, crate::tenancy::sites::create, crate::tenancy::sites::get_one,
        crate::tenancy::sites::update, crate::tenancy::sites::remove, crate::tenancy::sites::list_sectors,
        crate::tenancy::sites::create_sector, crate::tenancy::sites::update_sector, crate::tenancy::sites::remove_sector,
        crate::tenancy::api_keys::list, crate::tenancy::api_keys::create, crate::tenancy::api_keys::revoke,
        crate::tenancy::integrations::get_one, crate::tenancy::integrations::put, crate::tenancy::integrations::remove, crate::tenancy::integrations::test_provider,
        crate::tenancy::integrations::test_openai_image, crate::tenancy::integrations::test_runware,
        crate::billing::credits, crate::billing::grant_credits, crate::billing::transactions,
        crate::billing::plans, crate::billing::subscription, crate::billing::account_events, crate::billing::usage,
        crate::commands_api::list, crate::commands_api::send,
        crate::planner::import_csv, crate::planner::list, crate::planner::export_csv, crate::planner::create,
        crate::planner::update, crate::planner::remove, crate::planner::bulk_delete,
        crate::planner::auto_cluster, crate::planner::clusters, crate::planner::get_cluster, crate::planner::rename_cluster,
        crate::planner::delete_cluster, crate::planner::merge_clusters, crate::planner::move_keywords,
        crate::planner::split_cluster,
        crate::planner::ideas::list_ideas, crate::planner::ideas::get_idea, crate::planner::ideas::create_idea,
        crate::planner::ideas::update_idea, crate::planner::ideas::delete_idea, crate::planner::ideas::bulk_queue_to_writer,
        crate::planner::ideas::auto_generate_ideas,
        crate::writer::tasks::list_tasks, crate::writer::tasks::get_task, crate::writer::tasks::create_task,
        crate::writer::tasks::update_task, crate::writer::tasks::delete_task, crate::writer::tasks::auto_generate_content,
        crate::writer::content::list_content, crate::writer::content::get_content, crate::writer::content::edit_content,
        crate::writer::content::regenerate, crate::writer::content::revert, crate::writer::content::set_status,
        crate::writer::content::list_versions, crate::writer::content::get_version, crate::writer::content::diff_versions,
        crate::writer::settings::prompts, crate::writer::settings::set_prompt, crate::writer::settings::reset_prompt,
        crate::writer::settings::profiles, crate::writer::settings::get_profile, crate::writer::settings::create_profile,
        crate::writer::settings::update_profile, crate::writer::settings::delete_profile,
        crate::writer::settings::strategies, crate::writer::settings::get_strategy, crate::writer::settings::create_strategy,
        crate::writer::settings::update_strategy, crate::writer::settings::delete_strategy,
        crate::writer::images::extract_image_prompts, crate::writer::images::list_image_prompts, crate::writer::images::create_image_prompt,
        crate::writer::images::get_image_prompt, crate::writer::images::edit_image_prompt, crate::writer::images::delete_image_prompt,
        crate::writer::images::generate_images, crate::writer::images::auto_generate_images,
        crate::writer::images::list_images, crate::writer::images::get_image, crate::writer::images::image_file,
        crate::publishing::list, crate::publishing::create, crate::publishing::get_one, crate::publishing::update,
        crate::publishing::remove, crate::publishing::test_connection, crate::publishing::publish, crate::publishing::unpublish,
        crate::publishing::sync, crate::publishing::sync_logs, crate::publishing::list_publications, crate::publishing::get_publication,
        crate::publishing::wordpress_webhook,
        crate::automation::list_rules, crate::automation::create_rule, crate::automation::get_rule, crate::automation::update_rule,
        crate::automation::delete_rule, crate::automation::execute, crate::automation::pause, crate::automation::resume,
        crate::automation::dry_run, crate::automation::list_runs, crate::automation::get_run, crate::automation::cancel_run,
        crate::automation::scheduled_tasks,
        crate::jobs::task_progress, crate::jobs::list, crate::jobs::cancel, crate::jobs::events,
    ),
    components(schemas(crate::http::schema::ErrorEnvelope, crate::http::schema::ErrorCode, crate::tenancy::integrations::ProviderName, crate::planner::CsvFile, crate::http::command::CommandResult, crate::auth::tokens::TokenPair,
        crate::tenancy::auth::SignupBody, crate::tenancy::auth::LoginBody, crate::tenancy::auth::RefreshBody, crate::tenancy::auth::PasswordBody,
        crate::tenancy::users::CreateUserBody, crate::tenancy::users::UpdateUserBody, crate::tenancy::users::SitesBody,
        crate::tenancy::bodies::CreateSiteBody, crate::tenancy::bodies::UpdateSiteBody,
        crate::tenancy::bodies::CreateSectorBody, crate::tenancy::bodies::UpdateSectorBody,
        crate::tenancy::api_keys::CreateKeyBody, crate::tenancy::integrations::IntegrationBody, crate::billing::GrantBody, crate::billing::Credits,
        crate::billing::Subscription, crate::commands_api::CreditsBody,
        crate::planner::CreateKeywordBody, crate::planner::UpdateKeywordBody, crate::planner::BulkDeleteBody, crate::planner::AutoClusterBody,
        crate::planner::ideas::CreateIdeaBody, crate::planner::ideas::UpdateIdeaBody, crate::planner::ideas::QueueBody, crate::planner::ideas::GenerateIdeasBody,
        crate::writer::tasks::CreateTaskBody, crate::writer::tasks::UpdateTaskBody, crate::writer::tasks::GenerateContentBody,
        crate::writer::content::EditContentBody, crate::writer::content::RevertBody, crate::writer::content::StatusBody,
        crate::writer::images::ExtractPromptsBody, crate::writer::images::CreatePromptBody, crate::writer::images::EditPromptBody,
        crate::writer::images::GenerateImagesBody, crate::writer::images::TaskImagesBody,
        crate::publishing::CreateIntegrationBody, crate::publishing::UpdateIntegrationBody, crate::publishing::PublishBody, crate::publishing::UnpublishBody,
        crate::writer::settings::PromptBody, crate::writer::settings::ProfileBody, crate::writer::settings::StrategyBody,
        crate::automation::CreateRuleBody, crate::automation::UpdateRuleBody, crate::automation::DryRunBody,
        crate::automation::TriggerBody, crate::automation::ConditionBody, crate::automation::StageBody)),
    modifiers(&Bearer),
    tags((name = "auth", description = "Sign-up, login, tokens"), (name = "users", description = "Users and roles"),
         (name = "sites", description = "Sites and sectors"), (name = "api-keys", description = "API keys for automation"),
         (name = "billing", description = "Credits, ledger, plans"), (name = "commands", description = "Generic command endpoint"), (name = "planner", description = "Keywords, clusters and content ideas"), (name = "writer", description = "Tasks, AI articles and their versions, image prompts and images"), (name = "jobs", description = "Long operations: progress, cancel, events"),
         (name = "integration", description = "WordPress connections, publishing, sync, the request log and webhooks"),
         (name = "automation", description = "Rules that run the pipeline on a schedule, on events or by hand; runs; scheduled firings"),
         (name = "system", description = "Health and operations"))
)]
pub struct ApiDoc;

struct Bearer;

impl Modify for Bearer {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT or igny8_ API key")
                    .build(),
            ),
        );
    }
}

pub fn docs() -> Router<AppState> {
    SwaggerUi::new("/api/docs")
        .external_url_unchecked("/api/v1/openapi.json", document())
        .into()
}

/// The published document: [`ApiDoc`] with every 2xx JSON answer wrapped in
/// the success envelope and every error status an operation can answer
/// documented with the error envelope (see [`contract`]). Served as JSON as
/// it is (utoipa's typed model would drop the keywords it does not model,
/// such as a body's `oneOf` rules).
pub fn document() -> serde_json::Value {
    let mut raw = serde_json::to_value(ApiDoc::openapi()).expect("the OpenAPI document serialises");
    if let Some(paths) = raw["paths"].as_object_mut() {
        // The generic command route is documented as one operation per command.
        paths.remove("/api/v1/commands/{name}/");
        for (path, item) in crate::commands_api::documented_operations() {
            paths.insert(path, item);
        }
    }
    contract::apply(raw)
}

pub mod contract;
