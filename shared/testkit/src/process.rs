//! Running a service's binary as a child process, as Kubernetes would.

use std::{
    collections::HashMap,
    io::Read,
    net::TcpListener,
    path::Path,
    process::{Child, Command, ExitStatus, Stdio},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use anyhow::Context as _;

/// A free TCP port on the loopback interface.
pub fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// A running binary whose stdout and stderr are captured.
pub struct Service {
    child: Child,
    stdout: Arc<Mutex<Vec<u8>>>,
    stderr: Arc<Mutex<Vec<u8>>>,
}

impl Service {
    /// Starts `binary` with exactly `env` (plus PATH) and `args`.
    pub fn start(binary: &Path, args: &[&str], env: &HashMap<String, String>) -> anyhow::Result<Self> {
        let mut child = Command::new(binary)
            .args(args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .envs(env)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("cannot start {}", binary.display()))?;
        let stdout = capture(child.stdout.take());
        let stderr = capture(child.stderr.take());
        Ok(Self { child, stdout, stderr })
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Everything written to stdout so far.
    pub fn stdout(&self) -> String {
        self.stdout.lock().map(|b| String::from_utf8_lossy(&b).into_owned()).unwrap_or_default()
    }

    /// Everything written to stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr.lock().map(|b| String::from_utf8_lossy(&b).into_owned()).unwrap_or_default()
    }

    /// Sends `signal` (e.g. "TERM") to the process.
    pub fn signal(&self, signal: &str) -> anyhow::Result<()> {
        let status = Command::new("kill").arg(format!("-{signal}")).arg(self.child.id().to_string()).status()?;
        anyhow::ensure!(status.success(), "kill -{signal} failed");
        Ok(())
    }

    /// Waits for the process to exit, at most `deadline`; kills it and
    /// fails after that.
    pub fn wait(&mut self, deadline: Duration) -> anyhow::Result<(ExitStatus, Duration)> {
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait()? {
                // Let the capture threads drain the pipes.
                std::thread::sleep(Duration::from_millis(50));
                return Ok((status, start.elapsed()));
            }
            if start.elapsed() > deadline {
                self.child.kill().ok();
                anyhow::bail!("still running {deadline:?} after being asked to stop");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Service {
    /// Sends SIGTERM, expects exit 0 within 30 s, and that nothing was
    /// logged at WARN or ERROR, neither while the service worked nor while
    /// it stopped (see [`warnings_and_errors`]): a clean stop must not look
    /// like a failure to whoever reads the logs.
    ///
    /// Panics (failing the test) otherwise, quoting the offending lines.
    pub fn stop_cleanly(&mut self) {
        self.signal("TERM").expect("SIGTERM");
        let (exit, _) = self.wait(Duration::from_secs(30)).expect("exits within 30 s of SIGTERM");
        let (stdout, stderr) = (self.stdout(), self.stderr());
        assert!(exit.success(), "exit status {exit:?}; stderr:\n{stderr}");
        let bad = warnings_and_errors(&stdout, &stderr);
        assert!(bad.is_empty(), "logged at WARN or ERROR:\n{}\n\nwhole log:\n{stdout}", bad.join("\n"));
    }
}

/// The lines of a service's logs that say something went wrong: JSON log
/// lines at WARN or ERROR, and anything at all on stderr (a service writes
/// there only when it fails to start or stops on an error).
///
/// Before the service's "shutting down" line, a failing readiness check
/// ("readiness check failing") is expected and not counted: tests poll
/// `/readyz` while the broker connection is still being made.
pub fn warnings_and_errors(stdout: &str, stderr: &str) -> Vec<String> {
    alarms(stdout, stderr, false)
}

/// Like [`warnings_and_errors`], but only what was logged from the
/// "shutting down" line on: what the stop itself logged.
pub fn warnings_and_errors_while_stopping(stdout: &str, stderr: &str) -> Vec<String> {
    alarms(stdout, stderr, true)
}

fn alarms(stdout: &str, stderr: &str, only_stopping: bool) -> Vec<String> {
    let mut stopping = false;
    let mut bad = Vec::new();
    for line in stdout.lines() {
        let Ok(entry) = serde_json::from_str::<serde_json::Value>(line) else {
            if !line.trim().is_empty() && (stopping || !only_stopping) {
                bad.push(format!("(not a JSON log line) {line}"));
            }
            continue;
        };
        let message = entry["message"].as_str().unwrap_or_default();
        if message.starts_with("shutting down") {
            stopping = true;
        }
        let level = entry["level"].as_str().unwrap_or_default();
        if !matches!(level, "WARN" | "ERROR") || (!stopping && only_stopping) {
            continue;
        }
        if !stopping && message.starts_with("readiness check failing") {
            continue;
        }
        bad.push(line.to_owned());
    }
    bad.extend(stderr.lines().filter(|l| !l.trim().is_empty()).map(|l| format!("(stderr) {l}")));
    bad
}

impl Drop for Service {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            self.child.kill().ok();
            self.child.wait().ok();
        }
    }
}

fn capture<R: Read + Send + 'static>(pipe: Option<R>) -> Arc<Mutex<Vec<u8>>> {
    let buf = Arc::new(Mutex::new(Vec::new()));
    if let Some(mut pipe) = pipe {
        let sink = buf.clone();
        std::thread::spawn(move || {
            let mut chunk = [0u8; 8192];
            while let Ok(n) = pipe.read(&mut chunk) {
                if n == 0 {
                    break;
                }
                if let Ok(mut b) = sink.lock() {
                    b.extend_from_slice(&chunk[..n]);
                }
            }
        });
    }
    buf
}
