//! A one-line progress bar on stderr for long commands (`credentials rewrap`): redrawn in place
//! on a terminal, a line every 10% otherwise (logs, CI), nothing with `--json`.

use std::io::{IsTerminal as _, Write as _};

pub struct Progress {
    label: &'static str,
    terminal: bool,
    quiet: bool,
    last_tenth: Option<usize>,
}

impl Progress {
    pub fn new(label: &'static str, quiet: bool) -> Self {
        Self { label, terminal: std::io::stderr().is_terminal(), quiet, last_tenth: None }
    }

    pub fn update(&mut self, done: usize, total: usize) {
        if self.quiet {
            return;
        }
        let line = render(self.label, done, total);
        let mut err = std::io::stderr().lock();
        if self.terminal {
            let _ = write!(err, "\r{line}");
            let _ = err.flush();
        } else {
            let tenth = (done * 10).checked_div(total).unwrap_or(10);
            if self.last_tenth != Some(tenth) {
                self.last_tenth = Some(tenth);
                let _ = writeln!(err, "{line}");
            }
        }
    }

    pub fn finish(&mut self) {
        if self.terminal && !self.quiet {
            let _ = writeln!(std::io::stderr());
        }
    }
}

/// `label [#######.............] 7/20`
pub fn render(label: &str, done: usize, total: usize) -> String {
    const WIDTH: usize = 30;
    let filled = (done.min(total) * WIDTH).checked_div(total).unwrap_or(WIDTH);
    format!("{label} [{}{}] {done}/{total}", "#".repeat(filled), ".".repeat(WIDTH - filled))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bar_fills_with_progress() {
        assert_eq!(render("x", 0, 4), format!("x [{}] 0/4", ".".repeat(30)));
        assert_eq!(render("x", 2, 4), format!("x [{}{}] 2/4", "#".repeat(15), ".".repeat(15)));
        assert_eq!(render("x", 0, 0), format!("x [{}] 0/0", "#".repeat(30)));
    }
}
