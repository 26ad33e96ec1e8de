//! The JSON bodies of the tenancy commands, shared by their routes and by
//! the generic command endpoint (`commands_api`): each states its rules as a
//! schema (see `openapi::constraints`) and converts into its use case's input.

use super::nullable;
use igny8_commands::tenancy::sites;
use serde::Deserialize;
use utoipa::ToSchema;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateSiteBody {
    #[schema(schema_with = crate::http::constraints::name)]
    pub name: String,
    /// a-z, 0-9 and '-'; made from the name when absent. Unique in the account.
    #[schema(schema_with = crate::http::constraints::slug_opt)]
    pub slug: Option<String>,
    #[schema(schema_with = crate::http::constraints::name_opt)]
    pub industry: Option<String>,
    /// The site's URL (http or https).
    #[schema(schema_with = crate::http::constraints::url_opt)]
    pub domain: Option<String>,
    /// An industry template (GET /api/v1/auth/industries/): its name becomes
    /// the site's `industry` unless that is given.
    #[schema(schema_with = industry_id_schema)]
    pub industry_id: Option<String>,
    /// With `industry_id`: create the template's suggested sectors with the
    /// site, in the same commit (ignored without `industry_id`).
    #[serde(default)]
    pub with_suggested_sectors: bool,
}

fn industry_id_schema() -> utoipa::openapi::Object {
    let slugs: Vec<&str> = igny8_domain::tenancy::INDUSTRIES
        .iter()
        .map(|i| i.slug)
        .collect();
    crate::http::schema::string_enum(&slugs)
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateSiteBody {
    #[schema(schema_with = crate::http::constraints::name_opt)]
    pub name: Option<String>,
    #[schema(schema_with = crate::http::constraints::slug_opt)]
    pub slug: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(schema_with = crate::http::constraints::name_or_null)]
    pub industry: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(schema_with = crate::http::constraints::url_or_null)]
    pub domain: Option<Option<String>>,
    /// active or inactive.
    #[schema(schema_with = crate::http::constraints::status_opt)]
    pub status: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(schema_with = crate::http::constraints::url_or_null)]
    pub wp_url: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(schema_with = crate::http::constraints::name_or_null)]
    pub wp_username: Option<Option<String>>,
    /// WordPress application password: stored encrypted, never returned; `null` removes it.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>, max_length = 1000, pattern = "^[^\\u0000]*$")]
    pub wp_app_password: Option<Option<String>>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateSectorBody {
    #[schema(schema_with = crate::http::constraints::name)]
    pub name: String,
    /// Made from the name when absent; unique in the site.
    #[schema(schema_with = crate::http::constraints::slug_opt)]
    pub slug: Option<String>,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateSectorBody {
    #[schema(schema_with = crate::http::constraints::name_opt)]
    pub name: Option<String>,
    /// active or inactive.
    #[schema(schema_with = crate::http::constraints::status_opt)]
    pub status: Option<String>,
}

impl From<CreateSiteBody> for sites::NewSite {
    fn from(b: CreateSiteBody) -> Self {
        sites::NewSite {
            name: b.name,
            slug: b.slug,
            industry: b.industry,
            domain: b.domain,
            industry_id: b.industry_id,
            with_suggested_sectors: b.with_suggested_sectors,
        }
    }
}

impl From<UpdateSiteBody> for sites::SiteUpdate {
    fn from(b: UpdateSiteBody) -> Self {
        sites::SiteUpdate {
            name: b.name,
            slug: b.slug,
            industry: b.industry,
            domain: b.domain,
            status: b.status,
            wp_url: b.wp_url,
            wp_username: b.wp_username,
            wp_app_password: b.wp_app_password,
        }
    }
}

impl From<CreateSectorBody> for sites::NewSector {
    fn from(b: CreateSectorBody) -> Self {
        sites::NewSector {
            name: b.name,
            slug: b.slug,
        }
    }
}
