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
    /// Whole credits per operation on this plan.
    pub credit_costs: CreditCosts,
}

/// What each operation costs, in whole credits (the seeds' table; a plan
/// may price them differently).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct CreditCosts {
    /// One keyword clustering run (any strategy).
    pub clustering: i64,
    /// One content idea.
    pub idea: i64,
    /// Content, per 500 words delivered (rounded up).
    pub content_per_500_words: i64,
    /// One image prompt, in milli-credits (the seeds: 0.5 credit).
    pub image_prompt_milli: i64,
    /// One stored image of basic quality.
    pub image_basic: i64,
    /// One stored image of premium quality.
    pub image_premium: i64,
}

/// The seeds' costs.
pub const SEED_COSTS: CreditCosts = CreditCosts {
    clustering: 10,
    idea: 1,
    content_per_500_words: 1,
    image_prompt_milli: 500,
    image_basic: 1,
    image_premium: 4,
};

pub const DEFAULT_PLAN: &str = "free";

pub const PLANS: &[Plan] = &[
    Plan {
        id: "free",
        name: "Free",
        price_usd_cents: 0,
        included_credits: 250,
        max_sites: Some(1),
        credit_costs: SEED_COSTS,
    },
    Plan {
        id: "starter",
        name: "Starter",
        price_usd_cents: 2900,
        included_credits: 2_000,
        max_sites: Some(3),
        credit_costs: SEED_COSTS,
    },
    Plan {
        id: "growth",
        name: "Growth",
        price_usd_cents: 9900,
        included_credits: 10_000,
        max_sites: Some(10),
        credit_costs: SEED_COSTS,
    },
    Plan {
        id: "scale",
        name: "Scale",
        price_usd_cents: 29900,
        included_credits: 50_000,
        max_sites: None,
        // Volume discount: the largest plan clusters for less.
        credit_costs: CreditCosts {
            clustering: 8,
            ..SEED_COSTS
        },
    },
];

impl Plan {
    /// The included credits in milli-credits.
    pub fn included_milli(&self) -> i64 {
        self.included_credits * super::MILLI
    }
}

/// Milli-credits a clustering run costs an account on `plan` (the default
/// plan's price when the plan is unknown).
pub fn clustering_cost_milli(plan_id: Option<&str>) -> i64 {
    plan_id
        .and_then(plan)
        .or_else(|| plan(DEFAULT_PLAN))
        .map_or(SEED_COSTS.clustering, |p| p.credit_costs.clustering)
        * super::MILLI
}

/// The costs of `plan_id` (the default plan's when it is unknown).
pub fn costs(plan_id: Option<&str>) -> CreditCosts {
    plan_id
        .and_then(plan)
        .or_else(|| plan(DEFAULT_PLAN))
        .map_or(SEED_COSTS, |p| p.credit_costs)
}

/// Milli-credits `ideas` ideas cost on `plan`.
pub fn ideas_cost_milli(plan_id: Option<&str>, ideas: u64) -> i64 {
    costs(plan_id).idea * super::MILLI * ideas.min(1_000_000) as i64
}

/// Milli-credits an article of `words` words costs on `plan`: per 500
/// words, rounded up (an empty article costs nothing).
pub fn content_cost_milli(plan_id: Option<&str>, words: u64) -> i64 {
    costs(plan_id).content_per_500_words * super::MILLI * words.min(10_000_000).div_ceil(500) as i64
}

/// Milli-credits `prompts` image prompts cost on `plan`.
pub fn image_prompts_cost_milli(plan_id: Option<&str>, prompts: u64) -> i64 {
    costs(plan_id).image_prompt_milli * prompts.min(1_000_000) as i64
}

/// Milli-credits one stored image costs on `plan` (`premium`: the premium price).
pub fn image_cost_milli(plan_id: Option<&str>, premium: bool) -> i64 {
    let c = costs(plan_id);
    (if premium {
        c.image_premium
    } else {
        c.image_basic
    }) * super::MILLI
}

pub fn plan(id: &str) -> Option<&'static Plan> {
    PLANS.iter().find(|p| p.id == id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_is_priced_per_started_500_words() {
        let m = super::super::MILLI;
        assert_eq!(content_cost_milli(None, 0), 0);
        assert_eq!(content_cost_milli(None, 1), m);
        assert_eq!(content_cost_milli(None, 500), m);
        assert_eq!(content_cost_milli(None, 501), 2 * m);
        assert_eq!(content_cost_milli(Some("scale"), 1500), 3 * m);
        assert_eq!(ideas_cost_milli(None, 6), 6 * m);
        assert_eq!(image_prompts_cost_milli(None, 3), 1500);
        assert_eq!(image_cost_milli(None, false), m);
        assert_eq!(image_cost_milli(Some("growth"), true), 4 * m);
    }

    #[test]
    fn clustering_is_priced_by_the_plan() {
        assert_eq!(
            clustering_cost_milli(Some("free")),
            10 * super::super::MILLI
        );
        assert_eq!(
            clustering_cost_milli(Some("scale")),
            8 * super::super::MILLI
        );
        assert_eq!(clustering_cost_milli(None), 10 * super::super::MILLI);
        assert_eq!(
            clustering_cost_milli(Some("gone")),
            10 * super::super::MILLI
        );
    }
}
