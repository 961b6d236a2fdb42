//! Cases of [`CatalogStore`](crate::CatalogStore): the base-image catalog and built images.

use super::*;

fn base(name: &str, digest_byte: char, at: i64) -> cairn_model::BaseRecord {
    cairn_model::BaseRecord {
        name: name.to_owned(),
        digest: format!("sha256:{}", digest_byte.to_string().repeat(64)),
        source: format!("rootfs:/tmp/{name}"),
        imported_at_ms: at,
        packages: 90,
        vulnerabilities: 0,
        recipe: (digest_byte == 'c').then(|| {
            cairn_model::BaseRecipe::Debian(
                cairn_model::DebianRecipe::new(
                    "bookworm",
                    "minbase",
                    &["make".to_owned()],
                    1_700_000_000,
                )
                .expect("a valid recipe"),
            )
        }),
        package_list: vec![
            "base-files=12.4+deb12u11".to_owned(),
            "make=4.3-4.1".to_owned(),
        ],
    }
}

pub fn catalog_keeps_every_entry_and_the_newest_is_current(
    store: &dyn Store,
) -> Result<(), StoreError> {
    assert!(store.bases()?.is_empty());
    assert!(store.base_history("debian")?.is_empty());
    store.add_base(&base("debian", 'a', 1))?;
    store.add_base(&base("tiny", 'b', 2))?;
    store.add_base(&base("debian", 'c', 3))?;
    let history = store.base_history("debian")?;
    assert_eq!(history.len(), 2);
    assert_eq!(history[0], base("debian", 'c', 3), "newest first");
    assert_eq!(history[1], base("debian", 'a', 1));
    let current = store.bases()?;
    assert_eq!(current, vec![base("debian", 'c', 3), base("tiny", 'b', 2)]);
    let huge = cairn_model::BaseRecord {
        source: "x".repeat(1 << 20),
        ..base("big", 'd', 4)
    };
    assert!(matches!(
        store.add_base(&huge),
        Err(StoreError::TooLarge { .. })
    ));
    let huge_list = cairn_model::BaseRecord {
        package_list: vec!["p=1".repeat(1 << 19); 2],
        ..base("big", 'd', 4)
    };
    assert!(matches!(
        store.add_base(&huge_list),
        Err(StoreError::TooLarge { .. })
    ));
    Ok(())
}

pub fn images_are_recorded_by_workload_and_digest(store: &dyn Store) -> Result<(), StoreError> {
    let (run, _) = running_run(store, &["build"])?;
    let image = |digest: char, workload: &str, run: Option<RunId>, from: Option<&str>| {
        cairn_model::ImageRecord {
            digest: format!("sha256:{}", digest.to_string().repeat(64)),
            workload: workload.to_owned(),
            run,
            commit: COMMIT.to_owned(),
            base_name: "tiny".to_owned(),
            base_digest: format!("sha256:{}", "b".repeat(64)),
            created_at_ms: 5,
            rebased_from: from.map(str::to_owned),
        }
    };
    let first = image('1', "app", Some(run.id), None);
    let other = image('2', "web", None, None);
    let rebased = image('3', "app", None, Some(&first.digest));
    store.add_image(&first)?;
    store.add_image(&other)?;
    store.add_image(&rebased)?;
    assert_eq!(
        store.images(None, None, 10)?,
        vec![rebased.clone(), other.clone(), first.clone()]
    );
    assert_eq!(
        store.images(Some("app"), None, 10)?,
        vec![rebased.clone(), first.clone()]
    );
    assert_eq!(
        store.images(None, Some(&first.digest), 10)?,
        vec![first.clone()]
    );
    assert_eq!(store.images(Some("web"), Some(&first.digest), 10)?, vec![]);
    assert_eq!(store.images(None, None, 1)?, vec![rebased]);
    // An image of an unknown run is refused.
    let orphan = image('4', "app", Some(RunId(run.id.0 + 1000)), None);
    assert!(matches!(
        store.add_image(&orphan),
        Err(StoreError::NotFound { .. })
    ));
    Ok(())
}
