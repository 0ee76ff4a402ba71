//! Anthropic Messages API, streaming (PROTOCOLS.md §1).

use std::collections::VecDeque;

use reqwest::header::HeaderMap;
use serde_json::{json, Map, Value};

use super::config::Secret;
use super::error::AiError;
use super::sse::SseEvent;
use super::stream::{push_usage, sse_headers, DecoderState};
use super::{endpoint, merged_turns, Decode, Role};
use super::{ChatRequest, StopReason, StreamEvent};

pub const API_VERSION: &str = "2023-06-01";

/// Claude Opus 4.7+ and any 5.x model reject `temperature` ("temperature is deprecated for
/// this model"), so it is left out for them.
pub fn rejects_sampling(model: &str) -> bool {
    let parts: Vec<&str> = model.split('-').collect();
    let Some(family) = parts
        .iter()
        .position(|p| matches!(*p, "opus" | "sonnet" | "haiku"))
    else {
        return false;
    };
    // Old ids put the version before the family (`claude-3-5-sonnet-…`): never affected.
    let nums: Vec<u32> = parts[family + 1..]
        .iter()
        .map_while(|p| p.parse::<u32>().ok())
        .filter(|n| *n < 1000) // skip date snapshots
        .collect();
    match (parts[family], nums.first(), nums.get(1)) {
        (_, Some(major), _) if *major >= 5 => true,
        ("opus", Some(4), Some(minor)) => *minor >= 7,
        _ => false,
    }
}

pub(crate) fn build(
    req: &ChatRequest,
    base: &str,
    key: Option<&Secret>,
) -> Result<(reqwest::Url, HeaderMap, Value), String> {
    let url = endpoint(base, &["v1", "messages"])?;
    let headers = sse_headers(
        key,
        "x-api-key",
        str::to_string,
        &[("anthropic-version", API_VERSION)],
    )?;

    let messages: Vec<Value> = merged_turns(&req.messages)
        .into_iter()
        .map(|(role, content)| {
            let role = match role {
                Role::User => "user",
                Role::Assistant => "assistant",
            };
            json!({"role": role, "content": content})
        })
        .collect();
    let mut body = Map::new();
    body.insert("model".into(), json!(req.model.model));
    body.insert("max_tokens".into(), json!(req.max_tokens.max(1)));
    if !req.system.is_empty() {
        body.insert("system".into(), json!(req.system));
    }
    body.insert("messages".into(), Value::Array(messages));
    body.insert("stream".into(), json!(true));
    if let Some(t) = req.temperature {
        if !rejects_sampling(&req.model.model) {
            body.insert("temperature".into(), json!(t.clamp(0.0, 1.0)));
        }
    }
    Ok((url, headers, Value::Object(body)))
}

pub(crate) struct Decoder {
    s: DecoderState,
    stop_reason: Option<String>,
}

impl Decoder {
    pub fn new(provider: &'static str, key: Option<String>) -> Decoder {
        Decoder {
            s: DecoderState::new(provider, key),
            stop_reason: None,
        }
    }

    fn usage(&mut self, usage: Option<&Value>) {
        let Some(u) = usage else { return };
        let input = u.get("input_tokens").and_then(Value::as_u64);
        // cumulative: the latest is the total
        let output = u.get("output_tokens").and_then(Value::as_u64);
        if input.is_some() || output.is_some() {
            let (i, o) = self.s.usage.unwrap_or((0, 0));
            self.s.usage = Some((input.unwrap_or(i), output.unwrap_or(o)));
        }
    }
}

impl Decode for Decoder {
    fn on_event(&mut self, ev: &SseEvent, out: &mut VecDeque<StreamEvent>) -> Result<(), AiError> {
        if ev.event.as_deref() == Some("ping") {
            return Ok(());
        }
        let data = self.s.frame(&ev.data, "an event")?;
        let name = match ev.event.as_deref() {
            Some(n) => n.to_string(),
            None => data
                .get("type")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string(),
        };
        match name.as_str() {
            "message_start" => self.usage(data.pointer("/message/usage")),
            "content_block_delta"
                if data.pointer("/delta/type").and_then(Value::as_str) == Some("text_delta") =>
            {
                // Thinking, signature and tool-input deltas carry no answer text.
                if let Some(t) = data.pointer("/delta/text").and_then(Value::as_str) {
                    if !t.is_empty() {
                        out.push_back(StreamEvent::Text(t.to_string()));
                    }
                }
            }
            "message_delta" => {
                if let Some(r) = data.pointer("/delta/stop_reason").and_then(Value::as_str) {
                    self.stop_reason = Some(r.to_string());
                }
                self.usage(data.get("usage"));
            }
            "message_stop" => {
                self.s.done = true;
                push_usage(out, self.s.usage);
                let reason = match self.stop_reason.as_deref() {
                    Some("end_turn") | Some("stop_sequence") => StopReason::EndTurn,
                    Some("max_tokens") => StopReason::MaxTokens,
                    Some(other) => StopReason::Other(other.to_string()),
                    None => StopReason::Other("unknown".into()),
                };
                out.push_back(StreamEvent::Stop(reason));
            }
            "error" => return Err(self.s.error(&data)),
            _ => {} // content_block_start/stop and future event types
        }
        Ok(())
    }

    fn is_done(&self) -> bool {
        self.s.done
    }

    fn terminal(&self) -> &'static str {
        "message_stop"
    }
}

#[cfg(test)]
mod tests {
    use super::rejects_sampling;

    #[test]
    fn sampling_rule() {
        assert!(rejects_sampling("claude-opus-4-7"));
        assert!(rejects_sampling("claude-opus-4-8"));
        assert!(rejects_sampling("claude-sonnet-5"));
        assert!(!rejects_sampling("claude-opus-4-5-20251101"));
        assert!(!rejects_sampling("claude-sonnet-4-5"));
        assert!(!rejects_sampling("claude-3-5-sonnet-20241022"));
        assert!(!rejects_sampling("claude-sonnet-4-20250514"));
    }
}
