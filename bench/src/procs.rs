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

/// Clock ticks per second of `/proc/<pid>/stat`'s times: the kernel's `USER_HZ`, fixed at 100
/// in the `/proc` ABI of every architecture Linux runs this on (x86_64, arm64).
const TICKS_PER_SECOND: f64 = 100.0;

/// CPU time (user + system, ms) from `/proc/<pid>/stat`: the process's own, over all its threads
/// including those that ended, and that of the children it waited for. `None` off Linux.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CpuTimes {
    pub own_ms: f64,
    pub children_ms: f64,
}

impl CpuTimes {
    pub fn of(pid: u32) -> Option<Self> {
        Self::parse(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
    }

    pub fn of_this_process() -> Option<Self> {
        Self::of(std::process::id())
    }

    /// `pid (comm) state ppid …`: the command may hold spaces and parentheses, so the fields are
    /// counted from the last `)`. utime, stime, cutime and cstime are fields 14–17.
    pub fn parse(stat: &str) -> Option<Self> {
        let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
        let ticks = |i: usize| fields.get(i)?.parse::<u64>().ok();
        let ms = |a: u64, b: u64| (a + b) as f64 * 1000.0 / TICKS_PER_SECOND;
        Some(Self { own_ms: ms(ticks(11)?, ticks(12)?), children_ms: ms(ticks(13)?, ticks(14)?) })
    }
}

/// Microseconds of CPU per request between two readings; `None` without both or without requests.
pub fn cpu_us_per_request(before: Option<f64>, after: Option<f64>, requests: u64) -> Option<f64> {
    let (before, after) = (before?, after?);
    (requests > 0).then(|| (after - before).max(0.0) * 1000.0 / requests as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_times_are_read_after_the_command_whatever_it_holds() {
        // A real line's shape: the command name holds a space and a parenthesis.
        let stat = "4242 (wrk (x) y) S 1 4242 4242 0 -1 4194304 1203 0 0 0 250 37 12 3 20 0 2 0 99 0 0";
        let times = CpuTimes::parse(stat).expect("a stat line");
        assert_eq!(times, CpuTimes { own_ms: 2870.0, children_ms: 150.0 });
        assert_eq!(CpuTimes::parse("4242 (short) S 1 2"), None);
    }

    #[test]
    fn cpu_per_request_needs_both_readings_and_requests() {
        assert_eq!(cpu_us_per_request(Some(100.0), Some(350.0), 1_000), Some(250.0));
        assert_eq!(cpu_us_per_request(None, Some(350.0), 1_000), None);
        assert_eq!(cpu_us_per_request(Some(100.0), Some(350.0), 0), None);
    }

    #[test]
    fn a_busy_process_reads_more_cpu_time_than_before() {
        let before = CpuTimes::of_this_process().expect("Linux /proc");
        let started = std::time::Instant::now();
        let mut spin = 0u64;
        while started.elapsed() < Duration::from_millis(200) {
            spin = std::hint::black_box(spin.wrapping_mul(31).wrapping_add(7));
        }
        let after = CpuTimes::of_this_process().expect("Linux /proc");
        assert!(after.own_ms > before.own_ms, "{before:?} then {after:?} after 200 ms of spinning");
    }
}
