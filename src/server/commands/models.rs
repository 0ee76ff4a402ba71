//! `builder.models`: which providers are configured and which keys are present (never a key);
//! with `list: true`, each provider's own model list fetched over HTTP (`ai/models_list.rs`),
//! which is also the model picker's "Test connection" (`{provider, list: true}`).

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use tower_lsp_server::jsonrpc::Result;

use super::{invalid_params, parse_args, project_for, to_value, Command};
use crate::ai::config::ProviderInfo;
use crate::ai::models_list::{self, ProviderListing};
use crate::ai::{AiError, Provider};
use crate::server::steps::ai_config;
use crate::server::Backend;

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct ModelsArgs {
    /// Workspace folder (path or file:// URI) to act on; default: the folder of the file touched last, or the only one.
    project: Option<String>,
    /// Ask each provider for its own models over HTTP (`GET …/models`, Ollama's `/api/tags`) and report `listedModels`, `reachable`, `error`, `latencyMs` on its entry. Default false: the answer is the configuration only, with no I/O.
    #[serde(default)]
    list: bool,
    /// With `list`: only this provider (e.g. `ollama`; `gemini` is an alias of `google`), configured or not — "Test connection". Default: every configured provider.
    provider: Option<String>,
    /// With `list`: how long each provider may take, in milliseconds (1–60000). Default 3000.
    timeout_ms: Option<u64>,
}

/// What to list, checked.
struct Listing {
    only: Option<Provider>,
    timeout: Duration,
}

fn listing(cmd: Command, a: &ModelsArgs) -> Result<Option<Listing>> {
    let field = |name: &str, why: String| {
        invalid_params(format!("{}: invalid argument `{name}`: {why}", cmd.name()))
    };
    if !a.list {
        for (name, given) in [
            ("provider", a.provider.is_some()),
            ("timeoutMs", a.timeout_ms.is_some()),
        ] {
            if given {
                return Err(field(name, "only applies with `list: true`".into()));
            }
        }
        return Ok(None);
    }
    let only = match a.provider.as_deref() {
        None => None,
        Some(p) => Some(
            Provider::from_id(p)
                .ok_or_else(|| field("provider", AiError::UnknownProvider(p.into()).to_string()))?,
        ),
    };
    let timeout = match a.timeout_ms {
        None => models_list::DEFAULT_TIMEOUT,
        Some(ms) if (models_list::MIN_TIMEOUT_MS..=models_list::MAX_TIMEOUT_MS).contains(&ms) => {
            Duration::from_millis(ms)
        }
        Some(ms) => {
            return Err(field(
                "timeoutMs",
                format!(
                    "{ms} is out of range: use {}–{} (milliseconds)",
                    models_list::MIN_TIMEOUT_MS,
                    models_list::MAX_TIMEOUT_MS
                ),
            ))
        }
    };
    Ok(Some(Listing { only, timeout }))
}

pub async fn run(b: &Backend, cmd: Command, args: Value) -> Result<Value> {
    let a: ModelsArgs = parse_args(cmd, args)?;
    let listing = listing(cmd, &a)?;
    let project = project_for(b, a.project.as_deref())?;
    let config = ai_config(&project);
    let mut providers: Vec<ProviderEntry> = config
        .providers()
        .into_iter()
        .map(|info| ProviderEntry {
            info,
            listing: None,
        })
        .collect();
    if let Some(l) = listing {
        let which = models_list::providers_to_list(&config, l.only);
        let probes = models_list::probe_all(&b.http(), &config, &which, l.timeout).await;
        for probe in &probes {
            if let Some(e) = providers
                .iter_mut()
                .find(|e| e.info.provider == probe.provider.id())
            {
                e.listing = Some(ProviderListing::from(probe));
            }
        }
    }
    let r = ModelsResult {
        default_model: crate::generate::default_model(&config),
        providers,
    };
    Ok(to_value(r))
}

#[derive(Debug, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ModelsResult {
    /// `provider/model` used when a command names none.
    default_model: Option<String>,
    /// One per provider: `provider`, `name`, `configured`, `keyPresent`, `keyRequired`, `keySource`, `baseUrl`, `default`, `models` (suggested ids). With `list: true` each listed provider also has `listedModels` (its own `provider/model` ids, sorted, at most 200), `listedCount`, `reachable`, `error` (HTTP status and the provider's message; never a key) and `latencyMs`.
    providers: Vec<ProviderEntry>,
}

/// One provider: its configuration and, when it was listed, what its server said.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub(crate) struct ProviderEntry {
    #[serde(flatten)]
    info: ProviderInfo,
    /// Present only on providers listed with `list: true`.
    #[serde(flatten)]
    listing: Option<ProviderListing>,
}
