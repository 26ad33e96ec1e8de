//! Fetching URLs a provider hands back (`dall-e-3` answers URLs that
//! expire after an hour; Runware may too). The URL came from outside, and
//! an account owner chooses the provider's base URL, so the fetch must not
//! become a way into our network: every address a name resolves to, and
//! every IP literal of the URL and of each redirect, must be public
//! (loopback, private, link-local, unique-local, CGNAT, multicast and
//! unspecified are refused) unless `allow_private` is set (tests; an
//! operator's choice, never an account's). At most [`MAX_REDIRECTS`]
//! redirects, [`check::MAX_BYTES`](super::check::MAX_BYTES) read, one
//! timeout for the whole fetch.

use super::check::MAX_BYTES;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

pub const MAX_REDIRECTS: usize = 3;

/// Whether `ip` is somewhere a fetch must not go.
pub fn is_internal(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v) => {
            let o = v.octets();
            v.is_loopback()
                || v.is_private()
                || v.is_link_local()
                || v.is_unspecified()
                || v.is_broadcast()
                || v.is_multicast()
                || v.is_documentation()
                || o[0] == 0
                || (o[0] == 100 && (64..128).contains(&o[1]))
                || (o[0] == 192 && o[1] == 0 && o[2] == 0)
                || o[0] >= 240
        }
        IpAddr::V6(v) => {
            if let Some(v4) = v.to_ipv4_mapped() {
                return is_internal(IpAddr::V4(v4));
            }
            let s = v.segments();
            v.is_loopback()
                || v.is_unspecified()
                || v.is_multicast()
                || (s[0] & 0xfe00) == 0xfc00
                || (s[0] & 0xffc0) == 0xfe80
        }
    }
}

/// Resolves names, keeping only public addresses.
pub(crate) struct PublicOnly;

impl Resolve for PublicOnly {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_string();
        Box::pin(async move {
            let all: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let public: Vec<SocketAddr> =
                all.into_iter().filter(|a| !is_internal(a.ip())).collect();
            if public.is_empty() {
                return Err(format!("{host} resolves to no public address").into());
            }
            Ok(Box::new(public.into_iter()) as Addrs)
        })
    }
}

pub(crate) fn literal_is_internal(url: &reqwest::Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(v)) => is_internal(IpAddr::V4(v)),
        Some(url::Host::Ipv6(v)) => is_internal(IpAddr::V6(v)),
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => true,
    }
}

#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("the image URL is not allowed: {0}")]
    Refused(String),
    #[error("the image URL answered HTTP {0}")]
    Status(u16),
    #[error("the image URL took longer than {0:?}")]
    Timeout(Duration),
    #[error("the image at the URL is larger than {MAX_BYTES} bytes")]
    TooLarge,
    #[error("the image URL could not be fetched: {0}")]
    Transport(String),
}

/// A fetcher of provider URLs.
#[derive(Clone)]
pub struct Fetcher {
    client: reqwest::Client,
    allow_private: bool,
    timeout: Duration,
}

impl Fetcher {
    pub fn new(allow_private: bool, timeout: Duration) -> Self {
        crate::ai::install_crypto();
        let policy = reqwest::redirect::Policy::custom(move |attempt| {
            if attempt.previous().len() > MAX_REDIRECTS {
                attempt.error(format!("more than {MAX_REDIRECTS} redirects"))
            } else if !allow_private && literal_is_internal(attempt.url()) {
                attempt.error("a redirect to an internal address")
            } else if !matches!(attempt.url().scheme(), "http" | "https") {
                attempt.error("a redirect to a scheme other than http(s)")
            } else {
                attempt.follow()
            }
        });
        let mut b = reqwest::Client::builder()
            .user_agent(concat!("igny8/", env!("CARGO_PKG_VERSION")))
            .redirect(policy);
        if !allow_private {
            b = b.dns_resolver(Arc::new(PublicOnly));
        }
        Self {
            client: b.build().unwrap_or_default(),
            allow_private,
            timeout,
        }
    }

    /// The body of `url` (at most 20 MB) and its declared `Content-Type`.
    pub async fn get(&self, url: &str) -> Result<(Vec<u8>, Option<String>), FetchError> {
        let parsed =
            reqwest::Url::parse(url).map_err(|e| FetchError::Refused(format!("{url}: {e}")))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(FetchError::Refused("only http and https URLs".into()));
        }
        if !self.allow_private && literal_is_internal(&parsed) {
            return Err(FetchError::Refused(format!(
                "{} is an internal address",
                parsed.host_str().unwrap_or("")
            )));
        }
        match tokio::time::timeout(self.timeout, self.read(parsed)).await {
            Ok(r) => r,
            Err(_) => Err(FetchError::Timeout(self.timeout)),
        }
    }

    async fn read(&self, url: reqwest::Url) -> Result<(Vec<u8>, Option<String>), FetchError> {
        let transport = |e: reqwest::Error| {
            if e.is_redirect() {
                FetchError::Refused(format!("{e:#}"))
            } else {
                let mut msg = e.to_string();
                let mut src = std::error::Error::source(&e);
                while let Some(s) = src {
                    msg = format!("{msg}: {s}");
                    src = s.source();
                }
                FetchError::Transport(msg)
            }
        };
        let mut res = self.client.get(url).send().await.map_err(transport)?;
        if !res.status().is_success() {
            return Err(FetchError::Status(res.status().as_u16()));
        }
        if res.content_length().is_some_and(|n| n > MAX_BYTES as u64) {
            return Err(FetchError::TooLarge);
        }
        let declared = res
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let mut body = Vec::new();
        while let Some(chunk) = res.chunk().await.map_err(transport)? {
            if body.len() + chunk.len() > MAX_BYTES {
                return Err(FetchError::TooLarge);
            }
            body.extend_from_slice(&chunk);
        }
        Ok((body, declared))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_addresses_are_named() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fe80::1",
            "fd00::1",
            "::ffff:127.0.0.1",
        ] {
            assert!(is_internal(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["93.184.216.34", "2606:4700::1111", "8.8.8.8"] {
            assert!(!is_internal(ip.parse().unwrap()), "{ip}");
        }
    }

    #[tokio::test]
    async fn loopback_is_refused_unless_allowed() {
        let f = Fetcher::new(false, Duration::from_secs(2));
        for url in [
            "http://127.0.0.1:9/x.png",
            "http://localhost:9/x.png",
            "http://[::1]:9/",
            "file:///etc/passwd",
        ] {
            assert!(
                matches!(f.get(url).await, Err(FetchError::Refused(_))),
                "{url}"
            );
        }
    }
}
