//! The plan catalogue. Prices in US cents, credits as whole numbers.

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Plan {
    pub id: &'static str,
    pub name: &'static str,
    pub price_usd_cents: i64,
    /// Whole credits granted when a period starts.
    pub included_credits: i64,
    /// `None`: unlimited.
    pub max_sites: Option<u32>,
}

pub const DEFAULT_PLAN: &str = "free";

pub const PLANS: &[Plan] = &[
    Plan {
        id: "free",
        name: "Free",
        price_usd_cents: 0,
        included_credits: 250,
        max_sites: Some(1),
    },
    Plan {
        id: "starter",
        name: "Starter",
        price_usd_cents: 2900,
        included_credits: 2_000,
        max_sites: Some(3),
    },
    Plan {
        id: "growth",
        name: "Growth",
        price_usd_cents: 9900,
        included_credits: 10_000,
        max_sites: Some(10),
    },
    Plan {
        id: "scale",
        name: "Scale",
        price_usd_cents: 29900,
        included_credits: 50_000,
        max_sites: None,
    },
];

impl Plan {
    /// The included credits in milli-credits.
    pub fn included_milli(&self) -> i64 {
        self.included_credits * super::MILLI
    }
}

pub fn plan(id: &str) -> Option<&'static Plan> {
    PLANS.iter().find(|p| p.id == id)
}
