//! Authentication and authorisation: keys, tokens, the caller
//! ([`Principal`]) and rate limits. The routes that issue tokens live in
//! `tenancy/`; every other route only consumes a `Principal`.

pub mod keys;
pub mod principal;
pub mod ratelimit;
pub mod tokens;

pub use keys::Keys;
pub use principal::{Principal, RequestCaller, forbidden};
pub use ratelimit::Limits;

/// The roles, as the API names them (a schema for documents).
pub struct RoleName;

impl utoipa::PartialSchema for RoleName {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        let names: Vec<&str> = igny8_domain::tenancy::Role::ALL
            .iter()
            .map(|r| r.as_str())
            .collect();
        crate::http::schema::string_enum(&names).into()
    }
}

impl utoipa::ToSchema for RoleName {
    fn name() -> std::borrow::Cow<'static, str> {
        "Role".into()
    }
}
