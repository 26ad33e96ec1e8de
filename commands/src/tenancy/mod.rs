//! Tenancy use cases: sign-up, users, credentials, sites and sectors,
//! sessions, API keys and AI provider settings. The rules are in
//! `igny8_domain::tenancy`; this module hashes and seals passwords,
//! composes units of work and hands single-aggregate commands to the bus.
//!
//! - [`sites`]: sites and sectors; [`members`]: users and API keys;
//!   [`providers`]: AI provider settings. Each use case takes the bus, the
//!   [`Caller`](crate::Caller), the command context and a typed input.

pub mod members;
pub mod passwords;
pub mod providers;
pub mod secrets_once;
pub mod sessions;
pub mod sites;

use crate::bus::{CommandBus, CommandContext, CommandError, CommandOutcome};
use crate::secrets::Keyring;
use crate::uow::{UnitOfWork, retry};
use igny8_domain::billing::{self, Account, AccountCommand};
use igny8_domain::tenancy::{
    Integration, Login, LoginCommand, Role, Tenant, TenantCommand, User, UserCommand,
    normalize_email, slugify,
};
use igny8_domain::{ErrorKind, tenancy::TenancyError};
use uuid::Uuid;

pub use passwords::{MAX_PASSWORD, MIN_PASSWORD};

pub(crate) fn domain(e: TenancyError) -> CommandError {
    use igny8_domain::DomainError;
    CommandError::Domain {
        code: e.code(),
        kind: e.kind(),
        message: e.to_string(),
    }
}

/// A new account's or user's email: exactly as the schema states it (no
/// surrounding white space); logins still find an address typed with spaces.
pub fn email(raw: &str) -> Result<String, CommandError> {
    igny8_domain::tenancy::Email::parse(raw)
        .map(igny8_domain::tenancy::Email::into_string)
        .ok_or_else(|| domain(TenancyError::InvalidEmail))
}

/// The sealed form of a password hash, bound to its user.
pub fn seal_credential(keyring: &Keyring, user_id: Uuid, phc: &str) -> String {
    keyring.seal(phc.as_bytes(), user_id.as_bytes())
}

/// The sealed form of a provider API key, bound to its integration.
pub fn seal_api_key(keyring: &Keyring, integration_id: Uuid, key: &str) -> String {
    keyring.seal(key.as_bytes(), integration_id.as_bytes())
}

/// The provider API key in clear (workers, at the moment of the call).
pub fn open_api_key(
    keyring: &Keyring,
    integration_id: Uuid,
    sealed: &str,
) -> Result<String, crate::secrets::SecretError> {
    let bytes = keyring.open(sealed, integration_id.as_bytes())?;
    String::from_utf8(bytes).map_err(|_| crate::secrets::SecretError::Corrupt)
}

/// Start a period on `plan` and grant its included credits (in `uow`).
async fn start_plan(
    uow: &mut UnitOfWork<'_>,
    account_id: &str,
    plan: &billing::Plan,
    what: &str,
) -> Result<(), CommandError> {
    uow.execute::<Account>(
        account_id,
        AccountCommand::Subscribe {
            plan: plan.id.to_string(),
            at: chrono::Utc::now(),
        },
    )
    .await?;
    uow.execute::<Account>(
        account_id,
        AccountCommand::GrantCredits {
            amount: plan.included_milli(),
            reason: format!("{} plan: {what}", plan.name),
        },
    )
    .await?;
    Ok(())
}

pub struct SignedUp {
    pub account_id: Uuid,
    pub user_id: Uuid,
    pub outcomes: Vec<CommandOutcome>,
}

/// Account, owner, default plan and its starting credits, in one commit.
pub async fn signup(
    bus: &CommandBus,
    keyring: &Keyring,
    raw_email: &str,
    password: &str,
    account_name: &str,
    ctx: &CommandContext,
) -> Result<SignedUp, CommandError> {
    let email = email(raw_email)?;
    passwords::check_policy(password)?;
    let name = igny8_domain::tenancy::check_name(account_name, "account_name").map_err(domain)?;
    let plan = billing::plan(billing::DEFAULT_PLAN)
        .ok_or_else(|| CommandError::internal("default plan missing"))?;
    let account_id = Uuid::now_v7();
    let user_id = Uuid::now_v7();
    // A unique slug without a global index: the name's slug plus the id's tail.
    let base = match slugify(&name) {
        s if s.is_empty() => "account".to_string(),
        s => s
            .chars()
            .take(80)
            .collect::<String>()
            .trim_end_matches('-')
            .to_string(),
    };
    let simple = account_id.simple().to_string();
    let slug = format!("{base}-{}", &simple[simple.len() - 8..]);
    let credential = seal_credential(keyring, user_id, &passwords::hash(password).await?);
    let (aid, uid) = (account_id.to_string(), user_id.to_string());
    let ctx = CommandContext {
        account_id: Some(aid.clone()),
        actor: format!("user:{uid}"),
        ..ctx.clone()
    };
    let outcomes = retry(|| async {
        let mut uow = bus.unit(&ctx);
        uow.execute::<Login>(
            &email,
            LoginCommand::Claim {
                user_id,
                account_id,
            },
        )
        .await?;
        uow.execute::<User>(
            &uid,
            UserCommand::Register {
                account_id,
                email: email.clone(),
                name: String::new(),
                role: Role::Owner,
                credential: credential.clone(),
            },
        )
        .await?;
        uow.execute::<Tenant>(
            &aid,
            TenantCommand::Create {
                name: name.clone(),
                slug: igny8_domain::tenancy::Slug::parse(&slug).map_err(domain)?,
                owner_id: user_id,
                plan: plan.id.to_string(),
                max_sites: plan.max_sites,
            },
        )
        .await?;
        uow.execute::<Account>(&aid, AccountCommand::Open { name: name.clone() })
            .await?;
        start_plan(&mut uow, &aid, plan, "starting credits").await?;
        uow.commit().await
    })
    .await?;
    Ok(SignedUp {
        account_id,
        user_id,
        outcomes,
    })
}

/// A new user in an existing account (its email claimed in the same commit).
#[allow(clippy::too_many_arguments)]
pub async fn create_user(
    bus: &CommandBus,
    keyring: &Keyring,
    account_id: Uuid,
    raw_email: &str,
    password: &str,
    name: &str,
    role: Role,
    ctx: &CommandContext,
) -> Result<(Uuid, Vec<CommandOutcome>), CommandError> {
    // A retry with the request's Idempotency-Key answers the first user
    // (its email is claimed by then, so deciding again would refuse it).
    if let Some(done) = crate::uow::replayed(bus, ctx).await? {
        let first = done
            .iter()
            .flat_map(|o| &o.events)
            .filter(|e| e.event_type == "LoginClaimed")
            .find_map(|e| e.payload["user_id"].as_str())
            .and_then(|s| Uuid::parse_str(s).ok());
        if let Some(user_id) = first {
            // The first answer was the user's outcome: rebuild it from the
            // user's events of that commit.
            let uid = user_id.to_string();
            let stored = bus
                .feed()
                .aggregate_events("user", &uid, 1, 100)
                .await
                .map_err(CommandError::db)?;
            let command_id = stored
                .first()
                .and_then(|e| e.meta("command_id"))
                .unwrap_or_default()
                .to_string();
            let user = crate::bus::outcome_from("user", &uid, 0, &command_id, &stored, true);
            return Ok((user_id, vec![user]));
        }
    }
    let email = email(raw_email)?;
    passwords::check_policy(password)?;
    let user_id = Uuid::now_v7();
    let credential = seal_credential(keyring, user_id, &passwords::hash(password).await?);
    let uid = user_id.to_string();
    let outcomes = retry(|| async {
        let mut uow = bus.unit(ctx);
        uow.execute::<Login>(
            &email,
            LoginCommand::Claim {
                user_id,
                account_id,
            },
        )
        .await?;
        uow.execute::<User>(
            &uid,
            UserCommand::Register {
                account_id,
                email: email.clone(),
                name: name.to_string(),
                role,
                credential: credential.clone(),
            },
        )
        .await?;
        uow.commit().await
    })
    .await?;
    Ok((user_id, outcomes))
}

/// Delete a user and free their email, in one commit.
pub async fn delete_user(
    bus: &CommandBus,
    user_id: Uuid,
    ctx: &CommandContext,
) -> Result<Vec<CommandOutcome>, CommandError> {
    let uid = user_id.to_string();
    retry(|| async {
        let mut uow = bus.unit(ctx);
        let user: User = uow.state(&uid).await?;
        uow.execute::<User>(&uid, UserCommand::Delete).await?;
        uow.execute::<Login>(&user.email, LoginCommand::Release { user_id })
            .await?;
        uow.commit().await
    })
    .await
}

/// Who a password belongs to. Every failure is the same `None` (and costs
/// about the same time), so the answer does not reveal which emails exist.
/// A wrong password for a known email is recorded (`LoginFailed`).
pub async fn authenticate(
    bus: &CommandBus,
    keyring: &Keyring,
    raw_email: &str,
    password: &str,
    ctx: &CommandContext,
) -> Result<Option<(Uuid, User)>, CommandError> {
    let Some(email) = normalize_email(raw_email) else {
        passwords::burn(password).await;
        return Ok(None);
    };
    let (login, _) = bus.load::<Login>(&email).await?;
    let Some(user_id) = login.user_id else {
        passwords::burn(password).await;
        return Ok(None);
    };
    let (user, _) = bus.load::<User>(&user_id.to_string()).await?;
    let phc = keyring
        .open(&user.credential, user_id.as_bytes())
        .map_err(CommandError::internal)?;
    let phc = String::from_utf8(phc).map_err(CommandError::internal)?;
    if !user.active() || !passwords::verify(password, &phc).await? {
        let ctx = CommandContext {
            account_id: login
                .account_id
                .filter(|a| !a.is_nil())
                .map(|a| a.to_string()),
            ..ctx.clone()
        };
        bus.execute::<Login>(&email, LoginCommand::RecordFailure, &ctx)
            .await?;
        return Ok(None);
    }
    Ok(Some((user_id, user)))
}

/// Change one's own password: the current one must match.
pub async fn change_password(
    bus: &CommandBus,
    keyring: &Keyring,
    user_id: Uuid,
    current: &str,
    new: &str,
    ctx: &CommandContext,
) -> Result<CommandOutcome, CommandError> {
    passwords::check_policy(new)?;
    let (user, _) = bus.load::<User>(&user_id.to_string()).await?;
    let phc = keyring
        .open(&user.credential, user_id.as_bytes())
        .map_err(CommandError::internal)?;
    let phc = String::from_utf8(phc).map_err(CommandError::internal)?;
    if !user.active() || !passwords::verify(current, &phc).await? {
        return Err(CommandError::Domain {
            code: "WRONG_PASSWORD",
            kind: ErrorKind::Validation,
            message: "the current password is wrong".into(),
        });
    }
    let credential = seal_credential(keyring, user_id, &passwords::hash(new).await?);
    bus.execute::<User>(
        &user_id.to_string(),
        UserCommand::ChangeCredential { credential },
        ctx,
    )
    .await
}

/// The operator's CLI: a `developer` user outside every account.
pub async fn create_operator(
    bus: &CommandBus,
    keyring: &Keyring,
    raw_email: &str,
    password: &str,
) -> Result<Uuid, CommandError> {
    let ctx = CommandContext {
        actor: "operator-cli".into(),
        request_id: Uuid::new_v4().to_string(),
        ..CommandContext::default()
    };
    let (id, _) = create_user(
        bus,
        keyring,
        Uuid::nil(),
        raw_email,
        password,
        "operator",
        Role::Developer,
        &ctx,
    )
    .await?;
    Ok(id)
}

/// Move an account to another plan (operators): new limits, a new period
/// and the plan's included credits, in one commit.
pub async fn change_plan(
    bus: &CommandBus,
    account_id: Uuid,
    plan_id: &str,
    ctx: &CommandContext,
) -> Result<Vec<CommandOutcome>, CommandError> {
    let plan = billing::plan(plan_id).ok_or_else(|| CommandError::Domain {
        code: "UNKNOWN_PLAN",
        kind: ErrorKind::Validation,
        message: format!("unknown plan {plan_id:?}"),
    })?;
    let aid = account_id.to_string();
    retry(|| async {
        let mut uow = bus.unit(ctx);
        let current: Tenant = uow.state(&aid).await?;
        if current.created && current.plan == plan.id {
            // Same plan: nothing to change, no credits granted again.
            return Ok(Some(vec![]));
        }
        uow.execute::<Tenant>(
            &aid,
            TenantCommand::ChangePlan {
                plan: plan.id.to_string(),
                max_sites: plan.max_sites,
            },
        )
        .await?;
        start_plan(&mut uow, &aid, plan, "included credits").await?;
        uow.commit().await
    })
    .await
}

/// One command on the account's tenant aggregate.
pub async fn tenant(
    bus: &CommandBus,
    account_id: Uuid,
    command: TenantCommand,
    ctx: &CommandContext,
) -> Result<CommandOutcome, CommandError> {
    bus.execute::<Tenant>(&account_id.to_string(), command, ctx)
        .await
}

pub async fn user(
    bus: &CommandBus,
    user_id: Uuid,
    command: UserCommand,
    ctx: &CommandContext,
) -> Result<CommandOutcome, CommandError> {
    bus.execute::<User>(&user_id.to_string(), command, ctx)
        .await
}

pub fn is_not_found(e: &CommandError) -> bool {
    matches!(
        e,
        CommandError::Domain {
            kind: ErrorKind::NotFound,
            ..
        }
    )
}

/// The account's configured AI provider settings (`openai`: any
/// OpenAI-compatible API), if any. The planner checks them before it
/// accepts an `embeddings` or `llm` run.
pub async fn configured_integration(
    bus: &CommandBus,
    account_id: Uuid,
) -> Result<Option<Integration>, CommandError> {
    let id = Integration::id(account_id, "openai");
    let (i, _) = bus.load::<Integration>(&id.to_string()).await?;
    Ok(i.configured.then_some(i))
}
