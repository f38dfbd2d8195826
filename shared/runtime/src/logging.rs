//! Structured logs: JSON in Lambda (CloudWatch parses it) and in a container (stdout, where the
//! kubelet collects it), readable text on a terminal.

use std::io::IsTerminal as _;

use tracing_subscriber::EnvFilter;

use crate::LogFormat;

/// Where log lines go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogTarget {
    Stdout,
    Stderr,
}

/// Safe to call more than once (tests); only the first call installs a subscriber.
pub fn init_logging(filter: &str, format: LogFormat) {
    init_logging_to(filter, format, LogTarget::Stderr);
}

/// `squaremcp serve`'s logs: with stdout not a terminal (a container, a service manager, a
/// pipe), to stdout, as JSON unless `SQUAREMCP_LOG_FORMAT` says otherwise; on a terminal, to
/// stderr as configured.
pub fn server_log_choice(stdout_is_terminal: bool, format: LogFormat, format_set: bool) -> (LogFormat, LogTarget) {
    match (stdout_is_terminal, format_set) {
        (true, _) => (format, LogTarget::Stderr),
        (false, true) => (format, LogTarget::Stdout),
        (false, false) => (LogFormat::Json, LogTarget::Stdout),
    }
}

pub fn init_server_logging(filter: &str, format: LogFormat, format_set: bool) {
    let (format, target) = server_log_choice(std::io::stdout().is_terminal(), format, format_set);
    init_logging_to(filter, format, target);
}

fn init_logging_to(filter: &str, format: LogFormat, target: LogTarget) {
    let filter = EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new("info"));
    // Colours only on a terminal: a log file or a container's log keeps no escape codes.
    let ansi = match target {
        LogTarget::Stdout => std::io::stdout().is_terminal(),
        LogTarget::Stderr => std::io::stderr().is_terminal(),
    };
    let writer = move || -> Box<dyn std::io::Write> {
        match target {
            LogTarget::Stdout => Box::new(std::io::stdout()),
            LogTarget::Stderr => Box::new(std::io::stderr()),
        }
    };
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(writer).with_ansi(ansi);
    let _already_installed = match format {
        LogFormat::Json => builder.json().flatten_event(true).with_current_span(false).try_init(),
        LogFormat::Text => builder.with_target(false).try_init(),
    };
}

/// The Lambdas' JSON log lines, written to `writer`: what the cost model measures the volume
/// of (CloudWatch bills ingestion by the byte). Only the first subscriber of a process counts.
pub fn init_json_logging_with<W>(filter: &str, writer: W)
where
    W: for<'writer> tracing_subscriber::fmt::MakeWriter<'writer> + Send + Sync + 'static,
{
    let filter = EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(writer).with_ansi(false);
    let _already_installed = builder.json().flatten_event(true).with_current_span(false).try_init();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_container_gets_json_on_stdout_a_terminal_keeps_its_format_on_stderr() {
        assert_eq!(server_log_choice(false, LogFormat::Text, false), (LogFormat::Json, LogTarget::Stdout));
        assert_eq!(server_log_choice(false, LogFormat::Text, true), (LogFormat::Text, LogTarget::Stdout));
        assert_eq!(server_log_choice(true, LogFormat::Text, false), (LogFormat::Text, LogTarget::Stderr));
        assert_eq!(server_log_choice(true, LogFormat::Json, true), (LogFormat::Json, LogTarget::Stderr));
    }
}
