//! CPU time of each thread of this process, from `/proc/self/task/<tid>/stat`.
//!
//! The process total (see [`crate::resources`]) says that the generator was busy; per-thread
//! figures say whether one thread (a saturated runtime worker, the timer, a blocking-pool
//! thread) was the bottleneck while the others idled. Two [`sample`]s and the wall time between
//! them give each thread's CPU share over that window ([`busiest_between`]).
//!
//! The `procfs` crate reads the files (it is already built for the server's process metrics)
//! and converts ticks with the kernel's real USER_HZ (`procfs::ticks_per_second`). The name is
//! the thread's `comm` (the first 15 bytes of its name). Tick resolution is 1 / USER_HZ
//! (10 ms), so a window should be seconds long for the percentages to mean much.

use std::collections::HashMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// One thread's CPU time so far.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ThreadCpu {
    pub tid: i32,
    /// `comm`: the thread's name, cut to 15 bytes by the kernel.
    pub name: String,
    /// User + system CPU seconds since the thread started.
    pub cpu_seconds: f64,
}

/// One thread's CPU over a window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ThreadUsage {
    pub tid: i32,
    pub name: String,
    /// CPU seconds spent in the window.
    pub cpu_seconds: f64,
    /// Share of one core over the window, as `top` shows it: 100 = one core busy throughout.
    pub cpu_percent: f64,
}

/// Why the threads cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum ThreadCpuError {
    #[cfg(target_os = "linux")]
    #[error("reading this process's threads from /proc: {0}")]
    Proc(#[from] procfs::ProcError),
    #[cfg(not(target_os = "linux"))]
    #[error("per-thread CPU needs Linux's /proc")]
    Unsupported,
}

/// Every thread of this process, ordered by tid. Threads that exit while being read are left
/// out.
#[cfg(target_os = "linux")]
pub fn sample() -> Result<Vec<ThreadCpu>, ThreadCpuError> {
    let ticks = procfs::ticks_per_second().max(1) as f64;
    let mut threads = Vec::new();
    for task in procfs::process::Process::myself()?.tasks()? {
        // A thread can exit between the directory listing and the read of its stat.
        let Ok(stat) = task.and_then(|task| task.stat()) else {
            continue;
        };
        threads.push(ThreadCpu {
            tid: stat.pid,
            name: stat.comm,
            cpu_seconds: (stat.utime + stat.stime) as f64 / ticks,
        });
    }
    threads.sort_by_key(|t| t.tid);
    Ok(threads)
}

/// Every thread of this process (Linux only).
#[cfg(not(target_os = "linux"))]
pub fn sample() -> Result<Vec<ThreadCpu>, ThreadCpuError> {
    Err(ThreadCpuError::Unsupported)
}

/// Each thread of `after` with the CPU it spent since `before`, `window` being the wall time
/// between the two samples; busiest first (ties by tid). Threads are matched by tid: one absent
/// from `before` (it started in the window), or whose CPU went down (its tid was reused), is
/// counted from 0; threads gone by `after` are left out. A zero window gives `cpu_percent` 0.
pub fn busiest_between(
    before: &[ThreadCpu],
    after: &[ThreadCpu],
    window: Duration,
) -> Vec<ThreadUsage> {
    let earlier: HashMap<i32, f64> = before.iter().map(|t| (t.tid, t.cpu_seconds)).collect();
    let seconds = window.as_secs_f64();
    let mut usage: Vec<ThreadUsage> = after
        .iter()
        .map(|t| {
            let start = earlier
                .get(&t.tid)
                .copied()
                .filter(|&s| s <= t.cpu_seconds)
                .unwrap_or(0.0);
            let cpu_seconds = t.cpu_seconds - start;
            ThreadUsage {
                tid: t.tid,
                name: t.name.clone(),
                cpu_seconds,
                cpu_percent: if seconds > 0.0 {
                    100.0 * cpu_seconds / seconds
                } else {
                    0.0
                },
            }
        })
        .collect();
    usage.sort_by(|a, b| {
        b.cpu_percent
            .total_cmp(&a.cpu_percent)
            .then(a.tid.cmp(&b.tid))
    });
    usage
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cpu(tid: i32, name: &str, cpu_seconds: f64) -> ThreadCpu {
        ThreadCpu {
            tid,
            name: name.to_string(),
            cpu_seconds,
        }
    }

    fn usage(tid: i32, name: &str, cpu_seconds: f64, cpu_percent: f64) -> ThreadUsage {
        ThreadUsage {
            tid,
            name: name.to_string(),
            cpu_seconds,
            cpu_percent,
        }
    }

    #[test]
    fn usage_is_matched_by_tid_and_sorted_busiest_first() {
        let before = [
            cpu(10, "worker", 1.0),
            cpu(11, "worker", 2.0),
            cpu(12, "gone", 5.0),
            cpu(13, "reused", 9.0),
        ];
        let after = [
            cpu(10, "worker", 1.5),  // 0.5 s of 2 s
            cpu(11, "worker", 3.5),  // 1.5 s: busiest
            cpu(13, "reused", 0.25), // tid reused: from 0
            cpu(14, "new", 0.5),     // started in the window: from 0
        ];
        assert_eq!(
            busiest_between(&before, &after, Duration::from_secs(2)),
            [
                usage(11, "worker", 1.5, 75.0),
                usage(10, "worker", 0.5, 25.0),
                usage(14, "new", 0.5, 25.0),
                usage(13, "reused", 0.25, 12.5),
            ]
        );
    }

    #[test]
    fn a_zero_window_gives_zero_percent() {
        let got = busiest_between(&[cpu(1, "a", 1.0)], &[cpu(1, "a", 2.0)], Duration::ZERO);
        assert_eq!(got, [usage(1, "a", 1.0, 0.0)]);
        assert!(busiest_between(&[cpu(1, "a", 1.0)], &[], Duration::from_secs(1)).is_empty());
    }

    #[test]
    #[cfg(target_os = "linux")]
    fn sample_sees_named_threads() {
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let (exit_tx, exit_rx) = std::sync::mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("cpu-test-named".into())
            .spawn(move || {
                ready_tx.send(()).unwrap();
                let _ = exit_rx.recv();
            })
            .unwrap();
        ready_rx.recv().unwrap();
        let threads = sample().unwrap();
        drop(exit_tx);
        thread.join().unwrap();
        assert_eq!(
            threads
                .iter()
                .filter(|t| t.name == "cpu-test-named")
                .count(),
            1
        );
        assert!(threads.windows(2).all(|w| w[0].tid < w[1].tid));
        assert!(threads.iter().all(|t| t.cpu_seconds >= 0.0));
    }

    /// One thread spins for 300 ms while another waits: the spinner is far above 50 % of a core
    /// (about 100 % unless the machine is overloaded) and at most 100 % plus two 10 ms ticks of
    /// resolution; the waiting thread is far below 20 % (about 0).
    #[test]
    #[cfg(target_os = "linux")]
    fn a_spinning_thread_is_busier_than_an_idle_one() {
        use std::sync::mpsc::channel;
        use std::time::Instant;

        let (ready_tx, ready_rx) = channel();
        let (go_tx, go_rx) = channel::<()>();
        let (done_tx, done_rx) = channel();
        let (spin_exit_tx, spin_exit_rx) = channel::<()>();
        let (idle_exit_tx, idle_exit_rx) = channel::<()>();
        let idle_ready = ready_tx.clone();
        let spinner = std::thread::Builder::new()
            .name("cpu-test-spin".into())
            .spawn(move || {
                ready_tx.send(()).unwrap();
                go_rx.recv().unwrap();
                let start = Instant::now();
                let mut x = 0u64;
                while start.elapsed() < Duration::from_millis(300) {
                    x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
                }
                done_tx.send(()).unwrap();
                let _ = spin_exit_rx.recv();
            })
            .unwrap();
        let idler = std::thread::Builder::new()
            .name("cpu-test-idle".into())
            .spawn(move || {
                idle_ready.send(()).unwrap();
                let _ = idle_exit_rx.recv();
            })
            .unwrap();
        ready_rx.recv().unwrap();
        ready_rx.recv().unwrap();

        let before = sample().unwrap();
        let start = Instant::now();
        go_tx.send(()).unwrap();
        done_rx.recv().unwrap();
        let after = sample().unwrap();
        let window = start.elapsed();
        drop((spin_exit_tx, idle_exit_tx));
        spinner.join().unwrap();
        idler.join().unwrap();

        let usage = busiest_between(&before, &after, window);
        let find = |name: &str| {
            usage
                .iter()
                .position(|u| u.name == name)
                .unwrap_or_else(|| panic!("{name} not in {usage:?}"))
        };
        let (spin, idle) = (find("cpu-test-spin"), find("cpu-test-idle"));
        let (spin_pct, idle_pct) = (usage[spin].cpu_percent, usage[idle].cpu_percent);
        // Other tests share the cores, so the spinner's share of the window varies: assert what
        // holds under load. It got a tenth of the window at least (a fair scheduler gives a
        // runnable thread far more), no more than the window plus two 10 ms ticks, and the idle
        // thread next to nothing.
        assert!(spin_pct > 10.0, "spinner {spin_pct} %");
        let ceiling = 100.0 * (window.as_secs_f64() + 0.02) / window.as_secs_f64();
        assert!(spin_pct <= ceiling, "spinner {spin_pct} % > {ceiling} %");
        assert!(idle_pct < 5.0, "idle {idle_pct} %");
        assert!(spin < idle, "{usage:?}");
    }
}
