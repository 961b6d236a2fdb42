//! Issue 12 item 9: `cairn vulns import` kept everything about every bad entry
//! (200,000 small invalid entries in a 20 MB zip took 3.7 GB). Every failure is
//! counted, the first 100 are kept with their reasons, and memory stays bounded.
#![allow(clippy::unwrap_used)]

use crate::common;

use std::process::Command;

use common::Fixture;
use serde_json::Value;

const ENTRIES: usize = 200_000;

#[test]
fn an_archive_of_many_bad_entries_is_counted_in_bounded_memory() {
    let f = Fixture::new();
    let zip = f.repo.parent().unwrap().join("bad.zip");
    // Python's zipfile writes the archive: 200,000 small records that parse as
    // JSON but not as OSV.
    let made = Command::new("python3")
        .arg("-c")
        .arg(format!(
            "import zipfile, sys\n\
             with zipfile.ZipFile(sys.argv[1], 'w', zipfile.ZIP_DEFLATED) as z:\n\
             \x20   for i in range({ENTRIES}):\n\
             \x20       z.writestr(f'bad/BAD-{{i}}.json', '{{\"id\":\"BAD-%d\",\"modified\":1}}' % i)\n"
        ))
        .arg(&zip)
        .status()
        .unwrap();
    assert!(made.success());
    println!("{} bytes of zip", std::fs::metadata(&zip).unwrap().len());
    // Run cairn under Python to read the child's peak RSS (ru_maxrss, KiB).
    let out = Command::new("python3")
        .arg("-c")
        .arg(
            "import subprocess, resource, sys\n\
             p = subprocess.run(sys.argv[1:], capture_output=True)\n\
             sys.stdout.buffer.write(p.stdout)\n\
             sys.stderr.buffer.write(p.stderr)\n\
             print('maxrss_kib', resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, p.returncode, file=sys.stderr)\n",
        )
        .arg(env!("CARGO_BIN_EXE_cairn"))
        .args(["--json", "vulns", "import"])
        .arg(&zip)
        .env("CAIRN_HOME", &f.data)
        .env_remove("CAIRN_TOKEN")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let measured = stderr
        .lines()
        .find_map(|l| l.strip_prefix("maxrss_kib "))
        .unwrap_or_else(|| panic!("{stderr}"));
    let mut parts = measured.split(' ');
    let kib: u64 = parts.next().unwrap().parse().unwrap();
    let code: i32 = parts.next().unwrap().parse().unwrap();
    println!("peak RSS {} MiB, exit {code}", kib / 1024);
    // Nothing could be imported: the user's input, exit 1, with the report.
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains("no OSV record could be imported"),
        "{stderr}"
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["files"], ENTRIES);
    assert_eq!(report["error_count"], ENTRIES, "every failure is counted");
    let kept = report["errors"].as_array().unwrap();
    assert_eq!(kept.len(), 100, "the first 100 are kept with their reasons");
    assert_eq!(kept[0]["path"], format!("{}!bad/BAD-0.json", zip.display()));
    assert!(
        kept[0]["reason"]
            .as_str()
            .unwrap()
            .contains("expected a string"),
        "{}",
        kept[0]
    );
    assert!(kib < 256 * 1024, "peak RSS {kib} KiB");
}
