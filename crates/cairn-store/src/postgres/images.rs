//! [`CatalogStore`] on PostgreSQL (the same rules as `sqlite/images.rs`): the
//! base-image catalog and built images.

use cairn_model::{BaseRecipe, BaseRecord, ImageRecord, RunId};
use postgres::Row;

use super::{PostgresStore, Tx, sql_limit};
use crate::sqlite::text::check_len;
use crate::{CatalogStore, StoreError};

pub(super) fn add_base(tx: &mut Tx<'_>, b: &BaseRecord) -> Result<i64, StoreError> {
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
    tx.one(
        what,
        "INSERT INTO bases (name, digest, source, imported_at_ms, packages, vulnerabilities, \
         recipe, package_list) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
        &[
            &b.name,
            &b.digest,
            &b.source,
            &b.imported_at_ms,
            &i64::try_from(b.packages).unwrap_or(i64::MAX),
            &i64::try_from(b.vulnerabilities).unwrap_or(i64::MAX),
            &recipe,
            &package_list,
        ],
        |r| r.try_get(0),
    )
}

fn base_row(r: &Row) -> Result<(BaseRecord, Option<String>), postgres::Error> {
    let base = BaseRecord {
        name: r.try_get(0)?,
        digest: r.try_get(1)?,
        source: r.try_get(2)?,
        imported_at_ms: r.try_get(3)?,
        packages: u64::try_from(r.try_get::<_, i64>(4)?).unwrap_or(0),
        vulnerabilities: u64::try_from(r.try_get::<_, i64>(5)?).unwrap_or(0),
        // A recipe cairn wrote that no longer reads is a corrupt row: an error,
        // not a base without a recipe.
        // Read (and checked) by `with_recipe`.
        recipe: None,
        package_list: r
            .try_get::<_, String>(7)?
            .lines()
            .filter(|l| !l.is_empty())
            .map(str::to_owned)
            .collect(),
    };
    Ok((base, r.try_get(6)?))
}

/// A base with its recipe: one cairn wrote that no longer reads is a corrupt
/// row, an error, not a base without a recipe.
fn with_recipe((mut base, recipe): (BaseRecord, Option<String>)) -> Result<BaseRecord, StoreError> {
    if let Some(text) = recipe {
        base.recipe = Some(
            BaseRecipe::from_json(&text).map_err(|_| StoreError::Corrupt {
                what: "catalog base recipe",
                value: text,
            })?,
        );
    }
    Ok(base)
}

/// Longest package list (bytes, `name=version` lines) a catalog entry keeps.
const MAX_PACKAGE_LIST: usize = 1 << 20;

const BASE_COLUMNS: &str =
    "name, digest, source, imported_at_ms, packages, vulnerabilities, recipe, package_list";

pub(super) fn base_history(tx: &mut Tx<'_>, name: &str) -> Result<Vec<BaseRecord>, StoreError> {
    let what = "reading a catalog base";
    let rows = tx.all(
        what,
        &format!("SELECT {BASE_COLUMNS} FROM bases WHERE name = $1 ORDER BY id DESC"),
        &[&name],
        base_row,
    )?;
    rows.into_iter().map(with_recipe).collect()
}

pub(super) fn bases(tx: &mut Tx<'_>) -> Result<Vec<BaseRecord>, StoreError> {
    let what = "listing the catalog";
    let rows = tx.all(
        what,
        &format!(
            "SELECT {BASE_COLUMNS} FROM bases b WHERE id = \
             (SELECT max(id) FROM bases WHERE name = b.name) ORDER BY name"
        ),
        &[],
        base_row,
    )?;
    rows.into_iter().map(with_recipe).collect()
}

pub(super) fn add_image(tx: &mut Tx<'_>, i: &ImageRecord) -> Result<i64, StoreError> {
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
            tx.opt(what, "SELECT id FROM runs WHERE id = $1", &[&run.0], |r| {
                r.try_get(0)
            })?;
        if exists.is_none() {
            return Err(StoreError::NotFound {
                what: "run",
                id: run.0.to_string(),
            });
        }
    }
    tx.one(
        what,
        "INSERT INTO images (digest, workload, run_id, commit_id, base_name, base_digest, \
         created_at_ms, rebased_from) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
        &[
            &i.digest,
            &i.workload,
            &i.run.map(|r| r.0),
            &i.commit,
            &i.base_name,
            &i.base_digest,
            &i.created_at_ms,
            &i.rebased_from,
        ],
        |r| r.try_get(0),
    )
}

fn image_row(r: &Row) -> Result<ImageRecord, postgres::Error> {
    Ok(ImageRecord {
        digest: r.try_get(0)?,
        workload: r.try_get(1)?,
        run: r.try_get::<_, Option<i64>>(2)?.map(RunId),
        commit: r.try_get(3)?,
        base_name: r.try_get(4)?,
        base_digest: r.try_get(5)?,
        created_at_ms: r.try_get(6)?,
        rebased_from: r.try_get(7)?,
    })
}

/// Images, newest first: of `workload`, or with `digest`, or all.
pub(super) fn images(
    tx: &mut Tx<'_>,
    workload: Option<&str>,
    digest: Option<&str>,
    limit: i64,
) -> Result<Vec<ImageRecord>, StoreError> {
    let what = "listing images";
    let rows = tx.all(
        what,
        "SELECT digest, workload, run_id, commit_id, base_name, base_digest, created_at_ms, \
             rebased_from FROM images WHERE ($1::text IS NULL OR workload = $1) \
             AND ($2::text IS NULL OR digest = $2) ORDER BY id DESC LIMIT $3",
        &[&workload, &digest, &limit],
        image_row,
    )?;
    Ok(rows)
}

impl CatalogStore for PostgresStore {
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
