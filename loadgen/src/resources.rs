//! CPU and memory of a process (the generator itself, or the server child) from `/proc`, the
//! machine's description, and the open-file limit.

use std::time::Duration;

use crate::results::{Machine, ProcessUsage};

/// Linux reports `utime`/`stime` in USER_HZ ticks, which is 100 on every supported architecture
/// (the kernel fixes it for user space regardless of its internal HZ).
const USER_HZ: f64 = 100.0;

/// File descriptors kept free for the runtime, the control connections and the child's pipes.
pub const FD_MARGIN: u64 = 64;

/// One reading of a process's CPU time and memory.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ProcSample {
    /// User + system CPU seconds since the process started.
    pub cpu_seconds: f64,
    /// Resident memory now.
    pub rss_bytes: u64,
    /// Peak resident memory so far (VmHWM).
    pub peak_rss_bytes: u64,
}

/// Reads `/proc/<pid>` (`None`: this process). `None` when it is gone or not Linux.
pub fn sample(pid: Option<u32>) -> Option<ProcSample> {
    let dir = match pid {
        Some(pid) => format!("/proc/{pid}"),
        None => "/proc/self".to_string(),
    };
    let stat = std::fs::read_to_string(format!("{dir}/stat")).ok()?;
    let status = std::fs::read_to_string(format!("{dir}/status")).ok()?;
    Some(ProcSample {
        cpu_seconds: parse_cpu_seconds(&stat)?,
        rss_bytes: parse_status_kb(&status, "VmRSS:")? * 1024,
        peak_rss_bytes: parse_status_kb(&status, "VmHWM:")? * 1024,
    })
}

/// A process's resident memory, exactly: `Rss` of `/proc/<pid>/smaps_rollup`, which the kernel
/// counts from the page tables when it is read. `VmRSS` (what [`sample`] reads) is the sum of
/// counters each thread updates in batches, so it can trail by hundreds of KiB in a busy
/// multi-threaded process: too coarse to divide by a few connections. Falls back to `VmRSS`
/// where smaps_rollup is missing.
pub fn resident_bytes(pid: u32) -> Option<u64> {
    let dir = format!("/proc/{pid}");
    if let Ok(rollup) = std::fs::read_to_string(format!("{dir}/smaps_rollup"))
        && let Some(kb) = parse_status_kb(&rollup, "Rss:")
    {
        return Some(kb * 1024);
    }
    let status = std::fs::read_to_string(format!("{dir}/status")).ok()?;
    Some(parse_status_kb(&status, "VmRSS:")? * 1024)
}

/// utime + stime from a `/proc/<pid>/stat` line. The command name (field 2) may contain spaces
/// and parentheses, so fields are counted after the last `)`.
fn parse_cpu_seconds(stat: &str) -> Option<f64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After ")": state is field 3 of the line, utime field 14, stime field 15.
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / USER_HZ)
}

fn parse_status_kb(status: &str, key: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with(key))?;
    line[key.len()..].split_whitespace().next()?.parse().ok()
}

/// CPU time of the whole machine, all cores together, in seconds.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct MachineCpu {
    pub busy_seconds: f64,
}

/// Reads the first line of `/proc/stat` (USER_HZ ticks of every core): busy = all but idle
/// and iowait.
pub fn machine_cpu() -> Option<MachineCpu> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    parse_machine_cpu(stat.lines().next()?)
}

fn parse_machine_cpu(line: &str) -> Option<MachineCpu> {
    let mut fields = line.split_whitespace();
    if fields.next()? != "cpu" {
        return None;
    }
    let ticks: Vec<f64> = fields.map_while(|f| f.parse().ok()).collect();
    let total: f64 = ticks.iter().take(8).sum();
    let idle = ticks.get(3)? + ticks.get(4).unwrap_or(&0.0);
    Some(MachineCpu {
        busy_seconds: (total - idle) / USER_HZ,
    })
}

/// CPU used between two samples over `window`, and the peak memory at the later one.
pub fn usage_between(before: ProcSample, after: ProcSample, window: Duration) -> ProcessUsage {
    let cpu_seconds = (after.cpu_seconds - before.cpu_seconds).max(0.0);
    ProcessUsage {
        cpu_seconds,
        cpu_percent: crate::results::ratio(cpu_seconds, window.as_secs_f64()) * 100.0,
        peak_rss_bytes: after.peak_rss_bytes,
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LimitError {
    #[error(
        "{needed} open files needed ({clients} clients + senders + {FD_MARGIN} spare) but the open-file limit is {limit}: raise it with `ulimit -n {needed}` (or lower --clients)"
    )]
    TooManyClients {
        needed: u64,
        clients: u64,
        limit: u64,
    },
    #[error("cannot read or raise the open-file limit: {0}")]
    Rlimit(std::io::Error),
}

/// Raises the soft open-file limit to the hard limit and checks that `clients` (each with
/// `fds_per_client` sockets) plus `senders` fit. Returns the limit now in force.
pub fn ensure_fd_limit(clients: u64, fds_per_client: u64, senders: u64) -> Result<u64, LimitError> {
    let needed = clients * fds_per_client + senders + FD_MARGIN;
    let limit = rlimit::increase_nofile_limit(u64::MAX).map_err(LimitError::Rlimit)?;
    if needed > limit {
        return Err(LimitError::TooManyClients {
            needed,
            clients,
            limit,
        });
    }
    Ok(limit)
}

/// The machine the run happened on.
pub fn machine_info() -> Machine {
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    Machine {
        cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
        memory_bytes: parse_status_kb(&meminfo, "MemTotal:").map(|kb| kb * 1024),
        os: std::env::consts::OS.to_string(),
        kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .ok()
            .map(|s| s.trim().to_string()),
        cpu_model: cpuinfo
            .lines()
            .find(|l| l.starts_with("model name"))
            .and_then(|l| l.split_once(':'))
            .map(|(_, v)| v.trim().to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_stat_with_a_tricky_command_name() {
        let stat = "1234 (my (odd) name) S 1 2 3 4 5 6 7 8 9 10 250 50 0 0 20 0 4 0";
        assert_eq!(parse_cpu_seconds(stat), Some(3.0));
    }

    #[test]
    fn reads_machine_busy_time() {
        let line = "cpu  100 20 30 1000 50 5 5 0 0 0";
        assert_eq!(
            parse_machine_cpu(line),
            Some(MachineCpu { busy_seconds: 1.6 })
        );
        assert_eq!(parse_machine_cpu("cpu0 1 2 3 4"), None);
        assert!(machine_cpu().is_some());
    }

    #[test]
    fn samples_this_process() {
        let s = sample(None).expect("linux /proc");
        assert!(s.rss_bytes > 0 && s.peak_rss_bytes >= s.rss_bytes);
        assert!(s.cpu_seconds >= 0.0);
    }

    #[test]
    fn reads_this_process_resident_memory() {
        let rss = resident_bytes(std::process::id()).expect("linux /proc");
        assert!(rss > 0);
    }

    #[test]
    fn usage_over_a_window() {
        let a = ProcSample {
            cpu_seconds: 1.0,
            rss_bytes: 1,
            peak_rss_bytes: 10,
        };
        let b = ProcSample {
            cpu_seconds: 2.5,
            rss_bytes: 1,
            peak_rss_bytes: 20,
        };
        let u = usage_between(a, b, Duration::from_secs(3));
        assert_eq!(u.cpu_seconds, 1.5);
        assert_eq!(u.cpu_percent, 50.0);
        assert_eq!(u.peak_rss_bytes, 20);
    }

    #[test]
    fn a_client_count_beyond_the_limit_names_the_fix() {
        let err = ensure_fd_limit(u64::MAX / 4, 1, 1).expect_err("too many");
        assert!(err.to_string().contains("ulimit -n"), "{err}");
    }
}
