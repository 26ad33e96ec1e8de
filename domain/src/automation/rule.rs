//! The `automation_rule` aggregate.
//!
//! At most once per slot: a firing is a command on the rule. A scheduled
//! firing must name the rule's `next_slot`; it moves `next_slot` past the
//! firing instant, so a second scheduler (or the same one after a crash)
//! naming that slot again is refused (SLOT_HANDLED) — and two that race
//! are settled by the store's optimistic concurrency. An event firing
//! names its burst (numbered by the automation read model) and must be
//! past the rule's `last_burst`. The run a firing starts has an id derived
//! from the rule and the slot (or burst), so even a retry of the same
//! firing cannot start a second run.
//!
//! Budgets: a firing allots the run `min(max_credits_per_run, what is left
//! of max_credits_per_day today in the rule's time zone)`; a run that ends
//! returns to the day what it did not charge.

use super::schedule::{Schedule, zone};
use super::{AutomationError, CatchUp, ON_TIME_SECONDS, RuleDef, Trigger};
use crate::{Aggregate, DomainEvent};
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum RuleStatus {
    #[default]
    Active,
    Paused,
}

impl RuleStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RuleStatus::Active => "active",
            RuleStatus::Paused => "paused",
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Rule {
    pub id: Option<Uuid>,
    pub created: bool,
    pub deleted: bool,
    pub account_id: Option<Uuid>,
    pub site_id: Option<Uuid>,
    pub def: Option<RuleDef>,
    pub status: RuleStatus,
    /// The next scheduled instant (schedule triggers).
    pub next_slot: Option<DateTime<Utc>>,
    /// The last burst of events a firing covered (event triggers; bursts
    /// are numbered by the automation read model, 1, 2, …).
    pub last_burst: i64,
    /// The day (in the rule's time zone) `day_drawn` counts.
    pub day: Option<NaiveDate>,
    /// Milli-credits allotted to runs of `day`, less what they returned.
    pub day_drawn: i64,
    pub runs: u64,
}

/// What fires a rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Firing {
    /// The scheduler: the rule's `next_slot` (it fires the latest slot due).
    Schedule { slot: DateTime<Utc> },
    /// A settled burst of events (its number: higher than any fired).
    Event { burst: i64 },
    /// `POST …/execute/`, with the run's id.
    Manual { run_id: Uuid },
}

#[derive(Debug, Clone, PartialEq)]
pub enum RuleCommand {
    Create {
        id: Uuid,
        account_id: Uuid,
        site_id: Uuid,
        def: RuleDef,
        now: DateTime<Utc>,
    },
    Update {
        def: RuleDef,
        now: DateTime<Utc>,
    },
    Pause,
    Resume {
        now: DateTime<Utc>,
    },
    Delete,
    Fire {
        firing: Firing,
        now: DateTime<Utc>,
    },
    /// A run of this rule ended: what it did not charge goes back to its day.
    ReturnBudget {
        run_id: Uuid,
        day: NaiveDate,
        amount: i64,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum RuleEvent {
    RuleCreated {
        rule_id: Uuid,
        account_id: Uuid,
        site_id: Uuid,
        def: RuleDef,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        next_slot: Option<DateTime<Utc>>,
    },
    RuleUpdated {
        def: RuleDef,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        next_slot: Option<DateTime<Utc>>,
    },
    RulePaused {},
    RuleResumed {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        next_slot: Option<DateTime<Utc>>,
    },
    RuleDeleted {},
    RuleFired {
        run_id: Uuid,
        /// schedule, event or manual.
        trigger: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        slot: Option<DateTime<Utc>>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        burst: Option<i64>,
        /// Earlier slots this firing stands for (catch_up: once).
        #[serde(default)]
        missed: u32,
        /// Milli-credits allotted to the run (its cap).
        budget: i64,
        /// The day (rule's time zone) the allotment counts against.
        day: NaiveDate,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        next_slot: Option<DateTime<Utc>>,
    },
    /// Slots missed while nothing ran, skipped (catch_up: skip).
    SlotsSkipped {
        count: u32,
        first: DateTime<Utc>,
        last: DateTime<Utc>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        next_slot: Option<DateTime<Utc>>,
    },
    RunBudgetReturned {
        run_id: Uuid,
        day: NaiveDate,
        amount: i64,
    },
}

impl DomainEvent for RuleEvent {
    fn event_type(&self) -> &'static str {
        match self {
            RuleEvent::RuleCreated { .. } => "RuleCreated",
            RuleEvent::RuleUpdated { .. } => "RuleUpdated",
            RuleEvent::RulePaused { .. } => "RulePaused",
            RuleEvent::RuleResumed { .. } => "RuleResumed",
            RuleEvent::RuleDeleted { .. } => "RuleDeleted",
            RuleEvent::RuleFired { .. } => "RuleFired",
            RuleEvent::SlotsSkipped { .. } => "SlotsSkipped",
            RuleEvent::RunBudgetReturned { .. } => "RunBudgetReturned",
        }
    }
}

/// The run a firing starts (derived: a firing retried finds the same run).
pub fn run_id_of(rule: Uuid, firing: &Firing) -> Uuid {
    match firing {
        Firing::Schedule { slot } => Uuid::new_v5(
            &rule,
            format!("slot:{}", slot.timestamp_micros()).as_bytes(),
        ),
        Firing::Event { burst } => Uuid::new_v5(&rule, format!("burst:{burst}").as_bytes()),
        Firing::Manual { run_id } => *run_id,
    }
}

/// The first slot strictly after `t`, or `None` (not a schedule trigger).
fn next_slot(def: &RuleDef, t: DateTime<Utc>) -> Result<Option<DateTime<Utc>>, AutomationError> {
    match &def.trigger {
        Trigger::Schedule { cron } => Ok(Schedule::new(cron, zone(&def.timezone)?)?.next_after(t)),
        _ => Ok(None),
    }
}

impl Rule {
    fn live(&self) -> Result<&RuleDef, AutomationError> {
        match (&self.def, self.created, self.deleted) {
            (_, false, _) => Err(AutomationError::NotFound("rule")),
            (_, _, true) => Err(AutomationError::Deleted),
            (Some(d), _, _) => Ok(d),
            (None, _, _) => Err(AutomationError::NotFound("rule")),
        }
    }

    /// What a run fired now may still be allotted: the per-run cap, less
    /// what today's runs took of the daily cap.
    pub fn allotment(&self, def: &RuleDef, today: NaiveDate) -> i64 {
        let drawn = if self.day == Some(today) {
            self.day_drawn
        } else {
            0
        };
        match def.max_credits_per_day {
            Some(d) => def.max_credits_per_run.min((d - drawn).max(0)),
            None => def.max_credits_per_run,
        }
    }
}

impl Aggregate for Rule {
    const TYPE: &'static str = "automation_rule";
    type Command = RuleCommand;
    type Event = RuleEvent;
    type Error = AutomationError;

    fn decide(&self, command: RuleCommand) -> Result<Vec<RuleEvent>, AutomationError> {
        use RuleCommand as C;
        use RuleEvent as E;
        match command {
            C::Create {
                id,
                account_id,
                site_id,
                def,
                now,
            } => {
                if self.created {
                    return Err(AutomationError::AlreadyExists);
                }
                def.check(super::EVENT_TYPES)?;
                Ok(vec![E::RuleCreated {
                    rule_id: id,
                    account_id,
                    site_id,
                    next_slot: next_slot(&def, now)?,
                    def: RuleDef {
                        name: def.name.trim().to_string(),
                        ..def
                    },
                }])
            }
            C::Update { def, now } => {
                let old = self.live()?;
                def.check(super::EVENT_TYPES)?;
                let def = RuleDef {
                    name: def.name.trim().to_string(),
                    ..def
                };
                if *old == def {
                    return Ok(vec![]);
                }
                // A changed schedule counts from now; an unchanged one keeps its slot.
                let next = if old.trigger == def.trigger && old.timezone == def.timezone {
                    self.next_slot
                } else {
                    next_slot(&def, now)?
                };
                Ok(vec![E::RuleUpdated {
                    def,
                    next_slot: next,
                }])
            }
            C::Pause => {
                self.live()?;
                if self.status == RuleStatus::Paused {
                    return Ok(vec![]);
                }
                Ok(vec![E::RulePaused {}])
            }
            C::Resume { now } => {
                let def = self.live()?;
                if self.status == RuleStatus::Active {
                    return Ok(vec![]);
                }
                // Slots that passed while paused are not caught up.
                Ok(vec![E::RuleResumed {
                    next_slot: next_slot(def, now)?,
                }])
            }
            C::Delete => {
                self.live()?;
                Ok(vec![E::RuleDeleted {}])
            }
            C::Fire { firing, now } => {
                let def = self.live()?;
                if self.status == RuleStatus::Paused {
                    return Err(AutomationError::Paused);
                }
                let id = self.id.unwrap_or_default();
                let tz = zone(&def.timezone)?;
                let day = now.with_timezone(&tz).date_naive();
                let budget = self.allotment(def, day);
                match (&def.trigger, firing) {
                    (Trigger::Schedule { cron }, Firing::Schedule { slot }) => {
                        if self.next_slot != Some(slot) || slot > now {
                            return Err(AutomationError::SlotHandled);
                        }
                        let s = Schedule::new(cron, tz)?;
                        // Every slot due: this one and those after it up to now.
                        let mut due = vec![slot];
                        due.extend(s.between(slot, now, 100_000));
                        let latest = *due.last().unwrap_or(&slot);
                        let next = s.next_after(now.max(latest));
                        let late = (now - latest).num_seconds() > ON_TIME_SECONDS;
                        if def.catch_up == CatchUp::Skip && late {
                            return Ok(vec![E::SlotsSkipped {
                                count: due.len() as u32,
                                first: slot,
                                last: latest,
                                next_slot: next,
                            }]);
                        }
                        let (missed, first) = (due.len() as u32 - 1, due[0]);
                        let mut out = vec![];
                        if def.catch_up == CatchUp::Skip && missed > 0 {
                            out.push(E::SlotsSkipped {
                                count: missed,
                                first,
                                last: due[due.len() - 2],
                                next_slot: next,
                            });
                        }
                        let firing = Firing::Schedule { slot: latest };
                        out.push(E::RuleFired {
                            run_id: run_id_of(id, &firing),
                            trigger: "schedule".into(),
                            slot: Some(latest),
                            burst: None,
                            missed: if def.catch_up == CatchUp::Once {
                                missed
                            } else {
                                0
                            },
                            budget,
                            day,
                            next_slot: next,
                        });
                        Ok(out)
                    }
                    (Trigger::Event { .. }, Firing::Event { burst }) => {
                        if burst <= self.last_burst {
                            return Err(AutomationError::SlotHandled);
                        }
                        let firing = Firing::Event { burst };
                        Ok(vec![E::RuleFired {
                            run_id: run_id_of(id, &firing),
                            trigger: "event".into(),
                            slot: None,
                            burst: Some(burst),
                            missed: 0,
                            budget,
                            day,
                            next_slot: None,
                        }])
                    }
                    (_, Firing::Manual { run_id }) => Ok(vec![E::RuleFired {
                        run_id,
                        trigger: "manual".into(),
                        slot: None,
                        burst: None,
                        missed: 0,
                        budget,
                        day,
                        next_slot: self.next_slot,
                    }]),
                    _ => Err(AutomationError::Conflict(
                        "this firing does not match the rule's trigger".into(),
                    )),
                }
            }
            C::ReturnBudget {
                run_id,
                day,
                amount,
            } => {
                if !self.created {
                    return Err(AutomationError::NotFound("rule"));
                }
                if amount <= 0 || self.day != Some(day) {
                    return Ok(vec![]);
                }
                Ok(vec![E::RunBudgetReturned {
                    run_id,
                    day,
                    amount: amount.min(self.day_drawn),
                }])
            }
        }
    }

    fn apply(&mut self, event: &RuleEvent) {
        use RuleEvent as E;
        match event {
            E::RuleCreated {
                rule_id,
                account_id,
                site_id,
                def,
                next_slot,
            } => {
                self.id = Some(*rule_id);
                self.created = true;
                self.account_id = Some(*account_id);
                self.site_id = Some(*site_id);
                self.def = Some(def.clone());
                self.next_slot = *next_slot;
            }
            E::RuleUpdated { def, next_slot } => {
                self.def = Some(def.clone());
                self.next_slot = *next_slot;
            }
            E::RulePaused {} => self.status = RuleStatus::Paused,
            E::RuleResumed { next_slot } => {
                self.status = RuleStatus::Active;
                self.next_slot = *next_slot;
            }
            E::RuleDeleted {} => self.deleted = true,
            E::RuleFired {
                burst,
                budget,
                day,
                next_slot,
                trigger,
                ..
            } => {
                self.runs += 1;
                if let Some(b) = burst {
                    self.last_burst = self.last_burst.max(*b);
                }
                if trigger == "schedule" {
                    self.next_slot = *next_slot;
                }
                if self.day != Some(*day) {
                    self.day = Some(*day);
                    self.day_drawn = 0;
                }
                self.day_drawn += budget;
            }
            E::SlotsSkipped { next_slot, .. } => self.next_slot = *next_slot,
            E::RunBudgetReturned { day, amount, .. } => {
                if self.day == Some(*day) {
                    self.day_drawn = (self.day_drawn - amount).max(0);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::automation::{Action, Stage};

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    fn def(catch_up: CatchUp) -> RuleDef {
        RuleDef {
            name: "Hourly".into(),
            description: String::new(),
            trigger: Trigger::Schedule {
                cron: "0 * * * *".into(),
            },
            timezone: "UTC".into(),
            conditions: vec![],
            stages: vec![Stage {
                action: Action::GenerateContent,
                batch_size: 5,
                params: serde_json::Value::Null,
            }],
            max_credits_per_run: 10_000,
            max_credits_per_day: Some(25_000),
            catch_up,
        }
    }

    fn rule(catch_up: CatchUp, now: &str) -> Rule {
        let mut r = Rule::default();
        for e in r
            .decide(RuleCommand::Create {
                id: Uuid::from_u128(7),
                account_id: Uuid::nil(),
                site_id: Uuid::nil(),
                def: def(catch_up),
                now: at(now),
            })
            .unwrap()
        {
            r.apply(&e);
        }
        r
    }

    fn fire(
        r: &mut Rule,
        slot: DateTime<Utc>,
        now: &str,
    ) -> Result<Vec<RuleEvent>, AutomationError> {
        let events = r.decide(RuleCommand::Fire {
            firing: Firing::Schedule { slot },
            now: at(now),
        })?;
        events.iter().for_each(|e| r.apply(e));
        Ok(events)
    }

    #[test]
    fn a_slot_fires_once() {
        let mut r = rule(CatchUp::Once, "2026-12-07T09:30:00Z");
        let slot = r.next_slot.unwrap();
        assert_eq!(slot, at("2026-12-07T10:00:00Z"));
        assert_eq!(
            fire(&mut r, slot, "2026-12-07T09:59:00Z"),
            Err(AutomationError::SlotHandled),
            "not before its time"
        );
        let e = fire(&mut r, slot, "2026-12-07T10:00:01Z").unwrap();
        let RuleEvent::RuleFired { run_id, budget, .. } = &e[0] else {
            panic!("{e:?}")
        };
        assert_eq!(
            *run_id,
            run_id_of(Uuid::from_u128(7), &Firing::Schedule { slot })
        );
        assert_eq!(*budget, 10_000);
        assert_eq!(r.next_slot, Some(at("2026-12-07T11:00:00Z")));
        assert_eq!(
            fire(&mut r, slot, "2026-12-07T10:00:02Z"),
            Err(AutomationError::SlotHandled),
            "a second scheduler naming the same slot is refused"
        );
    }

    #[test]
    fn missed_slots_fire_once_or_are_skipped() {
        // Down from 10:00 to 13:30: slots 10, 11, 12, 13 are due.
        let mut r = rule(CatchUp::Once, "2026-12-07T09:30:00Z");
        let e = fire(&mut r, at("2026-12-07T10:00:00Z"), "2026-12-07T13:30:00Z").unwrap();
        assert!(
            matches!(&e[..], [RuleEvent::RuleFired { slot: Some(s), missed: 3, .. }] if *s == at("2026-12-07T13:00:00Z")),
            "{e:?}"
        );
        assert_eq!(r.next_slot, Some(at("2026-12-07T14:00:00Z")));
        let mut r = rule(CatchUp::Skip, "2026-12-07T09:30:00Z");
        let e = fire(&mut r, at("2026-12-07T10:00:00Z"), "2026-12-07T13:30:00Z").unwrap();
        assert!(
            matches!(&e[..], [RuleEvent::SlotsSkipped { count: 4, .. }]),
            "{e:?}"
        );
        // Back on time (13:00:30): the missed ones skipped, 13:00 fires.
        let mut r = rule(CatchUp::Skip, "2026-12-07T09:30:00Z");
        let e = fire(&mut r, at("2026-12-07T10:00:00Z"), "2026-12-07T13:00:30Z").unwrap();
        assert!(
            matches!(
                &e[..],
                [
                    RuleEvent::SlotsSkipped { count: 3, .. },
                    RuleEvent::RuleFired { missed: 0, .. }
                ]
            ),
            "{e:?}"
        );
    }

    #[test]
    fn the_daily_cap_limits_what_runs_are_allotted() {
        let mut r = rule(CatchUp::Once, "2026-12-07T09:30:00Z");
        let budgets: Vec<i64> = ["10", "11", "12"]
            .iter()
            .map(|h| {
                let slot = r.next_slot.unwrap();
                match &fire(&mut r, slot, &format!("2026-12-07T{h}:00:01Z")).unwrap()[0] {
                    RuleEvent::RuleFired { budget, .. } => *budget,
                    e => panic!("{e:?}"),
                }
            })
            .collect();
        assert_eq!(budgets, [10_000, 10_000, 5_000], "25 credits a day");
        // A run that charged nothing gives its allotment back.
        let day = at("2026-12-07T12:00:00Z").date_naive();
        for e in r
            .decide(RuleCommand::ReturnBudget {
                run_id: Uuid::nil(),
                day,
                amount: 10_000,
            })
            .unwrap()
        {
            r.apply(&e);
        }
        assert_eq!(r.allotment(r.def.as_ref().unwrap(), day), 10_000);
    }

    #[test]
    fn paused_rules_do_not_fire_and_resume_from_now() {
        let mut r = rule(CatchUp::Once, "2026-12-07T09:30:00Z");
        r.apply(&r.decide(RuleCommand::Pause).unwrap()[0]);
        let slot = r.next_slot.unwrap();
        assert_eq!(
            fire(&mut r, slot, "2026-12-07T10:00:01Z"),
            Err(AutomationError::Paused)
        );
        r.apply(
            &r.decide(RuleCommand::Resume {
                now: at("2026-12-07T15:10:00Z"),
            })
            .unwrap()[0],
        );
        assert_eq!(r.next_slot, Some(at("2026-12-07T16:00:00Z")));
    }
}
