//! Fuzzes the layer reader: arbitrary bytes (tar, or gzip of tar) unpacked as
//! one layer into a fresh temporary directory. Whatever happens, nothing may
//! appear outside the target, and no special file may be created in it.
#![no_main]

use std::os::unix::fs::FileTypeExt;
use std::path::Path;

use cairn_oci::{UnpackLimits, unpack_layer_bytes};
use libfuzzer_sys::fuzz_target;

fn check_tree(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let Ok(meta) = std::fs::symlink_metadata(entry.path()) else { continue };
        let ft = meta.file_type();
        assert!(!ft.is_char_device() && !ft.is_block_device() && !ft.is_fifo() && !ft.is_socket());
        if ft.is_dir() {
            check_tree(&entry.path());
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(tmp) = tempfile::tempdir() else { return };
    let target = tmp.path().join("target");
    let limits = UnpackLimits {
        max_entries: 10_000,
        max_path_len: 4096,
        max_depth: 64,
        max_total_bytes: 64 << 20,
    };
    let _ = unpack_layer_bytes(data, &target, limits);
    let outside: Vec<_> = std::fs::read_dir(tmp.path())
        .expect("list")
        .flatten()
        .map(|e| e.file_name())
        .filter(|n| n != "target")
        .collect();
    assert!(outside.is_empty(), "wrote outside the target: {outside:?}");
    check_tree(&target);
});
