//! End-to-end tests of the `cairn` binary, one test binary for all of them
//! (one link, one executable on the disk; nextest still runs every test in a
//! process of its own): each module here is one concern's tests, and
//! `common/` is their harness.
#![allow(clippy::unwrap_used)]

mod common;

mod admission;
mod advisory_feed;
mod base_policy;
mod browser;
mod cargo_audit;
mod catalog_access;
mod cli;
mod config_file;
mod deploy_faults;
mod duties;
mod evidence_log;
mod exposures;
mod forge_notify;
mod hardening;
mod hsm;
mod identities;
mod images;
mod kubernetes;
mod log_public_key;
mod onboard;
mod os_packages;
mod own_image;
mod promotion;
mod rc_inventory;
mod remediation;
mod sbom_scan;
mod scale_out;
mod sso;
mod stage_ahead;
mod store_pairing;
mod tls;
mod trivy_rootfs;
mod trust;
mod untrusted_paths;
mod up;
mod verify;
mod vex_licences;
mod vulns_bounded;
mod vulns_import;
mod where_;
