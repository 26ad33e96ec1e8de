//! The account's prompt templates, author profiles and writing
//! strategies (`writer_settings`, one aggregate per account). Everyone of
//! the account reads them; owners and admins change them.

use crate::bus::{CommandBus, CommandContext, CommandError, CommandOutcome};
use crate::caller::Caller;
use crate::planner::sector_scope;
use igny8_domain::writer::{AuthorProfile, WriterSettings, WriterSettingsCommand, WritingStrategy};
use std::collections::BTreeMap;
use uuid::Uuid;

/// The caller's account's settings.
pub async fn settings(bus: &CommandBus, caller: &Caller) -> Result<WriterSettings, CommandError> {
    let account = caller.account()?;
    Ok(bus.load::<WriterSettings>(&account.to_string()).await?.0)
}

async fn command(
    bus: &CommandBus,
    caller: &Caller,
    ctx: &CommandContext,
    c: WriterSettingsCommand,
) -> Result<CommandOutcome, CommandError> {
    caller.require_manage()?;
    let account = caller.account()?;
    bus.execute::<WriterSettings>(&account.to_string(), c, ctx)
        .await
}

/// A new version of a prompt type's template (422 UNKNOWN_PLACEHOLDER,
/// INVALID_TEMPLATE; 404 for an unknown type).
pub async fn set_prompt(
    bus: &CommandBus,
    caller: &Caller,
    ctx: &CommandContext,
    prompt_type: &str,
    template: String,
) -> Result<CommandOutcome, CommandError> {
    let c = WriterSettingsCommand::SetPrompt {
        prompt_type: prompt_type.to_string(),
        template,
    };
    command(bus, caller, ctx, c).await
}

/// Back to the default template (a new version).
pub async fn reset_prompt(
    bus: &CommandBus,
    caller: &Caller,
    ctx: &CommandContext,
    prompt_type: &str,
) -> Result<CommandOutcome, CommandError> {
    let c = WriterSettingsCommand::ResetPrompt {
        prompt_type: prompt_type.to_string(),
    };
    command(bus, caller, ctx, c).await
}

/// A profile's fields (`None`: unchanged, or the default on create).
#[derive(Debug, Clone, Default)]
pub struct ProfileInput {
    pub name: Option<String>,
    pub description: Option<String>,
    pub tone: Option<String>,
    pub language: Option<String>,
}

/// Create (`id: None`) or change an author profile; its id.
pub async fn save_profile(
    bus: &CommandBus,
    caller: &Caller,
    ctx: &CommandContext,
    id: Option<Uuid>,
    input: ProfileInput,
) -> Result<(Uuid, CommandOutcome), CommandError> {
    let current = settings(bus, caller).await?;
    let (id, create, base) = match id {
        Some(id) => {
            let p = current
                .profiles
                .get(&id)
                .cloned()
                .ok_or_else(|| CommandError::not_found("author profile"))?;
            (id, false, p)
        }
        None => (
            Uuid::now_v7(),
            true,
            AuthorProfile {
                name: "Author profile".into(),
                description: String::new(),
                tone: String::new(),
                language: "en".into(),
            },
        ),
    };
    let profile = AuthorProfile {
        name: input.name.unwrap_or(base.name),
        description: input.description.unwrap_or(base.description),
        tone: input.tone.unwrap_or(base.tone),
        language: input.language.unwrap_or(base.language),
    };
    let c = WriterSettingsCommand::SaveProfile {
        id,
        profile,
        create,
    };
    let out = command(bus, caller, ctx, c).await?;
    let id = out
        .events
        .first()
        .and_then(|e| e.payload["profile_id"].as_str())
        .and_then(|s| Uuid::parse_str(s).ok())
        .unwrap_or(id);
    Ok((id, out))
}

pub async fn delete_profile(
    bus: &CommandBus,
    caller: &Caller,
    ctx: &CommandContext,
    id: Uuid,
) -> Result<CommandOutcome, CommandError> {
    settings(bus, caller).await?;
    command(
        bus,
        caller,
        ctx,
        WriterSettingsCommand::DeleteProfile { id },
    )
    .await
}

/// A strategy's fields (`None`: unchanged; `Some(None)`: cleared).
#[derive(Debug, Clone, Default)]
pub struct StrategyInput {
    pub name: Option<String>,
    pub description: Option<String>,
    pub sector_id: Option<Option<Uuid>>,
    pub prompt_overrides: Option<BTreeMap<String, String>>,
    pub default_author_profile_id: Option<Option<Uuid>>,
}

/// Create (`id: None`) or change a strategy; its id (404 for a sector
/// the caller cannot see or an unknown author profile).
pub async fn save_strategy(
    bus: &CommandBus,
    caller: &Caller,
    ctx: &CommandContext,
    id: Option<Uuid>,
    input: StrategyInput,
) -> Result<(Uuid, CommandOutcome), CommandError> {
    let current = settings(bus, caller).await?;
    let (id, create, base) = match id {
        Some(id) => {
            let s = current
                .strategies
                .get(&id)
                .cloned()
                .ok_or_else(|| CommandError::not_found("strategy"))?;
            (id, false, s)
        }
        None => (
            Uuid::now_v7(),
            true,
            WritingStrategy {
                name: "Strategy".into(),
                description: String::new(),
                sector_id: None,
                prompt_overrides: BTreeMap::new(),
                default_author_profile_id: None,
            },
        ),
    };
    let strategy = WritingStrategy {
        name: input.name.unwrap_or(base.name),
        description: input.description.unwrap_or(base.description),
        sector_id: input.sector_id.unwrap_or(base.sector_id),
        prompt_overrides: input.prompt_overrides.unwrap_or(base.prompt_overrides),
        default_author_profile_id: input
            .default_author_profile_id
            .unwrap_or(base.default_author_profile_id),
    };
    if let Some(sector) = strategy.sector_id {
        sector_scope(bus, caller, sector).await?;
    }
    let c = WriterSettingsCommand::SaveStrategy {
        id,
        strategy,
        create,
    };
    let out = command(bus, caller, ctx, c).await?;
    Ok((id, out))
}

pub async fn delete_strategy(
    bus: &CommandBus,
    caller: &Caller,
    ctx: &CommandContext,
    id: Uuid,
) -> Result<CommandOutcome, CommandError> {
    settings(bus, caller).await?;
    command(
        bus,
        caller,
        ctx,
        WriterSettingsCommand::DeleteStrategy { id },
    )
    .await
}

/// 404 unless the account has this author profile and strategy.
pub async fn check_choices(
    bus: &CommandBus,
    caller: &Caller,
    author_profile_id: Option<Uuid>,
    strategy_id: Option<Uuid>,
) -> Result<(), CommandError> {
    if author_profile_id.is_none() && strategy_id.is_none() {
        return Ok(());
    }
    let s = settings(bus, caller).await?;
    if author_profile_id.is_some_and(|p| !s.profiles.contains_key(&p)) {
        return Err(CommandError::not_found("author profile"));
    }
    if strategy_id.is_some_and(|p| !s.strategies.contains_key(&p)) {
        return Err(CommandError::not_found("strategy"));
    }
    Ok(())
}
