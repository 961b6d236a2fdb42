//! Times `Layout::put_blob_from_file` on a file (e.g. a 1 GiB layer) so it can
//! be compared with `sha256sum` of the same bytes:
//! `cargo run --release -p cairn-oci --example blob_throughput -- FILE LAYOUT_DIR`.

use std::path::PathBuf;
use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args_os().skip(1);
    let (Some(file), Some(dir)) = (args.next(), args.next()) else {
        return Err("usage: blob_throughput FILE LAYOUT_DIR".into());
    };
    let layout = cairn_oci::Layout::open_or_create(&PathBuf::from(dir))?;
    let start = Instant::now();
    let blob = layout.put_blob_from_file(&PathBuf::from(file))?;
    let secs = start.elapsed().as_secs_f64();
    println!(
        "{} {} bytes in {secs:.3} s ({:.0} MiB/s)",
        blob.digest,
        blob.size,
        blob.size as f64 / secs / f64::from(1 << 20)
    );
    Ok(())
}
