//! Plan renewals through the scheduler: each subscription period grants
//! the plan's included credits once. The account aggregate makes it once:
//! a renewal names the period end it renews, and after it the period
//! ends a month later, so a second scheduler (or a retry) naming the same
//! end is refused (PERIOD_RENEWED) and grants nothing.

use super::Automation;
use crate::bus::{CommandContext, CommandError};
use igny8_domain::billing::{Account, AccountCommand};
use uuid::Uuid;

/// Renew every account whose period has ended (as of the clock), up to
/// `limit`; how many were renewed by this call.
pub async fn renew_due(a: &Automation<'_>, limit: usize) -> Result<usize, CommandError> {
    let now = a.clock.now();
    let mut renewed = 0;
    for (account, period_end) in a.lookup.due_renewals(now, limit).await? {
        // A period that ended long ago renews period by period, each once.
        let ctx = CommandContext {
            account_id: Some(account.to_string()),
            actor: "system:scheduler".into(),
            request_id: Uuid::new_v4().to_string(),
            correlation_id: format!("renew:{account}:{}", period_end.timestamp()),
            ..CommandContext::default()
        };
        match a
            .bus
            .execute::<Account>(
                &account.to_string(),
                AccountCommand::RenewPeriod { period_end },
                &ctx,
            )
            .await
        {
            Ok(_) => renewed += 1,
            Err(CommandError::Domain {
                code: "PERIOD_RENEWED",
                ..
            }) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(renewed)
}
