//! A real SMTP server for tests: PyPI `aiosmtpd` (installed by
//! `scripts/install-interop-tools` into `<target>/interop-tools/venv`) on
//! 127.0.0.1, writing each message it accepts as one JSON line (envelope
//! sender, recipients, the message's text); stopped on drop.
#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const SERVER: &str = r#"
import json, socket, sys, time
from aiosmtpd.controller import Controller
out = sys.argv[1]
class Handler:
    async def handle_DATA(self, server, session, envelope):
        with open(out, "a") as f:
            f.write(json.dumps({"mail_from": envelope.mail_from, "rcpt_tos": envelope.rcpt_tos,
                                "content": envelope.content.decode("utf-8", "replace")}) + "\n")
        return "250 Message accepted for delivery"
s = socket.socket(); s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]; s.close()
c = Controller(Handler(), hostname="127.0.0.1", port=port)
c.start()
print(port, flush=True)
while True:
    time.sleep(3600)
"#;

/// The running aiosmtpd.
#[derive(Debug)]
pub struct SmtpServer {
    child: Child,
    _dir: tempfile_dir::Dir,
    out: PathBuf,
    pub port: u16,
}

mod tempfile_dir {
    /// A directory removed on drop (the testkit has no tempfile dependency).
    #[derive(Debug)]
    pub(super) struct Dir(pub(super) std::path::PathBuf);
    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// `<target>/interop-tools/venv/bin/python` (or `$CAIRN_INTEROP_DIR`'s).
pub fn interop_python() -> PathBuf {
    let dir = match std::env::var_os("CAIRN_INTEROP_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target"))
            .join("interop-tools"),
    };
    dir.join("venv/bin/python")
}

impl SmtpServer {
    pub fn start() -> SmtpServer {
        let python = interop_python();
        assert!(
            python.is_file(),
            "run scripts/install-interop-tools first (missing {})",
            python.display()
        );
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "cairn-smtp-{}-{}",
            std::process::id(),
            N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let out = dir.join("messages.jsonl");
        let mut child = Command::new(&python)
            .args(["-c", SERVER])
            .arg(&out)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line.trim().parse().unwrap_or_else(|_| {
            let _ = child.kill();
            panic!("aiosmtpd did not start: {line:?}")
        });
        SmtpServer {
            child,
            _dir: tempfile_dir::Dir(dir),
            out,
            port,
        }
    }

    /// `host:port`.
    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The messages received, waiting up to `limit` for at least `n`.
    pub fn messages(&self, n: usize, limit: Duration) -> Vec<serde_json::Value> {
        let deadline = Instant::now() + limit;
        loop {
            let text = std::fs::read_to_string(&self.out).unwrap_or_default();
            let all: Vec<serde_json::Value> = text
                .lines()
                .map(|l| serde_json::from_str(l).unwrap())
                .collect();
            if all.len() >= n || Instant::now() > deadline {
                return all;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
