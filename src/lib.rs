//! builder-lsp: an AI app builder as a language server. `main.rs` parses the CLI; everything else
//! lives here so tests can drive the same engine in-process or through the binary.
//! See ARCHITECTURE.md for the map.
#![deny(clippy::print_stdout)]

pub mod ai;
pub mod apply;
pub mod archive;
pub mod coalesce;
pub mod completion;
pub mod config;
pub mod conversation;
pub mod edits;
pub mod events;
pub mod exec;
pub mod generate;
pub mod history;
pub mod http;
pub mod install;
pub mod packages;
pub mod private_file;
pub mod project;
pub mod response;
pub mod review;
pub mod sandbox;
pub mod server;
pub mod tasks;
pub mod wording;

/// Runs the language server over the given streams until the client says `exit`.
pub async fn run<I, O>(input: I, output: O)
where
    I: tokio::io::AsyncRead + Unpin + Send + 'static,
    O: tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    server::serve(input, output).await
}
