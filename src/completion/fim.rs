//! The completion request on each provider's own wire format, streamed, so reading stops (and
//! the connection closes) as soon as the post-processor has all it will keep. Nothing is
//! retried: a completion that is late is worthless. Dropping the future closes the connection.

use reqwest::header::{HeaderMap, HeaderValue};
use serde_json::{json, Value};

use crate::ai::sse::SseParser;
use crate::ai::{AiClient, ChatMessage, ChatRequest, Role, StreamEvent};

use super::context::FimContext;
use super::model::{Endpoint, FimKind};
use super::{post, CompletionError};

/// Error bodies and NDJSON lines are read up to this size.
const MAX_BODY: usize = 64 * 1024;

/// What the model is asked for.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_tokens: u32,
    pub temperature: f32,
}

/// The request body for a fill-in-the-middle endpoint (exact field names of each API).
pub fn body(kind: FimKind, model: &str, ctx: &FimContext, limits: Limits) -> Value {
    let n = limits.max_tokens.max(1);
    let t = limits.temperature;
    match kind {
        FimKind::LlamaCpp => {
            let mut extra: Vec<Value> = ctx
                .snippets
                .iter()
                .map(|s| json!({"filename": s.path, "text": s.text}))
                .collect();
            if !ctx.imports.is_empty() {
                extra.push(json!({"filename": ctx.path, "text": ctx.imports}));
            }
            json!({
                "input_prefix": ctx.prefix,
                "input_suffix": ctx.suffix,
                "input_extra": extra,
                "prompt": "",
                "n_predict": n,
                "temperature": t,
                "stream": true,
                "cache_prompt": true,
            })
        }
        FimKind::Ollama => json!({
            "model": model,
            "prompt": ctx.prompt(),
            "suffix": ctx.suffix,
            // The model's template places prompt and suffix around its FIM tokens; raw mode
            // would bypass it (and with it the suffix).
            "raw": false,
            "stream": true,
            "options": {"num_predict": n, "temperature": t},
        }),
        FimKind::Compatible | FimKind::Mistral | FimKind::DeepSeek => json!({
            "model": model,
            "prompt": ctx.prompt(),
            "suffix": ctx.suffix,
            "max_tokens": n,
            "temperature": t,
            "stream": true,
        }),
    }
}

/// The system prompt for chat-only models.
pub const CHAT_SYSTEM: &str = "You are a code completion engine. The user sends a file with the cursor marked <CURSOR>. \
Answer with exactly the text to insert at <CURSOR> and nothing else: no explanation, no markdown fences, \
no repetition of the code before or after the cursor. Keep it short: finish the current statement or block.";

/// The user message for chat-only models: related snippets, then the file with the marker.
pub fn chat_prompt(ctx: &FimContext) -> String {
    let mut s = String::new();
    for sn in &ctx.snippets {
        s.push_str(&format!("Related file {}:\n{}\n\n", sn.path, sn.text));
    }
    s.push_str(&format!(
        "File {}:\n{}{}{}{}",
        if ctx.path.is_empty() {
            "(untitled)"
        } else {
            &ctx.path
        },
        ctx.imports,
        ctx.prefix,
        post::CURSOR_MARKER,
        ctx.suffix
    ));
    s
}

/// Text out of one streamed event (SSE data or an NDJSON line); `Ok(None)` at the end marker.
fn decode(kind: FimKind, v: &Value) -> Result<(String, bool), String> {
    if let Some(e) = v.get("error") {
        let m = e
            .get("message")
            .and_then(Value::as_str)
            .or_else(|| e.as_str())
            .unwrap_or("error event");
        return Err(m.to_string());
    }
    let s = |v: Option<&Value>| v.and_then(Value::as_str).unwrap_or("").to_string();
    Ok(match kind {
        FimKind::LlamaCpp => (
            s(v.get("content")),
            v.get("stop").and_then(Value::as_bool).unwrap_or(false),
        ),
        FimKind::Ollama => (
            s(v.get("response")),
            v.get("done").and_then(Value::as_bool).unwrap_or(false),
        ),
        FimKind::Compatible | FimKind::DeepSeek => {
            let c = v.pointer("/choices/0");
            (
                s(c.and_then(|c| c.get("text"))),
                c.and_then(|c| c.get("finish_reason"))
                    .is_some_and(|f| !f.is_null()),
            )
        }
        FimKind::Mistral => {
            let c = v.pointer("/choices/0");
            // Streamed chunks carry `delta`; a whole answer carries `message`.
            let text = c.and_then(|c| {
                c.pointer("/delta/content")
                    .or_else(|| c.pointer("/message/content"))
            });
            (
                s(text),
                c.and_then(|c| c.get("finish_reason"))
                    .is_some_and(|f| !f.is_null()),
            )
        }
    })
}

fn error_message(body: &str) -> String {
    let v: Value = serde_json::from_str(body).unwrap_or(Value::Null);
    let m = v
        .pointer("/error/message")
        .or_else(|| v.get("error"))
        .or_else(|| v.get("message"))
        .or_else(|| v.get("detail"))
        .and_then(|m| {
            m.as_str()
                .map(str::to_string)
                .or_else(|| Some(m.to_string()))
        });
    m.unwrap_or_else(|| body.trim().chars().take(300).collect())
}

/// Asks the endpoint for a completion at the cursor of `ctx`; returns the raw text (not yet
/// cleaned), stopping early once [`post::done_early`] holds.
pub async fn fetch(
    http: &reqwest::Client,
    ep: &Endpoint,
    ctx: &FimContext,
    limits: Limits,
) -> Result<String, CompletionError> {
    match ep {
        Endpoint::Fim {
            kind,
            base,
            key,
            model,
        } => {
            fetch_fim(
                http,
                *kind,
                base,
                key.as_ref().map(|k| k.expose()),
                model,
                ctx,
                limits,
            )
            .await
        }
        Endpoint::Chat { model, config } => {
            let mut config = config.clone();
            config.max_retries = 0;
            let client = AiClient::with_http(http.clone(), config);
            let req = ChatRequest {
                model: model.clone(),
                system: CHAT_SYSTEM.to_string(),
                messages: vec![ChatMessage {
                    role: Role::User,
                    content: chat_prompt(ctx),
                }],
                max_tokens: limits.max_tokens.max(1),
                temperature: Some(limits.temperature),
            };
            let provider = model.provider.display();
            let chat = |source| CompletionError::Chat { provider, source };
            // Dropping this future drops the stream; the token is only for the API's shape.
            let token = tokio_util::sync::CancellationToken::new();
            let mut stream = client.stream(&req, token).await.map_err(chat)?;
            let mut text = String::new();
            while let Some(ev) = stream.next().await {
                match ev.map_err(chat)? {
                    StreamEvent::Text(t) => {
                        text.push_str(&t);
                        // Only these characters can end a completion early: skip the scan otherwise.
                        if t.contains(['\n', ')', ']', '}', '<', '｜'])
                            && post::done_early(&text, ctx)
                        {
                            break;
                        }
                    }
                    StreamEvent::Stop(_) => break,
                    StreamEvent::Usage { .. } => {}
                }
            }
            Ok(text)
        }
    }
}

async fn fetch_fim(
    http: &reqwest::Client,
    kind: FimKind,
    base: &str,
    key: Option<&str>,
    model: &str,
    ctx: &FimContext,
    limits: Limits,
) -> Result<String, CompletionError> {
    let provider = kind.display();
    let scrub = |m: &str| crate::http::scrub(m, key);
    let url = crate::http::endpoint(base, kind.path()).map_err(|message| {
        CompletionError::InvalidBaseUrl {
            provider,
            url: crate::http::redact_url_str(base),
            message,
        }
    })?;
    let redacted = crate::http::redact_url(&url);
    let mut headers = HeaderMap::new();
    if let Some(k) = key {
        let v = crate::http::secret_header(&format!("Bearer {k}")).map_err(|message| {
            CompletionError::InvalidBaseUrl {
                provider,
                url: redacted.clone(),
                message,
            }
        })?;
        headers.insert("authorization", v);
    }
    headers.insert(
        "accept",
        HeaderValue::from_static(if kind == FimKind::Ollama {
            "application/x-ndjson"
        } else {
            "text/event-stream"
        }),
    );
    let body = body(kind, model, ctx, limits);
    tracing::debug!(provider, url = %redacted, "completion request");
    let mut response = http
        .post(url)
        .headers(headers)
        .json(&body)
        .send()
        .await
        .map_err(|e| CompletionError::Connect {
            provider,
            url: redacted.clone(),
            message: scrub(&crate::http::error_chain(&e)),
        })?;
    let status = response.status().as_u16();
    if !response.status().is_success() {
        let body = crate::http::read_capped(response).await;
        return Err(CompletionError::Status {
            provider,
            status,
            message: scrub(&error_message(&body)),
        });
    }
    let content_type = crate::http::content_type(&response);
    let protocol = |m: String| CompletionError::Protocol {
        provider,
        message: scrub(&m),
    };
    if content_type.starts_with("application/json") {
        // A whole answer (a server that ignores `stream`): same fields as one streamed event.
        let body = crate::http::read_capped(response).await;
        let v: Value = serde_json::from_str(&body).map_err(|e| protocol(e.to_string()))?;
        return decode(kind, &v).map(|(t, _)| t).map_err(protocol);
    }
    let ndjson = kind == FimKind::Ollama && !content_type.starts_with("text/event-stream");
    let mut sse = SseParser::new();
    let mut line = Vec::new();
    let mut events = Vec::new();
    let mut text = String::new();
    loop {
        let chunk = response.chunk().await.map_err(|e| {
            protocol(format!(
                "the stream broke: {}",
                crate::http::error_chain(&e)
            ))
        })?;
        let Some(chunk) = chunk else {
            // EOF: llama.cpp ends some streams without a marker; what arrived is the answer.
            return Ok(text);
        };
        let mut values = Vec::new();
        if ndjson {
            for &b in chunk.iter() {
                if b == b'\n' {
                    if !line.iter().all(u8::is_ascii_whitespace) {
                        values.push(
                            serde_json::from_slice::<Value>(&line)
                                .map_err(|e| protocol(e.to_string()))?,
                        );
                    }
                    line.clear();
                } else if line.len() < MAX_BODY {
                    line.push(b);
                } else {
                    return Err(protocol("an NDJSON line over 64 KB".into()));
                }
            }
        } else {
            events.clear();
            sse.feed(&chunk, &mut events).map_err(protocol)?;
            for ev in &events {
                let data = ev.data.trim();
                if data == "[DONE]" {
                    drain(response).await;
                    return Ok(text);
                }
                if data.is_empty() {
                    continue;
                }
                values.push(
                    serde_json::from_str::<Value>(data).map_err(|e| protocol(e.to_string()))?,
                );
            }
        }
        for v in values {
            let (t, end) = decode(kind, &v).map_err(protocol)?;
            text.push_str(&t);
            if end {
                drain(response).await;
                return Ok(text);
            }
            // Only these characters can end a completion early: skip the scan otherwise.
            if t.contains(['\n', ')', ']', '}', '<', '｜']) && post::done_early(&text, ctx) {
                // Dropping the response closes the connection: the server stops generating.
                return Ok(text);
            }
        }
    }
}

/// After the end marker only the body's terminator is left: read it (briefly) so the
/// connection goes back to the pool instead of being closed, saving a connect next time.
async fn drain(mut response: reqwest::Response) {
    let _ = tokio::time::timeout(std::time::Duration::from_millis(20), async {
        let mut n = 0usize;
        while let Ok(Some(c)) = response.chunk().await {
            n += c.len();
            if n > MAX_BODY {
                break;
            }
        }
    })
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_each_dialect() {
        let v = json!({"content": "ab", "stop": false});
        assert_eq!(decode(FimKind::LlamaCpp, &v).unwrap(), ("ab".into(), false));
        let v = json!({"response": "x", "done": true, "done_reason": "stop"});
        assert_eq!(decode(FimKind::Ollama, &v).unwrap(), ("x".into(), true));
        let v = json!({"choices": [{"text": "t", "index": 0, "finish_reason": null}]});
        assert_eq!(decode(FimKind::DeepSeek, &v).unwrap(), ("t".into(), false));
        let v =
            json!({"choices": [{"index": 0, "delta": {"content": "d"}, "finish_reason": "stop"}]});
        assert_eq!(decode(FimKind::Mistral, &v).unwrap(), ("d".into(), true));
        let v = json!({"choices": [{"index": 0, "message": {"role": "assistant", "content": "m"}, "finish_reason": "stop"}]});
        assert_eq!(decode(FimKind::Mistral, &v).unwrap(), ("m".into(), true));
        assert!(decode(FimKind::Ollama, &json!({"error": "model not found"})).is_err());
    }

    #[test]
    fn error_messages_from_any_body() {
        assert_eq!(
            error_message(r#"{"error":{"message":"bad key"}}"#),
            "bad key"
        );
        assert_eq!(error_message(r#"{"error":"no model"}"#), "no model");
        assert_eq!(
            error_message(r#"{"message":"Unauthorized"}"#),
            "Unauthorized"
        );
        assert_eq!(error_message("plain"), "plain");
    }
}
