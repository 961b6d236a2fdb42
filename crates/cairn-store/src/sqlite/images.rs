//! [`CatalogStore`] on SQLite: the base-image catalog and built images (schema v6).

use cairn_model::{BaseRecipe, BaseRecord, ImageRecord, RunId};
use rusqlite::{OptionalExtension, Row, Transaction, params};

use super::text::check_len;
use super::{SqliteStore, sql_limit};
use crate::{CatalogStore, StoreError};

pub(super) fn add_base(tx: &Transaction<'_>, b: &BaseRecord) -> Result<i64, StoreError> {
    let what = "adding a catalog base";
    let recipe = b.recipe.as_ref().map(BaseRecipe::to_json);
    check_len(
        "a catalog base field",
        &[
            &b.name,
            &b.digest,
            &b.source,
            recipe.as_deref().unwrap_or(""),
        ],
    )?;
    let package_list = b.package_list.join("\n");
    if package_list.len() > MAX_PACKAGE_LIST || b.package_list.iter().any(|p| p.contains('\n')) {
        return Err(StoreError::TooLarge {
            what: "a catalog base's package list",
            size: package_list.len(),
            limit: MAX_PACKAGE_LIST,
        });
    }
    tx.execute(
        "INSERT INTO bases (name, digest, source, imported_at_ms, packages, vulnerabilities, \
         recipe, package_list) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        params![
            b.name,
            b.digest,
            b.source,
            b.imported_at_ms,
            i64::try_from(b.packages).unwrap_or(i64::MAX),
            i64::try_from(b.vulnerabilities).unwrap_or(i64::MAX),
            recipe,
            package_list,
        ],
    )
    .map_err(StoreError::sqlite(what))?;
    Ok(tx.last_insert_rowid())
}

fn base_row(r: &Row<'_>) -> rusqlite::Result<BaseRecord> {
    Ok(BaseRecord {
        name: r.get(0)?,
        digest: r.get(1)?,
        source: r.get(2)?,
        imported_at_ms: r.get(3)?,
        packages: u64::try_from(r.get::<_, i64>(4)?).unwrap_or(0),
        vulnerabilities: u64::try_from(r.get::<_, i64>(5)?).unwrap_or(0),
        // A recipe cairn wrote that no longer reads is a corrupt row: an error,
        // not a base without a recipe.
        recipe: match r.get::<_, Option<String>>(6)? {
            Some(text) => Some(BaseRecipe::from_json(&text).map_err(|e| {
                rusqlite::Error::FromSqlConversionFailure(6, rusqlite::types::Type::Text, e.into())
            })?),
            None => None,
        },
        package_list: r
            .get::<_, String>(7)?
            .lines()
            .filter(|l| !l.is_empty())
            .map(str::to_owned)
            .collect(),
    })
}

/// Longest package list (bytes, `name=version` lines) a catalog entry keeps.
const MAX_PACKAGE_LIST: usize = 1 << 20;

const BASE_COLUMNS: &str =
    "name, digest, source, imported_at_ms, packages, vulnerabilities, recipe, package_list";

pub(super) fn base_history(
    tx: &rusqlite::Connection,
    name: &str,
) -> Result<Vec<BaseRecord>, StoreError> {
    let what = "reading a catalog base";
    let mut stmt = tx
        .prepare_cached(&format!(
            "SELECT {BASE_COLUMNS} FROM bases WHERE name = ?1 ORDER BY id DESC"
        ))
        .map_err(StoreError::sqlite(what))?;
    let rows = stmt
        .query_map([name], base_row)
        .map_err(StoreError::sqlite(what))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(StoreError::sqlite(what))?;
    Ok(rows)
}

pub(super) fn bases(tx: &rusqlite::Connection) -> Result<Vec<BaseRecord>, StoreError> {
    let what = "listing the catalog";
    let mut stmt = tx
        .prepare_cached(&format!(
            "SELECT {BASE_COLUMNS} FROM bases b WHERE id = \
             (SELECT max(id) FROM bases WHERE name = b.name) ORDER BY name"
        ))
        .map_err(StoreError::sqlite(what))?;
    let rows = stmt
        .query_map([], base_row)
        .map_err(StoreError::sqlite(what))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(StoreError::sqlite(what))?;
    Ok(rows)
}

pub(super) fn add_image(tx: &Transaction<'_>, i: &ImageRecord) -> Result<i64, StoreError> {
    let what = "recording an image";
    check_len(
        "an image field",
        &[
            &i.digest,
            &i.workload,
            &i.commit,
            &i.base_name,
            &i.base_digest,
        ],
    )?;
    if let Some(run) = i.run {
        let exists: Option<i64> =
            super::cached_row(tx, "SELECT id FROM runs WHERE id = ?1", [run.0], |r| {
                r.get(0)
            })
            .optional()
            .map_err(StoreError::sqlite(what))?;
        if exists.is_none() {
            return Err(StoreError::NotFound {
                what: "run",
                id: run.0.to_string(),
            });
        }
    }
    tx.execute(
        "INSERT INTO images (digest, workload, run_id, commit_id, base_name, base_digest, \
         created_at_ms, rebased_from) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        params![
            i.digest,
            i.workload,
            i.run.map(|r| r.0),
            i.commit,
            i.base_name,
            i.base_digest,
            i.created_at_ms,
            i.rebased_from
        ],
    )
    .map_err(StoreError::sqlite(what))?;
    Ok(tx.last_insert_rowid())
}

fn image_row(r: &Row<'_>) -> rusqlite::Result<ImageRecord> {
    Ok(ImageRecord {
        digest: r.get(0)?,
        workload: r.get(1)?,
        run: r.get::<_, Option<i64>>(2)?.map(RunId),
        commit: r.get(3)?,
        base_name: r.get(4)?,
        base_digest: r.get(5)?,
        created_at_ms: r.get(6)?,
        rebased_from: r.get(7)?,
    })
}

/// Images, newest first: of `workload`, or with `digest`, or all.
pub(super) fn images(
    tx: &rusqlite::Connection,
    workload: Option<&str>,
    digest: Option<&str>,
    limit: i64,
) -> Result<Vec<ImageRecord>, StoreError> {
    let what = "listing images";
    let mut stmt = tx
        .prepare_cached(
            "SELECT digest, workload, run_id, commit_id, base_name, base_digest, created_at_ms, \
             rebased_from FROM images WHERE (?1 IS NULL OR workload = ?1) \
             AND (?2 IS NULL OR digest = ?2) ORDER BY id DESC LIMIT ?3",
        )
        .map_err(StoreError::sqlite(what))?;
    let rows = stmt
        .query_map(params![workload, digest, limit], image_row)
        .map_err(StoreError::sqlite(what))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(StoreError::sqlite(what))?;
    Ok(rows)
}

impl CatalogStore for SqliteStore {
    fn add_base(&self, base: &BaseRecord) -> Result<i64, StoreError> {
        self.write("adding a catalog base", |tx| add_base(tx, base))
    }

    fn base_history(&self, name: &str) -> Result<Vec<BaseRecord>, StoreError> {
        self.read("reading a catalog base", |tx| base_history(tx, name))
    }

    fn bases(&self) -> Result<Vec<BaseRecord>, StoreError> {
        self.read("listing the catalog", bases)
    }

    fn add_image(&self, image: &ImageRecord) -> Result<i64, StoreError> {
        self.write("recording an image", |tx| add_image(tx, image))
    }

    fn images(
        &self,
        workload: Option<&str>,
        digest: Option<&str>,
        limit: usize,
    ) -> Result<Vec<ImageRecord>, StoreError> {
        self.read("listing images", |tx| {
            images(tx, workload, digest, sql_limit(limit))
        })
    }
}
