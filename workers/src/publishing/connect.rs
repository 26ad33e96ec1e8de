//! A connection test: is the REST API there (`/wp-json/`), are Application
//! Passwords available, who are we (`/wp/v2/users/me?context=edit`), may we
//! publish posts and upload files, which WordPress version (the feed's
//! generator), is the companion plugin active — and, when it is and this
//! server has a public URL, tell it where to send its webhooks and their
//! key. Every failure becomes a code in the result, never an error.

use super::client::{Body, Idempotent, WpClient, WpError};
use igny8_commands::CommandBus;
use igny8_commands::publishing::integrations::OpenConnection;
use igny8_domain::publishing::ConnectionTest;
use reqwest::Method;
use serde_json::json;

fn failed(
    code: impl Into<String>,
    message: impl Into<String>,
    mut t: ConnectionTest,
) -> ConnectionTest {
    t.ok = false;
    t.error_code = Some(code.into());
    t.message = message.into();
    t
}

/// Run the test (`webhook`: the URL and secret to give the plugin).
pub async fn test_connection(
    client: &WpClient,
    conn: &OpenConnection,
    bus: Option<CommandBus>,
    webhook: Option<(String, String)>,
) -> ConnectionTest {
    let wp = client.site(conn, bus, None, None);
    let mut t = ConnectionTest::default();
    let index = match wp
        .send(
            Method::GET,
            "/wp-json/",
            Body::Empty,
            Idempotent::Yes,
            false,
        )
        .await
    {
        Ok(a) => a.body,
        Err(WpError::Refused { status, .. }) => {
            return failed(
                "NO_REST_API",
                format!(
                    "{}/wp-json/ answered HTTP {status}: no WordPress REST API there (check the URL and that permalinks are not plain)",
                    wp.base()
                ),
                t,
            );
        }
        Err(WpError::Unexpected(m)) => {
            return failed(
                "NO_REST_API",
                format!("{}/wp-json/ is not WordPress's REST API: {m}", wp.base()),
                t,
            );
        }
        Err(e) => return failed(e.code(), e.to_string(), t),
    };
    t.site_name = index["name"].as_str().map(str::to_string);
    let namespaces: Vec<&str> = index["namespaces"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|n| n.as_str())
        .collect();
    if !namespaces.contains(&"wp/v2") {
        return failed("NO_REST_API", "the REST API has no wp/v2 namespace", t);
    }
    t.application_passwords = index["authentication"]["application-passwords"].is_object();
    // The version: the feed's generator (the REST index does not say).
    t.wp_version = generator_version(client, conn).await;
    if conn.password.is_empty() {
        return failed(
            "NO_APP_PASSWORD",
            "no Application Password is stored for this connection",
            t,
        );
    }
    let me = match wp
        .call(
            Method::GET,
            "/wp/v2/users/me?context=edit",
            Body::Empty,
            Idempotent::Yes,
        )
        .await
    {
        Ok(a) => a.body,
        Err(WpError::Refused { code, message, .. }) => {
            let hint = if t.application_passwords {
                message
            } else {
                format!(
                    "{message} (Application Passwords are not available on this site: it needs HTTPS, or WP_ENVIRONMENT_TYPE local)"
                )
            };
            return failed(code, hint, t);
        }
        Err(e) => return failed(e.code(), e.to_string(), t),
    };
    t.user = me["username"]
        .as_str()
        .or(me["slug"].as_str())
        .map(str::to_string);
    t.roles = me["roles"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| r.as_str().map(str::to_string))
        .collect();
    let cap = |c: &str| me["capabilities"][c].as_bool().unwrap_or(false);
    t.can_publish = cap("publish_posts");
    t.can_upload = cap("upload_files");
    if namespaces.contains(&"igny8/v1") {
        if let Ok(s) = wp
            .call(
                Method::GET,
                "/igny8/v1/status",
                Body::Empty,
                Idempotent::Yes,
            )
            .await
        {
            t.plugin_version = s.body["plugin_version"].as_str().map(str::to_string);
            t.webhooks = s.body["webhooks"].as_bool().unwrap_or(false);
        }
        if let (Some(_), Some((url, secret))) = (&t.plugin_version, webhook)
            && cap("manage_options")
            && wp
                .call(
                    Method::POST,
                    "/igny8/v1/settings",
                    Body::Json(json!({"webhook_url": url, "secret": secret})),
                    Idempotent::Yes,
                )
                .await
                .is_ok()
        {
            t.webhooks = true;
        }
    }
    if t.user
        .as_deref()
        .is_some_and(|u| !u.eq_ignore_ascii_case(&conn.username))
        && me["slug"].as_str() != Some(conn.username.as_str())
    {
        // Application Passwords authenticate by login; a display name may differ, the login must not.
        return failed(
            "WRONG_USER",
            format!(
                "WordPress authenticated {:?}, not {:?}",
                t.user, conn.username
            ),
            t,
        );
    }
    if !t.can_publish {
        return failed(
            "CANNOT_PUBLISH",
            "this WordPress user may not publish posts (publish_posts)",
            t,
        );
    }
    if !t.can_upload {
        return failed(
            "CANNOT_UPLOAD",
            "this WordPress user may not upload files (upload_files)",
            t,
        );
    }
    t.ok = true;
    t.message = format!(
        "connected as {} to {}",
        t.user.clone().unwrap_or_default(),
        t.site_name.clone().unwrap_or_else(|| wp.base().to_string())
    );
    t
}

/// `<generator>https://wordpress.org/?v=6.1.9</generator>` of the site's feed.
async fn generator_version(client: &WpClient, conn: &OpenConnection) -> Option<String> {
    let text = client
        .raw_get(&format!("{}/?feed=rss2", conn.url.trim_end_matches('/')))
        .await?;
    let at = text.find("wordpress.org/?v=")? + "wordpress.org/?v=".len();
    let v: String = text[at..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '.' || *c == '-')
        .collect();
    (!v.is_empty()).then_some(v)
}
