//! A running sandbox as a place packages install into ([`InstallHost`]), and how a package
//! manager the image may lack is started there. It lives on the sandbox side so `packages/`
//! never needs to know what a sandbox is.

use std::sync::Arc;

use async_trait::async_trait;
use tokio_util::sync::CancellationToken;

use super::{CommandOutput, CommandSpec, LineSink, Sandbox, SandboxError, SandboxFile};
use crate::packages::install::{InstallError, InstallHost, RunError};
use crate::packages::launcher::{package_manager_field, Launcher, PackageManager};

/// A running sandbox (its project dir).
pub struct SandboxHost(pub Arc<dyn Sandbox>);

#[async_trait]
impl InstallHost for SandboxHost {
    fn describe(&self) -> String {
        format!("the {} sandbox", self.0.info().provider.as_str())
    }

    async fn read(&self, rel: &str) -> Result<Option<Vec<u8>>, InstallError> {
        self.0
            .read_file(rel)
            .await
            .map_err(|e| InstallError::Host(e.to_string()))
    }

    async fn restore(&self, rel: &str, before: Option<&[u8]>) -> Result<(), InstallError> {
        match before {
            Some(bytes) => self
                .0
                .write_files(&[SandboxFile {
                    path: rel.into(),
                    bytes: bytes.to_vec(),
                }])
                .await
                .map_err(|e| InstallError::Host(e.to_string())),
            None => {
                let spec = CommandSpec::new("rm", ["-f", "--", rel]);
                self.0
                    .run(&spec, super::no_lines(), CancellationToken::new())
                    .await
                    .map(|_| ())
                    .map_err(|e| InstallError::Host(e.to_string()))
            }
        }
    }

    async fn run(
        &self,
        spec: &CommandSpec,
        sink: LineSink,
        cancel: &CancellationToken,
    ) -> Result<CommandOutput, RunError> {
        match self.0.run(spec, sink, cancel.clone()).await {
            Ok(o) => Ok(o),
            Err(SandboxError::Cancelled) => Err(RunError::Cancelled),
            Err(e) => Err(RunError::Failed(e.to_string())),
        }
    }

    async fn launcher(
        &self,
        manager: PackageManager,
        package_json: Option<&[u8]>,
        cancel: &CancellationToken,
    ) -> Result<Launcher, RunError> {
        let text = package_json.map(String::from_utf8_lossy);
        match for_sandbox(self.0.as_ref(), manager, text.as_deref(), cancel).await {
            Ok(l) => Ok(l),
            Err(SandboxError::Cancelled) => Err(RunError::Cancelled),
            Err(e) => Err(RunError::Failed(e.to_string())),
        }
    }
}

/// The launcher for `manager` inside `sandbox`: its own binary when it answers `--version`,
/// else npx. npm is always there.
pub async fn for_sandbox(
    sandbox: &dyn Sandbox,
    manager: PackageManager,
    package_json: Option<&str>,
    cancel: &CancellationToken,
) -> Result<Launcher, SandboxError> {
    if manager == PackageManager::Npm {
        return Ok(Launcher::direct(manager));
    }
    let probe = CommandSpec::new(manager.program(), ["--version"]);
    match sandbox.run(&probe, super::no_lines(), cancel.clone()).await {
        Ok(o) if o.exit_code == 0 => Ok(Launcher::direct(manager).unattended()),
        Err(e @ (SandboxError::Cancelled | SandboxError::Gone { .. })) => Err(e),
        // Not on the image (exit 127, or a spawn error in a local sandbox).
        _ => {
            let field = package_json.and_then(package_manager_field);
            Ok(Launcher::via_npx(manager, field.as_deref()).unattended())
        }
    }
}
