//! The generic command endpoint for external automation (not to be confused
//! with the automation *rules* context that comes later):
//! `POST /api/v1/commands/{CommandName}` with the command's JSON body.
//!
//! Each command runs the same operation (and so the same authorisation)
//! as its resource route. `Idempotency-Key` works as everywhere; an
//! optional `expected_version` in the body (or `If-Match`) pins the
//! aggregate's version (409 `VERSION_CONFLICT` on mismatch). The answer
//! carries the aggregate id, its new version and the position to read from.
//! `GET /api/v1/commands` lists what the caller may send, with JSON Schemas.

use crate::auth::Principal;
use crate::http::both_slashes;
use crate::http::command::CommandResult;
use crate::http::{
    ApiError, ApiJson, ApiOk, ApiPath, ApiResult, CommandHeaders, command_result, context,
};
use crate::state::AppState;
use crate::tenancy::bodies::{CreateSectorBody, CreateSiteBody, UpdateSectorBody, UpdateSiteBody};
use axum::Router;
use axum::extract::State;
use axum::http::{Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use igny8_commands::tenancy::{members, sites};
use igny8_commands::{CommandContext, CommandOutcome, billing};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};
use utoipa::{PartialSchema, ToSchema};
use uuid::Uuid;

pub fn routes(r: Router<AppState>) -> Router<AppState> {
    let r = both_slashes(r, "/api/v1/commands/", get(list));
    both_slashes(r, "/api/v1/commands/{name}/", post(send))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreditsBody {
    /// Credits, at most 3 decimals, 0.001 to 10^12.
    #[schema(schema_with = crate::http::constraints::credits)]
    pub amount: crate::http::CreditAmount,
    /// Why (shown in the ledger), at most 500 characters.
    #[serde(default)]
    #[schema(schema_with = crate::http::constraints::reason)]
    pub reason: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RoleBody {
    /// admin, editor or viewer.
    #[schema(schema_with = crate::http::constraints::grantable_role)]
    pub role: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Empty {}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PlanBody {
    /// A plan id from GET /api/v1/billing/plans/.
    #[schema(schema_with = plan_ids)]
    pub plan: String,
}

fn plan_ids() -> utoipa::openapi::Object {
    let ids: Vec<&str> = igny8_domain::billing::PLANS.iter().map(|p| p.id).collect();
    crate::http::schema::string_enum(&ids)
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SitesBody {
    pub site_ids: Vec<Uuid>,
}

/// Who may send a command.
#[derive(Clone, Copy)]
enum Who {
    Writers,
    Managers,
    Operators,
}

impl Who {
    fn allows(self, p: &Principal) -> bool {
        match self {
            Who::Writers => p.role.can_write(),
            Who::Managers => p.role.can_manage_account(),
            Who::Operators => p.is_operator(),
        }
    }
    fn describe(self) -> &'static str {
        match self {
            Who::Writers => "owner, admin, editor",
            Who::Managers => "owner, admin",
            Who::Operators => "operators (developer)",
        }
    }
}

struct Spec {
    name: &'static str,
    description: &'static str,
    who: Who,
    /// The id field added to the body schema (the aggregate or entity acted on).
    id_field: Option<&'static str>,
    schema: fn() -> Value,
    /// Whether `expected_version` applies (commands on several aggregates take none).
    versioned: bool,
}

fn schema_of<T: PartialSchema>() -> Value {
    serde_json::to_value(T::schema()).unwrap_or(Value::Null)
}

const COMMANDS: &[Spec] = &[
    Spec {
        name: "SpendCredits",
        description: "Spend credits from the account; 402 INSUFFICIENT_CREDITS when it would overdraw.",
        who: Who::Writers,
        id_field: None,
        schema: schema_of::<CreditsBody>,
        versioned: true,
    },
    Spec {
        name: "GrantCredits",
        description: "Grant credits to the account named by X-Account-Id.",
        who: Who::Operators,
        id_field: None,
        schema: schema_of::<CreditsBody>,
        versioned: true,
    },
    Spec {
        name: "ChangePlan",
        description: "Move the account named by X-Account-Id to another plan (new limits, new period, its included credits).",
        who: Who::Operators,
        id_field: None,
        schema: schema_of::<PlanBody>,
        versioned: false,
    },
    Spec {
        name: "CreateSite",
        description: "Create a site.",
        who: Who::Managers,
        id_field: None,
        schema: schema_of::<CreateSiteBody>,
        versioned: true,
    },
    Spec {
        name: "UpdateSite",
        description: "Change a site; null clears an optional field.",
        who: Who::Managers,
        id_field: Some("site_id"),
        schema: schema_of::<UpdateSiteBody>,
        versioned: true,
    },
    Spec {
        name: "DeleteSite",
        description: "Delete a site and its sectors.",
        who: Who::Managers,
        id_field: Some("site_id"),
        schema: schema_of::<Empty>,
        versioned: true,
    },
    Spec {
        name: "CreateSector",
        description: "Add a sector to a site (at most 5).",
        who: Who::Managers,
        id_field: Some("site_id"),
        schema: schema_of::<CreateSectorBody>,
        versioned: true,
    },
    Spec {
        name: "UpdateSector",
        description: "Rename a sector or change its status.",
        who: Who::Managers,
        id_field: Some("sector_id"),
        schema: schema_of::<UpdateSectorBody>,
        versioned: true,
    },
    Spec {
        name: "DeleteSector",
        description: "Delete a sector.",
        who: Who::Managers,
        id_field: Some("sector_id"),
        schema: schema_of::<Empty>,
        versioned: true,
    },
    Spec {
        name: "ChangeUserRole",
        description: "Change a user's role.",
        who: Who::Managers,
        id_field: Some("user_id"),
        schema: schema_of::<RoleBody>,
        versioned: true,
    },
    Spec {
        name: "SetUserSites",
        description: "Replace the sites an editor or viewer may see.",
        who: Who::Managers,
        id_field: Some("user_id"),
        schema: schema_of::<SitesBody>,
        versioned: true,
    },
    Spec {
        name: "RevokeApiKey",
        description: "Revoke an API key.",
        who: Who::Managers,
        id_field: Some("api_key_id"),
        schema: schema_of::<Empty>,
        versioned: true,
    },
];

/// The body schema with the id field and `expected_version` added.
fn full_schema(spec: &Spec) -> Value {
    let mut s = (spec.schema)();
    if let Value::Object(m) = &mut s {
        let props = m
            .entry("properties")
            .or_insert_with(|| Value::Object(Map::new()));
        if let Value::Object(props) = props {
            if let Some(id) = spec.id_field {
                props.insert(id.into(), json!({"type": "string", "format": "uuid"}));
            }
            if spec.versioned {
                props.insert(
                    "expected_version".into(),
                    json!({"type": "integer", "minimum": 0, "maximum": 9_007_199_254_740_991_u64, "description": "Fail with 409 VERSION_CONFLICT unless the aggregate is at this version"}),
                );
            }
        }
        if let Some(id) = spec.id_field {
            let req = m.entry("required").or_insert_with(|| Value::Array(vec![]));
            if let Value::Array(req) = req {
                req.push(id.into());
            }
        }
    }
    s
}

/// The document's operations for the commands: one `POST
/// /api/v1/commands/<Name>` each, with its own body schema (the route
/// `/api/v1/commands/{name}` serves them all; a generated client gets one
/// typed call per command).
pub fn documented_operations() -> Vec<(String, Value)> {
    COMMANDS
        .iter()
        .map(|c| {
            let ok = if c.name.starts_with("Create") { "201" } else { "200" };
            let mut params = vec![json!({"name": "Idempotency-Key", "in": "header", "required": false,
                "description": "The same key and body answer the first result; another body under the key is refused",
                "schema": {"type": "string"}})];
            if c.versioned {
                params.push(json!({"name": "If-Match", "in": "header", "required": false,
                    "description": "Expected version (as `expected_version`)", "schema": {"type": "string"}}));
            }
            let op = json!({
                "tags": ["commands"],
                "summary": c.description,
                "description": format!("Who may send it: {}.", c.who.describe()),
                "operationId": format!("command_{}", c.name),
                "security": [{"bearer": []}],
                "parameters": params,
                "requestBody": {"required": true, "content": {"application/json": {"schema": full_schema(c)}}},
                "responses": {
                    ok: {"description": "Done", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/CommandResult"}}}},
                    "402": {"description": "INSUFFICIENT_CREDITS", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorEnvelope"}}}},
                    "404": {"description": "The target is not in the account", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorEnvelope"}}}},
                },
            });
            (format!("/api/v1/commands/{}", c.name), json!({"post": op}))
        })
        .collect()
}

/// A command the caller may send.
#[derive(Debug, serde::Serialize, ToSchema)]
pub struct CommandSpec {
    pub name: &'static str,
    /// Always POST.
    pub method: &'static str,
    pub path: String,
    pub description: &'static str,
    pub allowed_roles: &'static str,
    /// The JSON Schema of the body.
    #[schema(value_type = Object)]
    pub schema: Value,
}

/// The commands the caller may send, with the JSON Schemas of their bodies.
#[utoipa::path(get, path = "/api/v1/commands/", tag = "commands", security(("bearer" = [])),
    responses((status = 200, description = "Commands", body = Vec<CommandSpec>)))]
pub async fn list(p: Principal) -> ApiOk<Vec<CommandSpec>> {
    ApiOk(
        COMMANDS
            .iter()
            .filter(|c| c.who.allows(&p))
            .map(|c| CommandSpec {
                name: c.name,
                method: "POST",
                path: format!("/api/v1/commands/{}", c.name),
                description: c.description,
                allowed_roles: c.who.describe(),
                schema: full_schema(c),
            })
            .collect(),
    )
}

fn invalid(e: impl std::fmt::Display) -> ApiError {
    ApiError::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        "VALIDATION_ERROR",
        format!("invalid command body: {e}"),
    )
}

fn parse<T: DeserializeOwned>(body: Value) -> ApiResult<T> {
    T::deserialize(body).map_err(invalid)
}

fn take_id(body: &mut Value, field: &str) -> ApiResult<Uuid> {
    let v = body
        .as_object_mut()
        .and_then(|m| m.remove(field))
        .ok_or_else(|| invalid(format!("missing field `{field}`")))?;
    v.as_str()
        .and_then(|s| Uuid::parse_str(s).ok())
        .ok_or_else(|| invalid(format!("`{field}` must be a UUID")))
}

async fn dispatch(
    s: &AppState,
    p: &Principal,
    ctx: &CommandContext,
    spec: &Spec,
    mut body: Value,
) -> ApiResult<CommandOutcome> {
    let id = match spec.id_field {
        Some(f) => Some(take_id(&mut body, f)?),
        None => None,
    };
    let id = || id.ok_or_else(|| ApiError::internal("id field"));
    Ok(match spec.name {
        "SpendCredits" => {
            let b: CreditsBody = parse(body)?;
            billing::spend(&s.bus, p, ctx, b.amount.milli(), b.reason).await?
        }
        "GrantCredits" => {
            let b: CreditsBody = parse(body)?;
            billing::grant(&s.bus, p, ctx, p.account()?, b.amount.milli(), b.reason).await?
        }
        "ChangePlan" => {
            let b: PlanBody = parse(body)?;
            billing::change_plan(&s.bus, p, ctx, &b.plan).await?
        }
        "CreateSite" => {
            let b: CreateSiteBody = parse(body)?;
            sites::create_site(&s.bus, p, ctx, b.into()).await?.outcome
        }
        "UpdateSite" => {
            let b: UpdateSiteBody = parse(body)?;
            sites::update_site(&s.bus, &s.keys.secrets, p, ctx, id()?, b.into())
                .await?
                .outcome
        }
        "DeleteSite" => {
            parse::<Empty>(body)?;
            sites::delete_site(&s.bus, p, ctx, id()?).await?.outcome
        }
        "CreateSector" => {
            let b: CreateSectorBody = parse(body)?;
            sites::create_sector(&s.bus, p, ctx, id()?, b.into())
                .await?
                .outcome
        }
        "UpdateSector" => {
            let b: UpdateSectorBody = parse(body)?;
            sites::update_sector(&s.bus, p, ctx, id()?, b.name, b.status)
                .await?
                .outcome
        }
        "DeleteSector" => {
            parse::<Empty>(body)?;
            sites::delete_sector(&s.bus, p, ctx, id()?).await?.outcome
        }
        "ChangeUserRole" => {
            let b: RoleBody = parse(body)?;
            members::change_user_role(&s.bus, p, ctx, id()?, &b.role)
                .await?
                .outcome
        }
        "SetUserSites" => {
            let b: SitesBody = parse(body)?;
            members::set_user_sites(&s.bus, p, ctx, id()?, b.site_ids)
                .await?
                .outcome
        }
        "RevokeApiKey" => {
            parse::<Empty>(body)?;
            members::revoke_api_key(&s.bus, p, ctx, id()?).await?
        }
        other => {
            return Err(ApiError::internal(format!(
                "command {other} has no handler"
            )));
        }
    })
}

/// Send one command.
#[utoipa::path(post, path = "/api/v1/commands/{name}/", tag = "commands", security(("bearer" = [])),
    params(("name" = String, Path, description = "e.g. SpendCredits; see GET /api/v1/commands/"),
           ("Idempotency-Key" = Option<String>, Header), ("If-Match" = Option<String>, Header, description = "Expected version")),
    request_body = Object,
    responses((status = 200, description = "Done", body = CommandResult), (status = 201, description = "Created", body = CommandResult),
              (status = 402, description = "INSUFFICIENT_CREDITS", body = crate::http::schema::ErrorEnvelope),
              (status = 403, description = "Role may not send it", body = crate::http::schema::ErrorEnvelope),
              (status = 404, description = "UNKNOWN_COMMAND, or the target is not in the account", body = crate::http::schema::ErrorEnvelope),
              (status = 409, description = "VERSION_CONFLICT", body = crate::http::schema::ErrorEnvelope),
              (status = 422, description = "Invalid body", body = crate::http::schema::ErrorEnvelope)))]
pub async fn send(
    State(s): State<AppState>,
    p: Principal,
    method: Method,
    uri: Uri,
    ApiPath(name): ApiPath<String>,
    headers: CommandHeaders,
    body: ApiJson<Value>,
) -> ApiResult<Response> {
    let spec = COMMANDS.iter().find(|c| c.name == name).ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "UNKNOWN_COMMAND",
            format!("no command named {name:?}; GET /api/v1/commands/ lists them"),
        )
    })?;
    // Authorisation is the operation's own (as on its resource route): a
    // target the caller cannot see is 404 before any role is considered.
    let mut ctx = context(&p, &headers, &method, &uri, &body.canonical);
    let mut value = body.value;
    if !value.is_object() {
        return Err(invalid("the body must be a JSON object"));
    }
    if let Some(v) = value
        .as_object_mut()
        .and_then(|m| m.remove("expected_version"))
    {
        ctx.expected_version = Some(
            v.as_u64()
                .ok_or_else(|| invalid("`expected_version` must be a non-negative integer"))?,
        );
    }
    let out = dispatch(&s, &p, &ctx, spec, value).await?;
    let created = spec.name.starts_with("Create");
    Ok(command_result(out, created).into_response())
}
