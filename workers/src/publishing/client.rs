//! A polite WordPress REST client. Per connection at most
//! `max_concurrent` requests in flight (default 2; per process), a timeout
//! per request, 429 answered by waiting its `Retry-After` (capped), 5xx
//! and connection failures retried with backoff — but only where a retry is
//! safe: a create (`Idempotent::No`) that times out, is cut off or answers
//! 5xx comes back as [`WpError::Unknown`] ("it may have happened"), and the
//! publisher looks for what it may have made before it tries again.
//!
//! The Application Password goes only into the `Authorization` header:
//! never into a log line, an error or the request log ([`igny8_commands::publishing::log`]),
//! which receives every attempt. Loopback and private addresses are refused
//! unless the operator allows them (tests); redirects are not followed.

use crate::images::fetch::{PublicOnly, literal_is_internal};
use base64::Engine;
use igny8_commands::CommandBus;
use igny8_commands::publishing::integrations::OpenConnection;
use igny8_commands::publishing::log::{self, Entry};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;
use uuid::Uuid;

/// How requests to WordPress behave.
#[derive(Debug, Clone)]
pub struct WpOptions {
    pub timeout: Duration,
    pub max_attempts: u32,
    /// Longest wait for a `Retry-After` (a longer one ends the call).
    pub max_retry_wait: Duration,
    /// Let WordPress URLs point at loopback or private addresses.
    pub allow_private: bool,
    /// How long after an unanswered create or upload the publisher waits
    /// before each look for what it may have made (it looks twice before
    /// sending the request again), so a WordPress still busy with the
    /// first request has finished it when asked.
    pub settle: Duration,
}

impl Default for WpOptions {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(30),
            max_attempts: 4,
            max_retry_wait: Duration::from_secs(30),
            allow_private: false,
            settle: Duration::from_secs(30),
        }
    }
}

/// Whether a request may be sent again when its outcome is unknown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Idempotent {
    Yes,
    No,
}

#[derive(Debug, thiserror::Error)]
pub enum WpError {
    /// WordPress answered and refused (a 4xx, or a 5xx of a safe request
    /// after every attempt): its code (`incorrect_password`, …).
    #[error("WordPress answered {status} {code}: {message}")]
    Refused {
        status: u16,
        code: String,
        message: String,
        /// The error's `data` (e.g. `term_exists` names the existing `term_id`).
        data: Value,
    },
    /// No answer, a cut connection or a 5xx to a create: it may have been done.
    #[error("the outcome is unknown: {0}")]
    Unknown(String),
    /// The request never reached WordPress (DNS, TLS, connect, refused address).
    #[error("{message}")]
    Unreachable { code: &'static str, message: String },
    /// An answer that is not what the REST API answers.
    #[error("WordPress answered something unexpected: {0}")]
    Unexpected(String),
}

impl WpError {
    /// The code an answer or a log line names.
    pub fn code(&self) -> String {
        match self {
            WpError::Refused { code, .. } => code.clone(),
            WpError::Unknown(_) => "OUTCOME_UNKNOWN".into(),
            WpError::Unreachable { code, .. } => (*code).into(),
            WpError::Unexpected(_) => "UNEXPECTED_ANSWER".into(),
        }
    }
}

/// What a request sends.
pub enum Body {
    Empty,
    Json(Value),
    /// A file: raw body with its type and name (a media upload).
    File {
        bytes: bytes::Bytes,
        mime: String,
        filename: String,
    },
}

/// A successful answer.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub body: Value,
}

/// The process's WordPress client: one HTTP client, a semaphore per connection.
#[derive(Clone)]
pub struct WpClient {
    http: reqwest::Client,
    pub opts: WpOptions,
    gates: Arc<Mutex<Gates>>,
}

/// Per connection: its limit and the semaphore enforcing it.
type Gates = HashMap<Uuid, (u32, Arc<Semaphore>)>;

impl WpClient {
    pub fn new(opts: WpOptions) -> Self {
        crate::ai::install_crypto();
        let mut b = reqwest::Client::builder()
            .user_agent(concat!("igny8/", env!("CARGO_PKG_VERSION")))
            .redirect(reqwest::redirect::Policy::none())
            .pool_max_idle_per_host(8);
        if !opts.allow_private {
            b = b.dns_resolver(Arc::new(PublicOnly));
        }
        Self {
            http: b.build().unwrap_or_default(),
            opts,
            gates: Arc::default(),
        }
    }

    fn gate(&self, id: Uuid, n: u32) -> Arc<Semaphore> {
        let mut g = self.gates.lock().unwrap_or_else(|e| e.into_inner());
        let e = g
            .entry(id)
            .or_insert_with(|| (n, Arc::new(Semaphore::new(n as usize))));
        if e.0 != n {
            *e = (n, Arc::new(Semaphore::new(n as usize)));
        }
        e.1.clone()
    }

    /// The text of a page of a site (the feed), unauthenticated; `None` on any failure.
    pub async fn raw_get(&self, url: &str) -> Option<String> {
        let parsed = reqwest::Url::parse(url).ok()?;
        if !self.opts.allow_private && literal_is_internal(&parsed) {
            return None;
        }
        let res = self
            .http
            .get(parsed)
            .timeout(self.opts.timeout)
            .send()
            .await
            .ok()?;
        if !res.status().is_success() {
            return None;
        }
        let text = res.text().await.ok()?;
        Some(text.chars().take(20_000).collect())
    }

    /// Talk to one connection's WordPress; every attempt is logged under
    /// `job` / `content` in the connection's request log (`bus: None`: not logged).
    pub fn site(
        &self,
        conn: &OpenConnection,
        bus: Option<CommandBus>,
        job: Option<Uuid>,
        content: Option<Uuid>,
    ) -> WpSite {
        let auth = base64::engine::general_purpose::STANDARD
            .encode(format!("{}:{}", conn.username, conn.password));
        WpSite {
            client: self.clone(),
            gate: self.gate(conn.id, conn.max_concurrent),
            base: conn.url.trim_end_matches('/').to_string(),
            auth: (!conn.password.is_empty()).then(|| format!("Basic {auth}")),
            integration: conn.id,
            account: conn.account_id,
            bus,
            job,
            content,
            sent: Arc::default(),
        }
    }
}

/// One WordPress, as a connection reaches it.
#[derive(Clone)]
pub struct WpSite {
    client: WpClient,
    gate: Arc<Semaphore>,
    base: String,
    auth: Option<String>,
    integration: Uuid,
    account: Uuid,
    bus: Option<CommandBus>,
    job: Option<Uuid>,
    content: Option<Uuid>,
    /// Requests sent (every attempt).
    pub sent: Arc<std::sync::atomic::AtomicU64>,
}

/// `k=v&…`, each part encoded.
pub fn query(pairs: &[(&str, &str)]) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

fn classify(e: &reqwest::Error) -> (&'static str, String) {
    let mut msg = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(s) = src {
        msg = format!("{msg}: {s}");
        src = s.source();
    }
    let low = msg.to_lowercase();
    let code = if low.contains("no public address") {
        "REFUSED_ADDRESS"
    } else if low.contains("dns") || low.contains("failed to lookup") || low.contains("resolve") {
        "DNS_ERROR"
    } else if low.contains("certificate") || low.contains("tls") || low.contains("handshake") {
        "TLS_ERROR"
    } else {
        "CONNECT_ERROR"
    };
    (code, msg)
}

/// `Retry-After` as seconds or as an HTTP date (RFC 9110 §10.2.3); a date
/// in the past is "now".
fn retry_after(h: &reqwest::header::HeaderMap) -> Option<Duration> {
    let v = h.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = chrono::DateTime::parse_from_rfc2822(v).ok()?;
    let left = at.with_timezone(&chrono::Utc) - chrono::Utc::now();
    Some(left.to_std().unwrap_or(Duration::ZERO))
}

impl WpSite {
    pub fn base(&self) -> &str {
        &self.base
    }

    /// The same site under another job or content.
    pub fn for_content(&self, content: Option<Uuid>) -> WpSite {
        WpSite {
            content,
            ..self.clone()
        }
    }

    async fn record(&self, e: Entry) {
        if let Some(bus) = &self.bus
            && let Err(err) = log::append(bus, &e).await
        {
            tracing::warn!(error = %err, "cannot write the WordPress request log");
        }
    }

    /// `route` under `/wp-json` (e.g. `/wp/v2/posts?context=edit`), with the
    /// connection's credentials unless `anonymous`.
    pub async fn call(
        &self,
        method: reqwest::Method,
        route: &str,
        body: Body,
        idem: Idempotent,
    ) -> Result<Answer, WpError> {
        self.send(method, &format!("/wp-json{route}"), body, idem, true)
            .await
    }

    /// A request to a path of the site itself (not the REST API).
    pub async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Body,
        idem: Idempotent,
        authenticated: bool,
    ) -> Result<Answer, WpError> {
        let url = format!("{}{path}", self.base);
        let parsed = reqwest::Url::parse(&url).map_err(|e| WpError::Unreachable {
            code: "INVALID_WP_URL",
            message: format!("{url}: {e}"),
        })?;
        if !self.client.opts.allow_private && literal_is_internal(&parsed) {
            return Err(WpError::Unreachable {
                code: "REFUSED_ADDRESS",
                message: format!(
                    "{} is a loopback or private address, which this server does not call",
                    parsed.host_str().unwrap_or("")
                ),
            });
        }
        let opts = &self.client.opts;
        let mut attempt = 0u32;
        let mut backoff = Duration::from_millis(250);
        loop {
            attempt += 1;
            let last = attempt >= opts.max_attempts.max(1);
            let mut req = self
                .client
                .http
                .request(method.clone(), parsed.clone())
                .timeout(opts.timeout)
                .header("Accept", "application/json");
            if authenticated && let Some(a) = &self.auth {
                req = req.header("Authorization", a);
            }
            if let Some(job) = self.job {
                req = req.header("X-Igny8-Publish", job.to_string());
            }
            req = match &body {
                Body::Empty => req,
                Body::Json(v) => req.json(v),
                Body::File {
                    bytes,
                    mime,
                    filename,
                } => req
                    .header("Content-Type", mime.as_str())
                    .header(
                        "Content-Disposition",
                        format!("attachment; filename=\"{}\"", filename.replace('"', "")),
                    )
                    .body(bytes.clone()),
            };
            let started = Instant::now();
            let sent = {
                let _permit = self.gate.acquire().await;
                self.sent.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                req.send().await
            };
            let mut entry = Entry {
                integration_id: self.integration,
                account_id: self.account,
                job_id: self.job,
                content_id: self.content,
                method: method.to_string(),
                path: path.chars().take(500).collect(),
                attempt,
                ..Entry::default()
            };
            let res = match sent {
                Ok(r) => r,
                Err(e) => {
                    entry.duration_ms = started.elapsed().as_millis() as u64;
                    // Not sent at all: safe to try again, whatever the method.
                    let not_sent = e.is_connect() || e.is_builder();
                    let (code, msg) = if e.is_timeout() {
                        ("TIMEOUT", format!("no answer within {:?}", opts.timeout))
                    } else {
                        classify(&e)
                    };
                    entry.wp_code = Some(code.into());
                    entry.error = Some(msg.clone());
                    let retry = !last && (not_sent || idem == Idempotent::Yes);
                    entry.outcome = if retry {
                        "retried"
                    } else if not_sent {
                        "error"
                    } else {
                        "unknown"
                    };
                    self.record(entry).await;
                    if retry {
                        tokio::time::sleep(backoff).await;
                        backoff = (backoff * 2).min(Duration::from_secs(5));
                        continue;
                    }
                    return Err(if not_sent {
                        WpError::Unreachable { code, message: msg }
                    } else {
                        WpError::Unknown(msg)
                    });
                }
            };
            let status = res.status().as_u16();
            let wait = retry_after(res.headers());
            let location = res
                .headers()
                .get(reqwest::header::LOCATION)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            let text = match res.text().await {
                Ok(t) => t,
                Err(e) => {
                    entry.duration_ms = started.elapsed().as_millis() as u64;
                    entry.status = Some(status);
                    entry.outcome = "unknown";
                    entry.error = Some(format!("the answer was cut off: {e}"));
                    self.record(entry).await;
                    if idem == Idempotent::Yes && !last {
                        continue;
                    }
                    return Err(WpError::Unknown(format!("the answer was cut off: {e}")));
                }
            };
            entry.duration_ms = started.elapsed().as_millis() as u64;
            entry.status = Some(status);
            let json: Option<Value> = serde_json::from_str(&text).ok();
            let wp_code = json
                .as_ref()
                .and_then(|j| j["code"].as_str())
                .map(str::to_string);
            let message = json
                .as_ref()
                .and_then(|j| j["message"].as_str())
                .map(str::to_string)
                .unwrap_or_else(|| text.chars().take(200).collect());
            entry.wp_code = wp_code.clone();
            if (200..300).contains(&status) {
                entry.outcome = "ok";
                self.record(entry).await;
                return match json {
                    Some(body) => Ok(Answer { status, body }),
                    None => Err(WpError::Unexpected(format!(
                        "HTTP {status} with a body that is not JSON: {}",
                        text.chars().take(120).collect::<String>()
                    ))),
                };
            }
            if status == 429 && !last {
                let w = wait.unwrap_or(backoff);
                if w <= opts.max_retry_wait {
                    entry.outcome = "retried";
                    self.record(entry).await;
                    tokio::time::sleep(w).await;
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                    continue;
                }
            }
            if status >= 500 && !last {
                entry.outcome = if idem == Idempotent::Yes {
                    "retried"
                } else {
                    "unknown"
                };
                entry.error = Some(message.clone());
                self.record(entry).await;
                if idem == Idempotent::No {
                    return Err(WpError::Unknown(format!("HTTP {status}: {message}")));
                }
                tokio::time::sleep(
                    wait.filter(|w| *w <= opts.max_retry_wait)
                        .unwrap_or(backoff),
                )
                .await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
                continue;
            }
            entry.outcome = if status >= 500 && idem == Idempotent::No {
                "unknown"
            } else {
                "error"
            };
            entry.error = Some(message.clone());
            self.record(entry).await;
            if status >= 500 && idem == Idempotent::No {
                return Err(WpError::Unknown(format!("HTTP {status}: {message}")));
            }
            if (300..400).contains(&status) {
                return Err(WpError::Refused {
                    status,
                    code: "WP_REDIRECT".into(),
                    message: format!(
                        "the site redirects to {} (use that address as wp_url)",
                        location.unwrap_or_default()
                    ),
                    data: Value::Null,
                });
            }
            return Err(WpError::Refused {
                status,
                code: wp_code.unwrap_or_else(|| format!("HTTP_{status}")),
                message,
                data: json.as_ref().map(|j| j["data"].clone()).unwrap_or_default(),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::retry_after;
    use reqwest::header::{HeaderMap, HeaderValue, RETRY_AFTER};
    use std::time::Duration;

    fn h(v: &str) -> HeaderMap {
        let mut m = HeaderMap::new();
        m.insert(RETRY_AFTER, HeaderValue::from_str(v).unwrap());
        m
    }

    #[test]
    fn retry_after_in_seconds_or_as_a_date() {
        assert_eq!(retry_after(&h("7")), Some(Duration::from_secs(7)));
        let soon = chrono::Utc::now() + chrono::Duration::seconds(20);
        let d = retry_after(&h(&soon.to_rfc2822().replace("+0000", "GMT"))).unwrap();
        assert!((18..=20).contains(&d.as_secs()), "{d:?}");
        assert_eq!(
            retry_after(&h("Wed, 21 Oct 2015 07:28:00 GMT")),
            Some(Duration::ZERO),
            "a date in the past: now"
        );
        assert_eq!(retry_after(&h("soon")), None);
    }
}
