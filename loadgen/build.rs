//! Records the git commit the generator was built from, so every `results.json` says which code
//! produced it. An explicit `PUSHPOLL_GIT_COMMIT` wins; outside a git checkout nothing is set.

use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=PUSHPOLL_GIT_COMMIT");
    if std::env::var_os("PUSHPOLL_GIT_COMMIT").is_some() {
        return;
    }
    let git = |args: &[&str]| -> Option<String> {
        let out = Command::new("git").args(args).output().ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
    };
    let Some(commit) = git(&["rev-parse", "--short=12", "HEAD"]) else {
        return;
    };
    // Rebuild when HEAD moves (a commit, a checkout). Uncommitted edits are not tracked: that
    // would rebuild on every `git add`.
    if let Some(git_dir) = git(&["rev-parse", "--absolute-git-dir"]) {
        println!("cargo:rerun-if-changed={git_dir}/HEAD");
        if let Some(head_ref) = git(&["symbolic-ref", "-q", "HEAD"]) {
            println!("cargo:rerun-if-changed={git_dir}/{head_ref}");
        }
    }
    println!("cargo:rustc-env=PUSHPOLL_GIT_COMMIT={commit}");
}
