//! `provider/model` ids (DESIGN.md §6). The model part is an opaque string: ids change faster
//! than releases, so nothing here knows a list of models.

use std::fmt;
use std::str::FromStr;

use super::AiError;

/// A backend family. The wire format follows from it (see [`Provider::wire`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Provider {
    Anthropic,
    OpenAi,
    Google,
    Groq,
    OpenRouter,
    Ollama,
    Compatible,
}

/// The three streaming dialects the providers speak.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Wire {
    Anthropic,
    OpenAi,
    Gemini,
}

impl Provider {
    pub const ALL: [Provider; 7] = [
        Provider::Anthropic,
        Provider::OpenAi,
        Provider::Google,
        Provider::Groq,
        Provider::OpenRouter,
        Provider::Ollama,
        Provider::Compatible,
    ];

    /// The id used in model ids and settings keys.
    pub fn id(self) -> &'static str {
        match self {
            Provider::Anthropic => "anthropic",
            Provider::OpenAi => "openai",
            Provider::Google => "google",
            Provider::Groq => "groq",
            Provider::OpenRouter => "openrouter",
            Provider::Ollama => "ollama",
            Provider::Compatible => "compatible",
        }
    }

    /// The name people know, for messages.
    pub fn display(self) -> &'static str {
        match self {
            Provider::Anthropic => "Anthropic",
            Provider::OpenAi => "OpenAI",
            Provider::Google => "Gemini",
            Provider::Groq => "Groq",
            Provider::OpenRouter => "OpenRouter",
            Provider::Ollama => "Ollama",
            Provider::Compatible => "OpenAI-compatible server",
        }
    }

    /// The environment variable holding the key; `None` for Ollama (local, no auth).
    /// For `compatible` the key is optional.
    pub fn key_var(self) -> Option<&'static str> {
        match self {
            Provider::Anthropic => Some("ANTHROPIC_API_KEY"),
            Provider::OpenAi => Some("OPENAI_API_KEY"),
            Provider::Google => Some("GEMINI_API_KEY"),
            Provider::Groq => Some("GROQ_API_KEY"),
            Provider::OpenRouter => Some("OPENROUTER_API_KEY"),
            Provider::Ollama => None,
            Provider::Compatible => Some("COMPATIBLE_API_KEY"),
        }
    }

    /// Whether a request without a key is refused before it is sent.
    /// Model ids worth offering in a picker (any other id the provider serves works too).
    pub fn suggested_models(self) -> &'static [&'static str] {
        match self {
            Provider::Anthropic => &[
                "anthropic/claude-sonnet-4-5",
                "anthropic/claude-opus-4-1",
                "anthropic/claude-haiku-4-5",
            ],
            Provider::OpenAi => &[
                "openai/gpt-4.1",
                "openai/gpt-4.1-mini",
                "openai/gpt-5",
                "openai/o4-mini",
            ],
            Provider::Google => &["google/gemini-2.5-flash", "google/gemini-2.5-pro"],
            Provider::Groq => &[
                "groq/openai/gpt-oss-120b",
                "groq/openai/gpt-oss-20b",
                "groq/moonshotai/kimi-k2-instruct",
            ],
            Provider::OpenRouter => &[
                "openrouter/anthropic/claude-sonnet-4.5",
                "openrouter/openai/gpt-4.1",
                "openrouter/google/gemini-2.5-flash",
            ],
            Provider::Ollama => &["ollama/qwen2.5-coder", "ollama/llama3.1"],
            Provider::Compatible => &[],
        }
    }

    pub fn key_required(self) -> bool {
        !matches!(self, Provider::Ollama | Provider::Compatible)
    }

    /// The environment variable that overrides the base URL (also how tests reach fakes).
    pub fn base_var(self) -> &'static str {
        match self {
            Provider::Anthropic => "ANTHROPIC_BASE_URL",
            Provider::OpenAi => "OPENAI_BASE_URL",
            Provider::Google => "GEMINI_BASE_URL",
            Provider::Groq => "GROQ_BASE_URL",
            Provider::OpenRouter => "OPENROUTER_BASE_URL",
            Provider::Ollama => "OLLAMA_BASE_URL",
            Provider::Compatible => "COMPATIBLE_BASE_URL",
        }
    }

    /// Default base URL (DESIGN.md §6); `compatible` has none and must be configured.
    pub fn default_base(self) -> Option<&'static str> {
        match self {
            Provider::Anthropic => Some("https://api.anthropic.com"),
            Provider::OpenAi => Some("https://api.openai.com/v1"),
            Provider::Google => Some("https://generativelanguage.googleapis.com"),
            Provider::Groq => Some("https://api.groq.com/openai/v1"),
            Provider::OpenRouter => Some("https://openrouter.ai/api/v1"),
            Provider::Ollama => Some("http://127.0.0.1:11434/v1"),
            Provider::Compatible => None,
        }
    }

    /// Parses a provider id, case-insensitively; `gemini` is an alias of `google`.
    pub fn from_id(s: &str) -> Option<Provider> {
        let s = s.trim().to_ascii_lowercase();
        if s == "gemini" {
            return Some(Provider::Google);
        }
        Provider::ALL.into_iter().find(|p| p.id() == s)
    }

    pub(crate) fn wire(self) -> Wire {
        match self {
            Provider::Anthropic => Wire::Anthropic,
            Provider::Google => Wire::Gemini,
            _ => Wire::OpenAi,
        }
    }

    /// The valid ids, for messages.
    pub fn valid_ids() -> String {
        let ids: Vec<&str> = Provider::ALL.iter().map(|p| p.id()).collect();
        ids.join(", ")
    }
}

impl fmt::Display for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.id())
    }
}

impl FromStr for Provider {
    type Err = AiError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Provider::from_id(s).ok_or_else(|| AiError::UnknownProvider(s.trim().to_string()))
    }
}

/// `provider/model`; the model keeps any further slashes (`openrouter/anthropic/claude-sonnet-4.5`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelId {
    pub provider: Provider,
    pub model: String,
}

impl ModelId {
    pub fn parse(s: &str) -> Result<ModelId, AiError> {
        let trimmed = s.trim();
        let Some((provider, model)) = trimmed.split_once('/') else {
            return Err(AiError::InvalidModelId(trimmed.to_string()));
        };
        let provider = provider.parse::<Provider>()?;
        let model = model.trim();
        if model.is_empty() || model.chars().any(|c| c.is_control() || c.is_whitespace()) {
            return Err(AiError::InvalidModelId(trimmed.to_string()));
        }
        Ok(ModelId {
            provider,
            model: model.to_string(),
        })
    }
}

impl fmt::Display for ModelId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.provider.id(), self.model)
    }
}

impl FromStr for ModelId {
    type Err = AiError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ModelId::parse(s)
    }
}
