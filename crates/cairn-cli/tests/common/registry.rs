//! A real OCI registry for tests: Debian's `docker-registry` (distribution 2.8)
//! on 127.0.0.1 with a temporary config and filesystem storage, stopped on drop.
#![allow(clippy::unwrap_used, dead_code)]

use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub(crate) struct TestRegistry {
    child: Child,
    _dir: tempfile::TempDir,
    pub port: u16,
}

impl TestRegistry {
    pub(crate) fn start() -> Self {
        Self::start_with_auth(None)
    }

    /// A registry that takes only `user` with `password` (htpasswd, bcrypt:
    /// `htpasswd -B` from apache2-utils).
    pub(crate) fn start_htpasswd(user: &str, password: &str) -> Self {
        let out = Command::new("htpasswd")
            .args(["-Bbn", user, password])
            .output()
            .expect("htpasswd (Debian apache2-utils) is missing");
        assert!(out.status.success());
        Self::start_with_auth(Some(String::from_utf8(out.stdout).unwrap()))
    }

    fn start_with_auth(htpasswd: Option<String>) -> Self {
        let bin = "/usr/bin/docker-registry";
        assert!(
            std::path::Path::new(bin).exists(),
            "{bin} is missing: run scripts/install-deps (Debian package docker-registry)"
        );
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let config = dir.path().join("config.yml");
        let auth = match htpasswd {
            Some(lines) => {
                let file = dir.path().join("htpasswd");
                std::fs::write(&file, lines).unwrap();
                format!(
                    "auth:\n  htpasswd:\n    realm: cairn-test\n    path: {}\n",
                    file.display()
                )
            }
            None => String::new(),
        };
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n{auth}",
                dir.path().join("storage").display()
            ),
        )
        .unwrap();
        let child = Command::new(bin)
            .arg("serve")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "docker-registry did not start on {port}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        TestRegistry {
            child,
            _dir: dir,
            port,
        }
    }

    pub(crate) fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

impl Drop for TestRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
