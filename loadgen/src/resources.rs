//! CPU and memory of a process (the generator itself, or the server child) from `/proc`, the
//! machine's description, and the open-file limit.

use std::time::Duration;

use crate::results::{Machine, ProcessUsage};

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

/// Reads `/proc/<pid>` (`None`: this process) through `procfs`, which converts clock ticks with
/// the system's real tick rate. `None` when the process is gone, its /proc is not readable, or
/// this is not Linux.
#[cfg(target_os = "linux")]
pub fn sample(pid: Option<u32>) -> Option<ProcSample> {
    let process = match pid {
        Some(pid) => procfs::process::Process::new(i32::try_from(pid).ok()?),
        None => procfs::process::Process::myself(),
    }
    .ok()?;
    let stat = process.stat().ok()?;
    let status = process.status().ok()?;
    Some(ProcSample {
        cpu_seconds: ticks_to_seconds(stat.utime + stat.stime),
        rss_bytes: status.vmrss? * 1024,
        peak_rss_bytes: status.vmhwm? * 1024,
    })
}

#[cfg(not(target_os = "linux"))]
pub fn sample(_pid: Option<u32>) -> Option<ProcSample> {
    None
}

/// A process's resident memory, exactly: `Rss` of `/proc/<pid>/smaps_rollup`, which the kernel
/// counts from the page tables when it is read. `VmRSS` (what [`sample`] reads) is the sum of
/// counters each thread updates in batches, so it can trail by hundreds of KiB in a busy
/// multi-threaded process: too coarse to divide by a few connections. Falls back to `VmRSS`
/// where smaps_rollup is missing.
#[cfg(target_os = "linux")]
pub fn resident_bytes(pid: u32) -> Option<u64> {
    let process = procfs::process::Process::new(i32::try_from(pid).ok()?).ok()?;
    let rollup = process.smaps_rollup().ok().and_then(|r| {
        let maps = r.memory_map_rollup.0;
        maps.iter()
            .map(|m| m.extension.map.get("Rss").copied())
            .sum::<Option<u64>>()
    });
    match rollup {
        Some(bytes) => Some(bytes),
        None => Some(process.status().ok()?.vmrss? * 1024),
    }
}

#[cfg(not(target_os = "linux"))]
pub fn resident_bytes(_pid: u32) -> Option<u64> {
    None
}

#[cfg(target_os = "linux")]
fn ticks_to_seconds(ticks: u64) -> f64 {
    ticks as f64 / procfs::ticks_per_second().max(1) as f64
}

/// CPU time of the whole machine, all cores together, in seconds.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct MachineCpu {
    pub busy_seconds: f64,
}

/// The machine's busy CPU time from `/proc/stat`: every state but idle and iowait, all cores.
#[cfg(target_os = "linux")]
pub fn machine_cpu() -> Option<MachineCpu> {
    use procfs::CurrentSI as _;
    let t = procfs::KernelStats::current().ok()?.total;
    let busy = t.user
        + t.nice
        + t.system
        + t.irq.unwrap_or(0)
        + t.softirq.unwrap_or(0)
        + t.steal.unwrap_or(0);
    Some(MachineCpu {
        busy_seconds: ticks_to_seconds(busy),
    })
}

#[cfg(not(target_os = "linux"))]
pub fn machine_cpu() -> Option<MachineCpu> {
    None
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
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    Machine {
        cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
        memory_bytes: memory_bytes(),
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

#[cfg(target_os = "linux")]
fn memory_bytes() -> Option<u64> {
    use procfs::Current as _;
    procfs::Meminfo::current().ok().map(|m| m.mem_total)
}

#[cfg(not(target_os = "linux"))]
fn memory_bytes() -> Option<u64> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_machine_busy_time() {
        let a = machine_cpu().expect("linux /proc/stat");
        // Busy time only grows.
        let mut spin = 0u64;
        for i in 0..2_000_000u64 {
            spin = spin.wrapping_add(std::hint::black_box(i));
        }
        std::hint::black_box(spin);
        let b = machine_cpu().expect("linux /proc/stat");
        assert!(a.busy_seconds > 0.0 && b.busy_seconds >= a.busy_seconds);
        assert!(machine_info().memory_bytes.is_some_and(|m| m > 0));
    }

    #[test]
    fn reads_another_process_and_not_a_missing_one() {
        let mut child = std::process::Command::new("sleep")
            .arg("5")
            .spawn()
            .expect("sleep");
        let s = sample(Some(child.id())).expect("the child's /proc");
        assert!(s.rss_bytes > 0 && s.peak_rss_bytes >= s.rss_bytes);
        let _ = child.kill();
        let _ = child.wait();
        assert_eq!(sample(Some(child.id())), None);
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
        // Within what VmRSS says (it trails by at most a few hundred KiB).
        let vm = sample(None).expect("sample").rss_bytes;
        assert!(rss.abs_diff(vm) < 8 << 20, "{rss} vs {vm}");
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
