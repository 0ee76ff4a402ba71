//! Errors a person can act on, and the mapping from each provider's error bodies to them.
//! Provider messages are scrubbed of the key before they are stored: some servers echo it.

use std::fmt;
use std::time::Duration;

use reqwest::header::HeaderMap;
use serde_json::Value;

use super::model_id::{ModelId, Provider};
use crate::http::{retry, scrub};

/// `provider` fields hold [`Provider::display`] names. Display never includes a key.
/// Match with `..`: variants may gain fields.
#[derive(Debug)]
pub enum AiError {
    MissingKey {
        provider: &'static str,
        var: String,
    },
    /// 401/403 (or Gemini's 400 `API_KEY_INVALID`). `source` says where the key came from.
    Unauthorized {
        provider: &'static str,
        source: String,
        status: u16,
        message: String,
    },
    ModelNotFound {
        model: String,
        message: String,
    },
    RateLimited {
        provider: &'static str,
        retry_after: Option<u64>,
        message: String,
    },
    /// 402, or 429 `insufficient_quota`: waiting does not help, so it is never retried.
    QuotaExceeded {
        provider: &'static str,
        message: String,
    },
    Overloaded {
        provider: &'static str,
    },
    Server {
        provider: &'static str,
        status: u16,
        message: String,
    },
    BadRequest {
        provider: &'static str,
        message: String,
    },
    Connect {
        provider: &'static str,
        url: String,
        message: String,
    },
    StreamCut {
        provider: &'static str,
        message: String,
    },
    StreamError {
        provider: &'static str,
        kind: String,
        message: String,
    },
    Timeout {
        seconds: u64,
    },
    Cancelled,
    UnknownProvider(String),
    InvalidModelId(String),
    NotConfigured {
        provider: &'static str,
        var: String,
    },
    /// The configured base URL does not parse as an http(s) URL.
    InvalidBaseUrl {
        provider: &'static str,
        var: String,
        message: String,
    },
}

fn with_detail(f: &mut fmt::Formatter<'_>, detail: &str) -> fmt::Result {
    if detail.is_empty() {
        Ok(())
    } else {
        write!(f, ": {detail}")
    }
}

impl fmt::Display for AiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AiError::MissingKey { provider, var } => {
                write!(f, "no API key for {provider}: set {var}")
            }
            AiError::Unauthorized {
                provider,
                source,
                status,
                message,
            } => {
                write!(f, "the {provider} key in {source} was rejected ({status})")?;
                with_detail(f, message)
            }
            AiError::ModelNotFound { model, message } => {
                write!(f, "model {model} was not found; check the model id")?;
                with_detail(f, message)
            }
            AiError::RateLimited {
                provider,
                retry_after,
                message,
            } => {
                match retry_after {
                    Some(n) => write!(f, "rate limited by {provider}, retry after {n} s")?,
                    None => write!(f, "rate limited by {provider}; try again later")?,
                }
                with_detail(f, message)
            }
            AiError::QuotaExceeded { provider, message } => {
                write!(f, "{provider} refused the request: out of credit or quota")?;
                with_detail(f, message)
            }
            AiError::Overloaded { provider } => {
                write!(f, "{provider} is overloaded right now; try again in a moment")
            }
            AiError::Server {
                provider,
                status,
                message,
            } => {
                write!(f, "{provider} server error ({status})")?;
                with_detail(f, message)
            }
            AiError::BadRequest { provider, message } => {
                write!(f, "{provider} rejected the request")?;
                with_detail(f, message)
            }
            AiError::Connect {
                provider,
                url,
                message,
            } => {
                write!(f, "could not reach {provider} at {url}")?;
                with_detail(f, message)
            }
            AiError::StreamCut { provider, message } => {
                write!(f, "the answer stream from {provider} broke off: {message}")
            }
            AiError::StreamError {
                provider,
                kind,
                message,
            } => {
                write!(f, "{provider} reported an error mid-answer ({kind})")?;
                with_detail(f, message)
            }
            AiError::Timeout { seconds } => {
                write!(f, "no complete answer within {seconds} s (the total deadline)")
            }
            AiError::Cancelled => f.write_str("cancelled"),
            AiError::UnknownProvider(p) => write!(
                f,
                "unknown provider \"{p}\"; use one of: {} (gemini is an alias of google)",
                Provider::valid_ids()
            ),
            AiError::InvalidModelId(s) => write!(
                f,
                "invalid model id \"{s}\": expected provider/model, e.g. anthropic/claude-sonnet-4-5"
            ),
            AiError::NotConfigured { provider, var } => {
                write!(f, "{provider} is not configured: set {var}")
            }
            AiError::InvalidBaseUrl {
                provider,
                var,
                message,
            } => write!(
                f,
                "the base URL for {provider} (from {var}) is not a usable http(s) URL: {message}"
            ),
        }
    }
}

impl std::error::Error for AiError {}

impl AiError {
    /// Whether asking again later could succeed (the orchestration may offer "retry").
    pub fn retryable(&self) -> bool {
        matches!(
            self,
            AiError::RateLimited { .. }
                | AiError::Overloaded { .. }
                | AiError::Server { .. }
                | AiError::Connect { .. }
                | AiError::StreamCut { .. }
                | AiError::Timeout { .. }
        ) || matches!(self, AiError::StreamError { kind, .. } if stream_kind_retryable(kind))
    }
}

/// In-stream error kinds that mean "try again" (overload, rate limit, server trouble).
pub(crate) fn stream_kind_retryable(kind: &str) -> bool {
    let k = kind.to_ascii_lowercase();
    matches!(
        k.as_str(),
        "overloaded_error"
            | "api_error"
            | "rate_limit_error"
            | "timeout_error"
            | "server_error"
            | "rate_limit_exceeded"
            | "internal_error"
            | "unavailable"
            | "internal"
            | "resource_exhausted"
            | "deadline_exceeded"
    ) || k
        .parse::<u16>()
        .map(retry::status_retryable)
        .unwrap_or(false)
}

/// What an error body says, whatever its shape: Anthropic `{type, error:{type,message}}`,
/// OpenAI-style `{error:{message,type,code}}` (code string or number), Gemini
/// `{error:{code,status,message,details}}` (maybe inside an array), Ollama `{error:"..."}`.
#[derive(Debug, Default)]
pub(crate) struct ErrorInfo {
    pub kind: Option<String>,
    pub code: Option<String>,
    pub status: Option<String>,
    pub message: String,
    pub retry_delay: Option<Duration>,
    pub key_invalid: bool,
}

impl ErrorInfo {
    pub fn mentions(&self, word: &str) -> bool {
        [&self.kind, &self.code, &self.status]
            .iter()
            .any(|v| v.as_deref().is_some_and(|v| v.eq_ignore_ascii_case(word)))
    }

    /// The most specific kind name available, for `StreamError`.
    pub fn kind_name(&self) -> String {
        self.kind
            .clone()
            .or_else(|| self.code.clone())
            .or_else(|| self.status.clone())
            .unwrap_or_else(|| "error".to_string())
    }
}

fn value_string(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Reads an error object (the value of `error`, or a whole Anthropic `error` event).
pub(crate) fn error_info_from_value(v: &Value) -> ErrorInfo {
    let v = match v {
        Value::Array(a) => a.first().unwrap_or(&Value::Null),
        other => other,
    };
    let err = v.get("error").unwrap_or(v);
    let mut info = ErrorInfo::default();
    match err {
        Value::String(s) => info.message = s.clone(),
        Value::Object(_) => {
            info.message = value_string(err.get("message")).unwrap_or_default();
            info.kind = value_string(err.get("type"));
            info.code = value_string(err.get("code"));
            info.status = value_string(err.get("status"));
            if let Some(details) = err.get("details").and_then(Value::as_array) {
                for d in details {
                    if d.get("reason").and_then(Value::as_str) == Some("API_KEY_INVALID") {
                        info.key_invalid = true;
                    }
                    if let Some(delay) = d.get("retryDelay").and_then(Value::as_str) {
                        info.retry_delay = delay
                            .trim()
                            .strip_suffix('s')
                            .and_then(|s| s.parse::<f64>().ok())
                            .filter(|s| s.is_finite() && *s >= 0.0)
                            .map(Duration::from_secs_f64);
                    }
                }
            }
        }
        _ => {}
    }
    if info.message.contains("API key not valid") {
        info.key_invalid = true;
    }
    info
}

pub(crate) fn parse_error_body(body: &str, status: u16) -> ErrorInfo {
    match serde_json::from_str::<Value>(body) {
        Ok(v) if v.get("error").is_some() || v.is_array() => error_info_from_value(&v),
        Ok(v) => ErrorInfo {
            message: value_string(v.get("message")).unwrap_or_else(|| body.trim().to_string()),
            ..ErrorInfo::default()
        },
        Err(_) => ErrorInfo {
            message: if body.trim().is_empty() {
                reqwest::StatusCode::from_u16(status)
                    .ok()
                    .and_then(|s| s.canonical_reason())
                    .unwrap_or("no details")
                    .to_string()
            } else {
                body.trim().to_string()
            },
            ..ErrorInfo::default()
        },
    }
}

fn says_model_missing(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    m.contains("model")
        && [
            "not found",
            "does not exist",
            "not exist",
            "not a valid model",
            "invalid model",
            "unknown model",
            "no such model",
            "try pulling it",
        ]
        .iter()
        .any(|p| m.contains(p))
}

/// A failed attempt: the error plus whether (and when) to try again.
#[derive(Debug)]
pub(crate) struct Failure {
    pub error: AiError,
    pub retryable: bool,
    pub hint: Option<Duration>,
}

impl Failure {
    pub fn fatal(error: AiError) -> Failure {
        Failure {
            error,
            retryable: false,
            hint: None,
        }
    }
    pub fn retry(error: AiError) -> Failure {
        Failure {
            error,
            retryable: true,
            hint: None,
        }
    }
}

/// What an attempt needs to know to turn a non-2xx answer into an [`AiError`].
pub(crate) struct Context<'a> {
    pub model: &'a ModelId,
    pub key_source: &'a str,
    pub key: Option<&'a str>,
    /// Redacted request URL, for the "check the base URL" hint on a bare 404.
    pub url: &'a str,
}

pub(crate) fn classify_status(
    ctx: &Context<'_>,
    status: u16,
    headers: &HeaderMap,
    body: &str,
) -> Failure {
    let provider = ctx.model.provider.display();
    let info = parse_error_body(body, status);
    let message = scrub(&info.message, ctx.key);
    let hint = retry::retry_after(headers).or(info.retry_delay);
    let quota = status == 402 || info.mentions("insufficient_quota");
    let error = match status {
        401 | 403 => AiError::Unauthorized {
            provider,
            source: ctx.key_source.to_string(),
            status,
            message,
        },
        400 if info.key_invalid => AiError::Unauthorized {
            provider,
            source: ctx.key_source.to_string(),
            status,
            message,
        },
        _ if quota => AiError::QuotaExceeded { provider, message },
        429 => AiError::RateLimited {
            provider,
            retry_after: hint.filter(|h| !h.is_zero()).map(retry::ceil_secs),
            message,
        },
        404 => {
            let message = if message.to_ascii_lowercase().contains("model") {
                message
            } else {
                format!(
                    "{message} (if the model id is right, check the base URL: {})",
                    ctx.url
                )
            };
            AiError::ModelNotFound {
                model: ctx.model.to_string(),
                message,
            }
        }
        400 | 422 if says_model_missing(&message) => AiError::ModelNotFound {
            model: ctx.model.to_string(),
            message,
        },
        529 => AiError::Overloaded { provider },
        _ if info.mentions("overloaded_error") => AiError::Overloaded { provider },
        503 if message.to_ascii_lowercase().contains("overloaded") => {
            AiError::Overloaded { provider }
        }
        s if s >= 500 || s == 408 || s == 409 => AiError::Server {
            provider,
            status,
            message,
        },
        400 => AiError::BadRequest { provider, message },
        _ => AiError::BadRequest {
            provider,
            message: format!("HTTP {status}: {message}"),
        },
    };
    let retryable =
        retry::should_retry_header(headers).unwrap_or(!quota && retry::status_retryable(status));
    Failure {
        error,
        retryable,
        hint,
    }
}
