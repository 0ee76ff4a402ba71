//! What the three streaming wires share: the request's headers and the decoders' frames,
//! provider errors and usage (each provider keeps only what its wire says differently).

use std::collections::VecDeque;

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde_json::Value;

use super::config::Secret;
use super::error::{error_info_from_value, AiError};
use super::StreamEvent;
use crate::http::scrub;

/// Headers of a streaming request: the key (if any) as `key_header`, written by `key_value`,
/// then the wire's fixed `extra` headers, then `accept: text/event-stream`.
pub(crate) fn sse_headers(
    key: Option<&Secret>,
    key_header: &'static str,
    key_value: impl FnOnce(&str) -> String,
    extra: &[(&'static str, &'static str)],
) -> Result<HeaderMap, String> {
    let mut headers = HeaderMap::new();
    if let Some(k) = key {
        let v = super::secret_header(&key_value(k.expose()))?;
        headers.insert(key_header, v);
    }
    for (name, value) in extra {
        headers.insert(
            HeaderName::from_static(name),
            HeaderValue::from_static(value),
        );
    }
    headers.insert("accept", HeaderValue::from_static("text/event-stream"));
    Ok(headers)
}

/// What every decoder keeps: who speaks (for errors), the key to scrub from their messages,
/// the usage reported so far (input, output), and whether the terminal marker was seen.
pub(crate) struct DecoderState {
    pub provider: &'static str,
    pub key: Option<String>,
    pub usage: Option<(u64, u64)>,
    pub done: bool,
}

impl DecoderState {
    pub fn new(provider: &'static str, key: Option<String>) -> DecoderState {
        DecoderState {
            provider,
            key,
            usage: None,
            done: false,
        }
    }

    /// The JSON of one frame; `what` names it in the error ("a data frame", "an event").
    pub fn frame(&self, data: &str, what: &str) -> Result<Value, AiError> {
        serde_json::from_str(data).map_err(|e| AiError::StreamError {
            provider: self.provider,
            kind: "invalid_event".into(),
            message: format!("{what} was not valid JSON ({e})"),
        })
    }

    /// An error the provider sent inside the stream, its message without the key.
    pub fn error(&self, err: &Value) -> AiError {
        let info = error_info_from_value(err);
        AiError::StreamError {
            provider: self.provider,
            kind: info.kind_name(),
            message: scrub(&info.message, self.key.as_deref()),
        }
    }
}

/// Queues the usage, when the stream reported any.
pub(crate) fn push_usage(out: &mut VecDeque<StreamEvent>, usage: Option<(u64, u64)>) {
    if let Some((i, o)) = usage {
        out.push_back(StreamEvent::Usage {
            input_tokens: i,
            output_tokens: o,
        });
    }
}
