//! The retry convention of the Stainless-generated SDKs (PROTOCOLS.md §0), shared by every
//! provider so they all back off alike. Public so other HTTP clients in the crate can reuse it.

use std::time::{Duration, SystemTime};

use reqwest::header::HeaderMap;

/// Server hints above this are not waited for (the SDK rule); see [`hint_usable`].
pub const MAX_HINT: Duration = Duration::from_secs(60);

/// `x-should-retry: true|false`, when present, overrides the status rule.
pub fn should_retry_header(headers: &HeaderMap) -> Option<bool> {
    match headers
        .get("x-should-retry")?
        .to_str()
        .ok()?
        .trim()
        .to_ascii_lowercase()
        .as_str()
    {
        "true" => Some(true),
        "false" => Some(false),
        _ => None,
    }
}

/// 408, 409, 429 and every 5xx (529 included) are worth another try.
pub fn status_retryable(status: u16) -> bool {
    matches!(status, 408 | 409 | 429) || status >= 500
}

/// `retry-after-ms` (float ms), else `retry-after` as float seconds or an HTTP-date.
pub fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let get = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    };
    if let Some(ms) = get("retry-after-ms").and_then(|v| v.parse::<f64>().ok()) {
        if ms.is_finite() && ms >= 0.0 {
            return Some(Duration::from_secs_f64(ms / 1000.0));
        }
    }
    let raw = get("retry-after")?;
    if let Ok(secs) = raw.parse::<f64>() {
        return (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs));
    }
    let when = httpdate::parse_http_date(raw).ok()?;
    Some(
        when.duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
}

/// The SDK rule: a hint is used only when 0 < hint <= 60 s.
pub fn hint_usable(hint: Duration) -> bool {
    !hint.is_zero() && hint <= MAX_HINT
}

/// `min(0.5 * 2^n, 8)` seconds times jitter `(1 - 0.25 * rand)`; `n` counts retries from 0.
pub fn backoff(retry_index: u32) -> Duration {
    let base = (0.5 * 2f64.powi(retry_index.min(16) as i32)).min(8.0);
    let jitter = 1.0 - 0.25 * fastrand::f64();
    Duration::from_secs_f64(base * jitter)
}

/// Whole seconds, rounded up, for messages ("retry after 2 s").
pub fn ceil_secs(d: Duration) -> u64 {
    let s = d.as_secs();
    if d.subsec_nanos() > 0 {
        s + 1
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    #[test]
    fn hints_in_order_of_precedence() {
        let mut h = HeaderMap::new();
        h.insert("retry-after", HeaderValue::from_static("2"));
        assert_eq!(retry_after(&h), Some(Duration::from_secs(2)));
        h.insert("retry-after-ms", HeaderValue::from_static("150.5"));
        assert_eq!(retry_after(&h), Some(Duration::from_micros(150_500)));
        let mut h = HeaderMap::new();
        h.insert(
            "retry-after",
            HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT"),
        );
        assert_eq!(retry_after(&h), Some(Duration::ZERO));
    }

    #[test]
    fn backoff_is_bounded_and_jittered() {
        for n in 0..10 {
            let d = backoff(n).as_secs_f64();
            let base = (0.5 * 2f64.powi(n as i32)).min(8.0);
            assert!(d <= base && d >= base * 0.75, "{n}: {d}");
        }
    }
}
