//! Tenancy over HTTP: sign-up and sessions (`auth`), users, sites and
//! sectors, API keys, AI provider settings (`integrations`). Commands go to `igny8_commands::tenancy`; single
//! resources are read from their aggregate (always current, and the same
//! state the authorisation checks use); lists come from the `tenancy`
//! read models (`min_position` waits for your own writes).

pub mod api_keys;
pub mod auth;
pub mod bodies;
pub mod integrations;
pub mod sites;
pub mod users;

use crate::http::both_slashes;
use crate::state::AppState;
use axum::Router;
use axum::routing::{delete, get, patch, post, put};

pub fn routes(r: Router<AppState>) -> Router<AppState> {
    let r = both_slashes(r, "/api/v1/auth/signup/", post(auth::signup));
    let r = both_slashes(r, "/api/v1/auth/login/", post(auth::login));
    let r = both_slashes(r, "/api/v1/auth/refresh/", post(auth::refresh));
    let r = both_slashes(r, "/api/v1/auth/logout/", post(auth::logout));
    let r = both_slashes(r, "/api/v1/auth/me/", get(auth::me));
    let r = both_slashes(r, "/api/v1/auth/industries/", get(sites::industries));
    let r = both_slashes(r, "/api/v1/auth/password/", post(auth::change_password));
    let r = both_slashes(
        r,
        "/api/v1/auth/users/",
        get(users::list).post(users::create),
    );
    let r = both_slashes(
        r,
        "/api/v1/auth/users/{id}/",
        get(users::get_one)
            .patch(users::update)
            .delete(users::remove),
    );
    let r = both_slashes(r, "/api/v1/auth/users/{id}/sites/", put(users::set_sites));
    let r = both_slashes(
        r,
        "/api/v1/auth/sites/",
        get(sites::list).post(sites::create),
    );
    let r = both_slashes(
        r,
        "/api/v1/auth/sites/{id}/",
        get(sites::get_one)
            .patch(sites::update)
            .delete(sites::remove),
    );
    let r = both_slashes(
        r,
        "/api/v1/auth/sites/{id}/sectors/",
        get(sites::list_sectors).post(sites::create_sector),
    );
    let r = both_slashes(
        r,
        "/api/v1/auth/sectors/{id}/",
        patch(sites::update_sector).delete(sites::remove_sector),
    );
    let r = both_slashes(
        r,
        "/api/v1/auth/api-keys/",
        get(api_keys::list).post(api_keys::create),
    );
    let r = both_slashes(r, "/api/v1/auth/api-keys/{id}/", delete(api_keys::revoke));
    let r = both_slashes(
        r,
        "/api/v1/system/settings/integrations/{provider}/test_openai/",
        axum::routing::post(integrations::test_provider),
    );
    let r = both_slashes(
        r,
        "/api/v1/system/settings/integrations/openai/test_image/",
        axum::routing::post(integrations::test_openai_image),
    );
    let r = both_slashes(
        r,
        "/api/v1/system/settings/integrations/runware/test_runware/",
        axum::routing::post(integrations::test_runware),
    );
    both_slashes(
        r,
        "/api/v1/system/settings/integrations/{provider}/",
        get(integrations::get_one)
            .put(integrations::put)
            .delete(integrations::remove),
    )
}

pub(crate) use crate::http::nullable;
