//! Image providers. Each answers [`Made`]: the bytes as received and the
//! type they were declared as (checked by the caller before anything is
//! stored), the model, and what the provider says the image cost.
//!
//! - offline: a PNG made locally ([`super::offline`]).
//! - OpenAI-compatible `POST {base}/images/generations`: `gpt-image-1`
//!   answers `b64_json` with token usage; `dall-e-3` answers a URL that
//!   expires after an hour, fetched at once through [`Fetcher`].
//! - Runware `POST {base}/v1`: a JSON array of tasks; one
//!   `imageInference` with the client-made `taskUUID` (recorded before
//!   the call), `outputType: base64Data` or a URL, `includeCost`; errors
//!   come per task as `errors[{code, message, parameter, taskUUID}]`.
//!
//! 429, 5xx and timeouts are retried with backoff honouring `Retry-After`
//! ([`Provider::post`]).

use super::fetch::Fetcher;
use crate::ai::{AiError, Provider};
use base64::Engine;
use igny8_domain::writer::ImageQuality;
use serde_json::{Value, json};
use uuid::Uuid;

/// An image as a provider delivered it (not yet checked).
#[derive(Debug, Clone)]
pub struct Made {
    pub bytes: Vec<u8>,
    pub declared: Option<String>,
    pub model: String,
    pub cost_usd_micros: i64,
}

/// Who makes images.
#[derive(Clone)]
pub enum ImageProvider {
    Offline,
    OpenAi {
        api: Provider,
        model: String,
        fetch: Fetcher,
    },
    Runware {
        api: Provider,
        model: String,
        fetch: Fetcher,
    },
}

fn b64(s: &str) -> Result<Vec<u8>, String> {
    let s = s.split_once("base64,").map_or(s, |(_, d)| d);
    base64::engine::general_purpose::STANDARD
        .decode(s.trim())
        .map_err(|e| format!("the provider's base64 image is malformed: {e}"))
}

/// Micro-dollars of `usd` (a provider's float cost).
fn micros(usd: Option<f64>) -> i64 {
    usd.filter(|c| c.is_finite() && *c >= 0.0)
        .map_or(0, |c| (c * 1_000_000.0).round() as i64)
}

impl ImageProvider {
    pub fn name(&self) -> &'static str {
        match self {
            ImageProvider::Offline => "offline",
            ImageProvider::OpenAi { .. } => "openai",
            ImageProvider::Runware { .. } => "runware",
        }
    }

    pub fn model(&self) -> &str {
        match self {
            ImageProvider::Offline => "offline",
            ImageProvider::OpenAi { model, .. } | ImageProvider::Runware { model, .. } => model,
        }
    }

    /// One image of `prompt` at `width`×`height`; `task_uuid` identifies
    /// the call to the provider (Runware's `taskUUID`).
    pub async fn make(
        &self,
        prompt: &str,
        (width, height): (u32, u32),
        quality: ImageQuality,
        task_uuid: Uuid,
    ) -> Result<Made, String> {
        match self {
            ImageProvider::Offline => Ok(Made {
                bytes: super::offline::png(prompt, width, height),
                declared: Some("image/png".into()),
                model: "offline".into(),
                cost_usd_micros: 0,
            }),
            ImageProvider::OpenAi { api, model, fetch } => {
                openai(api, model, fetch, prompt, (width, height), quality).await
            }
            ImageProvider::Runware { api, model, fetch } => {
                runware(api, model, fetch, prompt, (width, height), task_uuid).await
            }
        }
    }
}

fn ai(e: AiError) -> String {
    e.to_string()
}

async fn openai(
    api: &Provider,
    model: &str,
    fetch: &Fetcher,
    prompt: &str,
    (w, h): (u32, u32),
    quality: ImageQuality,
) -> Result<Made, String> {
    let dalle = model.starts_with("dall-e");
    let q = match (dalle, quality) {
        (true, ImageQuality::Basic) => "standard",
        (true, ImageQuality::Premium) => "hd",
        (false, ImageQuality::Basic) => "medium",
        (false, ImageQuality::Premium) => "high",
    };
    let mut body = json!({"model": model, "prompt": prompt.chars().take(4000).collect::<String>(),
                          "n": 1, "size": format!("{w}x{h}"), "quality": q});
    if dalle {
        body["response_format"] = json!("url");
    }
    let v = api.post("images/generations", &body).await.map_err(ai)?;
    let item = &v["data"][0];
    let (bytes, declared) = if let Some(data) = item["b64_json"].as_str() {
        let fmt = v["output_format"].as_str().unwrap_or("png");
        (b64(data)?, Some(format!("image/{fmt}")))
    } else if let Some(url) = item["url"].as_str() {
        fetch.get(url).await.map_err(|e| e.to_string())?
    } else {
        return Err("the provider's answer has neither data[0].b64_json nor data[0].url".into());
    };
    // gpt-image-1 reports tokens ($5 per million text input, $40 per million
    // image output); dall-e-3 is priced per image.
    let u = &v["usage"];
    let cost = if dalle {
        match quality {
            ImageQuality::Basic => 40_000,
            ImageQuality::Premium => 80_000,
        }
    } else {
        let input = u["input_tokens"].as_i64().unwrap_or(0);
        let output = u["output_tokens"].as_i64().unwrap_or(0);
        input * 5 + output * 40
    };
    Ok(Made {
        bytes,
        declared,
        model: model.to_string(),
        cost_usd_micros: cost,
    })
}

/// Runware's per-task errors, as one message.
fn runware_errors(v: &Value) -> Option<String> {
    let errors = v["errors"].as_array().filter(|e| !e.is_empty())?;
    Some(
        errors
            .iter()
            .map(|e| {
                let code = e["code"].as_str().unwrap_or("error");
                let msg = e["message"].as_str().unwrap_or("");
                match e["parameter"].as_str() {
                    Some(p) => format!("{code}: {msg} (parameter {p})"),
                    None => format!("{code}: {msg}"),
                }
            })
            .collect::<Vec<_>>()
            .join("; "),
    )
}

async fn runware(
    api: &Provider,
    model: &str,
    fetch: &Fetcher,
    prompt: &str,
    (w, h): (u32, u32),
    task_uuid: Uuid,
) -> Result<Made, String> {
    // Runware takes sizes in multiples of 64 and prompts of 2 to 3,000 characters.
    let (w, h) = ((w / 64).max(2) * 64, (h / 64).max(2) * 64);
    let body = json!([{
        "taskType": "imageInference",
        "taskUUID": task_uuid,
        "positivePrompt": prompt.chars().take(2900).collect::<String>(),
        "model": model,
        "width": w,
        "height": h,
        "numberResults": 1,
        "outputType": "base64Data",
        "outputFormat": "PNG",
        "includeCost": true,
    }]);
    let v = match api.post("v1", &body).await {
        Ok(v) => v,
        Err(AiError::Status { status, body }) => {
            let parsed: Option<Value> = serde_json::from_str(&body).ok();
            return Err(match parsed.as_ref().and_then(runware_errors) {
                Some(e) => format!("Runware refused the task (HTTP {status}): {e}"),
                None => format!("Runware answered HTTP {status}: {body}"),
            });
        }
        Err(e) => return Err(ai(e)),
    };
    if let Some(e) = runware_errors(&v) {
        return Err(format!("Runware refused the task: {e}"));
    }
    let task = v["data"]
        .as_array()
        .and_then(|d| {
            d.iter()
                .find(|t| t["taskUUID"].as_str() == Some(&task_uuid.to_string()))
        })
        .ok_or("Runware's answer has no result for the task")?;
    let (bytes, declared) = if let Some(data) = task["imageBase64Data"].as_str() {
        (b64(data)?, Some("image/png".to_string()))
    } else if let Some(uri) = task["imageDataURI"].as_str() {
        (b64(uri)?, None)
    } else if let Some(url) = task["imageURL"].as_str() {
        fetch.get(url).await.map_err(|e| e.to_string())?
    } else {
        return Err("Runware's result has no image".into());
    };
    Ok(Made {
        bytes,
        declared,
        model: model.to_string(),
        cost_usd_micros: micros(task["cost"].as_f64()),
    })
}
