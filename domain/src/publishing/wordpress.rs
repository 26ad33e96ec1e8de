//! The `wp_integration` aggregate: a site's WordPress connection. One per
//! site (id [`integration_id`]), so "the site's WordPress" has one source
//! of truth; the site's old `wp_*` fields are migrated into it. The
//! Application Password and the webhook secret arrive sealed (AES-GCM, the
//! application layer's keyring): never in clear in an event.

use super::PublishingError;
use crate::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Concurrent requests to one WordPress at most (the default is 2).
pub const MAX_CONCURRENT_LIMIT: u32 = 8;
pub const DEFAULT_CONCURRENT: u32 = 2;
const MAX_URL_CHARS: usize = 500;
const MAX_USERNAME_CHARS: usize = 60;

/// The connection of `site_id`.
pub fn integration_id(site_id: Uuid) -> Uuid {
    Uuid::new_v5(&site_id, b"wordpress-integration")
}

/// What a connection test found (or the WordPress error that stopped it).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ConnectionTest {
    pub ok: bool,
    /// WordPress's code (`incorrect_password`, `rest_not_logged_in`, …) or ours
    /// (`NO_REST_API`, `TLS_ERROR`, `DNS_ERROR`, `CONNECT_ERROR`, `TIMEOUT`, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_code: Option<String>,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wp_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub site_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(default)]
    pub roles: Vec<String>,
    #[serde(default)]
    pub application_passwords: bool,
    #[serde(default)]
    pub can_publish: bool,
    #[serde(default)]
    pub can_upload: bool,
    /// The companion plugin's version when it is active.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plugin_version: Option<String>,
    /// The plugin sends us signed webhooks.
    #[serde(default)]
    pub webhooks: bool,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct WpIntegration {
    pub created: bool,
    pub removed: bool,
    pub account_id: Option<Uuid>,
    pub site_id: Option<Uuid>,
    pub url: String,
    pub username: String,
    /// The Application Password, sealed.
    pub credential: String,
    /// The webhook secret, sealed.
    pub webhook_secret: String,
    pub max_concurrent: u32,
    pub last_test: Option<ConnectionTest>,
}

impl WpIntegration {
    pub fn live(&self) -> bool {
        self.created && !self.removed
    }
    /// The plugin was found by the last test.
    pub fn has_plugin(&self) -> bool {
        self.last_test
            .as_ref()
            .is_some_and(|t| t.plugin_version.is_some())
    }
}

/// `https://example.com/` → `https://example.com` (http or https, a host, no
/// query, fragment, credentials, whitespace or control characters).
pub fn check_wp_url(raw: &str) -> Result<String, PublishingError> {
    let bad = || {
        PublishingError::Invalid(
            "INVALID_WP_URL",
            "wp_url must be an http(s) URL of a WordPress site (at most 500 characters, no credentials, query or fragment)",
        )
    };
    let u = raw.trim().trim_end_matches('/');
    let rest = u
        .strip_prefix("https://")
        .or_else(|| u.strip_prefix("http://"))
        .ok_or_else(bad)?;
    let host = rest.split('/').next().unwrap_or("");
    if host.is_empty()
        || host.contains('@')
        || u.chars().count() > MAX_URL_CHARS
        || u.contains(['?', '#'])
        || u.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(bad());
    }
    Ok(u.to_string())
}

fn check_username(raw: &str) -> Result<String, PublishingError> {
    let u = raw.trim();
    if u.is_empty() || u.chars().count() > MAX_USERNAME_CHARS || u.chars().any(char::is_control) {
        return Err(PublishingError::Invalid(
            "INVALID_WP_USERNAME",
            "wp_username must be 1 to 60 characters, without control characters",
        ));
    }
    Ok(u.to_string())
}

fn check_concurrency(n: u32) -> Result<u32, PublishingError> {
    if (1..=MAX_CONCURRENT_LIMIT).contains(&n) {
        Ok(n)
    } else {
        Err(PublishingError::Invalid(
            "INVALID_CONCURRENCY",
            "max_concurrent_requests must be 1 to 8",
        ))
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum WpIntegrationCommand {
    Connect {
        account_id: Uuid,
        site_id: Uuid,
        url: String,
        username: String,
        credential: String,
        webhook_secret: String,
        max_concurrent: Option<u32>,
        /// A site's old WordPress fields moved here may lack a password:
        /// the connection then exists without one (publishing refuses with
        /// NO_APP_PASSWORD until it is set).
        password_optional: bool,
    },
    Change {
        url: Option<String>,
        username: Option<String>,
        credential: Option<String>,
        max_concurrent: Option<u32>,
    },
    RecordTest(ConnectionTest),
    Disconnect,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum WpIntegrationEvent {
    WordPressConnected {
        account_id: Uuid,
        site_id: Uuid,
        url: String,
        username: String,
        credential: String,
        webhook_secret: String,
        max_concurrent: u32,
    },
    /// The connection as it now stands (the sealed password is repeated
    /// when it changed, absent when it did not).
    WordPressConnectionChanged {
        url: String,
        username: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        credential: Option<String>,
        max_concurrent: u32,
    },
    WordPressConnectionTested {
        test: ConnectionTest,
    },
    WordPressDisconnected {},
}

impl DomainEvent for WpIntegrationEvent {
    fn event_type(&self) -> &'static str {
        match self {
            WpIntegrationEvent::WordPressConnected { .. } => "WordPressConnected",
            WpIntegrationEvent::WordPressConnectionChanged { .. } => "WordPressConnectionChanged",
            WpIntegrationEvent::WordPressConnectionTested { .. } => "WordPressConnectionTested",
            WpIntegrationEvent::WordPressDisconnected { .. } => "WordPressDisconnected",
        }
    }
}

impl Aggregate for WpIntegration {
    const TYPE: &'static str = "wp_integration";
    type Command = WpIntegrationCommand;
    type Event = WpIntegrationEvent;
    type Error = PublishingError;

    fn decide(
        &self,
        command: WpIntegrationCommand,
    ) -> Result<Vec<WpIntegrationEvent>, PublishingError> {
        use WpIntegrationCommand as C;
        use WpIntegrationEvent as E;
        match command {
            C::Connect {
                account_id,
                site_id,
                url,
                username,
                credential,
                webhook_secret,
                max_concurrent,
                password_optional,
            } => {
                if self.live() {
                    return Err(PublishingError::Exists);
                }
                if credential.is_empty() && !password_optional {
                    return Err(PublishingError::Invalid(
                        "INVALID_WP_APP_PASSWORD",
                        "wp_app_password is required",
                    ));
                }
                Ok(vec![E::WordPressConnected {
                    account_id,
                    site_id,
                    url: check_wp_url(&url)?,
                    username: check_username(&username)?,
                    credential,
                    webhook_secret,
                    max_concurrent: check_concurrency(
                        max_concurrent.unwrap_or(DEFAULT_CONCURRENT),
                    )?,
                }])
            }
            C::Change {
                url,
                username,
                credential,
                max_concurrent,
            } => {
                if !self.live() {
                    return Err(PublishingError::NotFound("integration"));
                }
                let url = match url {
                    Some(u) => check_wp_url(&u)?,
                    None => self.url.clone(),
                };
                let username = match username {
                    Some(u) => check_username(&u)?,
                    None => self.username.clone(),
                };
                let max_concurrent =
                    check_concurrency(max_concurrent.unwrap_or(self.max_concurrent))?;
                if url == self.url
                    && username == self.username
                    && credential.is_none()
                    && max_concurrent == self.max_concurrent
                {
                    return Ok(vec![]);
                }
                Ok(vec![E::WordPressConnectionChanged {
                    url,
                    username,
                    credential,
                    max_concurrent,
                }])
            }
            C::RecordTest(test) => {
                if !self.live() {
                    return Err(PublishingError::NotFound("integration"));
                }
                Ok(vec![E::WordPressConnectionTested { test }])
            }
            C::Disconnect => {
                if !self.live() {
                    return Err(PublishingError::NotFound("integration"));
                }
                Ok(vec![E::WordPressDisconnected {}])
            }
        }
    }

    fn apply(&mut self, event: &WpIntegrationEvent) {
        use WpIntegrationEvent as E;
        match event {
            E::WordPressConnected {
                account_id,
                site_id,
                url,
                username,
                credential,
                webhook_secret,
                max_concurrent,
            } => {
                *self = WpIntegration {
                    created: true,
                    removed: false,
                    account_id: Some(*account_id),
                    site_id: Some(*site_id),
                    url: url.clone(),
                    username: username.clone(),
                    credential: credential.clone(),
                    webhook_secret: webhook_secret.clone(),
                    max_concurrent: *max_concurrent,
                    last_test: None,
                }
            }
            E::WordPressConnectionChanged {
                url,
                username,
                credential,
                max_concurrent,
            } => {
                if url != &self.url || username != &self.username || credential.is_some() {
                    // Another site or user: what the last test found no longer holds.
                    self.last_test = None;
                }
                self.url = url.clone();
                self.username = username.clone();
                if let Some(c) = credential {
                    self.credential = c.clone();
                }
                self.max_concurrent = *max_concurrent;
            }
            E::WordPressConnectionTested { test } => self.last_test = Some(test.clone()),
            E::WordPressDisconnected {} => self.removed = true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::given_when;

    fn connect(url: &str) -> WpIntegrationCommand {
        WpIntegrationCommand::Connect {
            account_id: Uuid::nil(),
            site_id: Uuid::nil(),
            url: url.into(),
            username: "admin".into(),
            credential: "sealed".into(),
            webhook_secret: "sealed-secret".into(),
            max_concurrent: None,
            password_optional: false,
        }
    }

    #[test]
    fn urls_must_be_http_without_credentials() {
        assert_eq!(
            check_wp_url("https://example.com/").unwrap(),
            "https://example.com"
        );
        assert_eq!(
            check_wp_url("http://127.0.0.1:8080/blog").unwrap(),
            "http://127.0.0.1:8080/blog"
        );
        for bad in [
            "ftp://x",
            "https://",
            "https://u:p@x.com",
            "https://x.com/?a=1",
            "x.com",
            "https://x .com",
        ] {
            assert!(check_wp_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn one_connection_per_site_and_the_test_forgotten_on_a_new_user() {
        let given = given_when::<WpIntegration>(&[], connect("https://example.com")).unwrap();
        let e = given_when::<WpIntegration>(&given, connect("https://example.com")).unwrap_err();
        assert_eq!(e, PublishingError::Exists);
        let mut state = WpIntegration::default();
        given.iter().for_each(|e| state.apply(e));
        assert_eq!(state.max_concurrent, DEFAULT_CONCURRENT);
        state.apply(&WpIntegrationEvent::WordPressConnectionTested {
            test: ConnectionTest {
                ok: true,
                plugin_version: Some("1".into()),
                ..Default::default()
            },
        });
        assert!(state.has_plugin());
        let same = state
            .decide(WpIntegrationCommand::Change {
                url: None,
                username: None,
                credential: None,
                max_concurrent: None,
            })
            .unwrap();
        assert!(same.is_empty(), "nothing changed, nothing recorded");
        let changed = state
            .decide(WpIntegrationCommand::Change {
                url: None,
                username: Some("editor".into()),
                credential: None,
                max_concurrent: None,
            })
            .unwrap();
        changed.iter().for_each(|e| state.apply(e));
        assert!(state.last_test.is_none());
        let e = state
            .decide(WpIntegrationCommand::Change {
                url: None,
                username: None,
                credential: None,
                max_concurrent: Some(9),
            })
            .unwrap_err();
        assert_eq!(e.to_string(), "max_concurrent_requests must be 1 to 8");
    }
}
