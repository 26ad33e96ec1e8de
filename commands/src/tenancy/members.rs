//! Use cases on who may use an account: users (add, read, rename or change
//! role, delete, grant sites) and API keys (create, revoke). Owners and
//! admins manage both; anyone may read themselves. A user or key of
//! another account is "not found", before any role check.

use super::{create_user, delete_user, user};
use crate::bus::{CommandBus, CommandContext, CommandError, CommandOutcome};
use crate::caller::Caller;
use crate::secrets::{Keyring, random_bytes};
use igny8_domain::tenancy::{ApiKey, ApiKeyCommand, Role, Tenant, User, UserCommand};
use sha2::{Digest, Sha256};
use uuid::Uuid;

/// `igny8_<key id>_<secret>`: how every API key starts.
pub const API_KEY_PREFIX: &str = "igny8_";

/// A role that can be given (`admin`, `editor`, `viewer`), parsed from text.
pub fn grantable_role(raw: &str) -> Result<Role, CommandError> {
    match Role::parse(raw.trim()) {
        Some(r) if r.grantable() => Ok(r),
        _ => Err(CommandError::invalid(
            "INVALID_ROLE",
            format!("role must be admin, editor or viewer, not {raw:?}"),
        )),
    }
}

/// The user, if it belongs to the caller's account.
pub async fn user_in_account(
    bus: &CommandBus,
    caller: &Caller,
    id: Uuid,
) -> Result<User, CommandError> {
    let account = caller.account()?;
    let (u, _) = bus.load::<User>(&id.to_string()).await?;
    if !u.active() || u.account_id != Some(account) {
        return Err(CommandError::not_found("user"));
    }
    Ok(u)
}

/// Every id must be a site of the account (422 UNKNOWN_SITE).
pub async fn check_sites_exist(
    bus: &CommandBus,
    account: Uuid,
    ids: &[Uuid],
) -> Result<(), CommandError> {
    if ids.is_empty() {
        return Ok(());
    }
    let (t, _) = bus.load::<Tenant>(&account.to_string()).await?;
    if let Some(missing) = ids.iter().find(|id| !t.sites.contains_key(id)) {
        return Err(CommandError::invalid(
            "UNKNOWN_SITE",
            format!("site {missing} does not exist in this account"),
        ));
    }
    Ok(())
}

/// A user to add.
#[derive(Debug, Clone)]
pub struct NewUser {
    pub email: String,
    pub password: String,
    pub name: String,
    /// admin, editor or viewer.
    pub role: String,
}

/// A user after a command, as it is now.
#[derive(Debug, Clone)]
pub struct UserSaved {
    pub id: Uuid,
    pub user: User,
    pub outcome: CommandOutcome,
}

async fn user_saved(
    bus: &CommandBus,
    id: Uuid,
    outcome: CommandOutcome,
) -> Result<UserSaved, CommandError> {
    let (user, _) = bus.load::<User>(&id.to_string()).await?;
    Ok(UserSaved { id, user, outcome })
}

fn of_user(outcomes: Vec<CommandOutcome>) -> Result<CommandOutcome, CommandError> {
    outcomes
        .into_iter()
        .find(|o| o.aggregate_type == "user")
        .ok_or_else(|| CommandError::internal("user not written"))
}

pub async fn add_user(
    bus: &CommandBus,
    keyring: &Keyring,
    caller: &Caller,
    ctx: &CommandContext,
    input: NewUser,
) -> Result<UserSaved, CommandError> {
    caller.require_manage()?;
    let account = caller.account()?;
    let role = grantable_role(&input.role)?;
    let (id, outcomes) = create_user(
        bus,
        keyring,
        account,
        &input.email,
        &input.password,
        &input.name,
        role,
        ctx,
    )
    .await?;
    user_saved(bus, id, of_user(outcomes)?).await
}

/// One user: owners and admins read anyone of the account, others themselves.
pub async fn get_user(bus: &CommandBus, caller: &Caller, id: Uuid) -> Result<User, CommandError> {
    let u = user_in_account(bus, caller, id).await?;
    if caller.user_id != Some(id) {
        caller.require_manage()?;
    }
    Ok(u)
}

/// Rename a user and/or change their role, in one command.
pub async fn update_user(
    bus: &CommandBus,
    caller: &Caller,
    ctx: &CommandContext,
    id: Uuid,
    name: Option<String>,
    role: Option<String>,
) -> Result<UserSaved, CommandError> {
    user_in_account(bus, caller, id).await?;
    caller.require_manage()?;
    let role = role.as_deref().map(grantable_role).transpose()?;
    let out = user(bus, id, UserCommand::Update { name, role }, ctx).await?;
    user_saved(bus, id, out).await
}

pub async fn change_user_role(
    bus: &CommandBus,
    caller: &Caller,
    ctx: &CommandContext,
    id: Uuid,
    role: &str,
) -> Result<UserSaved, CommandError> {
    user_in_account(bus, caller, id).await?;
    caller.require_manage()?;
    let role = grantable_role(role)?;
    let out = user(bus, id, UserCommand::ChangeRole { role }, ctx).await?;
    user_saved(bus, id, out).await
}

/// Remove a user (not the owner, not yourself); their email becomes free.
pub async fn remove_user(
    bus: &CommandBus,
    caller: &Caller,
    ctx: &CommandContext,
    id: Uuid,
) -> Result<CommandOutcome, CommandError> {
    user_in_account(bus, caller, id).await?;
    caller.require_manage()?;
    if caller.user_id == Some(id) {
        return Err(CommandError::forbidden("you cannot delete yourself"));
    }
    of_user(delete_user(bus, id, ctx).await?)
}

/// Replace the sites an editor or viewer may see.
pub async fn set_user_sites(
    bus: &CommandBus,
    caller: &Caller,
    ctx: &CommandContext,
    id: Uuid,
    site_ids: Vec<Uuid>,
) -> Result<UserSaved, CommandError> {
    user_in_account(bus, caller, id).await?;
    caller.require_manage()?;
    check_sites_exist(bus, caller.account()?, &site_ids).await?;
    let out = user(bus, id, UserCommand::SetSites { site_ids }, ctx).await?;
    user_saved(bus, id, out).await
}

/// The SHA-256 (hex) of an API key's secret: all the store keeps of it.
pub fn hash_secret(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// A key to create.
#[derive(Debug, Clone)]
pub struct NewKey {
    pub name: String,
    /// admin, editor or viewer.
    pub role: String,
    /// Restrict the key to these sites (empty: every site).
    pub site_ids: Vec<Uuid>,
}

/// A key created: the only time its secret (`key`) is known.
#[derive(Debug, Clone)]
pub struct KeyCreated {
    pub id: Uuid,
    pub account_id: Uuid,
    pub key: ApiKey,
    pub role: Role,
    pub prefix: String,
    /// `igny8_<id>_<secret>`; `None` on a replay after the idempotency
    /// window (the secret is shown once, and kept sealed only that long).
    pub secret: Option<String>,
    pub outcome: CommandOutcome,
}

pub async fn create_api_key(
    bus: &CommandBus,
    keyring: &crate::secrets::Keyring,
    caller: &Caller,
    ctx: &CommandContext,
    input: NewKey,
) -> Result<KeyCreated, CommandError> {
    caller.require_manage()?;
    let account = caller.account()?;
    if let Some(done) = crate::uow::replayed(bus, ctx).await? {
        let outcome = done
            .into_iter()
            .next()
            .ok_or_else(|| CommandError::Internal("a replay without its outcome".into()))?;
        let key_id = Uuid::parse_str(&outcome.aggregate_id).unwrap_or_default();
        let (key, _) = bus.load::<ApiKey>(&key_id.to_string()).await?;
        let secret = match &ctx.idempotency {
            Some(k) => super::secrets_once::read(bus, keyring, k, key_id).await?,
            None => None,
        };
        return Ok(KeyCreated {
            id: key_id,
            account_id: account,
            role: key.role.unwrap_or(Role::Viewer),
            prefix: format!("{API_KEY_PREFIX}{}", &key_id.simple().to_string()[..8]),
            key,
            secret,
            outcome,
        });
    }
    let role = grantable_role(&input.role)?;
    if role.account_wide() && !input.site_ids.is_empty() {
        // An admin key manages users and keys: a site list would not hold it.
        return Err(CommandError::invalid(
            "VALIDATION_ERROR",
            "site restrictions apply to editor and viewer keys; an admin key sees every site",
        ));
    }
    check_sites_exist(bus, account, &input.site_ids).await?;
    // Random (v4), so the displayed prefix tells keys apart.
    let key_id = Uuid::new_v4();
    let secret = hex::encode(random_bytes());
    let full = format!("{API_KEY_PREFIX}{}_{secret}", key_id.simple());
    let prefix: String = full.chars().take(API_KEY_PREFIX.len() + 8).collect();
    let outcome = bus
        .execute::<ApiKey>(
            &key_id.to_string(),
            ApiKeyCommand::Create {
                account_id: account,
                name: input.name,
                role,
                site_ids: input.site_ids,
                prefix: prefix.clone(),
                secret_hash: hash_secret(&secret),
            },
            ctx,
        )
        .await?;
    if let Some(k) = &ctx.idempotency {
        // Best effort: a crash before this write makes a replay answer the
        // key without its secret (revoke it and create another).
        super::secrets_once::keep(bus, keyring, k, key_id, &full).await?;
    }
    let (key, _) = bus.load::<ApiKey>(&key_id.to_string()).await?;
    Ok(KeyCreated {
        id: key_id,
        account_id: account,
        key,
        role,
        prefix,
        secret: Some(full),
        outcome,
    })
}

/// Revoke a key of the account: it stops working at once.
pub async fn revoke_api_key(
    bus: &CommandBus,
    caller: &Caller,
    ctx: &CommandContext,
    id: Uuid,
) -> Result<CommandOutcome, CommandError> {
    let account = caller.account()?;
    let (k, _) = bus.load::<ApiKey>(&id.to_string()).await?;
    if !k.created || k.account_id != Some(account) {
        return Err(CommandError::not_found("api key"));
    }
    caller.require_manage()?;
    bus.execute::<ApiKey>(&id.to_string(), ApiKeyCommand::Revoke, ctx)
        .await
}
