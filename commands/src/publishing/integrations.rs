//! WordPress connections: connect a site, change, disconnect, record what a
//! connection test found, open the sealed Application Password for the
//! publisher — and the bridge from the site's old `wp_*` fields, which are
//! now read from and written to the connection (one source of truth).

use crate::bus::{CommandBus, CommandContext, CommandError, CommandOutcome};
use crate::caller::Caller;
use crate::secrets::Keyring;
use igny8_domain::publishing::{
    ConnectionTest, WpIntegration, WpIntegrationCommand, integration_id,
};
use igny8_domain::tenancy::{Site, Tenant};
use uuid::Uuid;

/// The Application Password is sealed bound to the site (as the site's
/// `wp_credential` was, so migrated passwords open unchanged).
fn credential_aad(site_id: Uuid) -> Vec<u8> {
    site_id.as_bytes().to_vec()
}

fn secret_aad(id: Uuid) -> Vec<u8> {
    format!("wp-webhook-secret:{id}").into_bytes()
}

/// The connection the caller may see (of its account, of a visible site), else 404.
pub async fn integration_scope(
    bus: &CommandBus,
    caller: &Caller,
    id: Uuid,
) -> Result<WpIntegration, CommandError> {
    let account = caller.account()?;
    let (i, _) = bus.load::<WpIntegration>(&id.to_string()).await?;
    match (i.live(), i.account_id, i.site_id) {
        (true, Some(a), Some(site)) if a == account && caller.can_see_site(site) => Ok(i),
        _ => Err(CommandError::not_found("integration")),
    }
}

/// A new connection's input (the password in clear: sealed here).
#[derive(Debug, Clone, Default)]
pub struct NewConnection {
    pub site_id: Uuid,
    pub url: String,
    pub username: String,
    pub app_password: String,
    pub max_concurrent: Option<u32>,
}

/// Changes to a connection (`None`: unchanged).
#[derive(Debug, Clone, Default)]
pub struct ConnectionChange {
    pub url: Option<String>,
    pub username: Option<String>,
    pub app_password: Option<String>,
    pub max_concurrent: Option<u32>,
}

fn check_password(pw: &str) -> Result<String, CommandError> {
    // Application Passwords are 24 characters, shown in groups of four.
    let compact: String = pw.chars().filter(|c| !c.is_whitespace()).collect();
    if compact.is_empty() || compact.len() > 200 || compact.chars().any(char::is_control) {
        return Err(CommandError::invalid(
            "INVALID_WP_APP_PASSWORD",
            "wp_app_password must be a WordPress Application Password (1 to 200 characters)",
        ));
    }
    Ok(compact)
}

fn random_secret() -> String {
    let a = Uuid::new_v4().simple().to_string();
    let b = Uuid::new_v4().simple().to_string();
    format!("{a}{b}")
}

/// Connect a site to its WordPress (owners and admins): 409
/// INTEGRATION_EXISTS when it has one; 422 INVALID_WP_URL,
/// INVALID_WP_USERNAME, INVALID_WP_APP_PASSWORD, INVALID_CONCURRENCY.
pub async fn connect(
    bus: &CommandBus,
    keyring: &Keyring,
    caller: &Caller,
    ctx: &CommandContext,
    input: NewConnection,
) -> Result<(Uuid, CommandOutcome), CommandError> {
    let (account, _) = crate::tenancy::sites::visible_site(bus, caller, input.site_id).await?;
    caller.require_manage()?;
    let id = integration_id(input.site_id);
    if let Some(done) = crate::uow::replayed(bus, ctx).await? {
        let out = done
            .into_iter()
            .next()
            .ok_or_else(|| CommandError::Internal("a replay without its outcome".into()))?;
        return Ok((id, out));
    }
    let pw = check_password(&input.app_password)?;
    let out = bus
        .execute::<WpIntegration>(
            &id.to_string(),
            WpIntegrationCommand::Connect {
                account_id: account,
                site_id: input.site_id,
                url: input.url,
                username: input.username,
                credential: keyring.seal(pw.as_bytes(), &credential_aad(input.site_id)),
                webhook_secret: keyring.seal(random_secret().as_bytes(), &secret_aad(id)),
                max_concurrent: input.max_concurrent,
                password_optional: false,
            },
            ctx,
        )
        .await?;
    Ok((id, out))
}

/// Change a connection (owners and admins).
pub async fn change(
    bus: &CommandBus,
    keyring: &Keyring,
    caller: &Caller,
    ctx: &CommandContext,
    id: Uuid,
    input: ConnectionChange,
) -> Result<CommandOutcome, CommandError> {
    let i = integration_scope(bus, caller, id).await?;
    caller.require_manage()?;
    let site = i.site_id.unwrap_or_default();
    let credential = match input.app_password {
        Some(pw) => Some(keyring.seal(check_password(&pw)?.as_bytes(), &credential_aad(site))),
        None => None,
    };
    bus.execute::<WpIntegration>(
        &id.to_string(),
        WpIntegrationCommand::Change {
            url: input.url,
            username: input.username,
            credential,
            max_concurrent: input.max_concurrent,
        },
        ctx,
    )
    .await
}

/// Remove a connection (owners and admins). What was published stays in
/// WordPress and in the publications' history.
pub async fn disconnect(
    bus: &CommandBus,
    caller: &Caller,
    ctx: &CommandContext,
    id: Uuid,
) -> Result<CommandOutcome, CommandError> {
    integration_scope(bus, caller, id).await?;
    caller.require_manage()?;
    bus.execute::<WpIntegration>(&id.to_string(), WpIntegrationCommand::Disconnect, ctx)
        .await
}

/// Keep what a connection test found.
pub async fn record_test(
    bus: &CommandBus,
    ctx: &CommandContext,
    id: Uuid,
    test: ConnectionTest,
) -> Result<CommandOutcome, CommandError> {
    bus.execute::<WpIntegration>(&id.to_string(), WpIntegrationCommand::RecordTest(test), ctx)
        .await
}

/// What the publisher needs to talk to a WordPress: its URL, the user and
/// the Application Password in clear (never logged, never answered).
#[derive(Clone)]
pub struct OpenConnection {
    pub id: Uuid,
    pub account_id: Uuid,
    pub site_id: Uuid,
    pub url: String,
    pub username: String,
    pub password: String,
    pub max_concurrent: u32,
    pub has_plugin: bool,
}

impl std::fmt::Debug for OpenConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenConnection")
            .field("id", &self.id)
            .field("url", &self.url)
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// Open a connection's sealed password.
pub fn open(
    keyring: &Keyring,
    id: Uuid,
    i: &WpIntegration,
) -> Result<OpenConnection, CommandError> {
    let site_id = i.site_id.unwrap_or_default();
    let password = if i.credential.is_empty() {
        String::new()
    } else {
        keyring
            .open(&i.credential, &credential_aad(site_id))
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .ok_or_else(|| {
                CommandError::refused(
                    igny8_domain::ErrorKind::Conflict,
                    "CREDENTIAL_UNREADABLE",
                    "the stored Application Password cannot be opened with the current keys; set it again",
                )
            })?
    };
    Ok(OpenConnection {
        id,
        account_id: i.account_id.unwrap_or_default(),
        site_id,
        url: i.url.clone(),
        username: i.username.clone(),
        password,
        max_concurrent: i.max_concurrent.max(1),
        has_plugin: i.has_plugin(),
    })
}

/// The connection's webhook secret in clear (for the plugin and for
/// checking signatures).
pub fn webhook_secret(keyring: &Keyring, id: Uuid, i: &WpIntegration) -> Option<String> {
    keyring
        .open(&i.webhook_secret, &secret_aad(id))
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
}

// --- the site's wp_* fields ------------------------------------------------

/// Show a site's WordPress fields from its connection (the site's own
/// fields are history: they were migrated).
pub async fn overlay(bus: &CommandBus, site_id: Uuid, site: &mut Site) -> Result<(), CommandError> {
    let (i, _) = bus
        .load::<WpIntegration>(&integration_id(site_id).to_string())
        .await?;
    if i.live() {
        site.wp_url = Some(i.url.clone());
        site.wp_username = Some(i.username.clone());
        site.wp_credential = (!i.credential.is_empty()).then(|| i.credential.clone());
    } else {
        site.wp_url = None;
        site.wp_username = None;
        site.wp_credential = None;
    }
    Ok(())
}

/// The connection commands a site PATCH with `wp_*` fields stands for
/// (`None`: no change to the connection). The password comes sealed.
pub(crate) fn site_fields_command(
    current: &WpIntegration,
    account: Uuid,
    site_id: Uuid,
    keyring: &Keyring,
    wp_url: Option<Option<String>>,
    wp_username: Option<Option<String>>,
    wp_app_password: Option<Option<String>>,
) -> Result<Option<WpIntegrationCommand>, CommandError> {
    if wp_url.is_none() && wp_username.is_none() && wp_app_password.is_none() {
        return Ok(None);
    }
    if matches!(wp_url, Some(None)) {
        return Ok(current.live().then_some(WpIntegrationCommand::Disconnect));
    }
    let seal = |pw: String| -> Result<String, CommandError> {
        Ok(keyring.seal(check_password(&pw)?.as_bytes(), &credential_aad(site_id)))
    };
    if current.live() {
        let credential = match wp_app_password {
            Some(Some(pw)) if !pw.is_empty() => Some(seal(pw)?),
            _ => None,
        };
        return Ok(Some(WpIntegrationCommand::Change {
            url: wp_url.flatten(),
            username: wp_username.flatten(),
            credential,
            max_concurrent: None,
        }));
    }
    let url = wp_url.flatten().ok_or_else(|| {
        CommandError::invalid(
            "INVALID_WP_URL",
            "wp_url is required to connect the site's WordPress",
        )
    })?;
    let credential = match wp_app_password.flatten().filter(|p| !p.is_empty()) {
        Some(pw) => seal(pw)?,
        None => String::new(),
    };
    let id = integration_id(site_id);
    Ok(Some(WpIntegrationCommand::Connect {
        account_id: account,
        site_id,
        url,
        username: wp_username.flatten().unwrap_or_else(|| "admin".into()),
        credential,
        webhook_secret: keyring.seal(random_secret().as_bytes(), &secret_aad(id)),
        max_concurrent: None,
        password_optional: false,
    }))
}

/// Move the WordPress fields that sites stored before connections existed
/// into connections (idempotent: a site that has one is left alone). Run
/// at start; returns how many sites it connected.
pub async fn migrate_site_fields(
    bus: &CommandBus,
    keyring: &Keyring,
) -> Result<usize, CommandError> {
    let sql = "SELECT DISTINCT aggregate_id FROM events WHERE aggregate_type = 'tenant' AND event_type = 'SiteUpdated'";
    let accounts: Vec<String> = crate::on_db!(bus.db(), p => sqlx::query_scalar(sql).fetch_all(p).await.map_err(CommandError::db)?);
    let mut moved = 0;
    for account in accounts {
        let Ok(account_id) = Uuid::parse_str(&account) else {
            continue;
        };
        let (t, _) = bus.load::<Tenant>(&account).await?;
        for (site_id, site) in &t.sites {
            let Some(url) = site.wp_url.clone() else {
                continue;
            };
            let id = integration_id(*site_id);
            let (i, _) = bus.load::<WpIntegration>(&id.to_string()).await?;
            if i.created {
                continue;
            }
            let ctx = CommandContext {
                account_id: Some(account.clone()),
                actor: "system:migration".into(),
                request_id: Uuid::new_v4().to_string(),
                correlation_id: format!("migrate-wp:{site_id}"),
                ..CommandContext::default()
            };
            let cmd = WpIntegrationCommand::Connect {
                account_id,
                site_id: *site_id,
                url,
                username: site.wp_username.clone().unwrap_or_else(|| "admin".into()),
                credential: site.wp_credential.clone().unwrap_or_default(),
                webhook_secret: keyring.seal(random_secret().as_bytes(), &secret_aad(id)),
                max_concurrent: None,
                password_optional: true,
            };
            match bus
                .execute::<WpIntegration>(&id.to_string(), cmd, &ctx)
                .await
            {
                Ok(_) => moved += 1,
                // An old URL the connection's stricter rules refuse stays in the site's history.
                Err(CommandError::Domain { code, message, .. }) => {
                    tracing::warn!(site = %site_id, code, message, "site WordPress fields not migrated")
                }
                Err(e) => return Err(e),
            }
        }
    }
    Ok(moved)
}
