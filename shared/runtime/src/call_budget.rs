//! The `mcp` function's time limit against the call timeout: a tool call's platform part ends at
//! the call timeout, and the call record (or refund) and the answer need the rest of the
//! function's time. Lambda tells a function nothing of its own limit at start-up, so the check
//! reads the deployment's `template.yaml`.
#![cfg(test)]

use std::time::Duration;

use squaremcp_core::gateway::{DEFAULT_CALL_TIMEOUT, RECORD_MARGIN};

/// The lines of a YAML block: the lines after `header` (at `indent` spaces) up to the next line
/// indented as much or less. Enough for the template's plain block mappings.
fn block<'a>(lines: &[&'a str], indent: usize, header: &str) -> Option<Vec<&'a str>> {
    let opening = format!("{}{header}:", " ".repeat(indent));
    let start = lines.iter().position(|line| line.trim_end() == opening)?;
    let inner = lines[start + 1..]
        .iter()
        .take_while(|line| line.trim().is_empty() || line.len() - line.trim_start().len() > indent)
        .copied()
        .collect();
    Some(inner)
}

/// The value of `key` at exactly `indent` spaces in `lines`.
fn scalar<'a>(lines: &[&'a str], indent: usize, key: &str) -> Option<&'a str> {
    let prefix = format!("{}{key}:", " ".repeat(indent));
    lines
        .iter()
        .find_map(|line| line.strip_prefix(prefix.as_str()))
        .map(|value| value.trim().trim_matches('"'))
}

fn seconds(value: &str, what: &str) -> Result<u64, String> {
    value
        .parse()
        .map_err(|_| format!("{what} `{value}` is not a whole number of seconds"))
}

/// The `mcp` function's time limit and call timeout as the template deploys them.
fn deployed(template: &str) -> Result<(Duration, Duration), String> {
    let lines: Vec<&str> = template.lines().collect();
    let globals = block(&lines, 0, "Globals").ok_or("no Globals block")?;
    let global_function = block(&globals, 2, "Function").ok_or("no Globals: Function: block")?;
    let mcp = block(&lines, 2, "McpFunction").ok_or("no McpFunction resource")?;
    let properties = block(&mcp, 4, "Properties").ok_or("McpFunction has no Properties")?;
    let timeout = scalar(&properties, 6, "Timeout")
        .or_else(|| scalar(&global_function, 4, "Timeout"))
        .ok_or("no Timeout for McpFunction")?;
    let call_timeout_key = "SQUAREMCP_CALL_TIMEOUT_SECONDS";
    let call_timeout = match scalar(&properties, 10, call_timeout_key).or_else(|| scalar(&global_function, 8, call_timeout_key)) {
        Some(value) => Duration::from_secs(seconds(value, call_timeout_key)?),
        None => DEFAULT_CALL_TIMEOUT,
    };
    Ok((Duration::from_secs(seconds(timeout, "Timeout")?), call_timeout))
}

/// `Err` says what to change when the function's limit leaves less than [`RECORD_MARGIN`].
fn check(function_timeout: Duration, call_timeout: Duration) -> Result<(), String> {
    if call_timeout + RECORD_MARGIN <= function_timeout {
        Ok(())
    } else {
        Err(format!(
            "the mcp function's Timeout ({} s) must be at least the call timeout ({} s) plus {} s for the call record and the answer",
            function_timeout.as_secs(),
            call_timeout.as_secs(),
            RECORD_MARGIN.as_secs()
        ))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    const TEMPLATE: &str = include_str!("../../../template.yaml");

    #[test]
    fn the_deployed_mcp_function_outlasts_its_calls_by_the_margin() {
        let (function_timeout, call_timeout) = deployed(TEMPLATE).unwrap();
        assert_eq!(function_timeout, Duration::from_secs(29), "the template as read");
        check(function_timeout, call_timeout).unwrap();
    }

    #[test]
    fn a_function_limit_without_the_margin_is_refused() {
        let why = check(Duration::from_secs(29), Duration::from_secs(30)).unwrap_err();
        assert!(why.contains("Timeout (29 s)") && why.contains("call timeout (30 s)"), "{why}");
        assert!(
            check(Duration::from_secs(29), Duration::from_secs(26)).is_err(),
            "3 s is less than the margin"
        );
        assert!(check(Duration::from_secs(29), Duration::from_secs(25)).is_ok());
    }

    #[test]
    fn the_function_own_settings_win_over_the_globals() {
        let template = "Globals:\n  Function:\n    Timeout: 29\n    Environment:\n      Variables:\n        SQUAREMCP_LOG_FORMAT: json\n\
                        Resources:\n  McpFunction:\n    Type: AWS::Serverless::Function\n    Properties:\n      Timeout: 20\n      \
                        Environment:\n        Variables:\n          SQUAREMCP_CALL_TIMEOUT_SECONDS: \"18\"\n  OtherFunction:\n    Properties:\n      Timeout: 900\n";
        let (function_timeout, call_timeout) = deployed(template).unwrap();
        assert_eq!((function_timeout, call_timeout), (Duration::from_secs(20), Duration::from_secs(18)));
        assert!(check(function_timeout, call_timeout).is_err());
        let globals_only = template
            .replace("      Timeout: 20\n", "")
            .replace("          SQUAREMCP_CALL_TIMEOUT_SECONDS: \"18\"\n", "");
        assert_eq!(deployed(&globals_only).unwrap(), (Duration::from_secs(29), DEFAULT_CALL_TIMEOUT));
    }
}
