//! Imports a root filesystem (directory or tarball, e.g. from
//! `mmdebstrap --variant=minbase bookworm out.tar`) into a layout as a base
//! image named `base`, then unpacks it with cairn's safe unpacker and prints
//! the report: `cargo run --release -p cairn-oci --example rootfs_roundtrip --
//! ROOTFS LAYOUT_DIR TARGET_DIR`.

use std::path::PathBuf;
use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<PathBuf> = std::env::args_os().skip(1).map(PathBuf::from).collect();
    let [rootfs, dir, target] = args.as_slice() else {
        return Err("usage: rootfs_roundtrip ROOTFS LAYOUT_DIR TARGET_DIR".into());
    };
    let layout = cairn_oci::Layout::open_or_create(dir)?;
    let start = Instant::now();
    let image = cairn_oci::import_rootfs(&layout, rootfs, 1_700_000_000)?;
    layout.set_ref("base", &image.descriptor()?)?;
    println!(
        "imported {} in {:.2} s",
        image.manifest_digest,
        start.elapsed().as_secs_f64()
    );
    let start = Instant::now();
    let report = cairn_oci::unpack(&layout, &image, target, cairn_oci::UnpackLimits::default())?;
    println!(
        "unpacked in {:.2} s: {} entries, {} bytes written, {} skipped, {} setid stripped",
        start.elapsed().as_secs_f64(),
        report.entries,
        report.bytes_written,
        report.skipped.len(),
        report.setid_stripped.len()
    );
    for s in &report.skipped {
        println!("  skipped {:?} {}", s.kind, s.path);
    }
    for p in &report.setid_stripped {
        println!("  stripped setid {p}");
    }
    Ok(())
}
