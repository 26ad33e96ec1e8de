//! Image prompts from an article: one featured-image prompt (slot 0) and
//! up to N in-article prompts (slots 1…N), each placed after one of the
//! article's headings, with alt text and a caption. Offline: made from
//! the title, the primary keyword and the headings; OpenAI-compatible: a
//! chat completion with structured output, its answer trimmed to the
//! limits (and to the headings the article really has).

use crate::ai::{AiError, Provider, cost_usd_micros};
use igny8_commands::writer::html;
use igny8_commands::writer::images::ExtractedPrompt;
use igny8_domain::writer::{MAX_ALT_CHARS, MAX_CAPTION_CHARS, MAX_PROMPT_CHARS, PromptText};
use serde_json::{Value, json};

/// What prompts are made from.
#[derive(Debug, Clone)]
pub struct Article {
    pub title: String,
    pub primary_keyword: String,
    pub html: String,
}

/// The texts of the article's `<h2>`–`<h3>` headings, in order.
pub fn headings(article_html: &str) -> Vec<String> {
    let mut out = vec![];
    let mut rest = article_html;
    while let Some(i) = rest.find("<h") {
        let tail = &rest[i + 2..];
        let level = tail.chars().next().unwrap_or(' ');
        if !('2'..='3').contains(&level) {
            rest = tail;
            continue;
        }
        let close = format!("</h{level}>");
        let Some(end) = tail.find(&close) else { break };
        let text = html::text(&format!("<h{}", &tail[..end]));
        let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
        if !text.is_empty() {
            out.push(text);
        }
        rest = &tail[end..];
    }
    out
}

fn cut(s: &str, max: usize) -> String {
    let s = s.trim();
    let s: String = s.chars().filter(|c| !c.is_control()).collect();
    s.chars().take(max).collect()
}

/// Prompts made locally (deterministic).
pub fn offline(a: &Article, n: usize) -> Vec<ExtractedPrompt> {
    let mut out = vec![ExtractedPrompt {
        slot: 0,
        text: PromptText {
            prompt: cut(
                &format!(
                    "A clean editorial hero image for an article titled \"{}\" about {}, natural light, no text",
                    a.title, a.primary_keyword
                ),
                MAX_PROMPT_CHARS,
            ),
            alt_text: cut(&a.title, MAX_ALT_CHARS),
            caption: String::new(),
            placement: None,
        },
    }];
    for (i, h) in headings(&a.html).into_iter().take(n).enumerate() {
        out.push(ExtractedPrompt {
            slot: i as u32 + 1,
            text: PromptText {
                prompt: cut(
                    &format!(
                        "An illustrative photo showing {h}, in the context of {}, no text",
                        a.primary_keyword
                    ),
                    MAX_PROMPT_CHARS,
                ),
                alt_text: cut(&h, MAX_ALT_CHARS),
                caption: cut(&h, MAX_CAPTION_CHARS),
                placement: Some(cut(&h, 300)),
            },
        });
    }
    out
}

fn schema() -> Value {
    let image = |with_heading: bool| {
        let mut req = vec!["prompt", "alt_text", "caption"];
        let mut props = json!({"prompt": {"type": "string"}, "alt_text": {"type": "string"},
                               "caption": {"type": "string"}});
        if with_heading {
            req.insert(0, "heading");
            props["heading"] = json!({"type": "string"});
        }
        json!({"type": "object", "additionalProperties": false, "required": req, "properties": props})
    };
    json!({"type": "object", "additionalProperties": false, "required": ["featured", "images"],
           "properties": {"featured": image(false), "images": {"type": "array", "items": image(true)}}})
}

/// Prompts by the account's chat model; tokens and cost.
pub async fn openai(
    p: &Provider,
    model: &str,
    a: &Article,
    n: usize,
) -> Result<(Vec<ExtractedPrompt>, u64, i64), AiError> {
    let hs = headings(&a.html);
    let n = n.min(hs.len());
    let text: String = html::text(&a.html).chars().take(6000).collect();
    let system = "You write prompts for an image model that illustrate an article. Answer only with JSON \
                  matching the schema. Prompts describe a photo or illustration without any text in it; \
                  alt_text describes the image for a screen reader (at most 125 characters); captions are one short sentence.";
    let user = format!(
        "Article title: {}\nPrimary keyword: {}\nHeadings:\n{}\n\nWrite one featured image and exactly {n} in-article images, \
         each for a different heading from the list (copy the heading exactly).\n\nArticle text:\n{text}",
        a.title,
        a.primary_keyword,
        hs.iter()
            .map(|h| format!("- {h}"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    let (v, usage) = p
        .chat_json(model, system, &user, "image_prompts", &schema())
        .await?;
    let field = |x: &Value, k: &str, max: usize| cut(x[k].as_str().unwrap_or(""), max);
    let featured = &v["featured"];
    let fp = field(featured, "prompt", MAX_PROMPT_CHARS);
    if fp.is_empty() {
        return Err(AiError::Malformed("no featured image prompt".into()));
    }
    let mut out = vec![ExtractedPrompt {
        slot: 0,
        text: PromptText {
            prompt: fp,
            alt_text: field(featured, "alt_text", MAX_ALT_CHARS),
            caption: field(featured, "caption", MAX_CAPTION_CHARS),
            placement: None,
        },
    }];
    let norm = |s: &str| s.trim().to_lowercase();
    for img in v["images"].as_array().into_iter().flatten() {
        if out.len() > n {
            break;
        }
        let prompt = field(img, "prompt", MAX_PROMPT_CHARS);
        let asked = field(img, "heading", 300);
        // The heading as the article has it (a model may change its case).
        let Some(heading) = hs.iter().find(|h| norm(h) == norm(&asked)) else {
            continue;
        };
        if prompt.is_empty() {
            continue;
        }
        out.push(ExtractedPrompt {
            slot: out.len() as u32,
            text: PromptText {
                prompt,
                alt_text: field(img, "alt_text", MAX_ALT_CHARS),
                caption: field(img, "caption", MAX_CAPTION_CHARS),
                placement: Some(heading.clone()),
            },
        });
    }
    Ok((out, usage.total(), cost_usd_micros(model, usage)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offline_prompts_follow_the_headings() {
        let a = Article {
            title: "Trail shoes".into(),
            primary_keyword: "trail running shoes".into(),
            html: "<p>x</p><h2>Grip &amp; soles</h2><p>y</p><h3>Fit</h3><h2>Price</h2>".into(),
        };
        assert_eq!(headings(&a.html), vec!["Grip & soles", "Fit", "Price"]);
        let p = offline(&a, 2);
        assert_eq!(p.len(), 3);
        assert_eq!(p[0].text.placement, None);
        assert_eq!(p[2].text.placement.as_deref(), Some("Fit"));
        assert!(p.iter().all(|x| x.text.check().is_ok()));
        assert_eq!(offline(&a, 6).len(), 4, "no more than the headings");
    }
}
