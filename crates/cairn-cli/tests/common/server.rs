//! `cairn up` (or `cairn serve`, `cairn worker`) as a child process on a free
//! loopback port, stopped (SIGTERM, then SIGKILL) when dropped.
#![allow(clippy::unwrap_used, dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

pub(crate) struct Up {
    child: Option<Child>,
    pub url: String,
    pub data: PathBuf,
    /// Everything the server printed, line by line, as it comes.
    lines: mpsc::Receiver<String>,
    pub seen: Vec<String>,
}

impl Up {
    /// Starts `cairn up` on `data` and waits until it serves.
    pub(crate) fn start(data: &Path, extra: &[&str]) -> Up {
        Self::start_with(data, extra, None)
    }

    /// [`Up::start`] with `CAIRN_PLATFORM_DIR` set to `platform`.
    pub(crate) fn start_with(data: &Path, extra: &[&str], platform: Option<&Path>) -> Up {
        Self::start_on("127.0.0.1:0", data, extra, platform)
    }

    /// [`Up::start_with`] listening on `listen` (a test that must know the
    /// server's address before it starts: an OpenID provider's redirect URI).
    pub(crate) fn start_on(
        listen: &str,
        data: &Path,
        extra: &[&str],
        platform: Option<&Path>,
    ) -> Up {
        let grace: &[&str] = if extra.contains(&"--grace") {
            &[]
        } else {
            &["--grace", "5"]
        };
        let mut args = vec!["up", "--listen", listen];
        args.extend_from_slice(grace);
        args.extend_from_slice(extra);
        let mut env = Vec::new();
        if let Some(p) = platform {
            env.push(("CAIRN_PLATFORM_DIR", p.to_str().unwrap()));
        }
        Self::process(data, &args, &env, "cairn is serving on ")
    }

    /// Any long-lived `cairn` command (`serve`, `worker`, `up`) on `data`,
    /// with `env`; waits until it prints `ready`. The URL is read from a line
    /// `… serving on http://ADDR/ …` when `ready` is one.
    pub(crate) fn process(data: &Path, args: &[&str], env: &[(&str, &str)], ready: &str) -> Up {
        let mut command = Command::new(env!("CARGO_BIN_EXE_cairn"));
        command
            .args(args)
            .env("CAIRN_HOME", data)
            .env_remove("CAIRN_PLATFORM_DIR")
            .env_remove("CAIRN_DATABASE_URL")
            .env_remove("CAIRN_TOKEN")
            .env("CAIRN_NO_CONFIG", "1");
        for (k, v) in env {
            command.env(k, v);
        }
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let rx = super::output_lines(&mut child);
        let mut up = Up {
            child: Some(child),
            url: String::new(),
            data: data.to_path_buf(),
            lines: rx,
            seen: Vec::new(),
        };
        let line = up.wait_for(ready, Duration::from_secs(60));
        if let Some(rest) = line.split("serving on ").nth(1) {
            up.url = rest
                .split_whitespace()
                .next()
                .unwrap()
                .trim_end_matches('/')
                .to_owned();
        }
        up
    }

    /// The process's id.
    pub(crate) fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    /// The process's id, or 0 once it was stopped or killed.
    pub(crate) fn pid_or_zero(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// SIGKILL: the process ends at once, with no chance to clean up.
    pub(crate) fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Every line printed so far (without waiting).
    pub(crate) fn drain(&mut self) -> &[String] {
        while let Ok(line) = self.lines.try_recv() {
            self.seen.push(line);
        }
        &self.seen
    }

    /// Waits for a printed line containing `needle`.
    pub(crate) fn wait_for(&mut self, needle: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        if let Some(line) = self.seen.iter().find(|l| l.contains(needle)) {
            return line.clone();
        }
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if line.contains(needle) {
                        return line;
                    }
                }
                Err(_) => panic!(
                    "`cairn up` never printed {needle:?}; it printed:\n{}",
                    self.seen.join("\n")
                ),
            }
        }
    }

    /// The admin's token from the file `cairn up` wrote on first start.
    pub(crate) fn admin_token(&self) -> String {
        std::fs::read_to_string(self.data.join("server/admin.token"))
            .unwrap()
            .trim()
            .to_owned()
    }

    /// SIGTERM, then waits (up to `timeout`) for the exit code.
    pub(crate) fn stop(&mut self, timeout: Duration) -> Option<i32> {
        let mut child = self.child.take()?;
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string())
            .status();
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                while let Ok(line) = self.lines.try_recv() {
                    self.seen.push(line);
                }
                return status.code();
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Up {
    fn drop(&mut self) {
        self.stop(Duration::from_secs(10));
    }
}

/// An HTTP agent for tests: errors are answers, not failures.
pub(crate) fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .build()
        .new_agent()
}
