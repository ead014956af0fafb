//! A real `redis-server` (`pushpoll_testkit::redis`) and chat nodes sharing it (`loadgen
//! serve-chat --redis URL`, child processes).

use std::path::Path;

use loadgen::parts::ChildServer;
pub use pushpoll_testkit::redis::RedisServer;

/// `count` chat nodes (`exe serve-chat --redis URL`, child processes) sharing `redis`.
pub async fn nodes(exe: &Path, redis: &RedisServer, count: usize) -> Vec<ChildServer> {
    let mut nodes = Vec::new();
    for _ in 0..count {
        let args = ["--redis".to_string(), redis.url()];
        nodes.push(ChildServer::spawn(exe, &args).await.expect("node starts"));
    }
    nodes
}
