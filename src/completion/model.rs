//! `completion.model` (`provider/model`) → where to send the request. Fill-in-the-middle
//! providers have their own ids and variables; chat-only ones reuse `ai/` (same keys and base
//! URLs as generation). Settings `baseUrls.<id>` / `apiKeys.<id>` win over the environment.

use std::collections::HashMap;

use crate::ai::{AiConfig, ModelId, Provider, Secret};

use super::CompletionError;

/// The fill-in-the-middle wire formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FimKind {
    /// llama.cpp server `POST /infill`.
    LlamaCpp,
    /// Any OpenAI-compatible server: `POST {base}/completions` with `prompt` + `suffix`.
    Compatible,
    /// Ollama `POST /api/generate` with `suffix` (NDJSON stream).
    Ollama,
    /// Mistral Codestral `POST /v1/fim/completions`.
    Mistral,
    /// DeepSeek `POST /beta/completions` with `suffix`.
    DeepSeek,
}

impl FimKind {
    pub const ALL: [FimKind; 5] = [
        FimKind::LlamaCpp,
        FimKind::Compatible,
        FimKind::Ollama,
        FimKind::Mistral,
        FimKind::DeepSeek,
    ];

    pub fn id(self) -> &'static str {
        match self {
            FimKind::LlamaCpp => "llamacpp",
            FimKind::Compatible => "compatible",
            FimKind::Ollama => "ollama",
            FimKind::Mistral => "mistral",
            FimKind::DeepSeek => "deepseek",
        }
    }

    pub fn display(self) -> &'static str {
        match self {
            FimKind::LlamaCpp => "llama.cpp",
            FimKind::Compatible => "OpenAI-compatible server",
            FimKind::Ollama => "Ollama",
            FimKind::Mistral => "Mistral",
            FimKind::DeepSeek => "DeepSeek",
        }
    }

    pub fn base_var(self) -> &'static str {
        match self {
            FimKind::LlamaCpp => "LLAMACPP_BASE_URL",
            FimKind::Compatible => "COMPATIBLE_BASE_URL",
            FimKind::Ollama => "OLLAMA_BASE_URL",
            FimKind::Mistral => "MISTRAL_BASE_URL",
            FimKind::DeepSeek => "DEEPSEEK_BASE_URL",
        }
    }

    pub fn default_base(self) -> Option<&'static str> {
        match self {
            FimKind::LlamaCpp => Some("http://127.0.0.1:8080"),
            FimKind::Compatible => None,
            FimKind::Ollama => Some("http://127.0.0.1:11434"),
            FimKind::Mistral => Some("https://api.mistral.ai"),
            FimKind::DeepSeek => Some("https://api.deepseek.com"),
        }
    }

    pub fn key_var(self) -> Option<&'static str> {
        match self {
            FimKind::LlamaCpp => Some("LLAMACPP_API_KEY"),
            FimKind::Compatible => Some("COMPATIBLE_API_KEY"),
            FimKind::Ollama => None,
            FimKind::Mistral => Some("MISTRAL_API_KEY"),
            FimKind::DeepSeek => Some("DEEPSEEK_API_KEY"),
        }
    }

    pub fn key_required(self) -> bool {
        matches!(self, FimKind::Mistral | FimKind::DeepSeek)
    }

    /// Path segments appended to the base URL.
    pub fn path(self) -> &'static [&'static str] {
        match self {
            FimKind::LlamaCpp => &["infill"],
            FimKind::Compatible => &["completions"],
            FimKind::Ollama => &["api", "generate"],
            FimKind::Mistral => &["v1", "fim", "completions"],
            FimKind::DeepSeek => &["beta", "completions"],
        }
    }

    fn from_id(s: &str) -> Option<FimKind> {
        match s.to_ascii_lowercase().as_str() {
            "llamacpp" | "llama.cpp" | "llama-cpp" => Some(FimKind::LlamaCpp),
            "compatible" => Some(FimKind::Compatible),
            "ollama" => Some(FimKind::Ollama),
            "mistral" | "codestral" => Some(FimKind::Mistral),
            "deepseek" => Some(FimKind::DeepSeek),
            _ => None,
        }
    }
}

/// A resolved `completion.model`. Debug never shows a key.
#[derive(Debug, Clone)]
pub enum Endpoint {
    Fim {
        kind: FimKind,
        /// Without a trailing slash.
        base: String,
        key: Option<Secret>,
        model: String,
    },
    /// A chat-only model, asked with a fill-in-the-middle prompt.
    Chat { model: ModelId, config: AiConfig },
}

impl Endpoint {
    /// The provider's name, for log lines.
    pub fn provider(&self) -> &'static str {
        match self {
            Endpoint::Fim { kind, .. } => kind.display(),
            Endpoint::Chat { model, .. } => model.provider.display(),
        }
    }

    /// The key, for scrubbing messages.
    pub fn key(&self) -> Option<&str> {
        match self {
            Endpoint::Fim { key, .. } => key.as_ref().map(Secret::expose),
            Endpoint::Chat { model, config } => config
                .providers
                .get(&model.provider)
                .and_then(|p| p.api_key.as_ref())
                .map(Secret::expose),
        }
    }
}

fn non_empty(v: Option<&String>) -> Option<String> {
    v.map(|s| s.trim().to_string()).filter(|s| !s.is_empty())
}

/// Resolves `spec` against the environment (already merged with `.env`) and the settings maps.
pub fn resolve(
    spec: &str,
    env: &HashMap<String, String>,
    base_urls: &HashMap<String, String>,
    api_keys: &HashMap<String, String>,
) -> Result<Endpoint, CompletionError> {
    let spec = spec.trim();
    let Some((provider, model)) = spec.split_once('/') else {
        return Err(CompletionError::InvalidModel(spec.to_string()));
    };
    let model = model.trim();
    if model.is_empty() || model.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(CompletionError::InvalidModel(spec.to_string()));
    }
    if let Some(kind) = FimKind::from_id(provider) {
        let id = kind.id();
        let key = non_empty(api_keys.get(id))
            .or_else(|| kind.key_var().and_then(|v| non_empty(env.get(v))))
            .or_else(|| {
                (kind == FimKind::Mistral)
                    .then(|| non_empty(env.get("CODESTRAL_API_KEY")))
                    .flatten()
            })
            .map(Secret::new);
        if kind.key_required() && key.is_none() {
            return Err(CompletionError::MissingKey {
                provider: kind.display(),
                var: kind.key_var().unwrap_or("apiKeys"),
                id,
            });
        }
        let base = non_empty(base_urls.get(id))
            .or_else(|| non_empty(env.get(kind.base_var())))
            .or_else(|| kind.default_base().map(str::to_string))
            .ok_or_else(|| CompletionError::InvalidBaseUrl {
                provider: kind.display(),
                url: String::new(),
                message: format!("set {} or settings baseUrls.{id}", kind.base_var()),
            })?;
        let mut base = base.trim_end_matches('/').to_string();
        if kind == FimKind::Ollama {
            // OLLAMA_BASE_URL is shared with generation, which wants the `/v1` API.
            if let Some(b) = base.strip_suffix("/v1") {
                base = b.to_string();
            }
        }
        return Ok(Endpoint::Fim {
            kind,
            base,
            key,
            model: model.to_string(),
        });
    }
    let provider = Provider::from_id(provider).ok_or_else(|| CompletionError::UnknownProvider {
        provider: provider.to_string(),
        valid: valid_ids(),
    })?;
    let model = ModelId {
        provider,
        model: model.to_string(),
    };
    let config = AiConfig::resolve(env, base_urls, api_keys);
    if provider.key_required()
        && config
            .providers
            .get(&provider)
            .is_none_or(|p| p.api_key.is_none())
    {
        return Err(CompletionError::MissingKey {
            provider: provider.display(),
            var: provider.key_var().unwrap_or("apiKeys"),
            id: provider.id(),
        });
    }
    Ok(Endpoint::Chat { model, config })
}

/// Every provider id `completion.model` accepts.
pub fn valid_ids() -> String {
    let mut ids: Vec<&str> = FimKind::ALL.iter().map(|k| k.id()).collect();
    for p in Provider::ALL {
        if !ids.contains(&p.id()) {
            ids.push(p.id());
        }
    }
    ids.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::env_map as map;

    #[test]
    fn fim_providers_resolve_with_settings_over_env() {
        let env = map(&[
            ("DEEPSEEK_API_KEY", "sk-env"),
            ("LLAMACPP_BASE_URL", "http://h:1/"),
        ]);
        let e = resolve("llamacpp/any", &env, &map(&[]), &map(&[])).unwrap();
        match e {
            Endpoint::Fim {
                kind, base, key, ..
            } => {
                assert_eq!(kind, FimKind::LlamaCpp);
                assert_eq!(base, "http://h:1");
                assert!(key.is_none());
            }
            other => panic!("{other:?}"),
        }
        let e = resolve(
            "deepseek/deepseek-chat",
            &env,
            &map(&[("deepseek", "http://x")]),
            &map(&[("deepseek", "sk-set")]),
        )
        .unwrap();
        assert_eq!(e.key(), Some("sk-set"));
        assert!(!format!("{e:?}").contains("sk-set"), "Debug hides the key");
        let e = resolve(
            "ollama/qwen2.5-coder:1.5b",
            &map(&[("OLLAMA_BASE_URL", "http://o:2/v1")]),
            &map(&[]),
            &map(&[]),
        )
        .unwrap();
        assert!(matches!(e, Endpoint::Fim { ref base, .. } if base == "http://o:2"));
    }

    #[test]
    fn errors_name_what_to_set() {
        let e = resolve("mistral/codestral-latest", &map(&[]), &map(&[]), &map(&[])).unwrap_err();
        assert!(e.to_string().contains("MISTRAL_API_KEY"), "{e}");
        let e = resolve("nope/x", &map(&[]), &map(&[]), &map(&[])).unwrap_err();
        assert!(e.to_string().contains("llamacpp"), "{e}");
        assert!(matches!(
            resolve("llamacpp", &map(&[]), &map(&[]), &map(&[])),
            Err(CompletionError::InvalidModel(_))
        ));
        assert!(resolve("compatible/m", &map(&[]), &map(&[]), &map(&[])).is_err());
        let e = resolve(
            "anthropic/claude-haiku-4-5",
            &map(&[]),
            &map(&[]),
            &map(&[]),
        )
        .unwrap_err();
        assert!(e.to_string().contains("ANTHROPIC_API_KEY"), "{e}");
    }

    #[test]
    fn chat_models_use_the_generation_config() {
        let e = resolve(
            "openai/gpt-4.1-mini",
            &map(&[("OPENAI_API_KEY", "sk-1")]),
            &map(&[]),
            &map(&[]),
        )
        .unwrap();
        assert!(
            matches!(e, Endpoint::Chat { ref model, .. } if model.provider == Provider::OpenAi)
        );
    }
}
