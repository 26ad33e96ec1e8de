//! Articles and ideas from an OpenAI-compatible chat completions endpoint
//! with JSON-schema structured output. A long article is written in parts
//! (at most [`WORDS_PER_CALL`] words each: the outline's sections split
//! between calls), so no answer needs more than the model's output limit;
//! an answer cut at that limit (`finish_reason: length`) fails the article
//! instead of storing it truncated, and an article shorter than 85% of its
//! target is topped up with new sections (at most two more calls).

use super::offline::headings_for;
use super::{Brief, Draft, IdeaSeed};
use crate::ai::{AiError, Provider, Usage, cost_usd_micros};
use igny8_domain::planner::{ContentType, IdeaData, OutlineSection, normalize};
use serde_json::{Value, json};

/// Words one call is asked for at most.
pub const WORDS_PER_CALL: u32 = 1500;

/// The structured output of one part of an article.
pub fn article_schema() -> Value {
    json!({
        "type": "object", "additionalProperties": false,
        "required": ["title", "meta_title", "meta_description", "intro_html", "sections"],
        "properties": {
            "title": {"type": "string"},
            "meta_title": {"type": "string"},
            "meta_description": {"type": "string"},
            "intro_html": {"type": "string"},
            "sections": {"type": "array", "items": {
                "type": "object", "additionalProperties": false,
                "required": ["heading", "level", "html"],
                "properties": {"heading": {"type": "string"}, "level": {"type": "integer"}, "html": {"type": "string"}}
            }}
        }
    })
}

fn system(brief: &Brief) -> String {
    if !brief.instructions.trim().is_empty() {
        return format!(
            "{}\nAnswer only with JSON matching the schema. HTML may use <p>, <h3>, <ul>, <ol>, <li>, <strong>, <em>, <a>, <blockquote>.",
            brief.instructions.trim()
        );
    }
    let tone = if brief.tone.trim().is_empty() {
        "clear and helpful"
    } else {
        brief.tone.trim()
    };
    format!(
        "You are an SEO content writer. Write in the language {lang:?} with a {tone} tone. \
         Answer only with JSON matching the schema. HTML may use <p>, <h3>, <ul>, <ol>, <li>, <strong>, <em>, <a>, <blockquote>. \
         The primary keyword appears in the title, in the first paragraph and in the meta description; \
         meta_title has at most 60 characters and meta_description at most 160.",
        lang = brief.language
    )
}

fn sections_text(sections: &[OutlineSection]) -> String {
    sections
        .iter()
        .map(|s| {
            let pts = if s.key_points.is_empty() {
                String::new()
            } else {
                format!(" (key points: {})", s.key_points.join("; "))
            };
            format!("{} {}{pts}", "#".repeat(s.level as usize), s.heading)
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Calls that top up an article shorter than its target.
pub const MAX_TOP_UPS: usize = 2;

/// Append the answer's sections to `html`; their headings.
fn append_sections(html: &mut String, v: &Value) -> Result<Vec<String>, AiError> {
    let sections = v["sections"]
        .as_array()
        .ok_or_else(|| AiError::Malformed("`sections` is not an array".into()))?;
    let mut headings = vec![];
    for s in sections {
        let heading = s["heading"]
            .as_str()
            .ok_or_else(|| AiError::Malformed("a section has no heading".into()))?;
        let level = s["level"].as_u64().unwrap_or(2).clamp(2, 3);
        let body = s["html"]
            .as_str()
            .ok_or_else(|| AiError::Malformed("a section has no html".into()))?;
        html.push_str(&format!(
            "<h{level}>{}</h{level}>{body}",
            heading.replace('<', "&lt;")
        ));
        headings.push(heading.to_string());
    }
    Ok(headings)
}

/// Write `brief` in one or more calls.
pub async fn article(p: &Provider, model: &str, brief: &Brief) -> Result<Draft, AiError> {
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
    let parts = brief.target_words.div_ceil(WORDS_PER_CALL).max(1) as usize;
    let per_part = outline.len().div_ceil(parts).max(1);
    let chunks: Vec<&[OutlineSection]> = outline.chunks(per_part).collect();
    let words_each = brief.target_words / chunks.len().max(1) as u32;
    let mut usage = Usage::default();
    let mut html = String::new();
    let (mut title, mut meta_title, mut meta_description) =
        (String::new(), String::new(), String::new());
    for (i, chunk) in chunks.iter().enumerate() {
        let first = i == 0;
        let user = format!(
            "Title: {title}\nPrimary keyword: {kw}\nSecondary keywords: {sec}\nContent type: {ct}\n\
             Part {n} of {total} of the article. Write about {words_each} words for these sections{intro}:\n{sections}",
            title = brief.title,
            kw = brief.primary_keyword,
            sec = brief.secondary_keywords.join(", "),
            ct = brief.content_type.as_str(),
            n = i + 1,
            total = chunks.len(),
            intro = if first {
                ", after an introduction (intro_html)"
            } else {
                " (intro_html empty)"
            },
            sections = sections_text(chunk),
        );
        let (v, u) = p
            .chat_json(
                model,
                &system(brief),
                &user,
                "article_part",
                &article_schema(),
            )
            .await?;
        usage.prompt_tokens += u.prompt_tokens;
        usage.completion_tokens += u.completion_tokens;
        let text = |k: &str| -> Result<String, AiError> {
            v[k].as_str()
                .map(str::to_string)
                .ok_or_else(|| AiError::Malformed(format!("`{k}` is not a string")))
        };
        if first {
            title = text("title")?;
            meta_title = text("meta_title")?;
            meta_description = text("meta_description")?;
            html.push_str(&text("intro_html")?);
        }
        append_sections(&mut html, &v)?;
    }
    if title.trim().is_empty() || html.trim().is_empty() {
        return Err(AiError::Malformed("an empty article".into()));
    }
    // A model may write less than it was asked: top the article up with new
    // sections (at most [`MAX_TOP_UPS`] more calls) until it is within 15%
    // of the target.
    let mut headings: Vec<String> = outline.iter().map(|s| s.heading.clone()).collect();
    for _ in 0..MAX_TOP_UPS {
        let words = igny8_commands::writer::html::word_count(&html);
        let target = brief.target_words;
        if f64::from(words) >= f64::from(target) * 0.85 {
            break;
        }
        let missing = (target - words).min(WORDS_PER_CALL);
        let user = format!(
            "Title: {title}\nPrimary keyword: {kw}\nSecondary keywords: {sec}\nContent type: {ct}\n\
             More of the article: it has these sections already: {have}. Write about {missing} words in one to three \
             new sections that continue it without repeating them (intro_html empty).",
            title = brief.title,
            kw = brief.primary_keyword,
            sec = brief.secondary_keywords.join(", "),
            ct = brief.content_type.as_str(),
            have = headings.join("; "),
        );
        let (v, u) = p
            .chat_json(
                model,
                &system(brief),
                &user,
                "article_part",
                &article_schema(),
            )
            .await?;
        usage.prompt_tokens += u.prompt_tokens;
        usage.completion_tokens += u.completion_tokens;
        let before = html.len();
        headings.extend(append_sections(&mut html, &v)?);
        if html.len() == before {
            break;
        }
    }
    Ok(Draft {
        title,
        html,
        meta_title,
        meta_description,
        provider: "openai".into(),
        model: model.to_string(),
        tokens: usage.total(),
        cost_usd_micros: cost_usd_micros(model, usage),
    })
}

/// The structured output of the ideas call.
pub fn ideas_schema() -> Value {
    let types: Vec<&str> = ContentType::ALL.iter().map(|t| t.as_str()).collect();
    json!({
        "type": "object", "additionalProperties": false, "required": ["ideas"],
        "properties": {"ideas": {"type": "array", "items": {
            "type": "object", "additionalProperties": false,
            "required": ["title", "description", "content_type", "primary_keyword", "secondary_keywords", "target_word_count", "outline"],
            "properties": {
                "title": {"type": "string"}, "description": {"type": "string"},
                "content_type": {"type": "string", "enum": types},
                "primary_keyword": {"type": "string"},
                "secondary_keywords": {"type": "array", "items": {"type": "string"}},
                "target_word_count": {"type": "integer"},
                "outline": {"type": "array", "items": {
                    "type": "object", "additionalProperties": false, "required": ["heading", "level", "key_points"],
                    "properties": {"heading": {"type": "string"}, "level": {"type": "integer"},
                                   "key_points": {"type": "array", "items": {"type": "string"}}}
                }}
            }
        }}}
    })
}

/// Up to `n` ideas; proposals whose primary keyword is not one of the
/// cluster's free keywords, or that break the idea's rules, are dropped.
pub async fn ideas(
    p: &Provider,
    model: &str,
    seed: &IdeaSeed,
    n: usize,
    instructions: &str,
) -> Result<(Vec<IdeaData>, u64, i64), AiError> {
    let free: Vec<&String> = seed
        .keywords
        .iter()
        .filter(|k| !seed.taken.contains(&normalize(k)))
        .collect();
    if free.is_empty() {
        return Ok((vec![], 0, 0));
    }
    let intro = if instructions.trim().is_empty() {
        format!("Propose {n} content ideas for this keyword cluster.")
    } else {
        instructions.trim().to_string()
    };
    let user = format!(
        "{intro}\nEach idea's primary keyword is one of these keywords, \
         each used at most once; secondary keywords come from the list too.\nKeywords: {}",
        free.iter()
            .map(|k| k.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    );
    let (v, usage) = p
        .chat_json(
            model,
            "You are an SEO content strategist. Answer only with JSON matching the schema.",
            &user,
            "content_ideas",
            &ideas_schema(),
        )
        .await?;
    let list = v["ideas"]
        .as_array()
        .ok_or_else(|| AiError::Malformed("`ideas` is not an array".into()))?;
    let allowed: std::collections::HashMap<String, &String> =
        free.iter().map(|k| (normalize(k), *k)).collect();
    let mut used = std::collections::HashSet::new();
    let mut out = vec![];
    for i in list {
        if out.len() >= n {
            break;
        }
        let Ok(mut idea) = serde_json::from_value::<IdeaData>(json!({
            "title": i["title"], "description": i["description"], "outline": i["outline"],
            "content_type": i["content_type"], "primary_keyword": i["primary_keyword"],
            "secondary_keywords": i["secondary_keywords"],
            "target_word_count": i["target_word_count"].as_u64().unwrap_or(1500).clamp(300, 5000),
            "cluster_id": null,
        })) else {
            continue;
        };
        let norm = normalize(&idea.primary_keyword);
        let Some(kw) = allowed.get(&norm) else {
            continue;
        };
        if !used.insert(norm) {
            continue;
        }
        idea.primary_keyword = (*kw).clone();
        if idea.check().is_ok() {
            out.push(idea);
        }
    }
    Ok((out, usage.total(), cost_usd_micros(model, usage)))
}
