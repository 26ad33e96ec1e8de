//! Tenancy context: who exists and what they may touch.
//!
//! - [`Login`]: one per normalised email address; makes emails unique across
//!   the whole product (the aggregate id *is* the email).
//! - [`User`]: a person in one account, with a role and site grants.
//! - [`Tenant`]: the account's profile, plan limits, sites and sectors
//!   (at most [`MAX_SECTORS_PER_SITE`] per site; slugs unique per account).
//! - [`Session`]: a refresh-token family; rotation and theft detection.
//! - [`ApiKey`]: a key for external automation (only its hash is kept).
//! - [`Integration`]: the account's AI provider settings (its key sealed).
//!
//! Secrets never reach this crate in clear: password hashes arrive already
//! hashed (Argon2id) and sealed (AES-GCM) by the application layer.

mod api_key;
mod industries;
mod integration;
mod login;
mod session;
mod tenant;
mod user;

pub use api_key::{ApiKey, ApiKeyCommand, ApiKeyEvent, USE_RECORD_EVERY_SECS};
pub use industries::{INDUSTRIES, Industry, industry};
pub use integration::{Integration, IntegrationCommand, IntegrationEvent, KeyChange, PROVIDERS};
pub use login::{Login, LoginCommand, LoginEvent};
pub use session::{REUSE_DETECTED, Session, SessionCommand, SessionEvent};
pub use tenant::{
    MAX_SECTORS_PER_SITE, Sector, Site, SiteChanges, Tenant, TenantCommand, TenantEvent,
};
pub use user::{User, UserCommand, UserEvent};

use crate::{DomainError, ErrorKind};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

pub const MAX_NAME: usize = 200;
pub const MAX_SLUG: usize = 100;
pub const MAX_EMAIL: usize = 254;

/// The seeds' roles. `developer` and `system_bot` are operator roles: never
/// granted through the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Developer,
    Owner,
    Admin,
    Editor,
    Viewer,
    SystemBot,
}

impl Role {
    pub const ALL: [Role; 6] = [
        Role::Developer,
        Role::Owner,
        Role::Admin,
        Role::Editor,
        Role::Viewer,
        Role::SystemBot,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Developer => "developer",
            Role::Owner => "owner",
            Role::Admin => "admin",
            Role::Editor => "editor",
            Role::Viewer => "viewer",
            Role::SystemBot => "system_bot",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == s)
    }

    /// Sees every site of its account (owner, admin) or of every account
    /// (developer, system bot).
    pub fn account_wide(self) -> bool {
        !matches!(self, Role::Editor | Role::Viewer)
    }

    /// Crosses account boundaries (operators only).
    pub fn is_operator(self) -> bool {
        matches!(self, Role::Developer | Role::SystemBot)
    }

    pub fn can_write(self) -> bool {
        self != Role::Viewer
    }

    /// Users, API keys, sites and sectors of the account.
    pub fn can_manage_account(self) -> bool {
        matches!(self, Role::Developer | Role::Owner | Role::Admin)
    }

    /// Ledger, plans and subscription details.
    pub fn can_see_billing(self) -> bool {
        matches!(self, Role::Developer | Role::Owner | Role::Admin)
    }

    /// A role an owner or admin may hand out through the API.
    pub fn grantable(self) -> bool {
        matches!(self, Role::Admin | Role::Editor | Role::Viewer)
    }
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TenancyError {
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("{0} already exists")]
    AlreadyExists(&'static str),
    #[error("this email address is already registered")]
    EmailTaken,
    #[error("not a valid email address")]
    InvalidEmail,
    #[error("{0} must be 1 to {MAX_NAME} characters")]
    InvalidName(&'static str),
    #[error("slug must be 1 to {MAX_SLUG} characters of a-z, 0-9 and '-'")]
    InvalidSlug,
    #[error("the slug {0:?} is already used in this account")]
    SlugTaken(String),
    #[error("a site has at most {MAX_SECTORS_PER_SITE} sectors")]
    SectorLimit,
    #[error("the plan allows at most {0} sites")]
    SiteLimit(u32),
    #[error("role {0} cannot be given here")]
    InvalidRole(&'static str),
    #[error("the account owner cannot be removed or demoted")]
    OwnerProtected,
    #[error("status must be active or inactive")]
    InvalidStatus,
    #[error("{0} must be an http(s) URL of at most 2000 characters")]
    InvalidUrl(&'static str),
    #[error("the session was revoked")]
    SessionRevoked,
    #[error("the API key was revoked")]
    KeyRevoked,
    #[error("at most {0} site ids")]
    TooManySites(usize),
}

impl DomainError for TenancyError {
    fn code(&self) -> &'static str {
        match self {
            TenancyError::NotFound(_) => "NOT_FOUND",
            TenancyError::AlreadyExists(_) => "ALREADY_EXISTS",
            TenancyError::EmailTaken => "EMAIL_TAKEN",
            TenancyError::InvalidEmail => "INVALID_EMAIL",
            TenancyError::InvalidName(_) => "INVALID_NAME",
            TenancyError::InvalidSlug => "INVALID_SLUG",
            TenancyError::SlugTaken(_) => "SLUG_TAKEN",
            TenancyError::SectorLimit => "SECTOR_LIMIT",
            TenancyError::SiteLimit(_) => "SITE_LIMIT",
            TenancyError::InvalidRole(_) => "INVALID_ROLE",
            TenancyError::OwnerProtected => "OWNER_PROTECTED",
            TenancyError::InvalidStatus => "INVALID_STATUS",
            TenancyError::InvalidUrl(_) => "INVALID_URL",
            TenancyError::SessionRevoked => "TOKEN_REVOKED",
            TenancyError::KeyRevoked => "API_KEY_REVOKED",
            TenancyError::TooManySites(_) => "VALIDATION_ERROR",
        }
    }
    fn kind(&self) -> ErrorKind {
        match self {
            TenancyError::NotFound(_) => ErrorKind::NotFound,
            TenancyError::AlreadyExists(_)
            | TenancyError::EmailTaken
            | TenancyError::SlugTaken(_)
            | TenancyError::OwnerProtected => ErrorKind::Conflict,
            TenancyError::SessionRevoked | TenancyError::KeyRevoked => ErrorKind::Unauthenticated,
            _ => ErrorKind::Validation,
        }
    }
}

/// Lower-cased, trimmed email; `None` when it is not plausibly an address.
pub fn normalize_email(raw: &str) -> Option<String> {
    Email::parse(raw.trim()).map(Email::into_string)
}

/// An email address, parsed once at the edge: at most [`MAX_EMAIL`]
/// characters, no white space or control character anywhere, one `@` after
/// a non-empty local part, and a domain with a dot that neither starts nor
/// ends with one. Stored lower-cased (one login per address, whatever the
/// letter case). The OpenAPI schema states exactly this rule.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Email(String);

impl Email {
    pub fn parse(raw: &str) -> Option<Email> {
        if raw.is_empty()
            || raw.chars().count() > MAX_EMAIL
            || raw.chars().any(|c| c.is_whitespace() || c.is_control())
        {
            return None;
        }
        let (local, domain) = raw.split_once('@')?;
        if local.is_empty()
            || domain.contains('@')
            || !domain.contains('.')
            || domain.starts_with('.')
            || domain.ends_with('.')
        {
            return None;
        }
        Some(Email(raw.to_lowercase()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

/// A trimmed display name of 1 to [`MAX_NAME`] characters.
pub fn check_name(raw: &str, what: &'static str) -> Result<String, TenancyError> {
    let n = raw.trim();
    if n.is_empty() || n.chars().count() > MAX_NAME || n.chars().any(char::is_control) {
        return Err(TenancyError::InvalidName(what));
    }
    Ok(n.to_string())
}

/// `Acme Blog!` → `acme-blog`. Empty when nothing ASCII-alphanumeric remains.
pub fn slugify(name: &str) -> String {
    let mut s = String::new();
    for c in name.chars() {
        if c.is_ascii_alphanumeric() {
            s.push(c.to_ascii_lowercase());
        } else if !s.is_empty() && !s.ends_with('-') {
            s.push('-');
        }
    }
    let s = s.trim_end_matches('-');
    s.chars()
        .take(MAX_SLUG)
        .collect::<String>()
        .trim_end_matches('-')
        .to_string()
}

/// 32-bit FNV-1a: a short, stable digest of a name.
fn fnv1a(s: &str) -> u32 {
    s.bytes().fold(0x811c_9dc5, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    })
}

/// A slug: 1 to [`MAX_SLUG`] characters of `a-z`, `0-9` and `-`, not
/// starting or ending with `-`. Parsed once where it enters (a request),
/// or made from a name; commands carry it typed.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Slug(String);

impl Slug {
    /// A given slug (trimmed), checked.
    pub fn parse(raw: &str) -> Result<Slug, TenancyError> {
        let slug = raw.trim();
        let ok = !slug.is_empty()
            && slug.len() <= MAX_SLUG
            && slug
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            && !slug.starts_with('-')
            && !slug.ends_with('-');
        if ok {
            Ok(Slug(slug.to_string()))
        } else {
            Err(TenancyError::InvalidSlug)
        }
    }

    /// A slug made from a name: its ASCII letters and digits (`Acme Blog!` →
    /// `acme-blog`), or, for a name with none (`日本`), a stable one made
    /// from it, so any valid name can go without a slug.
    pub fn from_name(name: &str) -> Slug {
        match slugify(name) {
            s if s.is_empty() => Slug(format!("n-{:08x}", fnv1a(name.trim()))),
            s => Slug(s),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

/// A given slug, or one made from the name.
pub fn slug_or_default(given: Option<&str>, name: &str) -> Result<String, TenancyError> {
    Ok(match given {
        Some(s) => Slug::parse(s)?,
        None => Slug::from_name(name),
    }
    .into_string())
}

pub fn check_status(s: &str) -> Result<String, TenancyError> {
    match s {
        "active" | "inactive" => Ok(s.to_string()),
        _ => Err(TenancyError::InvalidStatus),
    }
}

pub fn check_url(raw: &str, what: &'static str) -> Result<String, TenancyError> {
    let u = raw.trim();
    let n = u.chars().count();
    let ok = (u.starts_with("https://") || u.starts_with("http://"))
        && n <= 2000
        && n > "https://".len()
        && !u.chars().any(|c| c.is_whitespace() || c.is_control());
    if ok {
        Ok(u.to_string())
    } else {
        Err(TenancyError::InvalidUrl(what))
    }
}

/// Site grants of one user or key.
pub const MAX_SITE_GRANTS: usize = 1000;

pub fn check_sites(ids: &[Uuid]) -> Result<Vec<Uuid>, TenancyError> {
    if ids.len() > MAX_SITE_GRANTS {
        return Err(TenancyError::TooManySites(MAX_SITE_GRANTS));
    }
    let mut v = ids.to_vec();
    v.sort();
    v.dedup();
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_and_slugs() {
        assert_eq!(normalize_email(" A@B.io "), Some("a@b.io".into()));
        // Parsed as the schema states it: no surrounding white space, characters counted.
        assert!(Email::parse(" a@b.io").is_none());
        assert_eq!(Email::parse("Ü@B.io").unwrap().as_str(), "ü@b.io");
        assert!(Email::parse(&format!("{}@b.io", "é".repeat(249))).is_some());
        assert!(Email::parse(&format!("{}@b.io", "é".repeat(250))).is_none());
        for bad in [
            "", "a", "a@b", "@b.io", "a@b@c.io", "a b@c.io", "a@.io", "a@io.",
        ] {
            assert_eq!(normalize_email(bad), None, "{bad}");
        }
        assert_eq!(slugify("Acme  Blog!"), "acme-blog");
        assert_eq!(slugify("Ünïcode"), "n-code");
        assert_eq!(slugify("日本"), "");
        let made = slug_or_default(None, "日本").unwrap();
        assert!(made.starts_with("n-") && made.len() == 10, "{made}");
        assert_eq!(slug_or_default(None, " 日本 ").unwrap(), made);
        assert_ne!(slug_or_default(None, "中国").unwrap(), made);
        assert!(slug_or_default(Some("Bad Slug"), "x").is_err());
        assert_eq!(slug_or_default(Some("ok-1"), "x").unwrap(), "ok-1");
        assert_eq!(Role::parse("editor"), Some(Role::Editor));
        assert_eq!(Role::parse("god"), None);
    }
}
