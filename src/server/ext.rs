//! The single home of custom LSP methods. Everything a user needs travels on standard methods
//! (Helix refuses custom ones); this notification is extra, sent only to clients that ask for it
//! with `initializationOptions.streamDeltas: true`.

use serde::{Deserialize, Serialize};
use tower_lsp_server::ls_types::notification::Notification;

/// `builder/generationDelta {taskId, text}`: raw model text as it arrives.
pub enum GenerationDelta {}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GenerationDeltaParams {
    pub task_id: String,
    pub text: String,
}

impl Notification for GenerationDelta {
    type Params = GenerationDeltaParams;
    const METHOD: &'static str = "builder/generationDelta";
}
