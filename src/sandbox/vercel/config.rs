//! Where and as whom sandboxes are created: [`VercelConfig`] from the SDK's variables (a token
//! with team and project, or an OIDC token whose claims name them), the API URL checked.

use std::fmt;

use base64::Engine as _;
use reqwest::header::HeaderValue;
use serde_json::Value;

use super::{Result, SandboxError};

pub const DEFAULT_API_URL: &str = "https://vercel.com/api";
pub const DEFAULT_RUNTIME: &str = "node22";
/// 15 minutes: well inside every plan's maximum (Hobby allows 45), so create never fails on
/// it; [`Sandbox::keep_alive`](crate::sandbox::Sandbox::keep_alive) extends it while the user works.
pub const DEFAULT_TIMEOUT_MS: u64 = 15 * 60 * 1000;
pub const DEFAULT_VCPUS: u32 = 2;

/// Where and as whom to create sandboxes. `Debug` prints the token as `***`.
#[derive(Clone)]
pub struct VercelConfig {
    /// Without a trailing slash, e.g. `https://vercel.com/api`.
    pub api_url: String,
    /// Secret: sent only as the bearer header, scrubbed from every message.
    pub token: String,
    /// The variable the token came from, named by auth errors.
    pub token_var: &'static str,
    pub team_id: String,
    pub project_id: String,
    /// Sandbox lifetime in milliseconds (the API's unit).
    pub timeout_ms: u64,
    pub runtime: String,
    pub vcpus: u32,
}

impl fmt::Debug for VercelConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VercelConfig")
            .field("api_url", &self.api_url)
            .field("token", &"***")
            .field("token_var", &self.token_var)
            .field("team_id", &self.team_id)
            .field("project_id", &self.project_id)
            .field("timeout_ms", &self.timeout_ms)
            .field("runtime", &self.runtime)
            .field("vcpus", &self.vcpus)
            .finish()
    }
}

impl VercelConfig {
    /// Reads the SDK's variables: `VERCEL_TOKEN` + `VERCEL_TEAM_ID` + `VERCEL_PROJECT_ID`, or
    /// else `VERCEL_OIDC_TOKEN` (whose claims name team and project); `VERCEL_API_URL`
    /// overrides the endpoint (tests point it at loopback). Blank values count as unset.
    pub fn from_env(get: &dyn Fn(&str) -> Option<String>) -> Result<VercelConfig> {
        let var = |name: &str| {
            get(name)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        let api_url = var("VERCEL_API_URL")
            .unwrap_or_else(|| DEFAULT_API_URL.to_string())
            .trim_end_matches('/')
            .to_string();
        check_api_url(&api_url)?;

        let (token, team, project) = (
            var("VERCEL_TOKEN"),
            var("VERCEL_TEAM_ID"),
            var("VERCEL_PROJECT_ID"),
        );
        let (token, token_var, team_id, project_id) = match (token, team, project) {
            (Some(t), Some(team), Some(p)) => (t, "VERCEL_TOKEN", team, p),
            (t, team, p) => match var("VERCEL_OIDC_TOKEN") {
                Some(oidc) => {
                    let (team, project) = oidc_claims(&oidc)?;
                    (oidc, "VERCEL_OIDC_TOKEN", team, project)
                }
                None => return Err(missing_vars(t.is_none(), team.is_none(), p.is_none())),
            },
        };
        if HeaderValue::from_str(&format!("Bearer {token}")).is_err() {
            return Err(SandboxError::Config(format!(
                "{token_var} contains characters that cannot be sent in an HTTP header"
            )));
        }
        Ok(VercelConfig {
            api_url,
            token,
            token_var,
            team_id,
            project_id,
            timeout_ms: DEFAULT_TIMEOUT_MS,
            runtime: DEFAULT_RUNTIME.to_string(),
            vcpus: DEFAULT_VCPUS,
        })
    }
}

fn missing_vars(token: bool, team: bool, project: bool) -> SandboxError {
    let missing: Vec<&str> = [
        ("VERCEL_TOKEN", token),
        ("VERCEL_TEAM_ID", team),
        ("VERCEL_PROJECT_ID", project),
    ]
    .into_iter()
    .filter_map(|(name, gone)| gone.then_some(name))
    .collect();
    let message = if missing.len() == 3 {
        "the Vercel sandbox needs VERCEL_TOKEN, VERCEL_TEAM_ID and VERCEL_PROJECT_ID, or \
         VERCEL_OIDC_TOKEN (`vercel env pull` writes it)"
            .to_string()
    } else {
        format!(
            "the Vercel sandbox needs {} as well (VERCEL_TOKEN, VERCEL_TEAM_ID and \
             VERCEL_PROJECT_ID go together), or VERCEL_OIDC_TOKEN instead",
            missing.join(" and ")
        )
    };
    SandboxError::Config(message)
}

pub(super) fn check_api_url(api_url: &str) -> Result<()> {
    let bad = || {
        SandboxError::Config(
            "VERCEL_API_URL must be an http(s) URL such as https://vercel.com/api".to_string(),
        )
    };
    let url = reqwest::Url::parse(api_url).map_err(|_| bad())?;
    if !matches!(url.scheme(), "http" | "https") || url.cannot_be_a_base() {
        return Err(bad());
    }
    let loopback = matches!(
        url.host_str(),
        Some("localhost" | "127.0.0.1" | "[::1]" | "::1")
    );
    if url.scheme() == "http" && !loopback {
        tracing::warn!(
            "VERCEL_API_URL uses plain http to a remote host: the token travels in clear"
        );
    }
    Ok(())
}

/// Team and project from an OIDC token's claims (`owner_id`, `project_id`), read without
/// verifying the signature: the API verifies it, we only need to know where to send it.
fn oidc_claims(token: &str) -> Result<(String, String)> {
    let bad = |why: &str| {
        SandboxError::Config(format!(
            "VERCEL_OIDC_TOKEN is not a usable OIDC token ({why}); refresh it with `vercel env pull`"
        ))
    };
    let parts: Vec<&str> = token.split('.').collect();
    let [_, payload, _] = parts.as_slice() else {
        return Err(bad("not a JWT"));
    };
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .map_err(|_| bad("its payload is not base64url"))?;
    let claims: Value =
        serde_json::from_slice(&bytes).map_err(|_| bad("its payload is not JSON"))?;
    let claim = |name: &str| {
        claims
            .get(name)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    };
    let team = claim("owner_id").ok_or_else(|| bad("no owner_id claim"))?;
    let project = claim("project_id").ok_or_else(|| bad("no project_id claim"))?;
    if let Some(exp) = claims.get("exp").and_then(Value::as_i64) {
        if exp < chrono::Utc::now().timestamp() {
            return Err(bad("it has expired"));
        }
    }
    Ok((team, project))
}
