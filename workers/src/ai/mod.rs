//! Calls to an OpenAI-compatible API (`/embeddings`, `/chat/completions`),
//! the way a provider's clients must behave: a timeout per request, 429 and
//! 5xx retried with backoff that honours `Retry-After`, every answer checked
//! before use (a malformed body, a wrong number of vectors or a vector of
//! the wrong width is an error, never a panic), tokens and cost counted.

use serde_json::{Value, json};
use std::time::Duration;

/// How provider calls behave (flags and environment of `igny8 workers`).
#[derive(Debug, Clone)]
pub struct AiOptions {
    /// Longest one request may take.
    pub timeout: Duration,
    /// Tries per request (429, 5xx, timeouts and connection errors are retried).
    pub max_attempts: u32,
    /// Longest wait between tries (a longer `Retry-After` fails the call).
    pub max_retry_wait: Duration,
    /// Inputs per `/embeddings` request (OpenAI accepts up to 2048).
    pub embed_batch: usize,
    /// Provider calls in flight at once, in total (text generation).
    pub max_concurrent: usize,
    /// Provider calls in flight at once per account (one account's batch
    /// of 100 cannot starve the others).
    pub max_concurrent_per_account: usize,
}

impl Default for AiOptions {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(60),
            max_attempts: 4,
            max_retry_wait: Duration::from_secs(30),
            embed_batch: 512,
            max_concurrent: 32,
            max_concurrent_per_account: 16,
        }
    }
}

/// rustls needs its crypto provider chosen once per process (ring; see
/// STACK-NOTES). Safe to call again.
pub fn install_crypto() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// The HTTP client of the workers.
pub fn http_client() -> reqwest::Client {
    install_crypto();
    reqwest::Client::builder()
        .user_agent(concat!("igny8/", env!("CARGO_PKG_VERSION")))
        .build()
        .unwrap_or_default()
}

#[derive(Debug, thiserror::Error)]
pub enum AiError {
    #[error("the provider did not answer within {0:?}")]
    Timeout(Duration),
    #[error("the provider answered HTTP {status}: {body}")]
    Status { status: u16, body: String },
    #[error("the provider could not be reached: {0}")]
    Transport(String),
    #[error("the provider's answer is malformed: {0}")]
    Malformed(String),
    #[error("the provider asked to wait {0:?} (more than the configured maximum)")]
    RetryTooLong(Duration),
    #[error(
        "the model stopped at its output limit (finish_reason: length); the answer is incomplete"
    )]
    Truncated,
    #[error("the model refused: {0}")]
    Refused(String),
}

/// Tokens used by a call.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
}

impl Usage {
    pub fn total(&self) -> u64 {
        self.prompt_tokens + self.completion_tokens
    }
    fn add(&mut self, v: &Value) {
        let prompt = v["prompt_tokens"].as_u64().unwrap_or(0);
        let total = v["total_tokens"].as_u64().unwrap_or(prompt);
        self.prompt_tokens += prompt;
        self.completion_tokens += v["completion_tokens"]
            .as_u64()
            .unwrap_or(total.saturating_sub(prompt));
    }
}

/// Prices per million tokens in USD (input, output), for the usage log;
/// unknown models cost 0 there (the provider's bill is the reference).
const PRICES: &[(&str, f64, f64)] = &[
    ("text-embedding-3-small", 0.02, 0.0),
    ("text-embedding-3-large", 0.13, 0.0),
    ("text-embedding-ada-002", 0.10, 0.0),
    ("gpt-4o-mini", 0.15, 0.60),
    ("gpt-4o", 2.50, 10.00),
    ("gpt-4.1-mini", 0.40, 1.60),
    ("gpt-4.1", 2.00, 8.00),
];

/// Cost of `usage` on `model` in micro-dollars.
pub fn cost_usd_micros(model: &str, usage: Usage) -> i64 {
    PRICES
        .iter()
        .find(|(m, ..)| *m == model)
        .map(|(_, i, o)| {
            (usage.prompt_tokens as f64 * i + usage.completion_tokens as f64 * o).round() as i64
        })
        .unwrap_or(0)
}

/// One account's endpoint.
#[derive(Clone)]
pub struct Provider {
    pub http: reqwest::Client,
    pub base_url: String,
    pub api_key: Option<String>,
    pub options: AiOptions,
}

/// `Retry-After` in seconds (HTTP dates are treated as "soon").
fn retry_after(h: &reqwest::header::HeaderMap) -> Option<Duration> {
    let v = h.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?.trim();
    match v.parse::<f64>() {
        Ok(s) if s.is_finite() && s >= 0.0 => Some(Duration::from_secs_f64(s)),
        _ => Some(Duration::from_secs(1)),
    }
}

impl Provider {
    /// POST `path` with a JSON body; the JSON answer. Retries what a
    /// provider asks to retry; other 4xx fail at once.
    pub async fn post(&self, path: &str, body: &Value) -> Result<Value, AiError> {
        let url = format!("{}/{}", self.base_url.trim_end_matches('/'), path);
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut req = self
                .http
                .post(&url)
                .timeout(self.options.timeout)
                .json(body);
            if let Some(k) = &self.api_key {
                req = req.bearer_auth(k);
            }
            let (err, wait) = match req.send().await {
                Ok(res) => {
                    let status = res.status();
                    let asked = retry_after(res.headers());
                    match res.text().await {
                        Err(e) if e.is_timeout() => (AiError::Timeout(self.options.timeout), None),
                        Err(e) => (AiError::Transport(e.to_string()), None),
                        Ok(text) => {
                            if status.is_success() {
                                return serde_json::from_str(&text)
                                    .map_err(|e| AiError::Malformed(format!("not JSON ({e})")));
                            }
                            let err = AiError::Status {
                                status: status.as_u16(),
                                body: text.chars().take(300).collect(),
                            };
                            if status.as_u16() == 429 || status.is_server_error() {
                                (err, asked)
                            } else {
                                return Err(err);
                            }
                        }
                    }
                }
                Err(e) if e.is_timeout() => (AiError::Timeout(self.options.timeout), None),
                Err(e) => (AiError::Transport(e.to_string()), None),
            };
            self.give_up_or_wait(attempt, err, wait).await?;
        }
    }

    /// After failed try `attempt`: wait before the next one, or give up.
    async fn give_up_or_wait(
        &self,
        attempt: u32,
        err: AiError,
        asked: Option<Duration>,
    ) -> Result<(), AiError> {
        if attempt >= self.options.max_attempts {
            return Err(err);
        }
        let backoff = Duration::from_millis(250u64 << attempt.min(8));
        let wait = asked.unwrap_or(backoff);
        if wait > self.options.max_retry_wait {
            return Err(AiError::RetryTooLong(wait));
        }
        tracing::debug!(attempt, ?wait, error = %err, "provider call retried");
        tokio::time::sleep(wait).await;
        Ok(())
    }

    /// Embeddings of `inputs`, in order (one request; callers batch).
    pub async fn embed(
        &self,
        model: &str,
        inputs: &[String],
    ) -> Result<(Vec<Vec<f32>>, Usage), AiError> {
        let v = self
            .post("embeddings", &json!({"model": model, "input": inputs}))
            .await?;
        let data = v["data"]
            .as_array()
            .ok_or_else(|| AiError::Malformed("no `data` array".into()))?;
        if data.len() != inputs.len() {
            return Err(AiError::Malformed(format!(
                "{} vectors for {} inputs",
                data.len(),
                inputs.len()
            )));
        }
        let mut out: Vec<Option<Vec<f32>>> = vec![None; inputs.len()];
        for (i, d) in data.iter().enumerate() {
            let index = d["index"].as_u64().map(|x| x as usize).unwrap_or(i);
            let vector: Vec<f32> = d["embedding"]
                .as_array()
                .ok_or_else(|| AiError::Malformed(format!("item {i} has no `embedding`")))?
                .iter()
                .map(|x| x.as_f64().filter(|f| f.is_finite()).map(|f| f as f32))
                .collect::<Option<_>>()
                .ok_or_else(|| AiError::Malformed(format!("item {i}: not a vector of numbers")))?;
            let slot = out
                .get_mut(index)
                .ok_or_else(|| AiError::Malformed(format!("index {index} out of range")))?;
            if slot.replace(vector).is_some() {
                return Err(AiError::Malformed(format!("index {index} twice")));
            }
        }
        let vectors: Vec<Vec<f32>> = out.into_iter().flatten().collect();
        let width = vectors.first().map_or(0, Vec::len);
        if width == 0 || vectors.iter().any(|v| v.len() != width) {
            return Err(AiError::Malformed(
                "vectors of different or zero width".into(),
            ));
        }
        let mut usage = Usage::default();
        usage.add(&v["usage"]);
        Ok((vectors, usage))
    }

    /// A chat completion constrained to `schema` (JSON-schema output); the
    /// parsed JSON the model returned.
    pub async fn chat_json(
        &self,
        model: &str,
        system: &str,
        user: &str,
        schema_name: &str,
        schema: &Value,
    ) -> Result<(Value, Usage), AiError> {
        let body = json!({
            "model": model,
            "temperature": 0,
            "messages": [{"role": "system", "content": system}, {"role": "user", "content": user}],
            "response_format": {"type": "json_schema",
                "json_schema": {"name": schema_name, "strict": true, "schema": schema}},
        });
        let v = self.post("chat/completions", &body).await?;
        let choice = &v["choices"][0];
        let msg = &choice["message"];
        if let Some(r) = msg["refusal"].as_str() {
            return Err(AiError::Refused(r.to_string()));
        }
        match choice["finish_reason"].as_str() {
            Some("length") => return Err(AiError::Truncated),
            Some("content_filter") => {
                return Err(AiError::Refused(
                    "the provider's content filter stopped the answer".into(),
                ));
            }
            _ => {}
        }
        let content = msg["content"]
            .as_str()
            .ok_or_else(|| AiError::Malformed("no message content".into()))?;
        let parsed: Value = serde_json::from_str(content)
            .map_err(|e| AiError::Malformed(format!("the content is not JSON ({e})")))?;
        let mut usage = Usage::default();
        usage.add(&v["usage"]);
        Ok((parsed, usage))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prices_and_usage() {
        let u = Usage {
            prompt_tokens: 1_000_000,
            completion_tokens: 0,
        };
        assert_eq!(cost_usd_micros("text-embedding-3-small", u), 20_000);
        assert_eq!(cost_usd_micros("unknown", u), 0);
        let mut x = Usage::default();
        x.add(&json!({"prompt_tokens": 10, "total_tokens": 25}));
        assert_eq!(
            (x.prompt_tokens, x.completion_tokens, x.total()),
            (10, 15, 25)
        );
    }
}
