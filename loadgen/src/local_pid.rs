//! Which local process listens on a loopback port, from `/proc/net/tcp{,6}` and the processes'
//! file descriptors (read through `procfs`), so a `--target` on this machine that has no
//! /metrics (the tutorial's Node server) still gets its CPU and memory measured.

/// The process owning a listening TCP socket on `port`, if it can be seen (same user or root).
#[cfg(target_os = "linux")]
pub fn pid_listening_on(port: u16) -> Option<u32> {
    use procfs::net::TcpState;
    use procfs::process::FDTarget;
    let tables = [procfs::net::tcp(), procfs::net::tcp6()];
    let inodes: Vec<u64> = tables
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.local_address.port() == port && e.state == TcpState::Listen)
        .map(|e| e.inode)
        .collect();
    if inodes.is_empty() {
        return None;
    }
    procfs::process::all_processes()
        .ok()?
        .flatten()
        .find(|p| {
            p.fd().is_ok_and(|mut fds| {
                fds.any(|fd| {
                    fd.is_ok_and(
                        |fd| matches!(fd.target, FDTarget::Socket(i) if inodes.contains(&i)),
                    )
                })
            })
        })
        .and_then(|p| u32::try_from(p.pid).ok())
}

#[cfg(not(target_os = "linux"))]
pub fn pid_listening_on(_port: u16) -> Option<u32> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_this_process_listening_and_nobody_on_a_closed_port() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        assert_eq!(pid_listening_on(port), Some(std::process::id()));
        drop(listener);
        assert_eq!(pid_listening_on(port), None);
    }
}
