#![allow(dead_code)]
//! A real `redis-server` for tests: started once per test binary on a free loopback port,
//! killed when the test process exits (parent-death signal), one database per test.

use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

pub struct RedisServer {
    pub port: u16,
    pid: i32,
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        unsafe {
            libc::kill(self.pid, libc::SIGKILL);
        }
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts a redis-server on a free port, or panics with what to install. The child is spawned
/// from a thread that lives as long as the test process, because Linux delivers the
/// parent-death signal when the spawning *thread* exits.
pub fn start() -> RedisServer {
    let port = free_port();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let child = spawn(port);
        let _ = tx.send(child.id() as i32);
        let _keep = child;
        loop {
            std::thread::park();
        }
    });
    let pid = rx.recv().expect("redis-server started");
    let started = Instant::now();
    loop {
        if let Ok(client) = redis::Client::open(format!("redis://127.0.0.1:{port}/0")) {
            if let Ok(mut c) = client.get_connection_with_timeout(Duration::from_millis(200)) {
                if redis::cmd("PING").query::<String>(&mut c).is_ok() {
                    break;
                }
            }
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "redis-server did not start"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    RedisServer { port, pid }
}

fn spawn(port: u16) -> Child {
    let mut cmd = Command::new("redis-server");
    cmd.args([
        "--port",
        &port.to_string(),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
        "--databases",
        "64",
    ])
    .stdout(Stdio::null())
    .stderr(Stdio::null());
    unsafe {
        use std::os::unix::process::CommandExt;
        cmd.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
    cmd.spawn()
        .expect("redis-server is not installed: `apt-get install -y redis-server`")
}

/// A URL for an empty database of the shared server.
pub fn fresh_url() -> String {
    static SERVER: OnceLock<RedisServer> = OnceLock::new();
    static DB: AtomicUsize = AtomicUsize::new(0);
    let server = SERVER.get_or_init(start);
    let db = DB.fetch_add(1, Ordering::SeqCst) % 64;
    let url = format!("redis://127.0.0.1:{}/{db}", server.port);
    let mut c = redis::Client::open(url.as_str())
        .unwrap()
        .get_connection()
        .unwrap();
    redis::cmd("FLUSHDB").query::<()>(&mut c).unwrap();
    url
}
