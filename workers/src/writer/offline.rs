//! The offline text provider: deterministic, no network. It proposes
//! ideas from a cluster's keywords and writes structured articles from a
//! brief's outline and keywords that meet the length and meta rules, so
//! the embedded default works end to end. Its text is visibly placeholder
//! text (model `offline`).

use super::{Brief, Draft, IdeaSeed};
use igny8_domain::planner::{ContentType, IdeaData, OutlineSection, normalize};
use igny8_domain::writer::{MAX_META_DESCRIPTION_CHARS, MAX_META_TITLE_CHARS};

/// Upper-case the first letter.
pub fn capitalize(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().collect::<String>() + c.as_str(),
        None => String::new(),
    }
}

/// At most `max` characters, cut at a word boundary.
pub fn truncate_words(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out = String::new();
    for w in s.split_whitespace() {
        let next = if out.is_empty() {
            w.to_string()
        } else {
            format!("{out} {w}")
        };
        if next.chars().count() > max {
            break;
        }
        out = next;
    }
    if out.is_empty() {
        s.chars().take(max).collect()
    } else {
        out.trim_end_matches([',', ':', ';', '-', '–']).to_string()
    }
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The content type a keyword suggests.
fn type_for(keyword: &str, i: usize) -> ContentType {
    let k = normalize(keyword);
    if k.starts_with("how to") || k.contains(" how to ") {
        ContentType::HowTo
    } else if k.contains(" vs ") || k.contains(" versus ") || k.contains(" or ") {
        ContentType::Comparison
    } else if k.contains("review") {
        ContentType::Review
    } else if k.starts_with("best ") || k.starts_with("top ") || k.contains(" ideas") {
        ContentType::Listicle
    } else if i.is_multiple_of(2) {
        ContentType::Guide
    } else {
        ContentType::Post
    }
}

fn title_for(t: ContentType, kw: &str) -> String {
    let k = capitalize(kw);
    match t {
        ContentType::Guide => format!("The Complete Guide to {k}"),
        ContentType::HowTo => format!("{k}: A Step-by-Step Guide"),
        ContentType::Listicle => format!("{k}: 10 Picks Worth Your Time"),
        ContentType::Comparison => format!("{k}: Which One Should You Choose?"),
        ContentType::Review => format!("{k}: An Honest Review"),
        ContentType::Post | ContentType::Page => format!("{k}: What You Need to Know"),
    }
}

/// The default sections of a content type.
pub fn headings_for(t: ContentType) -> Vec<&'static str> {
    match t {
        ContentType::HowTo => vec![
            "What you need before you start",
            "Step 1: prepare",
            "Step 2: do the work",
            "Step 3: check the result",
            "Common mistakes to avoid",
        ],
        ContentType::Listicle => vec![
            "How we chose",
            "The picks",
            "What to look for",
            "Frequently asked questions",
        ],
        ContentType::Comparison => vec![
            "At a glance",
            "Key differences",
            "Which one fits you",
            "The verdict",
        ],
        ContentType::Review => vec![
            "First impressions",
            "What works well",
            "What could be better",
            "Who it is for",
            "The verdict",
        ],
        _ => vec![
            "What it is and why it matters",
            "How to get started",
            "Tips that make a difference",
            "Mistakes to avoid",
            "Frequently asked questions",
        ],
    }
}

fn target_for(t: ContentType) -> u32 {
    match t {
        ContentType::Guide => 2000,
        ContentType::Post | ContentType::Page => 1200,
        _ => 1500,
    }
}

/// Up to `n` ideas for a cluster's keywords (by volume, highest first),
/// skipping keywords `taken` (normal forms) as primary keywords.
pub fn ideas(seed: &IdeaSeed, n: usize) -> Vec<IdeaData> {
    let taken = &seed.taken;
    let mut out = vec![];
    let mut used = std::collections::HashSet::new();
    for (i, kw) in seed.keywords.iter().enumerate() {
        if out.len() >= n {
            break;
        }
        let norm = normalize(kw);
        if taken.contains(&norm) || !used.insert(norm) {
            continue;
        }
        let t = type_for(kw, out.len());
        let secondary: Vec<String> = seed
            .keywords
            .iter()
            .enumerate()
            .filter(|(j, k)| *j != i && normalize(k) != normalize(kw))
            .map(|(_, k)| k.clone())
            .take(5)
            .collect();
        let outline: Vec<OutlineSection> = headings_for(t)
            .into_iter()
            .enumerate()
            .map(|(s, h)| OutlineSection {
                heading: h.to_string(),
                level: 2,
                key_points: secondary
                    .iter()
                    .skip(s % secondary.len().max(1))
                    .take(2)
                    .cloned()
                    .collect(),
            })
            .collect();
        let about = if secondary.is_empty() {
            String::new()
        } else {
            format!(
                ", also covering {}",
                secondary
                    .iter()
                    .take(3)
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        };
        out.push(IdeaData {
            title: truncate_words(&title_for(t, kw), 300),
            description: truncate_words(
                &format!(
                    "A {} on {kw} for readers of this cluster{about}.",
                    t.as_str().replace('_', "-")
                ),
                5000,
            ),
            outline,
            content_type: t,
            primary_keyword: kw.clone(),
            secondary_keywords: secondary,
            target_word_count: target_for(t),
            cluster_id: None,
            author_profile_id: None,
            strategy_id: None,
        });
    }
    out
}

const SENTENCES: &[&str] = &[
    "When it comes to {topic}, {point} deserves careful attention.",
    "Most readers looking into {topic} want clear, practical answers about {point}.",
    "A good rule of thumb is to compare your options side by side before you settle on {point}.",
    "Experience shows that {topic} rewards patience and a little research up front.",
    "Keep {point} in mind, because it shapes the results you can expect.",
    "It also helps to see how {other} relates to {topic}.",
    "Small details such as {point} often make the biggest difference in the end.",
    "Many people overlook {point}, yet it sits at the centre of {topic}.",
    "Start simple, measure what changes, and adjust {point} as you learn.",
    "If you are unsure, ask someone who has dealt with {other} before.",
];

fn sentence(i: usize, topic: &str, point: &str, other: &str) -> String {
    SENTENCES[i % SENTENCES.len()]
        .replace("{topic}", topic)
        .replace("{point}", point)
        .replace("{other}", other)
}

enum Block {
    Heading(u8, String),
    Para(Vec<String>),
    List(bool, Vec<String>),
}

fn words(s: &str) -> usize {
    s.split_whitespace()
        .filter(|w| w.chars().any(char::is_alphanumeric))
        .count()
}

/// A structured article for `brief`: headings from its outline (or the
/// type's default sections), paragraphs, lists for list types, about the
/// target length, the primary keyword in the title, the first paragraph
/// and the meta description.
pub fn article(brief: &Brief) -> Draft {
    let kw = brief.primary_keyword.trim();
    let topic = kw.to_string();
    let title = if normalize(&brief.title).contains(&normalize(kw)) {
        brief.title.trim().to_string()
    } else {
        truncate_words(&format!("{}: {}", capitalize(kw), brief.title.trim()), 300)
    };
    let outline: Vec<OutlineSection> = if brief.outline.is_empty() {
        headings_for(brief.content_type)
            .into_iter()
            .map(|h| OutlineSection {
                heading: h.to_string(),
                level: 2,
                key_points: vec![],
            })
            .collect()
    } else {
        brief.outline.clone()
    };
    let others: Vec<String> = if brief.secondary_keywords.is_empty() {
        vec![topic.clone()]
    } else {
        brief.secondary_keywords.clone()
    };
    let intro = format!(
        "{} is what this {} is about. Below you will find the essentials, practical advice and the questions people ask most often.",
        capitalize(kw),
        brief.content_type.as_str().replace('_', "-")
    );
    let mut blocks = vec![Block::Para(vec![intro.clone()])];
    // Where each section's sentences go (index into `blocks`).
    let mut fill: Vec<(usize, String)> = vec![];
    for (s, sec) in outline.iter().enumerate() {
        blocks.push(Block::Heading(sec.level.clamp(2, 3), sec.heading.clone()));
        let point = sec
            .key_points
            .first()
            .cloned()
            .unwrap_or_else(|| sec.heading.to_lowercase());
        if brief.content_type.lists() {
            let mut items: Vec<String> = sec.key_points.iter().map(|p| capitalize(p)).collect();
            if items.is_empty() {
                items = others.iter().take(3).map(|o| capitalize(o)).collect();
            }
            blocks.push(Block::List(brief.content_type == ContentType::HowTo, items));
        }
        blocks.push(Block::Para(vec![]));
        fill.push((blocks.len() - 1, point));
        let _ = s;
    }
    let closing = format!(
        "That covers the essentials of {kw}. Come back to this page whenever you need a quick reminder."
    );
    blocks.push(Block::Heading(2, "Conclusion".into()));
    blocks.push(Block::Para(vec![closing]));
    let note = "Placeholder text written offline by IGNY8 (model \"offline\"): replace it before publishing.";
    let count = |blocks: &[Block]| -> usize {
        blocks
            .iter()
            .map(|b| match b {
                Block::Heading(_, h) => words(h),
                Block::Para(p) => p.iter().map(|s| words(s)).sum(),
                Block::List(_, items) => items.iter().map(|s| words(s)).sum(),
            })
            .sum::<usize>()
            + words(note)
    };
    let target = brief.target_words as usize;
    let mut i = 0;
    // Secondary keywords take turns in the sentences that name one, so
    // each appears (a count of sentences alone would skip some).
    let mut turn = 0;
    let mut total = count(&blocks);
    // Up to the target, never past it: an article of a 1,500-word target
    // stays within 1,500 words (and its price within 3 credits).
    while !fill.is_empty() {
        let (at, point) = &fill[i % fill.len()];
        let other = &others[turn % others.len()];
        let s = sentence(i, &topic, point, other);
        if total + words(&s) > target {
            break;
        }
        if SENTENCES[i % SENTENCES.len()].contains("{other}") {
            turn += 1;
        }
        total += words(&s);
        if let Block::Para(p) = &mut blocks[*at] {
            p.push(s);
        }
        i += 1;
    }
    let mut html = String::new();
    for b in &blocks {
        match b {
            Block::Heading(l, h) => html.push_str(&format!("<h{l}>{}</h{l}>", escape(h))),
            Block::Para(p) => {
                for chunk in p.chunks(5) {
                    html.push_str(&format!("<p>{}</p>", escape(&chunk.join(" "))));
                }
            }
            Block::List(ordered, items) => {
                let tag = if *ordered { "ol" } else { "ul" };
                html.push_str(&format!("<{tag}>"));
                for it in items {
                    html.push_str(&format!("<li>{}</li>", escape(it)));
                }
                html.push_str(&format!("</{tag}>"));
            }
        }
    }
    html.push_str(&format!("<p><em>{note}</em></p>"));
    let meta_title = {
        let t = truncate_words(&title, MAX_META_TITLE_CHARS);
        if normalize(&t).contains(&normalize(kw)) {
            t
        } else {
            truncate_words(&capitalize(kw), MAX_META_TITLE_CHARS)
        }
    };
    let meta_description = truncate_words(
        &format!(
            "{}: the essentials, practical tips and answers to common questions, in one {}.",
            capitalize(kw),
            brief.content_type.as_str().replace('_', "-")
        ),
        MAX_META_DESCRIPTION_CHARS,
    );
    Draft {
        title,
        html,
        meta_title,
        meta_description,
        provider: "offline".into(),
        model: "offline".into(),
        tokens: 0,
        cost_usd_micros: 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use igny8_commands::writer::html::{sanitize, word_count};

    fn brief(t: ContentType, words: u32) -> Brief {
        Brief {
            title: "Choosing shoes for the trail".into(),
            primary_keyword: "trail running shoes".into(),
            secondary_keywords: vec!["waterproof trail shoes".into(), "trail shoe fit".into()],
            outline: vec![],
            content_type: t,
            target_words: words,
            language: "en".into(),
            tone: String::new(),
            instructions: String::new(),
        }
    }

    #[test]
    fn articles_meet_the_length_and_meta_rules_for_every_type() {
        for t in ContentType::ALL {
            for target in [500, 1500, 3000] {
                let d = article(&brief(t, target));
                let clean = sanitize(&d.html);
                assert_eq!(clean, d.html, "the offline HTML needs no sanitising");
                let n = word_count(&clean) as f64;
                assert!(
                    (n - target as f64).abs() <= target as f64 * 0.15,
                    "{t:?} {target}: {n} words"
                );
                assert!(d.meta_title.chars().count() <= 60, "{}", d.meta_title);
                assert!(d.meta_description.chars().count() <= 160);
                let kw = "trail running shoes";
                assert!(d.title.to_lowercase().contains(kw));
                assert!(d.meta_description.to_lowercase().contains(kw));
                let first_p = clean.split("</p>").next().unwrap().to_lowercase();
                assert!(first_p.contains(kw), "{first_p}");
                if t.lists() {
                    assert!(clean.contains("<li>"), "{t:?} has a list");
                }
                assert!(clean.contains("Placeholder text"));
                assert_eq!(article(&brief(t, target)), d, "deterministic");
            }
        }
    }

    #[test]
    fn ideas_skip_taken_keywords_and_repeat_none() {
        let seed = IdeaSeed {
            keywords: vec![
                "best trail shoes".into(),
                "Best  Trail Shoes".into(),
                "how to clean trail shoes".into(),
                "trail shoes vs road shoes".into(),
            ],
            taken: ["how to clean trail shoes".to_string()]
                .into_iter()
                .collect(),
        };
        let ideas = ideas(&seed, 5);
        let primaries: Vec<&str> = ideas.iter().map(|i| i.primary_keyword.as_str()).collect();
        assert_eq!(
            primaries,
            vec!["best trail shoes", "trail shoes vs road shoes"]
        );
        assert_eq!(ideas[0].content_type, ContentType::Listicle);
        assert_eq!(ideas[1].content_type, ContentType::Comparison);
        for i in &ideas {
            i.check().unwrap();
        }
    }
}
