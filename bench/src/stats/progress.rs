//! The live progress line: once a second, on stderr, the rate of each operation over the last
//! second, totals and errors. On a terminal it rewrites one line; otherwise it prints a line
//! per second (so logs of CI runs stay readable).

use std::io::{IsTerminal, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::Live;

/// Formats one progress line from the previous and current (count, errors) of each operation.
pub fn line(
    live: &Live,
    elapsed: Duration,
    prev: &[(u64, u64)],
    now: &[(u64, u64)],
    dt: f64,
) -> String {
    let mut parts = Vec::new();
    for (i, name) in live.names.iter().enumerate() {
        let ((c0, _), (c1, e1)) = (prev[i], now[i]);
        if c1 == 0 && e1 == 0 {
            continue;
        }
        let rate = (c1 - c0) as f64 / dt.max(1e-9);
        let err = if e1 > 0 { format!(" err {e1}") } else { String::new() };
        parts.push(format!("{name} {rate:.0}/s ({c1}{err})"));
    }
    format!("[{:>4}s] {}", elapsed.as_secs(), parts.join(" | "))
}

/// Prints the progress line every second until `stop` resolves; a no-op when `quiet`.
pub async fn run(
    live: Arc<Live>,
    start: Instant,
    quiet: bool,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    if quiet {
        return;
    }
    let tty = std::io::stderr().is_terminal();
    let snapshot = |l: &Live| (0..l.names.len()).map(|i| l.get(i)).collect::<Vec<_>>();
    let mut prev = snapshot(&live);
    let mut last = Instant::now();
    let mut tick = tokio::time::interval_at(
        tokio::time::Instant::now() + Duration::from_secs(1),
        Duration::from_secs(1),
    );
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.changed() => break,
        }
        let now = snapshot(&live);
        let text = line(&live, start.elapsed(), &prev, &now, last.elapsed().as_secs_f64());
        last = Instant::now();
        prev = now;
        let mut err = std::io::stderr().lock();
        let _ = if tty { write!(err, "\r\x1b[2K{text}") } else { writeln!(err, "{text}") };
        let _ = err.flush();
    }
    if tty {
        let _ = writeln!(std::io::stderr());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_shows_rates_totals_and_errors() {
        let live = Live::new(&["deliver", "connect", "idle"]);
        let prev = [(100, 0), (8, 0), (0, 0)];
        let now = [(1100, 2), (8, 0), (0, 0)];
        let l = line(&live, Duration::from_secs(3), &prev, &now, 1.0);
        assert_eq!(l, "[   3s] deliver 1000/s (1100 err 2) | connect 0/s (8)");
    }
}
