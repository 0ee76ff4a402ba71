//! OpenAI Chat Completions streaming (PROTOCOLS.md §2, §4), also spoken by Groq, OpenRouter,
//! Ollama (`/v1`) and any OpenAI-compatible server.

use std::collections::VecDeque;

use reqwest::header::{HeaderMap, HeaderValue};
use serde_json::{json, Map, Value};

use super::config::Secret;
use super::error::AiError;
use super::model_id::Provider;
use super::sse::SseEvent;
use super::stream::{push_usage, sse_headers, DecoderState};
use super::{endpoint, Decode, Role};
use super::{ChatRequest, StopReason, StreamEvent};

/// OpenAI reasoning models (o-series, gpt-5*) refuse `max_tokens` and non-default temperature.
pub fn is_reasoning_model(model: &str) -> bool {
    let m = model.to_ascii_lowercase();
    let series = |p: &str| m == p || m.starts_with(&format!("{p}-"));
    series("o1") || series("o3") || series("o4") || m.starts_with("gpt-5")
}

pub(crate) fn build(
    req: &ChatRequest,
    base: &str,
    key: Option<&Secret>,
) -> Result<(reqwest::Url, HeaderMap, Value), String> {
    let url = endpoint(base, &["chat", "completions"])?;
    let mut headers = sse_headers(key, "authorization", |k| format!("Bearer {k}"), &[])?;
    if req.model.provider == Provider::OpenRouter {
        // Attribution only (not auth): shows the app name in the OpenRouter dashboard.
        headers.insert("x-title", HeaderValue::from_static("builder-lsp"));
    }

    let mut messages = Vec::with_capacity(req.messages.len() + 1);
    if !req.system.is_empty() {
        messages.push(json!({"role": "system", "content": req.system}));
    }
    for m in &req.messages {
        let role = match m.role {
            Role::User => "user",
            Role::Assistant => "assistant",
        };
        messages.push(json!({"role": role, "content": m.content}));
    }
    let reasoning = req.model.provider == Provider::OpenAi && is_reasoning_model(&req.model.model);
    let mut body = Map::new();
    body.insert("model".into(), json!(req.model.model));
    body.insert("messages".into(), Value::Array(messages));
    body.insert("stream".into(), json!(true));
    body.insert("stream_options".into(), json!({"include_usage": true}));
    let max = json!(req.max_tokens.max(1));
    if reasoning {
        body.insert("max_completion_tokens".into(), max);
    } else {
        body.insert("max_tokens".into(), max);
        if let Some(t) = req.temperature {
            body.insert("temperature".into(), json!(t.clamp(0.0, 2.0)));
        }
    }
    Ok((url, headers, Value::Object(body)))
}

pub(crate) struct Decoder {
    s: DecoderState,
    finish_reason: Option<String>,
}

impl Decoder {
    pub fn new(provider: &'static str, key: Option<String>) -> Decoder {
        Decoder {
            s: DecoderState::new(provider, key),
            finish_reason: None,
        }
    }

    fn finish(&mut self, out: &mut VecDeque<StreamEvent>) {
        self.s.done = true;
        push_usage(out, self.s.usage);
        let reason = match self.finish_reason.as_deref() {
            Some("stop") => StopReason::EndTurn,
            Some("length") => StopReason::MaxTokens,
            Some(other) => StopReason::Other(other.to_string()),
            None => StopReason::Other("unknown".into()),
        };
        out.push_back(StreamEvent::Stop(reason));
    }

    fn read_usage(u: &Value) -> Option<(u64, u64)> {
        let i = u.get("prompt_tokens").and_then(Value::as_u64);
        let o = u.get("completion_tokens").and_then(Value::as_u64);
        (i.is_some() || o.is_some()).then(|| (i.unwrap_or(0), o.unwrap_or(0)))
    }
}

fn truthy(v: Option<&Value>) -> Option<&Value> {
    v.filter(|v| !v.is_null() && *v != &Value::Bool(false))
}

impl Decode for Decoder {
    fn on_event(&mut self, ev: &SseEvent, out: &mut VecDeque<StreamEvent>) -> Result<(), AiError> {
        if ev.data.trim() == "[DONE]" {
            self.finish(out);
            return Ok(());
        }
        let data = self.s.frame(&ev.data, "a data frame")?;
        if let Some(err) = truthy(data.get("error")) {
            return Err(self.s.error(err));
        }
        if ev.event.as_deref() == Some("error") {
            return Err(self.s.error(&data));
        }
        let choice = data.pointer("/choices/0");
        if let Some(c) = choice {
            if let Some(err) = truthy(c.get("error")) {
                return Err(self.s.error(err));
            }
            if let Some(t) = c.pointer("/delta/content").and_then(Value::as_str) {
                if !t.is_empty() {
                    out.push_back(StreamEvent::Text(t.to_string()));
                }
            }
            if let Some(r) = c.get("finish_reason").and_then(Value::as_str) {
                if r == "error" {
                    return Err(AiError::StreamError {
                        provider: self.s.provider,
                        kind: "error".into(),
                        message: "the provider ended the answer with finish_reason \"error\""
                            .into(),
                    });
                }
                self.finish_reason = Some(r.to_string());
            }
        }
        if let Some(u) = truthy(data.get("usage")).and_then(Self::read_usage) {
            self.s.usage = Some(u);
        } else if let Some(u) = data.pointer("/x_groq/usage").and_then(Self::read_usage) {
            self.s.usage = Some(u);
        }
        Ok(())
    }

    fn is_done(&self) -> bool {
        self.s.done
    }

    /// A server that closes after `finish_reason` without `[DONE]` still sent a whole answer
    /// (some compatible servers do); only the usage chunk may be missing.
    fn on_eof(&mut self, out: &mut VecDeque<StreamEvent>) -> bool {
        if !self.s.done && self.finish_reason.is_some() {
            tracing::debug!(
                provider = self.s.provider,
                "stream ended without [DONE] after finish_reason"
            );
            self.finish(out);
        }
        self.s.done
    }

    fn terminal(&self) -> &'static str {
        "data: [DONE]"
    }
}
