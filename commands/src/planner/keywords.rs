//! Keyword use cases: create one, update one, delete one, delete many of a
//! sector, import a CSV into a sector.

use super::import::{self, Rejected};
use super::scope::{SectorScope, sector_scope, visible_keyword};
use super::{Planner, add_keywords, added, sector_command};
use crate::bus::{CommandBus, CommandContext, CommandError, CommandOutcome};
use crate::caller::Caller;
use igny8_domain::planner::{
    Intent, KeywordChange, KeywordData, PlannerError, SectorKeywordsCommand,
};
use igny8_domain::{DomainError, ErrorKind};
use uuid::Uuid;

/// Most ids one bulk delete takes.
pub const MAX_BULK_DELETE: usize = 100_000;

/// An intent as sent (`None`: none); unknown names are 422 INVALID_INTENT.
fn intent(raw: Option<&str>) -> Result<Option<Intent>, CommandError> {
    match raw {
        None => Ok(None),
        Some(i) => Intent::parse(i).map(Some).ok_or_else(|| {
            CommandError::invalid(
                "INVALID_INTENT",
                "intent must be informational, navigational, commercial or transactional",
            )
        }),
    }
}

/// A keyword's figures refused (422 with the rule's code).
fn refused(e: PlannerError) -> CommandError {
    CommandError::invalid(e.code(), e.to_string())
}

/// A keyword to add by hand.
#[derive(Debug, Clone)]
pub struct NewKeyword {
    pub sector_id: Uuid,
    pub keyword: String,
    pub volume: i64,
    pub difficulty: i64,
    /// A name [`Intent::parse`] knows.
    pub intent: Option<String>,
    pub cpc: Option<f64>,
}

/// The keyword added, where, and the command's outcome.
#[derive(Debug, Clone)]
pub struct KeywordCreated {
    pub keyword: KeywordData,
    pub site_id: Uuid,
    pub sector_id: Uuid,
    pub outcome: CommandOutcome,
}

/// Add one keyword: 404 for a sector the caller cannot see, 422 for bad
/// figures, 409 ALREADY_EXISTS when the sector has it (after normalisation).
pub async fn create_keyword(
    planner: Planner<'_>,
    caller: &Caller,
    ctx: &CommandContext,
    input: NewKeyword,
) -> Result<KeywordCreated, CommandError> {
    caller.require_write()?;
    let scope = sector_scope(planner.bus, caller, input.sector_id).await?;
    let keyword = KeywordData::new(
        input.sector_id,
        &input.keyword,
        input.volume,
        input.difficulty,
        intent(input.intent.as_deref())?,
        input.cpc,
    )
    .map_err(refused)?;
    let outcome = add_keywords(
        planner.bus,
        scope.account_id,
        scope.site_id,
        scope.sector_id,
        vec![keyword.clone()],
        "manual",
        ctx,
    )
    .await?;
    if added(&outcome) == 0 {
        return Err(CommandError::refused(
            ErrorKind::Conflict,
            "ALREADY_EXISTS",
            "the sector has this keyword already",
        ));
    }
    Ok(KeywordCreated {
        keyword,
        site_id: scope.site_id,
        sector_id: scope.sector_id,
        outcome,
    })
}

/// A change of a keyword's figures or status (`None`: unchanged;
/// `Some(None)`: cleared).
#[derive(Debug, Clone, Default)]
pub struct KeywordUpdate {
    pub volume: Option<i64>,
    pub difficulty: Option<i64>,
    pub intent: Option<Option<String>>,
    pub cpc: Option<Option<f64>>,
    pub status: Option<String>,
}

/// A keyword changed or deleted: its sector and the command's outcome.
#[derive(Debug, Clone)]
pub struct KeywordChanged {
    pub id: Uuid,
    pub sector_id: Uuid,
    pub outcome: CommandOutcome,
}

/// Change a keyword (404 before any role or input check).
pub async fn update_keyword(
    planner: Planner<'_>,
    caller: &Caller,
    ctx: &CommandContext,
    id: Uuid,
    update: KeywordUpdate,
) -> Result<KeywordChanged, CommandError> {
    let place = visible_keyword(planner.lookup, caller, id).await?;
    caller.require_write()?;
    let change = KeywordChange {
        volume: update.volume,
        difficulty: update.difficulty,
        intent: match update.intent {
            None => None,
            Some(i) => Some(intent(i.as_deref())?),
        },
        cpc: update.cpc,
        status: update.status,
    };
    let outcome = sector_command(
        planner.bus,
        place.sector_id,
        SectorKeywordsCommand::Update { id, change },
        ctx,
    )
    .await?;
    Ok(KeywordChanged {
        id,
        sector_id: place.sector_id,
        outcome,
    })
}

/// Delete a keyword (404 before the role check).
pub async fn delete_keyword(
    planner: Planner<'_>,
    caller: &Caller,
    ctx: &CommandContext,
    id: Uuid,
) -> Result<KeywordChanged, CommandError> {
    let place = visible_keyword(planner.lookup, caller, id).await?;
    caller.require_write()?;
    let outcome = sector_command(
        planner.bus,
        place.sector_id,
        SectorKeywordsCommand::Delete { ids: vec![id] },
        ctx,
    )
    .await?;
    Ok(KeywordChanged {
        id,
        sector_id: place.sector_id,
        outcome,
    })
}

/// Keywords of one sector to delete (unknown ids are ignored).
#[derive(Debug, Clone)]
pub struct BulkDelete {
    pub sector_id: Uuid,
    pub ids: Vec<Uuid>,
}

/// How many keywords a bulk delete removed.
#[derive(Debug, Clone)]
pub struct BulkDeleted {
    pub sector_id: Uuid,
    pub deleted: usize,
    pub outcome: CommandOutcome,
}

/// Delete many keywords of one sector (at most [`MAX_BULK_DELETE`]).
pub async fn bulk_delete(
    planner: Planner<'_>,
    caller: &Caller,
    ctx: &CommandContext,
    input: BulkDelete,
) -> Result<BulkDeleted, CommandError> {
    caller.require_write()?;
    if input.ids.len() > MAX_BULK_DELETE {
        return Err(CommandError::invalid(
            "VALIDATION_ERROR",
            format!("at most {MAX_BULK_DELETE} ids"),
        ));
    }
    sector_scope(planner.bus, caller, input.sector_id).await?;
    let outcome = sector_command(
        planner.bus,
        input.sector_id,
        SectorKeywordsCommand::Delete { ids: input.ids },
        ctx,
    )
    .await?;
    let deleted = outcome
        .events
        .iter()
        .map(|e| e.payload["ids"].as_array().map_or(0, Vec::len))
        .sum();
    Ok(BulkDeleted {
        sector_id: input.sector_id,
        deleted,
        outcome,
    })
}

/// A sector the caller may import into: only [`import_target`] makes one,
/// so an import cannot skip the checks.
#[derive(Debug, Clone, Copy)]
pub struct ImportTarget(SectorScope);

impl ImportTarget {
    pub fn sector_id(&self) -> Uuid {
        self.0.sector_id
    }
}

/// The checks of an import, made before its file is read: the caller
/// writes, sees the sector, and `site_id` (when given) is the sector's site.
pub async fn import_target(
    bus: &CommandBus,
    caller: &Caller,
    sector_id: Uuid,
    site_id: Option<Uuid>,
) -> Result<ImportTarget, CommandError> {
    caller.require_write()?;
    let scope = sector_scope(bus, caller, sector_id).await?;
    if site_id.is_some_and(|x| x != scope.site_id) {
        return Err(CommandError::not_found("sector"));
    }
    Ok(ImportTarget(scope))
}

/// What an import did.
#[derive(Debug, Clone)]
pub struct KeywordsImported {
    pub sector_id: Uuid,
    /// Data lines read (the header not counted).
    pub lines: usize,
    /// Keywords added.
    pub imported: usize,
    /// Valid lines whose keyword the file or the sector had already.
    pub duplicates_skipped: usize,
    /// Lines refused (all of them; `rejected` lists the first ones).
    pub rejected_count: usize,
    pub rejected: Vec<Rejected>,
    /// Position of the import's last event (`None` when nothing was added).
    pub position: Option<i64>,
}

/// Import a CSV file into the target sector: the file's errors are 422
/// with their code; bad lines are reported and never stop the good ones;
/// duplicates are skipped.
pub async fn import_keywords<B>(
    bus: &CommandBus,
    ctx: &CommandContext,
    target: ImportTarget,
    file: B,
) -> Result<KeywordsImported, CommandError>
where
    B: AsRef<[u8]> + Send + 'static,
{
    let scope = target.0;
    let sector = scope.sector_id;
    let parsed = tokio::task::spawn_blocking(move || import::parse(file.as_ref(), sector))
        .await
        .map_err(CommandError::internal)?
        .map_err(|e| CommandError::invalid(e.code(), e.to_string()))?;
    let valid = parsed.rows.len();
    let (imported, position) = if valid == 0 {
        (0, None)
    } else {
        let out = add_keywords(
            bus,
            scope.account_id,
            scope.site_id,
            sector,
            parsed.rows,
            "import",
            ctx,
        )
        .await?;
        (added(&out), out.position)
    };
    Ok(KeywordsImported {
        sector_id: sector,
        lines: parsed.lines,
        imported,
        duplicates_skipped: valid - imported,
        rejected_count: parsed.rejected_count,
        rejected: parsed.rejected,
        position,
    })
}
