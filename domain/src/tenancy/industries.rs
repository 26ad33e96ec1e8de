//! The seeds' global industry templates (`igny8_industries`,
//! `igny8_industry_sectors`): an industry and the sectors it suggests for
//! a new site (at most five, the site's sector limit).

/// An industry template.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Industry {
    pub slug: &'static str,
    pub name: &'static str,
    pub description: &'static str,
    /// Suggested sectors (1 to 5).
    pub sectors: &'static [&'static str],
}

pub const INDUSTRIES: &[Industry] = &[
    Industry {
        slug: "travel",
        name: "Travel & Tourism",
        description: "Destinations, trips and where to stay",
        sectors: &["Destinations", "Hotels", "Flights", "Travel Tips", "Tours"],
    },
    Industry {
        slug: "ecommerce",
        name: "E-commerce & Retail",
        description: "Products, buying guides and reviews",
        sectors: &["Product Reviews", "Buying Guides", "Deals", "Comparisons"],
    },
    Industry {
        slug: "health",
        name: "Health & Wellness",
        description: "Conditions, nutrition and healthy living",
        sectors: &[
            "Nutrition",
            "Fitness",
            "Mental Health",
            "Conditions",
            "Sleep",
        ],
    },
    Industry {
        slug: "finance",
        name: "Finance",
        description: "Money, investing and personal finance",
        sectors: &["Investing", "Budgeting", "Credit", "Insurance", "Taxes"],
    },
    Industry {
        slug: "technology",
        name: "Technology & SaaS",
        description: "Software, gadgets and how-tos",
        sectors: &["Software", "Gadgets", "How-to Guides", "Security"],
    },
    Industry {
        slug: "food",
        name: "Food & Restaurants",
        description: "Recipes, cooking and dining out",
        sectors: &["Recipes", "Cooking Tips", "Restaurants", "Drinks"],
    },
    Industry {
        slug: "real-estate",
        name: "Real Estate",
        description: "Buying, selling and renting homes",
        sectors: &["Buying", "Selling", "Renting", "Mortgages"],
    },
    Industry {
        slug: "education",
        name: "Education",
        description: "Learning, courses and careers",
        sectors: &["Courses", "Study Tips", "Careers", "Languages"],
    },
    Industry {
        slug: "home-garden",
        name: "Home & Garden",
        description: "Home improvement, decor and gardening",
        sectors: &["DIY", "Decor", "Gardening", "Cleaning"],
    },
];

/// The industry with `slug`.
pub fn industry(slug: &str) -> Option<&'static Industry> {
    INDUSTRIES.iter().find(|i| i.slug == slug)
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_industry_suggests_one_to_five_distinct_sectors() {
        for i in super::INDUSTRIES {
            assert!((1..=5).contains(&i.sectors.len()), "{}", i.slug);
            let set: std::collections::BTreeSet<_> = i.sectors.iter().collect();
            assert_eq!(set.len(), i.sectors.len(), "{}", i.slug);
        }
        assert_eq!(super::industry("travel").unwrap().name, "Travel & Tourism");
    }
}
