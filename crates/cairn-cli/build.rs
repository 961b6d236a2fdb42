//! How the `cairn` binary is linked.
//!
//! Packed relative relocations (`-z pack-relative-relocs`, `DT_RELR`): the
//! binary is position independent (ASLR), so the dynamic loader writes every
//! pointer in its data at each start — some 127,000 of them (vtables, string
//! tables, the SQLite and aws-lc tables). As `RELA` entries they are 24 bytes
//! each, a 3 MB table read at every start and the largest part of the loader's
//! work; `RELR` packs them into a bitmap of a few tens of KB, which the loader
//! walks in a fraction of the instructions. The binary stays PIE, its
//! relocated pages and `RELRO` protection the same. It needs glibc 2.36 or
//! later to start (the linker records `GLIBC_ABI_DT_RELR`, so an older glibc
//! refuses it by name rather than misloading it), and a linker that knows the
//! option (LLD, Rust's default on x86_64 Linux, since 15; GNU ld since 2.38).
//! Only the binary is linked so: the dependencies' builds and every other
//! target are untouched (a `rustflags` setting would rebuild them all).

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let env = std::env::var("CARGO_CFG_TARGET_ENV").unwrap_or_default();
    if os == "linux" && env == "gnu" {
        println!("cargo:rustc-link-arg-bin=cairn=-Wl,-z,pack-relative-relocs");
    }
}
