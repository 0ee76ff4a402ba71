//! Where each provider lives and which key it uses: settings win over the environment (which the
//! caller already merged with `.env`). Keys are wrapped in [`Secret`] so no `{:?}` can leak them.

use std::collections::HashMap;
use std::fmt;
use std::time::Duration;

use serde_json::Value;

use super::model_id::{ModelId, Provider};
use super::redact_url_str;

/// An API key. Debug and Display print `***`; only [`Secret::expose`] gives the value, and only
/// the request builders call it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl From<String> for Secret {
    fn from(s: String) -> Secret {
        Secret(s)
    }
}

impl From<&str> for Secret {
    fn from(s: &str) -> Secret {
        Secret(s.to_string())
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

#[derive(Debug, Clone)]
pub struct ProviderConfig {
    /// Without a trailing slash. `None` only for `compatible` when nothing was configured.
    pub base_url: Option<String>,
    pub api_key: Option<Secret>,
    /// Where the key came from (`ANTHROPIC_API_KEY`, `settings apiKeys.anthropic`), or where it
    /// would be read from when absent — so messages can say what to fix.
    pub key_source: String,
}

impl ProviderConfig {
    /// The defaults of a provider with nothing configured.
    pub fn unconfigured(provider: Provider) -> ProviderConfig {
        ProviderConfig {
            base_url: provider.default_base().map(str::to_string),
            api_key: None,
            key_source: default_key_source(provider),
        }
    }
}

fn default_key_source(provider: Provider) -> String {
    match provider.key_var() {
        Some(var) => var.to_string(),
        None => format!("settings apiKeys.{}", provider.id()),
    }
}

pub const DEFAULT_MAX_TOKENS: u32 = 8000;
pub const DEFAULT_TEMPERATURE: f32 = 0.7;
pub const DEFAULT_TOTAL_DEADLINE: Duration = Duration::from_secs(300);
pub const DEFAULT_MAX_RETRIES: u32 = 2;

#[derive(Debug, Clone)]
pub struct AiConfig {
    pub providers: HashMap<Provider, ProviderConfig>,
    pub default_model: Option<String>,
    pub max_tokens: u32,
    pub temperature: Option<f32>,
    /// Bounds a whole call: every attempt, the waits between them and the stream itself.
    pub total_deadline: Duration,
    pub max_retries: u32,
}

/// Defaults are the seed's (8000 tokens, 0.7), not zeros, so `..Default::default()` is usable.
impl Default for AiConfig {
    fn default() -> Self {
        AiConfig {
            providers: Provider::ALL
                .into_iter()
                .map(|p| (p, ProviderConfig::unconfigured(p)))
                .collect(),
            default_model: None,
            max_tokens: DEFAULT_MAX_TOKENS,
            temperature: Some(DEFAULT_TEMPERATURE),
            total_deadline: DEFAULT_TOTAL_DEADLINE,
            max_retries: DEFAULT_MAX_RETRIES,
        }
    }
}

fn non_empty(v: Option<&String>) -> Option<String> {
    v.map(|s| s.trim())
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

/// Settings maps are keyed by provider id; `gemini` is accepted for `google`.
fn setting(map: &HashMap<String, String>, provider: Provider) -> Option<&String> {
    map.get(provider.id()).or_else(|| {
        if provider == Provider::Google {
            map.get("gemini")
        } else {
            None
        }
    })
}

impl AiConfig {
    /// `env`: the process environment merged with `.env`. `base_urls` / `api_keys`: from
    /// settings, keyed by provider id; they override the environment.
    pub fn resolve(
        env: &HashMap<String, String>,
        base_urls: &HashMap<String, String>,
        api_keys: &HashMap<String, String>,
    ) -> AiConfig {
        let mut providers = HashMap::new();
        for p in Provider::ALL {
            let (api_key, key_source) = if let Some(k) = non_empty(setting(api_keys, p)) {
                (Some(Secret(k)), format!("settings apiKeys.{}", p.id()))
            } else if let Some((var, k)) = p
                .key_var()
                .and_then(|var| non_empty(env.get(var)).map(|k| (var, k)))
            {
                (Some(Secret(k)), var.to_string())
            } else if let (Provider::Google, Some(k)) = (p, non_empty(env.get("GOOGLE_API_KEY"))) {
                // Google's own SDKs read GOOGLE_API_KEY too.
                (Some(Secret(k)), "GOOGLE_API_KEY".to_string())
            } else {
                (None, default_key_source(p))
            };
            let base_url = non_empty(setting(base_urls, p))
                .or_else(|| non_empty(env.get(p.base_var())))
                .or_else(|| p.default_base().map(str::to_string))
                .map(|b| b.trim_end_matches('/').to_string());
            providers.insert(
                p,
                ProviderConfig {
                    base_url,
                    api_key,
                    key_source,
                },
            );
        }
        let max_tokens = non_empty(env.get("MAX_TOKENS"))
            .and_then(|v| v.parse::<u32>().ok())
            .filter(|n| *n > 0)
            .unwrap_or(DEFAULT_MAX_TOKENS);
        let temperature = non_empty(env.get("DEFAULT_TEMPERATURE"))
            .and_then(|v| v.parse::<f32>().ok())
            .filter(|t| t.is_finite() && *t >= 0.0)
            .or(Some(DEFAULT_TEMPERATURE));
        AiConfig {
            providers,
            default_model: non_empty(env.get("DEFAULT_AI_MODEL")),
            max_tokens,
            temperature,
            total_deadline: DEFAULT_TOTAL_DEADLINE,
            max_retries: DEFAULT_MAX_RETRIES,
        }
    }

    /// The provider's settings, or its defaults when the map lacks it.
    pub fn provider(&self, provider: Provider) -> ProviderConfig {
        self.providers
            .get(&provider)
            .cloned()
            .unwrap_or_else(|| ProviderConfig::unconfigured(provider))
    }

    /// The configured default model, parsed.
    pub fn default_model_id(&self) -> Option<Result<ModelId, super::AiError>> {
        self.default_model.as_deref().map(ModelId::parse)
    }

    /// For `builder.models`: one object per provider — never a key.
    pub fn providers(&self) -> Vec<ProviderInfo> {
        let default_provider = self
            .default_model
            .as_deref()
            .and_then(|m| ModelId::parse(m).ok())
            .map(|m| m.provider);
        Provider::ALL
            .into_iter()
            .map(|p| {
                let pc = self.provider(p);
                let key_present = pc.api_key.is_some();
                ProviderInfo {
                    provider: p.id().to_string(),
                    name: p.display().to_string(),
                    configured: pc.base_url.is_some() && (key_present || !p.key_required()),
                    key_present,
                    key_required: p.key_required(),
                    key_source: pc.key_source.clone(),
                    base_url: pc.base_url.as_deref().map(redact_url_str),
                    default: default_provider == Some(p),
                    models: p.suggested_models().iter().map(|m| m.to_string()).collect(),
                }
            })
            .collect()
    }

    /// [`AiConfig::providers`] as JSON.
    pub fn describe(&self) -> Value {
        serde_json::to_value(self.providers()).unwrap_or(Value::Null)
    }
}

/// What `builder.models` says about one provider (never its key).
#[derive(Debug, Clone, serde::Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProviderInfo {
    /// Provider id, the part before `/` in a model id.
    pub provider: String,
    pub name: String,
    /// It has a base URL and, when it needs one, a key.
    pub configured: bool,
    pub key_present: bool,
    pub key_required: bool,
    /// Where the key is read from (the variable or setting name).
    pub key_source: String,
    /// The base URL, any credentials in it redacted.
    pub base_url: Option<String>,
    /// The default model's provider.
    pub default: bool,
    /// Model ids to offer in a picker; any id the provider serves works.
    pub models: Vec<String>,
}
