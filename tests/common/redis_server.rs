#![allow(dead_code)]
//! A real `redis-server` for tests: started on a free loopback port, killed when the test
//! process exits (parent-death signal), one database per test. Fault tests pause it
//! (SIGSTOP), resume it, kill it and start it again on the same port and data directory.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicI32, AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

pub struct RedisServer {
    pub port: u16,
    pid: AtomicI32,
    args: Vec<String>,
    pub dir: PathBuf,
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.signal(libc::SIGCONT);
        self.signal(libc::SIGKILL);
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn scratch_dir() -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "genroute-redis-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Starts a redis-server on a free port, without persistence.
pub fn start() -> RedisServer {
    start_with(&["--save", "", "--appendonly", "no"])
}

/// Starts a redis-server on a free port with extra arguments (e.g. AOF, cluster mode); its
/// working directory is a fresh scratch directory.
pub fn start_with(extra: &[&str]) -> RedisServer {
    let port = free_port();
    let dir = scratch_dir();
    let mut args: Vec<String> = [
        "--port",
        &port.to_string(),
        "--bind",
        "127.0.0.1",
        "--databases",
        "64",
        "--dir",
        dir.to_str().unwrap(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.extend(extra.iter().map(|s| s.to_string()));
    let server = RedisServer {
        port,
        pid: AtomicI32::new(0),
        args,
        dir,
    };
    server.launch();
    server
}

impl RedisServer {
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    fn signal(&self, sig: i32) {
        let pid = self.pid.load(Ordering::SeqCst);
        if pid > 0 {
            unsafe {
                libc::kill(pid, sig);
            }
        }
    }

    /// Freezes the server (SIGSTOP): connections stay open, nothing is answered.
    pub fn pause(&self) {
        self.signal(libc::SIGSTOP);
    }

    /// Thaws it (SIGCONT).
    pub fn resume(&self) {
        self.signal(libc::SIGCONT);
    }

    /// Kills it (SIGKILL) and waits until the port is free.
    pub fn kill(&self) {
        self.resume();
        self.signal(libc::SIGKILL);
        let pid = self.pid.swap(0, Ordering::SeqCst);
        let started = Instant::now();
        while pid > 0 && unsafe { libc::kill(pid, 0) } == 0 {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "redis-server did not die"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Starts it again on the same port and directory (what it kept on disk comes back).
    pub fn restart(&self) {
        self.kill();
        self.launch();
    }

    /// Starts it again on the same port with an empty directory: a Redis that lost its data.
    pub fn restart_empty(&self) {
        self.kill();
        for entry in std::fs::read_dir(&self.dir).unwrap().flatten() {
            let _ = std::fs::remove_file(entry.path());
            let _ = std::fs::remove_dir_all(entry.path());
        }
        self.launch();
    }

    /// Spawns the child from a thread that lives as long as the test process, because Linux
    /// delivers the parent-death signal when the spawning *thread* exits; waits for PING.
    fn launch(&self) {
        let (tx, rx) = std::sync::mpsc::channel();
        let args = self.args.clone();
        std::thread::spawn(move || {
            let mut child = spawn(&args);
            let _ = tx.send(child.id() as i32);
            // Reaps it when it dies (so a killed server leaves no zombie holding its pid).
            let _ = child.wait();
        });
        self.pid
            .store(rx.recv().expect("redis-server started"), Ordering::SeqCst);
        wait_for_ping(self.port);
    }
}

pub fn wait_for_ping(port: u16) {
    let started = Instant::now();
    loop {
        if let Ok(client) = redis::Client::open(format!("redis://127.0.0.1:{port}/0")) {
            if let Ok(mut c) = client.get_connection_with_timeout(Duration::from_millis(200)) {
                if redis::cmd("PING").query::<String>(&mut c).is_ok() {
                    return;
                }
            }
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "redis-server did not start"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn spawn(args: &[String]) -> Child {
    let mut cmd = Command::new("redis-server");
    cmd.args(args).stdout(Stdio::null()).stderr(Stdio::null());
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
