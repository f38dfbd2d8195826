//! Child processes: the gateway, the TypeScript baseline, the Lambda binaries.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::process::{Child, Command};

pub struct Service {
    pub child: Child,
    pub base: String,
}

impl Service {
    pub async fn spawn(command: Command, port: u16) -> Result<Self, String> {
        Self::spawn_logging(command, port, None).await
    }

    /// [`Service::spawn`], its logs (stdout and stderr) written to `log` if given.
    pub async fn spawn_logging(mut command: Command, port: u16, log: Option<&Path>) -> Result<Self, String> {
        let (stdout, stderr) = match log {
            Some(path) => {
                let file = std::fs::File::create(path).map_err(|e| format!("cannot create {}: {e}", path.display()))?;
                let copy = file.try_clone().map_err(|e| e.to_string())?;
                (Stdio::from(file), Stdio::from(copy))
            }
            None => (Stdio::null(), Stdio::null()),
        };
        command.stdout(stdout).stderr(stderr).kill_on_drop(true);
        let child = command.spawn().map_err(|e| format!("cannot start {command:?}: {e}"))?;
        let service = Self { child, base: format!("http://127.0.0.1:{port}") };
        wait_for_port(port).await?;
        Ok(service)
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).unwrap_or(0)
}

async fn wait_for_port(port: u16) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Err(format!("nothing listened on port {port} within 20 s"))
}

/// Peak resident set size of a running process, from `/proc/<pid>/status` (VmHWM).
pub fn peak_rss_mb(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kb: f64 = status.lines().find_map(|l| l.strip_prefix("VmHWM:"))?.trim().trim_end_matches("kB").trim().parse().ok()?;
    Some(kb / 1024.0)
}

pub fn binary(target_dir: &Path, name: &str) -> Result<PathBuf, String> {
    let path = target_dir.join(name);
    if path.exists() { Ok(path) } else { Err(format!("{} is missing; bench/run builds it", path.display())) }
}

/// Runs a command to completion and returns its stdout, or its stderr as the error.
pub async fn output(mut command: Command) -> Result<String, String> {
    let out = command.output().await.map_err(|e| format!("cannot run {command:?}: {e}"))?;
    if !out.status.success() {
        return Err(format!("{command:?} failed: {}", String::from_utf8_lossy(&out.stderr)));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}
