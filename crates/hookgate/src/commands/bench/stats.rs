//! Percentiles and process readings for the benchmark report.

use std::time::Duration;

/// Latency summary of a set of samples.
#[derive(Clone, Copy, Debug, Default, serde::Serialize)]
pub struct Summary {
    /// Samples summarised.
    pub count: usize,
    /// Median, ms.
    pub p50_ms: f64,
    /// 95th percentile, ms.
    pub p95_ms: f64,
    /// 99th percentile, ms.
    pub p99_ms: f64,
    /// Largest, ms.
    pub max_ms: f64,
}

/// Summarises nanosecond samples (nearest-rank percentiles).
pub fn summarise(mut samples_ns: Vec<u64>) -> Summary {
    if samples_ns.is_empty() {
        return Summary::default();
    }
    samples_ns.sort_unstable();
    let at = |q: f64| {
        let rank = ((q * samples_ns.len() as f64).ceil() as usize).clamp(1, samples_ns.len());
        samples_ns[rank - 1] as f64 / 1e6
    };
    Summary {
        count: samples_ns.len(),
        p50_ms: at(0.50),
        p95_ms: at(0.95),
        p99_ms: at(0.99),
        max_ms: *samples_ns.last().expect("not empty") as f64 / 1e6,
    }
}

/// Peak resident memory and CPU time of a process, from `/proc`.
#[derive(Clone, Copy, Debug, Default, serde::Serialize)]
pub struct ProcessUse {
    /// Peak resident set (VmHWM), MiB.
    pub peak_rss_mib: f64,
    /// User plus system CPU time, seconds.
    pub cpu_seconds: f64,
}

/// Reads `/proc/<pid>`; zeros where it cannot (not Linux, process gone).
pub fn process_use(pid: u32) -> ProcessUse {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let peak_kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0.0);

    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may hold spaces) start at ")".
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15 of stat, 12 and 13 after ")".
    let cpu_ticks = ticks(11) + ticks(12);

    ProcessUse {
        peak_rss_mib: peak_kib / 1024.0,
        cpu_seconds: cpu_ticks / CLOCK_TICKS,
    }
}

/// Clock ticks per second of `/proc/<pid>/stat` (USER_HZ, 100 on Linux).
const CLOCK_TICKS: f64 = 100.0;

/// Events per second over `elapsed`.
pub fn rate(count: usize, elapsed: Duration) -> f64 {
    count as f64 / elapsed.as_secs_f64().max(1e-9)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let samples: Vec<u64> = (1..=100).map(|ms| ms * 1_000_000).collect();
        let s = summarise(samples);
        assert_eq!(s.count, 100);
        assert_eq!(s.p50_ms, 50.0);
        assert_eq!(s.p99_ms, 99.0);
        assert_eq!(s.max_ms, 100.0);
    }

    #[test]
    fn empty_is_zero() {
        assert_eq!(summarise(Vec::new()).count, 0);
    }

    #[test]
    fn reads_this_process() {
        let own = process_use(std::process::id());
        assert!(own.peak_rss_mib > 0.0);
    }
}
