//! The base-image catalog and the images cairn built or rebased.

use cairn_model::{BaseRecord, ImageRecord};

use crate::StoreError;

/// The base-image catalog and built images.
///
/// Every method is one transaction (see [`Store`](crate::Store)).
pub trait CatalogStore {
    /// Adds an entry to the base-image catalog (a name's newest entry is current).
    fn add_base(&self, base: &BaseRecord) -> Result<i64, StoreError>;

    /// Every catalog entry named `name`, newest first.
    fn base_history(&self, name: &str) -> Result<Vec<BaseRecord>, StoreError>;

    /// The current entry of every catalog name, by name.
    fn bases(&self) -> Result<Vec<BaseRecord>, StoreError>;

    /// Records an image cairn built or rebased ([`StoreError::NotFound`] for an
    /// unknown run).
    fn add_image(&self, image: &ImageRecord) -> Result<i64, StoreError>;

    /// Recorded images, newest first, of `workload` and/or with `digest` (each
    /// filter optional), at most `limit`.
    fn images(
        &self,
        workload: Option<&str>,
        digest: Option<&str>,
        limit: usize,
    ) -> Result<Vec<ImageRecord>, StoreError>;
}
