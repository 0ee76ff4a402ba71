//! A provider's own model list over HTTP, for the model picker and "Test connection"
//! (`builder.models {list: true}`). One GET per provider, bounded by a short timeout:
//!
//! - OpenAI-style (`openai`, `groq`, `openrouter`, `compatible`): `GET {base}/models` with
//!   `Authorization: Bearer` → `{object: "list", data: [{id, object: "model", created, owned_by}]}`.
//! - Ollama: its native `GET {root}/api/tags` → `{models: [{name, model, modified_at, size, digest,
//!   details}]}`, where `{root}` is the base URL without a final `/v1` (the base may be configured
//!   as `http://host:11434/v1` or `http://host:11434`); a 404 there (a proxy that only speaks the
//!   OpenAI dialect) falls back to `GET {base}/models`.
//! - Anthropic: `GET {base}/v1/models?limit=1000` with `x-api-key` and `anthropic-version`
//!   → `{data: [{id, type: "model", display_name, created_at}], has_more, first_id, last_id}`.
//! - Gemini: `GET {base}/v1beta/models?pageSize=1000` with `x-goog-api-key` (the header, not
//!   `?key=`, so the key is never part of a URL) → `{models: [{name: "models/…",
//!   supportedGenerationMethods}], nextPageToken}`; only models that can `generateContent`.
//!
//! Model ids come back as `provider/model` (what `builder.generate` takes), sorted, deduplicated
//! and capped at [`MAX_LISTED`]. Errors say what answered (status, the provider's own message)
//! and never carry the key: every message goes through [`scrub`].

use std::time::{Duration, Instant};

use reqwest::header::{HeaderMap, HeaderValue};
use serde_json::Value;

use super::config::{AiConfig, ProviderConfig};
use super::error::parse_error_body;
use super::model_id::{Provider, Wire};
use super::{anthropic, endpoint, error_chain, read_capped, redact_url, secret_header};
use crate::http::scrub;

/// Model ids kept per provider (OpenRouter alone lists several hundred).
pub const MAX_LISTED: usize = 200;
/// What `timeoutMs` defaults to: a picker must open quickly even when a server is down.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_millis(3000);
/// Bounds for `timeoutMs`.
pub const MIN_TIMEOUT_MS: u64 = 1;
pub const MAX_TIMEOUT_MS: u64 = 60_000;
/// A model list body is read up to this size (OpenRouter's is about 1 MB with descriptions).
const MAX_LIST_BODY: usize = 16 * 1024 * 1024;
/// Longer ids are not model ids.
const MAX_ID_LEN: usize = 256;

/// Why a provider's models could not be listed. Display never includes a key.
#[derive(Debug, thiserror::Error)]
pub enum ListError {
    #[error("not configured: set {var}")]
    NotConfigured { var: String },
    #[error("no API key: set {var}")]
    MissingKey { var: String },
    #[error("the base URL (from {var}) is not a usable http(s) URL: {message}")]
    InvalidBaseUrl { var: String, message: String },
    #[error("could not connect to {url}: {message}")]
    Connect { url: String, message: String },
    #[error("no answer from {url} within {ms} ms")]
    Timeout { url: String, ms: u64 },
    #[error("HTTP {status}{reason} from {url}: {message}{hint}")]
    Status {
        url: String,
        status: u16,
        /// ` Unauthorized` (with its space), or empty.
        reason: String,
        message: String,
        /// ` (the key in X was rejected)` and the like, or empty.
        hint: String,
    },
    #[error("{url} did not answer with a model list: {message}")]
    BadBody { url: String, message: String },
}

/// The models a provider lists: `provider/model` ids, sorted, deduplicated, at most
/// [`MAX_LISTED`]; `total` counts the distinct ids before the cap.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelList {
    pub models: Vec<String>,
    pub total: usize,
}

/// One provider's listing: the outcome and how long the HTTP exchange took (`None` when no
/// request was sent: not configured, no key).
#[derive(Debug)]
pub struct Probe {
    pub provider: Provider,
    pub result: Result<ModelList, ListError>,
    pub latency: Option<Duration>,
}

/// What `builder.models` adds to a listed provider's entry.
#[derive(Debug, Clone, serde::Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProviderListing {
    /// The provider's own models (`provider/model` ids), sorted, deduplicated, at most 200;
    /// empty when it could not be reached.
    pub listed_models: Vec<String>,
    /// Distinct models the provider listed, before the cap of 200.
    pub listed_count: usize,
    /// The list request succeeded.
    pub reachable: bool,
    /// Why not (HTTP status and the provider's message, or the connection error; never the key).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// How long the list request took; absent when none was sent (not configured, no key).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<u64>,
}

impl From<&Probe> for ProviderListing {
    fn from(p: &Probe) -> ProviderListing {
        let latency_ms = p.latency.map(|d| d.as_millis() as u64);
        match &p.result {
            Ok(list) => ProviderListing {
                listed_models: list.models.clone(),
                listed_count: list.total,
                reachable: true,
                error: None,
                latency_ms,
            },
            Err(e) => ProviderListing {
                listed_models: Vec::new(),
                listed_count: 0,
                reachable: false,
                error: Some(e.to_string()),
                latency_ms,
            },
        }
    }
}

/// The providers a listing covers: `only`, else every configured one (a base URL and, when it
/// needs one, a key), in [`Provider::ALL`] order.
pub fn providers_to_list(config: &AiConfig, only: Option<Provider>) -> Vec<Provider> {
    match only {
        Some(p) => vec![p],
        None => Provider::ALL
            .into_iter()
            .filter(|p| {
                let pc = config.provider(*p);
                pc.base_url.is_some() && (pc.api_key.is_some() || !p.key_required())
            })
            .collect(),
    }
}

/// Lists each provider's models, all at once; each within `timeout`.
pub async fn probe_all(
    http: &reqwest::Client,
    config: &AiConfig,
    providers: &[Provider],
    timeout: Duration,
) -> Vec<Probe> {
    let probes = providers
        .iter()
        .map(|p| probe(http, *p, config.provider(*p), timeout));
    futures::future::join_all(probes).await
}

/// Lists one provider's models within `timeout` (connect, answer and body together).
pub async fn probe(
    http: &reqwest::Client,
    provider: Provider,
    pc: ProviderConfig,
    timeout: Duration,
) -> Probe {
    let requests = match plan(provider, &pc) {
        Ok(r) => r,
        Err(e) => {
            return Probe {
                provider,
                result: Err(e),
                latency: None,
            }
        }
    };
    let key = pc.api_key.as_ref().map(|k| k.expose().to_string());
    let auth = Auth {
        key: key.as_deref(),
        source: &pc.key_source,
    };
    let start = Instant::now();
    let deadline = tokio::time::Instant::now() + timeout;
    let ms = timeout.as_millis() as u64;
    let mut requests = requests.into_iter().peekable();
    let result = loop {
        let Some(req) = requests.next() else {
            break Err(ListError::NotConfigured {
                var: provider.base_var().to_string(),
            });
        };
        super::warn_plain_http(provider, &req.url);
        let url = redact_url(&req.url);
        let r = match tokio::time::timeout_at(deadline, fetch(http, provider, &req, auth)).await {
            Ok(r) => r,
            Err(_) => Err(ListError::Timeout { url, ms }),
        };
        // Ollama's native route missing (an OpenAI-only proxy): try the OpenAI-style one.
        let not_found = matches!(r, Err(ListError::Status { status: 404, .. }));
        if !(not_found && requests.peek().is_some()) {
            break r;
        }
    };
    Probe {
        provider,
        result,
        latency: Some(start.elapsed()),
    }
}

/// The key (to scrub from messages) and where it came from (to name in them).
#[derive(Clone, Copy)]
struct Auth<'a> {
    key: Option<&'a str>,
    source: &'a str,
}

/// How a list answer is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    /// `{data: [{id}]}` (OpenAI, Anthropic and every compatible server).
    Data,
    /// Ollama's `{models: [{name, model}]}`.
    OllamaTags,
    /// Gemini's `{models: [{name: "models/x", supportedGenerationMethods}]}`.
    Gemini,
}

struct ListRequest {
    url: reqwest::Url,
    headers: HeaderMap,
    shape: Shape,
}

/// The request(s) to try, in order; refuses a missing base URL or key before any I/O.
fn plan(provider: Provider, pc: &ProviderConfig) -> Result<Vec<ListRequest>, ListError> {
    let base_var = format!(
        "{} or settings baseUrls.{}",
        provider.base_var(),
        provider.id()
    );
    let Some(base) = pc.base_url.as_deref().filter(|b| !b.trim().is_empty()) else {
        return Err(ListError::NotConfigured {
            var: provider.base_var().to_string(),
        });
    };
    if provider.key_required() && pc.api_key.is_none() {
        return Err(ListError::MissingKey {
            var: pc.key_source.clone(),
        });
    }
    let key = pc.api_key.as_ref().map(|k| k.expose());
    let bad_url = |message: String| ListError::InvalidBaseUrl {
        var: base_var.clone(),
        message: scrub(&message, key),
    };
    let bad_key = |message: String| ListError::InvalidBaseUrl {
        var: pc.key_source.clone(),
        message,
    };
    let mut headers = HeaderMap::new();
    headers.insert("accept", HeaderValue::from_static("application/json"));
    let request = |url, headers, shape| ListRequest {
        url,
        headers,
        shape,
    };
    Ok(match (provider, provider.wire()) {
        (_, Wire::Anthropic) => {
            if let Some(k) = key {
                headers.insert("x-api-key", secret_header(k).map_err(bad_key)?);
            }
            headers.insert(
                "anthropic-version",
                HeaderValue::from_static(anthropic::API_VERSION),
            );
            let mut url = endpoint(base, &["v1", "models"]).map_err(bad_url)?;
            url.set_query(Some("limit=1000"));
            vec![request(url, headers, Shape::Data)]
        }
        (_, Wire::Gemini) => {
            if let Some(k) = key {
                headers.insert("x-goog-api-key", secret_header(k).map_err(bad_key)?);
            }
            let mut url = endpoint(base, &["v1beta", "models"]).map_err(bad_url)?;
            url.set_query(Some("pageSize=1000"));
            vec![request(url, headers, Shape::Gemini)]
        }
        (p, Wire::OpenAi) => {
            if let Some(k) = key {
                let v = secret_header(&format!("Bearer {k}")).map_err(bad_key)?;
                headers.insert("authorization", v);
            }
            let openai = endpoint(base, &["models"]).map_err(bad_url)?;
            if p == Provider::Ollama {
                let tags = endpoint(&ollama_root(base), &["api", "tags"]).map_err(bad_url)?;
                vec![
                    request(tags, headers.clone(), Shape::OllamaTags),
                    request(openai, headers, Shape::Data),
                ]
            } else {
                vec![request(openai, headers, Shape::Data)]
            }
        }
    })
}

/// Ollama's host root: the base URL without a final `/v1` (`http://h:11434/v1` → `http://h:11434`).
fn ollama_root(base: &str) -> String {
    let no_query = base.split(['?', '#']).next().unwrap_or(base);
    let b = no_query.trim_end_matches('/');
    b.strip_suffix("/v1").unwrap_or(b).to_string()
}

async fn fetch(
    http: &reqwest::Client,
    provider: Provider,
    req: &ListRequest,
    auth: Auth<'_>,
) -> Result<ModelList, ListError> {
    let key = auth.key;
    let url = redact_url(&req.url);
    tracing::debug!(provider = provider.id(), url = %url, "model list request");
    let response = http
        .get(req.url.clone())
        .headers(req.headers.clone())
        .send()
        .await
        .map_err(|e| ListError::Connect {
            url: url.clone(),
            message: scrub(&error_chain(&e), key),
        })?;
    let status = response.status();
    tracing::debug!(
        provider = provider.id(),
        status = status.as_u16(),
        "model list response"
    );
    if !status.is_success() {
        let body = read_capped(response).await;
        let info = parse_error_body(&body, status.as_u16());
        let hint = match status.as_u16() {
            401 | 403 if key.is_some() => format!(" (the key in {} was rejected)", auth.source),
            401 | 403 => format!(" (the server wants a key: set {})", auth.source),
            404 => " (check the base URL)".to_string(),
            _ => String::new(),
        };
        return Err(ListError::Status {
            url,
            status: status.as_u16(),
            reason: status
                .canonical_reason()
                .map(|r| format!(" {r}"))
                .unwrap_or_default(),
            message: scrub(&info.message, key),
            hint,
        });
    }
    let body = read_limited(response, MAX_LIST_BODY)
        .await
        .map_err(|message| ListError::BadBody {
            url: url.clone(),
            message: scrub(&message, key),
        })?;
    let value: Value = serde_json::from_slice(&body).map_err(|e| ListError::BadBody {
        url: url.clone(),
        message: format!("not JSON ({e})"),
    })?;
    let ids = ids_of(&value, req.shape).map_err(|message| ListError::BadBody {
        url,
        message: scrub(&message, key),
    })?;
    Ok(finish(provider, ids))
}

/// The body, failing (rather than truncating) past `limit` bytes.
async fn read_limited(mut response: reqwest::Response, limit: usize) -> Result<Vec<u8>, String> {
    let mut buf = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| error_chain(&e))? {
        if buf.len() + chunk.len() > limit {
            return Err(format!("the answer is larger than {} MiB", limit >> 20));
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(buf)
}

/// The model ids in a list answer, as the provider names them.
fn ids_of(v: &Value, shape: Shape) -> Result<Vec<String>, String> {
    let field = match shape {
        Shape::Data => "data",
        Shape::OllamaTags | Shape::Gemini => "models",
    };
    let Some(items) = v.get(field).and_then(Value::as_array) else {
        if v.get("error").is_some() {
            return Err(parse_error_body(&v.to_string(), 200).message);
        }
        return Err(format!("expected a JSON object with a `{field}` array"));
    };
    let text = |item: &Value, k: &str| item.get(k).and_then(Value::as_str).map(str::to_string);
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        let id = match (shape, item) {
            (_, Value::String(s)) => Some(s.clone()),
            (Shape::Data, _) => text(item, "id"),
            (Shape::OllamaTags, _) => text(item, "name").or_else(|| text(item, "model")),
            (Shape::Gemini, _) => {
                let generates = match item
                    .get("supportedGenerationMethods")
                    .and_then(Value::as_array)
                {
                    Some(methods) => methods.iter().any(|m| {
                        matches!(
                            m.as_str(),
                            Some("generateContent" | "streamGenerateContent")
                        )
                    }),
                    None => true,
                };
                text(item, "name")
                    .filter(|_| generates)
                    .map(|n| n.strip_prefix("models/").unwrap_or(&n).to_string())
            }
        };
        if let Some(id) = id {
            out.push(id);
        }
    }
    Ok(out)
}

/// `provider/model` ids: usable ones only, sorted, deduplicated, capped.
fn finish(provider: Provider, ids: Vec<String>) -> ModelList {
    let mut models: Vec<String> = ids
        .into_iter()
        .map(|id| id.trim().to_string())
        .filter(|id| {
            !id.is_empty()
                && id.len() <= MAX_ID_LEN
                && !id.chars().any(|c| c.is_control() || c.is_whitespace())
        })
        .map(|id| format!("{}/{id}", provider.id()))
        .collect();
    models.sort();
    models.dedup();
    let total = models.len();
    models.truncate(MAX_LISTED);
    ModelList { models, total }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn ollama_root_drops_a_final_v1_only() {
        assert_eq!(
            ollama_root("http://127.0.0.1:11434/v1"),
            "http://127.0.0.1:11434"
        );
        assert_eq!(ollama_root("http://h:11434/v1/"), "http://h:11434");
        assert_eq!(ollama_root("http://h:11434"), "http://h:11434");
        assert_eq!(ollama_root("http://h/ollama/v1"), "http://h/ollama");
        assert_eq!(ollama_root("http://h/v1beta"), "http://h/v1beta");
    }

    #[test]
    fn ids_from_each_shape() {
        let openai = json!({"object": "list", "data": [
            {"id": "gpt-4.1", "object": "model", "created": 1, "owned_by": "system"},
            {"id": "gpt-4.1-mini", "object": "model"}, {"object": "model"}, "bare-id"]});
        assert_eq!(
            ids_of(&openai, Shape::Data).unwrap(),
            ["gpt-4.1", "gpt-4.1-mini", "bare-id"]
        );
        let tags = json!({"models": [{"name": "llama3.2:latest", "model": "llama3.2:latest"},
            {"model": "qwen2.5-coder:7b"}]});
        assert_eq!(
            ids_of(&tags, Shape::OllamaTags).unwrap(),
            ["llama3.2:latest", "qwen2.5-coder:7b"]
        );
        let gemini = json!({"models": [
            {"name": "models/gemini-2.5-flash", "supportedGenerationMethods": ["generateContent", "countTokens"]},
            {"name": "models/text-embedding-004", "supportedGenerationMethods": ["embedContent"]},
            {"name": "models/gemini-2.5-pro"}]});
        assert_eq!(
            ids_of(&gemini, Shape::Gemini).unwrap(),
            ["gemini-2.5-flash", "gemini-2.5-pro"]
        );
        assert!(ids_of(&json!({"nope": 1}), Shape::Data)
            .unwrap_err()
            .contains("`data`"));
        assert_eq!(
            ids_of(&json!({"error": {"message": "boom"}}), Shape::Data).unwrap_err(),
            "boom"
        );
    }

    #[test]
    fn finish_sorts_dedupes_drops_bad_ids_and_caps() {
        let l = finish(
            Provider::Groq,
            vec![
                "b".into(),
                "a".into(),
                "b".into(),
                "has space".into(),
                "".into(),
                "openai/gpt-oss-20b".into(),
            ],
        );
        assert_eq!(l.models, ["groq/a", "groq/b", "groq/openai/gpt-oss-20b"]);
        assert_eq!(l.total, 3);
        let many: Vec<String> = (0..500).map(|i| format!("m{i:03}")).collect();
        let l = finish(Provider::OpenRouter, many);
        assert_eq!(l.models.len(), MAX_LISTED);
        assert_eq!(l.total, 500);
        assert_eq!(l.models[0], "openrouter/m000");
    }

    #[test]
    fn plan_refuses_before_any_io() {
        let pc = ProviderConfig::unconfigured(Provider::Compatible);
        assert!(matches!(
            plan(Provider::Compatible, &pc),
            Err(ListError::NotConfigured { .. })
        ));
        let pc = ProviderConfig::unconfigured(Provider::OpenAi);
        let e = plan(Provider::OpenAi, &pc).err().unwrap();
        assert_eq!(e.to_string(), "no API key: set OPENAI_API_KEY");
        let pc = ProviderConfig::unconfigured(Provider::Ollama);
        let reqs = plan(Provider::Ollama, &pc).unwrap();
        let urls: Vec<String> = reqs.iter().map(|r| r.url.to_string()).collect();
        assert_eq!(
            urls,
            [
                "http://127.0.0.1:11434/api/tags",
                "http://127.0.0.1:11434/v1/models"
            ]
        );
    }

    #[test]
    fn status_error_reads_like_a_sentence() {
        let e = ListError::Status {
            url: "http://127.0.0.1:1/v1/models".into(),
            status: 401,
            reason: " Unauthorized".into(),
            message: "Incorrect API key provided: ***".into(),
            hint: " (the key in OPENAI_API_KEY was rejected)".into(),
        };
        assert_eq!(
            e.to_string(),
            "HTTP 401 Unauthorized from http://127.0.0.1:1/v1/models: Incorrect API key provided: *** (the key in OPENAI_API_KEY was rejected)"
        );
    }
}
