//! Server CPU time and memory from `/proc/PID/stat` and `/proc/PID/status`.
//!
//! Throughput means little without what it cost: the report gives the
//! server's CPU seconds during the measured interval (as cores used) and its
//! peak resident set (`VmHWM`), read from procfs so any process can be
//! watched, the benchmark's own child gateway or one given by `--server-pid`.

use serde::Serialize;

/// Clock ticks per second of `utime`/`stime`: `USER_HZ`, 100 on every Linux
/// architecture the gateway runs on (the kernel ABI fixes it, unlike `HZ`).
const TICKS_PER_SEC: f64 = 100.0;

/// One reading of a process's counters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    /// User plus system CPU time, seconds.
    pub cpu_secs: f64,
    /// Peak resident set so far, KiB (`VmHWM`).
    pub peak_rss_kib: u64,
    /// Resident set now, KiB (`VmRSS`).
    pub rss_kib: u64,
}

/// What the server used during a run.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ServerUsage {
    /// The process watched.
    pub pid: u32,
    /// CPU seconds during the measured interval.
    pub cpu_secs: f64,
    /// Average cores busy (CPU seconds / wall seconds).
    pub cpu_cores: f64,
    /// Peak resident set at the end of the run, MiB (`VmHWM`, since start).
    pub peak_rss_mib: f64,
    /// Resident set at the end of the run, MiB.
    pub rss_mib: f64,
}

/// Why a process could not be read.
#[derive(Debug, thiserror::Error)]
#[error("/proc/{pid}: {message}")]
pub struct ProcError {
    pid: u32,
    message: String,
}

/// Reads the counters of `pid`.
pub fn sample(pid: u32) -> Result<Sample, ProcError> {
    let err = |message: String| ProcError { pid, message };
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map_err(|e| err(format!("stat: {e}")))?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .map_err(|e| err(format!("status: {e}")))?;
    let cpu_secs = parse_cpu_secs(&stat).ok_or_else(|| err("unreadable stat line".into()))?;
    let peak_rss_kib =
        status_kib(&status, "VmHWM:").ok_or_else(|| err("no VmHWM in status".into()))?;
    let rss_kib = status_kib(&status, "VmRSS:").ok_or_else(|| err("no VmRSS in status".into()))?;
    Ok(Sample {
        cpu_secs,
        peak_rss_kib,
        rss_kib,
    })
}

/// The usage between two samples over `wall_secs`.
pub fn usage(pid: u32, before: &Sample, after: &Sample, wall_secs: f64) -> ServerUsage {
    let cpu_secs = (after.cpu_secs - before.cpu_secs).max(0.0);
    ServerUsage {
        pid,
        cpu_secs,
        cpu_cores: if wall_secs > 0.0 {
            cpu_secs / wall_secs
        } else {
            0.0
        },
        peak_rss_mib: after.peak_rss_kib as f64 / 1024.0,
        rss_mib: after.rss_kib as f64 / 1024.0,
    }
}

/// utime + stime (fields 14 and 15) in seconds. The command name (field 2)
/// is in parentheses and may itself hold spaces and parentheses, so fields
/// are counted after the last `)`.
fn parse_cpu_secs(stat: &str) -> Option<f64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    // After ")": field 3 (state) is index 0, so utime (14) is index 11.
    let mut fields = rest.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some((utime + stime) as f64 / TICKS_PER_SEC)
}

fn status_kib(status: &str, key: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with(key))?;
    line[key.len()..].split_whitespace().next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_from_a_stat_line_with_a_tricky_name() {
        let line =
            "4242 (brdo (x) y) S 1 4242 4242 0 -1 4194560 1000 0 0 0 250 75 0 0 20 0 6 0 100 0 0";
        assert_eq!(parse_cpu_secs(line), Some(3.25));
        assert_eq!(parse_cpu_secs("4242 (brdo) S 1"), None);
        assert_eq!(parse_cpu_secs("garbage"), None);
    }

    #[test]
    fn memory_from_status() {
        let status = "Name:\tbrdo\nVmPeak:\t  100 kB\nVmHWM:\t   20480 kB\nVmRSS:\t   10240 kB\n";
        assert_eq!(status_kib(status, "VmHWM:"), Some(20480));
        assert_eq!(status_kib(status, "VmRSS:"), Some(10240));
        assert_eq!(status_kib(status, "VmSwap:"), None);
    }

    #[test]
    fn usage_is_the_difference_over_wall_time() {
        let a = Sample {
            cpu_secs: 1.0,
            peak_rss_kib: 1024,
            rss_kib: 1024,
        };
        let b = Sample {
            cpu_secs: 4.0,
            peak_rss_kib: 32 * 1024,
            rss_kib: 16 * 1024,
        };
        let u = usage(7, &a, &b, 2.0);
        assert_eq!(u.cpu_secs, 3.0);
        assert_eq!(u.cpu_cores, 1.5);
        assert_eq!(u.peak_rss_mib, 32.0);
        assert_eq!(u.rss_mib, 16.0);
    }

    #[test]
    fn this_process_can_be_read() {
        let s = sample(std::process::id()).expect("own /proc");
        assert!(s.peak_rss_kib >= s.rss_kib / 2 && s.rss_kib > 0);
    }
}
