//! HTTP helpers shared by the model providers (`ai/`), completions and the cloud sandboxes
//! (`sandbox/`): URL building and redaction, secret headers and scrubbing, error text, capped
//! error bodies, and the retry rules (`retry.rs`). None of it is about AI, so it sits below
//! both.

pub mod retry;

use std::time::Duration;

/// Error-body reads are capped: a misbehaving server must not make us buffer megabytes.
const MAX_ERROR_BODY: usize = 64 * 1024;

/// A header value carrying a credential: marked sensitive so it never shows in debug output.
pub fn secret_header(value: &str) -> Result<reqwest::header::HeaderValue, String> {
    let mut v = reqwest::header::HeaderValue::from_str(value)
        .map_err(|_| "the API key contains characters not allowed in a header".to_string())?;
    v.set_sensitive(true);
    Ok(v)
}

/// `base` + path segments, keeping any path prefix the base has (proxies, `/v1`).
pub fn endpoint(base: &str, segments: &[&str]) -> Result<reqwest::Url, String> {
    let mut url = reqwest::Url::parse(base.trim()).map_err(|e| e.to_string())?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!("scheme {} is not http or https", url.scheme()));
    }
    url.set_query(None);
    url.set_fragment(None);
    url.path_segments_mut()
        .map_err(|_| "not a base URL".to_string())?
        .pop_if_empty()
        .extend(segments);
    Ok(url)
}

/// A URL for messages and logs: no user info, query or fragment (where keys could hide).
pub fn redact_url(url: &reqwest::Url) -> String {
    let mut u = url.clone();
    let _ = u.set_username("");
    let _ = u.set_password(None);
    u.set_query(None);
    u.set_fragment(None);
    u.to_string()
}

/// [`redact_url`] for a string that may not parse (then only the part before `?` is kept,
/// minus any `user@`).
pub fn redact_url_str(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(u) => redact_url(&u).trim_end_matches('/').to_string(),
        Err(_) => {
            let no_query = url.split(['?', '#']).next().unwrap_or("");
            match no_query.split_once("://") {
                Some((scheme, rest)) => match rest.rsplit_once('@') {
                    Some((_, host)) => format!("{scheme}://{host}"),
                    None => no_query.to_string(),
                },
                None => no_query.to_string(),
            }
        }
    }
}

/// The HTTP client every AI call should share (one connection pool per process): HTTPS via
/// rustls, a connect timeout, and no overall timeout (streams are long; deadlines are ours).
pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(15))
        .user_agent(concat!("builder-lsp/", env!("CARGO_PKG_VERSION")))
        .build()
        .unwrap_or_else(|e| {
            tracing::warn!("HTTP client setup failed ({e}); using defaults");
            reqwest::Client::new()
        })
}

/// reqwest's error and its causes ("error sending request: … : Connection refused"), without
/// the URL (it is reported separately, redacted).
pub fn error_chain(e: &reqwest::Error) -> String {
    let mut parts = vec![if e.is_timeout() {
        "timed out".to_string()
    } else if e.is_connect() {
        "connection failed".to_string()
    } else {
        "request failed".to_string()
    }];
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        let text = s.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = s.source();
    }
    parts.join(": ")
}

/// The response's content type, lower-cased (`""` when missing or not text).
pub fn content_type(response: &reqwest::Response) -> String {
    response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase()
}

/// An error body, at most 64 KiB of it (a broken endpoint cannot grow memory).
pub async fn read_capped(mut response: reqwest::Response) -> String {
    let mut buf = Vec::new();
    while let Ok(Some(chunk)) = response.chunk().await {
        buf.extend_from_slice(&chunk);
        if buf.len() >= MAX_ERROR_BODY {
            buf.truncate(MAX_ERROR_BODY);
            break;
        }
    }
    String::from_utf8_lossy(&buf).into_owned()
}

/// Replaces the key with `***` (when long enough to be a real key) and bounds the length.
pub fn scrub(message: &str, key: Option<&str>) -> String {
    let mut m = message.trim().to_string();
    if let Some(k) = key.filter(|k| k.len() >= 4) {
        m = m.replace(k, "***");
    }
    const MAX: usize = 600;
    if m.len() > MAX {
        let mut end = MAX;
        while !m.is_char_boundary(end) {
            end -= 1;
        }
        m.truncate(end);
        m.push('…');
    }
    m
}
