//! Generation: from a prompt to applied files, streamed. `prompt` and `context` build what the
//! model sees; `run` streams the answer through the incremental parser and hands each file to a
//! [`crate::apply::Deliver`] the moment its closing tag arrives.

pub mod comments;
pub mod context;
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
