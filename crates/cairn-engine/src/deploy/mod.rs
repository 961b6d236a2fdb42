//! Deploy targets: where a promoted image goes. `local` (the image's root
//! filesystem run in the sandbox on a host port) lives with the images in
//! [`crate::images::deploy_local`]; [`gitops`] writes a digest-pinned manifest
//! into a GitOps repository for Argo CD or Flux to apply.
//!
//! A target changes an environment only when it returns `Ok`; the caller
//! appends the change to the audit log before it calls the target, and hands
//! the log index in so the change can name it. [`reconcile`] compares what
//! runs with what was recorded and resolves the difference.

pub mod gitops;
pub mod reconcile;
