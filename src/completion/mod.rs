//! Inline completions (ghost text): context around the cursor, one fill-in-the-middle request
//! on the provider's own wire format (or a FIM prompt to a chat model), and post-processing
//! that makes the answer safe to insert as is. No LSP types here: the edge (server/completion.rs)
//! converts positions and builds items.
//!
//! - `context.rs`: prefix/suffix windows, the file's imports, snippets of related open files,
//!   under a token budget.
//! - `model.rs`: `completion.model` → an endpoint (kind, base URL, key).
//! - `fim.rs`: the HTTP clients (llama.cpp `/infill`, OpenAI-compatible `/v1/completions`,
//!   Ollama `/api/generate`, Mistral `/v1/fim/completions`, DeepSeek `/beta/completions`, chat).
//! - `post.rs`: fences, echoes, suffix overlap, block end, bracket balance.
//! - `cache.rs`: answers for the same prefix, or a prefix typed into the current suggestion.
//! - `service.rs`: the request flow: cache, supersede per document, debounce, fetch, clean.

pub mod cache;
pub mod context;
pub mod fim;
pub mod model;
pub mod post;
pub mod service;

pub use context::{ContextOptions, FimContext, Snippet};
pub use model::{Endpoint, FimKind};
pub use service::{CompletionRequest, CompletionService, Outcome};

/// Why a completion did not come. None of these is shown to the user as a popup: the edge
/// answers empty and logs one line.
#[derive(Debug, thiserror::Error)]
pub enum CompletionError {
    #[error("completion.model `{0}` is not `provider/model`")]
    InvalidModel(String),
    #[error("completion.model: unknown provider `{provider}` (valid: {valid})")]
    UnknownProvider { provider: String, valid: String },
    #[error("{provider}: no API key (set {var} or settings apiKeys.{id})")]
    MissingKey {
        provider: &'static str,
        var: &'static str,
        id: &'static str,
    },
    #[error("{provider}: base URL `{url}` is not usable: {message}")]
    InvalidBaseUrl {
        provider: &'static str,
        url: String,
        message: String,
    },
    #[error("{provider}: cannot reach {url}: {message}")]
    Connect {
        provider: &'static str,
        url: String,
        message: String,
    },
    #[error("{provider} answered HTTP {status}: {message}")]
    Status {
        provider: &'static str,
        status: u16,
        message: String,
    },
    #[error("{provider}: unexpected answer: {message}")]
    Protocol {
        provider: &'static str,
        message: String,
    },
    #[error("{provider}: {source}")]
    Chat {
        provider: &'static str,
        source: crate::ai::AiError,
    },
    #[error("{provider}: no answer within {ms} ms")]
    Timeout { provider: &'static str, ms: u64 },
    /// Superseded by a newer request for the same document, or cancelled by the client.
    #[error("cancelled")]
    Cancelled,
}
