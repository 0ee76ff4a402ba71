//! Google Gemini `streamGenerateContent?alt=sse` (PROTOCOLS.md §3). The stream has no `[DONE]`:
//! the chunk carrying `finishReason` is the terminal marker.

use std::collections::VecDeque;

use reqwest::header::HeaderMap;
use serde_json::{json, Map, Value};

use super::config::Secret;
use super::error::AiError;
use super::sse::SseEvent;
use super::stream::{push_usage, sse_headers, DecoderState};
use super::{endpoint, merged_turns, Decode, Role};
use super::{ChatRequest, StopReason, StreamEvent};

pub(crate) fn build(
    req: &ChatRequest,
    base: &str,
    key: Option<&Secret>,
) -> Result<(reqwest::Url, HeaderMap, Value), String> {
    // `models/gemini-x` is how Google's own listings name models; accept it.
    let model = req
        .model
        .model
        .strip_prefix("models/")
        .unwrap_or(&req.model.model);
    let last = format!("{model}:streamGenerateContent");
    let mut url = endpoint(base, &["v1beta", "models", &last])?;
    url.set_query(Some("alt=sse"));
    let headers = sse_headers(key, "x-goog-api-key", str::to_string, &[])?;

    let contents: Vec<Value> = merged_turns(&req.messages)
        .into_iter()
        .map(|(role, text)| {
            let role = match role {
                Role::User => "user",
                Role::Assistant => "model",
            };
            json!({"role": role, "parts": [{"text": text}]})
        })
        .collect();
    let mut generation = Map::new();
    generation.insert("maxOutputTokens".into(), json!(req.max_tokens.max(1)));
    if let Some(t) = req.temperature {
        generation.insert("temperature".into(), json!(t.clamp(0.0, 2.0)));
    }
    let mut body = Map::new();
    body.insert("contents".into(), Value::Array(contents));
    if !req.system.is_empty() {
        body.insert(
            "systemInstruction".into(),
            json!({"parts": [{"text": req.system}]}),
        );
    }
    body.insert("generationConfig".into(), Value::Object(generation));
    Ok((url, headers, Value::Object(body)))
}

pub(crate) struct Decoder {
    s: DecoderState,
}

impl Decoder {
    pub fn new(provider: &'static str, key: Option<String>) -> Decoder {
        Decoder {
            s: DecoderState::new(provider, key),
        }
    }
}

impl Decode for Decoder {
    fn on_event(&mut self, ev: &SseEvent, out: &mut VecDeque<StreamEvent>) -> Result<(), AiError> {
        if self.s.done {
            return Ok(());
        }
        let data = self.s.frame(&ev.data, "a data frame")?;
        if data.get("error").is_some_and(|e| !e.is_null()) {
            return Err(self.s.error(&data));
        }
        if let Some(u) = data.get("usageMetadata") {
            let i = u.get("promptTokenCount").and_then(Value::as_u64);
            let o = u.get("candidatesTokenCount").and_then(Value::as_u64);
            if i.is_some() || o.is_some() {
                self.s.usage = Some((i.unwrap_or(0), o.unwrap_or(0)));
            }
        }
        let Some(candidate) = data.pointer("/candidates/0") else {
            if let Some(reason) = data
                .pointer("/promptFeedback/blockReason")
                .and_then(Value::as_str)
            {
                return Err(AiError::StreamError {
                    provider: self.s.provider,
                    kind: "prompt_blocked".into(),
                    message: format!("the prompt was blocked ({reason})"),
                });
            }
            return Ok(());
        };
        let mut text = String::new();
        if let Some(parts) = candidate
            .pointer("/content/parts")
            .and_then(Value::as_array)
        {
            for p in parts {
                if p.get("thought").and_then(Value::as_bool) == Some(true) {
                    continue;
                }
                if let Some(t) = p.get("text").and_then(Value::as_str) {
                    text.push_str(t);
                }
            }
        }
        if !text.is_empty() {
            out.push_back(StreamEvent::Text(text));
        }
        if let Some(reason) = candidate.get("finishReason").and_then(Value::as_str) {
            self.s.done = true;
            push_usage(out, self.s.usage);
            out.push_back(StreamEvent::Stop(match reason {
                "STOP" => StopReason::EndTurn,
                "MAX_TOKENS" => StopReason::MaxTokens,
                other => StopReason::Other(other.to_string()),
            }));
        }
        Ok(())
    }

    fn is_done(&self) -> bool {
        self.s.done
    }

    fn terminal(&self) -> &'static str {
        "a chunk with finishReason"
    }
}
