//! Generation: from a prompt to applied files, streamed. `prompt` and `context` build what the
//! model sees; `run` streams the answer through the incremental parser and hands each file to a
//! [`crate::apply::Deliver`] the moment its closing tag arrives.

pub mod comments;
pub mod context;
pub mod fix;
pub mod prompt;
pub mod run;

pub use run::{run, GenerateInput, GenerateResult, Hooks, PromptComment};

use crate::ai::config::AiConfig;
use crate::ai::model_id::Provider;

/// The model to use when the request names none: the configured default, else a sensible model
/// of the first provider that has a key (so a user with one key needs no other setting).
pub fn default_model(config: &AiConfig) -> Option<String> {
    if let Some(m) = config
        .default_model
        .as_ref()
        .filter(|m| !m.trim().is_empty())
    {
        return Some(m.clone());
    }
    let has_key = |p: Provider| {
        config
            .providers
            .get(&p)
            .is_some_and(|c| c.api_key.is_some())
    };
    let picks = [
        (Provider::Anthropic, "anthropic/claude-sonnet-4-5"),
        (Provider::OpenAi, "openai/gpt-4.1"),
        (Provider::Google, "google/gemini-2.5-flash"),
        (Provider::Groq, "groq/openai/gpt-oss-120b"),
        (
            Provider::OpenRouter,
            "openrouter/anthropic/claude-sonnet-4.5",
        ),
    ];
    picks
        .iter()
        .find(|(p, _)| has_key(*p))
        .map(|(_, m)| m.to_string())
}

/// The AI settings of a project: the environment (with its `.env`), then the editor settings.
/// One function so the server and the CLI can never disagree.
pub fn ai_config(
    env: &std::collections::HashMap<String, String>,
    s: &crate::config::Settings,
) -> AiConfig {
    let mut c = AiConfig::resolve(env, &s.base_urls, &s.api_keys.0);
    if s.model.is_some() {
        c.default_model = s.model.clone();
    }
    if let Some(t) = s.max_tokens {
        c.max_tokens = t;
    }
    if let Some(t) = s.temperature {
        c.temperature = Some(t as f32);
    }
    c
}

/// Why no model can be called; each says what to set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModelChoiceError {
    NoModel,
    /// The id does not parse (the caller's argument is wrong).
    Invalid(String),
    MissingKey {
        provider: &'static str,
        var: &'static str,
        id: &'static str,
    },
}

impl std::fmt::Display for ModelChoiceError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ModelChoiceError::NoModel => f.write_str(
                "no model configured: pass a model (provider/model), set DEFAULT_AI_MODEL or the builder.model setting, or set an API key such as ANTHROPIC_API_KEY",
            ),
            ModelChoiceError::Invalid(e) => f.write_str(e),
            ModelChoiceError::MissingKey { provider, var, id } => {
                write!(f, "no API key for {provider}: set {var} (or the builder.apiKeys.{id} setting)")
            }
        }
    }
}

/// The model to call: `explicit`, else [`default_model`]; refused up front when its provider
/// needs a key that is not there, so no task starts that can only fail.
pub fn choose_model(
    config: &AiConfig,
    explicit: Option<&str>,
) -> Result<crate::ai::model_id::ModelId, ModelChoiceError> {
    let id = explicit
        .map(str::to_string)
        .or_else(|| default_model(config))
        .ok_or(ModelChoiceError::NoModel)?;
    let model = crate::ai::model_id::ModelId::parse(&id)
        .map_err(|e| ModelChoiceError::Invalid(e.to_string()))?;
    let p = model.provider;
    let has_key = config
        .providers
        .get(&p)
        .is_some_and(|c| c.api_key.is_some());
    if let (Some(var), false, true) = (p.key_var(), has_key, p != Provider::Compatible) {
        return Err(ModelChoiceError::MissingKey {
            provider: p.display(),
            var,
            id: p.id(),
        });
    }
    Ok(model)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::env_map as env;

    #[test]
    fn model_choice_explains_what_is_missing() {
        let s = crate::config::Settings::default();
        let none = ai_config(&env(&[]), &s);
        assert_eq!(choose_model(&none, None), Err(ModelChoiceError::NoModel));
        assert!(matches!(
            choose_model(&none, Some("nope/x")),
            Err(ModelChoiceError::Invalid(_))
        ));
        let e = choose_model(&none, Some("anthropic/claude-sonnet-4-5")).unwrap_err();
        assert!(e.to_string().contains("ANTHROPIC_API_KEY"), "{e}");
        // Ollama needs no key.
        assert!(choose_model(&none, Some("ollama/qwen2.5-coder")).is_ok());
        let with_key = ai_config(&env(&[("OPENAI_API_KEY", "k")]), &s);
        assert_eq!(
            choose_model(&with_key, None).unwrap().to_string(),
            "openai/gpt-4.1"
        );
    }

    #[test]
    fn editor_settings_override_the_environment() {
        let s = crate::config::Settings {
            model: Some("google/gemini-2.5-pro".into()),
            max_tokens: Some(1234),
            ..Default::default()
        };
        let c = ai_config(&env(&[("DEFAULT_AI_MODEL", "openai/gpt-4.1")]), &s);
        assert_eq!(c.default_model.as_deref(), Some("google/gemini-2.5-pro"));
        assert_eq!(c.max_tokens, 1234);
    }
}
