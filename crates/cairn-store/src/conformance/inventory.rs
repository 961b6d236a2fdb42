//! Cases of [`InventoryStore`](crate::InventoryStore): advisories, SBOMs, findings and re-matches.

use super::*;

fn found_ids(found: &[StoredAdvisory]) -> Vec<&str> {
    found.iter().map(|a| a.id.as_str()).collect()
}

fn hit_summary(hits: &[PackageHit]) -> Vec<(i64, &str, &str, &str)> {
    hits.iter()
        .map(|h| {
            (
                h.sbom_id,
                h.subject_name.as_str(),
                h.ecosystem.as_str(),
                h.version.as_str(),
            )
        })
        .collect()
}

fn all_findings(store: &dyn Store) -> Result<Vec<(String, i64, String, FindingState)>, StoreError> {
    Ok(finding_summary(&store.findings(&FindingFilter::default())?))
}

/// A record replaces the stored one only when its `modified` is later; its package
/// index follows the replacement.
pub fn advisories_are_replaced_only_when_newer(store: &dyn Store) -> Result<(), StoreError> {
    let first = advisory(
        "A-1",
        "2024-01-01T00:00:00.000000000Z",
        &[("crates.io", "old")],
    );
    let other = advisory("A-2", "2024-01-01T00:00:00.000000000Z", &[("npm", "x")]);
    assert_eq!(
        store.put_advisories(&[first.clone(), other.clone()])?,
        vec![AdvisoryPut::New, AdvisoryPut::New]
    );
    // The same records again: nothing changes.
    assert_eq!(
        store.put_advisories(&[first.clone(), other])?,
        vec![AdvisoryPut::Unchanged, AdvisoryPut::Unchanged]
    );
    // An older copy does not replace a newer one.
    let older = advisory(
        "A-1",
        "2023-06-01T00:00:00.000000000Z",
        &[("crates.io", "older")],
    );
    assert_eq!(
        store.put_advisories(&[older])?,
        vec![AdvisoryPut::Unchanged]
    );
    let kept = store.advisory("A-1")?.expect("A-1 is kept");
    assert_eq!(kept.modified, first.modified);
    assert_eq!(kept.json, first.json);
    // A newer copy replaces it, and is found under its new package only.
    let newer = advisory(
        "A-1",
        "2024-02-01T00:00:00.000000000Z",
        &[("crates.io", "new")],
    );
    assert_eq!(
        store.put_advisories(std::slice::from_ref(&newer))?,
        vec![AdvisoryPut::Updated]
    );
    let kept = store.advisory("A-1")?.expect("A-1 is kept");
    assert_eq!(kept.modified, newer.modified);
    assert_eq!(kept.json, newer.json);
    assert!(
        store
            .advisories_for_packages(&keys(&[("crates.io", "old")]))?
            .is_empty()
    );
    assert_eq!(
        found_ids(&store.advisories_for_packages(&keys(&[("crates.io", "new")]))?),
        vec!["A-1"]
    );
    // Within one batch, a second copy is compared with the first.
    let twice = [
        advisory("A-3", "2024-01-01T00:00:00.000000000Z", &[]),
        advisory("A-3", "2024-03-01T00:00:00.000000000Z", &[]),
    ];
    assert_eq!(
        store.put_advisories(&twice)?,
        vec![AdvisoryPut::New, AdvisoryPut::Updated]
    );
    assert_eq!(store.advisory_count()?, 3);
    assert!(store.advisory("A-404")?.is_none());
    // A record over the limit refuses the whole batch.
    let mut big = advisory("A-4", "2024-01-01T00:00:00.000000000Z", &[]);
    big.json = vec![b' '; crate::MAX_ADVISORY_BYTES + 1];
    let fine = advisory("A-5", "2024-01-01T00:00:00.000000000Z", &[]);
    assert!(matches!(
        store.put_advisories(&[fine, big]),
        Err(StoreError::TooLarge { .. })
    ));
    assert!(store.advisory("A-5")?.is_none());
    assert_eq!(store.advisory_count()?, 3);
    Ok(())
}

/// Lookup by (ecosystem, name): exact on both, each record once however many of its
/// packages are asked for, sorted by id.
pub fn advisories_are_found_by_package(store: &dyn Store) -> Result<(), StoreError> {
    store.put_advisories(&[
        advisory(
            "B-2",
            "2024-01-01T00:00:00.000000000Z",
            &[("crates.io", "a"), ("crates.io", "b")],
        ),
        advisory(
            "B-1",
            "2024-01-01T00:00:00.000000000Z",
            &[("crates.io", "b")],
        ),
        advisory("B-3", "2024-01-01T00:00:00.000000000Z", &[("npm", "a")]),
    ])?;
    let found = store.advisories_for_packages(&keys(&[("crates.io", "a"), ("crates.io", "b")]))?;
    assert_eq!(found_ids(&found), vec!["B-1", "B-2"]);
    assert_eq!(
        found_ids(&store.advisories_for_packages(&keys(&[("npm", "a")]))?),
        vec!["B-3"]
    );
    assert!(
        store
            .advisories_for_packages(&keys(&[("npm", "b")]))?
            .is_empty()
    );
    assert!(store.advisories_for_packages(&[])?.is_empty());
    Ok(())
}

/// Lookup by package, for matching, gives a record's match form where one is kept
/// (and the record where none is); the record itself is kept whole and read by
/// id. A newer record replaces its form, or drops it when it comes without one.
pub fn matching_reads_the_match_form_and_the_record_stays_whole(
    store: &dyn Store,
) -> Result<(), StoreError> {
    let mut with_form = advisory("F-1", "2024-01-01T00:00:00.000000000Z", &[("npm", "f")]);
    with_form.match_form = Some(b"{\"id\":\"F-1\",\"form\":1}".to_vec());
    let without = advisory("F-2", "2024-01-01T00:00:00.000000000Z", &[("npm", "f")]);
    store.put_advisories(&[with_form.clone(), without.clone()])?;
    let p = keys(&[("npm", "f")]);
    let found = store.advisories_for_packages(&p)?;
    assert_eq!(found_ids(&found), vec!["F-1", "F-2"]);
    assert_eq!(Some(&found[0].json), with_form.match_form.as_ref());
    assert_eq!(found[1].json, without.json);
    assert_eq!(
        store.advisory("F-1")?.expect("F-1 is kept").json,
        with_form.json
    );
    // A newer form replaces the old one; a newer record without one drops it.
    let mut newer = advisory("F-1", "2024-02-01T00:00:00.000000000Z", &[("npm", "f")]);
    newer.match_form = Some(b"{\"id\":\"F-1\",\"form\":2}".to_vec());
    store.put_advisories(std::slice::from_ref(&newer))?;
    assert_eq!(
        Some(&store.advisories_for_packages(&p)?[0].json),
        newer.match_form.as_ref()
    );
    // The same record again with a form cut differently (a newer binary):
    // unchanged, and its form is the new one; other bytes under the same
    // `modified` change nothing.
    let mut recut = newer.clone();
    recut.match_form = Some(b"{\"id\":\"F-1\",\"form\":3}".to_vec());
    assert_eq!(
        store.put_advisories(std::slice::from_ref(&recut))?,
        vec![AdvisoryPut::Unchanged]
    );
    assert_eq!(
        Some(&store.advisories_for_packages(&p)?[0].json),
        recut.match_form.as_ref()
    );
    let mut other = recut.clone();
    other.json = b"{\"id\":\"F-1\",\"other\":true}".to_vec();
    other.match_form = Some(b"{\"id\":\"F-1\",\"form\":4}".to_vec());
    assert_eq!(
        store.put_advisories(std::slice::from_ref(&other))?,
        vec![AdvisoryPut::Unchanged]
    );
    assert_eq!(
        Some(&store.advisories_for_packages(&p)?[0].json),
        recut.match_form.as_ref()
    );
    assert_eq!(store.advisory("F-1")?.expect("kept").json, newer.json);
    let newest = advisory("F-1", "2024-03-01T00:00:00.000000000Z", &[("npm", "f")]);
    store.put_advisories(std::slice::from_ref(&newest))?;
    assert_eq!(store.advisories_for_packages(&p)?[0].json, newest.json);
    // A form over the limit refuses the whole batch, as a record over it does.
    let mut big = advisory("F-3", "2024-01-01T00:00:00.000000000Z", &[]);
    big.match_form = Some(vec![b' '; crate::MAX_ADVISORY_BYTES + 1]);
    assert!(matches!(
        store.put_advisories(&[big]),
        Err(StoreError::TooLarge { .. })
    ));
    assert!(store.advisory("F-3")?.is_none());
    Ok(())
}

/// The back-fill's two calls: the ids of records with a row lacking a
/// compiled form (in order, after a cursor, at most a limit), and filling
/// them in only where a row has none and the record is still the one the
/// form was compiled from.
pub fn compiled_forms_are_back_filled_where_missing(store: &dyn Store) -> Result<(), StoreError> {
    let mut kept = advisory("D-1", "2024-01-01T00:00:00.000000000Z", &[("npm", "a")]);
    kept.compiled = vec![Some(vec![1, 2])];
    let bare = advisory(
        "D-2",
        "2024-01-01T00:00:00.000000000Z",
        &[("npm", "a"), ("npm", "b")],
    );
    let other = advisory("D-3", "2024-01-01T00:00:00.000000000Z", &[("npm", "c")]);
    store.put_advisories(&[kept.clone(), bare.clone(), other.clone()])?;
    assert_eq!(store.advisories_without_compiled("", 10)?, ["D-2", "D-3"]);
    assert_eq!(store.advisories_without_compiled("D-2", 10)?, ["D-3"]);
    assert_eq!(store.advisories_without_compiled("", 1)?, ["D-2"]);
    let row = |id: &str, name: &str, json: &[u8], form: Vec<u8>| crate::CompiledRow {
        ecosystem: "npm".to_owned(),
        name: name.to_owned(),
        id: id.to_owned(),
        json: json.to_vec(),
        form,
    };
    // Another record's bytes, or a row that has its form: nothing written.
    assert_eq!(
        store.put_compiled(&[
            row("D-2", "a", b"{\"id\":\"D-2\",\"other\":1}", vec![7]),
            row("D-1", "a", &kept.json, vec![7]),
        ])?,
        0
    );
    assert_eq!(
        store.put_compiled(&[
            row("D-2", "a", &bare.json, vec![3]),
            row("D-2", "b", &bare.json, vec![4]),
            row("D-3", "c", &other.json, vec![5]),
        ])?,
        3
    );
    assert!(store.advisories_without_compiled("", 10)?.is_empty());
    let forms: Vec<(String, String, Option<Vec<u8>>)> = store
        .advisory_matchers(&keys(&[("npm", "a"), ("npm", "b"), ("npm", "c")]))?
        .into_iter()
        .map(|m| (m.name, m.id, m.compiled))
        .collect();
    let f = |n: &str, id: &str, c: Vec<u8>| (n.to_owned(), id.to_owned(), Some(c));
    assert_eq!(
        forms,
        [
            f("a", "D-1", vec![1, 2]),
            f("a", "D-2", vec![3]),
            f("b", "D-2", vec![4]),
            f("c", "D-3", vec![5]),
        ]
    );
    Ok(())
}

/// The index rows of many requested packages, of few, of unknown ones and of
/// duplicates come out as each package's rows asked for alone, concatenated by
/// (ecosystem, name), each row once, by id: the same whether the backend reads
/// one range per package or merges the requests with one pass of the index.
pub fn matchers_of_many_and_few_packages_are_the_rows_of_each(
    store: &dyn Store,
) -> Result<(), StoreError> {
    // 40 npm names, some with several records, every third also in PyPI, one
    // record under three names; names that sort next to each other
    // ("n05", "n05-x", "n05.x", "n05x") and one past ASCII.
    let mut names: Vec<String> = (0..40).map(|k| format!("n{k:02}")).collect();
    names.extend(["n05-x", "n05.x", "n05x", "n\u{e9}"].map(str::to_owned));
    let mut records = Vec::new();
    // (ecosystem, name) -> (id, compiled form; empty for none).
    type Expected = std::collections::BTreeMap<(String, String), Vec<(String, Vec<u8>)>>;
    let mut expected = Expected::new();
    for (k, name) in names.iter().enumerate() {
        for m in 0..=(k % 3) {
            let id = format!("M-{k:02}-{m}");
            let mut pkgs = vec![("npm", name.as_str())];
            if k % 3 == 0 {
                pkgs.push(("PyPI", name.as_str()));
            }
            let mut a = advisory(&id, "2024-02-01T00:00:00Z", &pkgs);
            a.compiled = pkgs
                .iter()
                .map(|(e, _)| Some(format!("{e}/{id}").into_bytes()))
                .collect();
            for (e, n) in &pkgs {
                expected
                    .entry(((*e).to_owned(), (*n).to_owned()))
                    .or_default()
                    .push((id.clone(), format!("{e}/{id}").into_bytes()));
            }
            records.push(a);
        }
    }
    let shared = [("npm", "n07"), ("npm", "n31"), ("npm", "n05x")];
    records.push(advisory("M-shared", "2024-03-01T00:00:00Z", &shared));
    for (e, n) in shared {
        expected
            .entry((e.to_owned(), n.to_owned()))
            .or_default()
            .push(("M-shared".to_owned(), Vec::new()));
    }
    store.put_advisories(&records)?;
    for rows in expected.values_mut() {
        rows.sort();
    }
    type Row = (String, String, String, Option<Vec<u8>>);
    let read = |pairs: &[(String, String)]| -> Result<Vec<Row>, StoreError> {
        Ok(store
            .advisory_matchers(pairs)?
            .into_iter()
            .map(|m| {
                assert!(m.modified.starts_with("2024-0"), "{m:?}");
                (m.ecosystem, m.name, m.id, m.compiled)
            })
            .collect())
    };
    let want = |pairs: &[(String, String)]| -> Vec<Row> {
        let asked: std::collections::BTreeSet<&(String, String)> = pairs.iter().collect();
        let mut out = Vec::new();
        for key in asked {
            for (id, form) in expected.get(key).into_iter().flatten() {
                let form = (!form.is_empty()).then(|| form.clone());
                out.push((key.0.clone(), key.1.clone(), id.clone(), form));
            }
        }
        out
    };
    let pair = |e: &str, n: &str| (e.to_owned(), n.to_owned());
    // Every name of both ecosystems, unknown ones between and around them,
    // each asked for twice, in reverse order.
    let mut many: Vec<(String, String)> = Vec::new();
    for name in &names {
        for e in ["npm", "PyPI"] {
            many.push(pair(e, name));
            many.push(pair(e, &format!("{name}-unknown")));
        }
    }
    many.extend([pair("npm", "a"), pair("npm", "zz"), pair("Go", "n01")]);
    many.extend(many.clone());
    many.reverse();
    // Few names far apart (more than a pass would read in vain between
    // them), an unknown one, and one of another ecosystem.
    let few = vec![
        pair("npm", "n39"),
        pair("npm", "n00"),
        pair("npm", "n20"),
        pair("npm", "n20"),
        pair("npm", "n05x"),
        pair("npm", "n200"),
        pair("PyPI", "n33"),
        pair("crates.io", "n00"),
    ];
    let unknown = vec![pair("npm", "m"), pair("Go", "n00"), pair("npm", "n99")];
    for pairs in [&many, &few, &unknown] {
        let rows = read(pairs)?;
        assert_eq!(rows, want(pairs));
        // The same as each package asked for alone.
        let mut alone = Vec::new();
        let asked: std::collections::BTreeSet<&(String, String)> = pairs.iter().collect();
        for key in asked {
            alone.extend(read(std::slice::from_ref(key))?);
        }
        assert_eq!(rows, alone);
    }
    assert_eq!(read(&many)?.len(), want(&many).len());
    assert!(read(&many)?.len() > 100, "{}", read(&many)?.len());
    assert!(read(&unknown)?.is_empty());
    Ok(())
}

/// Each index row keeps its compiled match form: read by package without the
/// record, with the record's `modified`; a row without one reads `None`. The
/// same record imported again fills in forms it lacks (rows kept before
/// schema v17), never from other bytes under the same `modified`; a newer
/// record replaces them. The records a scan then needs are read by id, as
/// their match forms.
pub fn compiled_forms_are_kept_per_package_and_filled_in(
    store: &dyn Store,
) -> Result<(), StoreError> {
    let mut a = advisory(
        "C-1",
        "2024-01-01T00:00:00.000000000Z",
        &[("npm", "a"), ("npm", "b")],
    );
    a.match_form = Some(b"{\"id\":\"C-1\",\"form\":1}".to_vec());
    a.compiled = vec![Some(vec![1, 0, 0, 0]), None];
    let b = advisory("C-2", "2024-01-01T00:00:00.000000000Z", &[("npm", "a")]);
    let mut gone = advisory("C-3", "2024-01-01T00:00:00.000000000Z", &[("npm", "a")]);
    gone.withdrawn = true;
    gone.compiled = vec![Some(vec![1, 1, 0, 0])];
    store.put_advisories(&[a.clone(), b.clone(), gone])?;
    type Row = (String, String, String, Option<Vec<u8>>);
    let rows = |pairs: &[(&str, &str)]| -> Result<Vec<Row>, StoreError> {
        Ok(store
            .advisory_matchers(&keys(pairs))?
            .into_iter()
            .map(|m| {
                assert!(m.modified.starts_with("2024-0"), "{m:?}");
                (m.ecosystem, m.name, m.id, m.compiled)
            })
            .collect())
    };
    let row =
        |n: &str, id: &str, c: Option<Vec<u8>>| ("npm".to_owned(), n.to_owned(), id.to_owned(), c);
    assert_eq!(
        rows(&[("npm", "b"), ("npm", "a"), ("npm", "a")])?,
        vec![
            row("a", "C-1", Some(vec![1, 0, 0, 0])),
            row("a", "C-2", None),
            row("b", "C-1", None),
        ]
    );
    assert!(store.advisory_matchers(&[])?.is_empty());
    // Another import of the same bytes fills in what is missing.
    let mut again = b.clone();
    again.compiled = vec![Some(vec![1, 0, 0, 0])];
    assert_eq!(
        store.put_advisories(&[again])?,
        vec![AdvisoryPut::Unchanged]
    );
    assert_eq!(
        rows(&[("npm", "a")])?[1],
        row("a", "C-2", Some(vec![1, 0, 0, 0]))
    );
    let mut other = b.clone();
    other.json = b"{\"id\":\"C-2\",\"other\":true}".to_vec();
    other.compiled = vec![Some(vec![9])];
    assert_eq!(
        store.put_advisories(&[other])?,
        vec![AdvisoryPut::Unchanged]
    );
    assert_eq!(
        rows(&[("npm", "a")])?[1],
        row("a", "C-2", Some(vec![1, 0, 0, 0]))
    );
    // A newer record replaces its rows and their forms.
    let mut newer = advisory("C-1", "2024-02-01T00:00:00.000000000Z", &[("npm", "b")]);
    newer.compiled = vec![Some(vec![1, 0, 1, 0])];
    store.put_advisories(&[newer])?;
    assert_eq!(
        rows(&[("npm", "a"), ("npm", "b")])?,
        vec![
            row("a", "C-2", Some(vec![1, 0, 0, 0])),
            row("b", "C-1", Some(vec![1, 0, 1, 0]))
        ]
    );
    // Records by id: each once, by id, the match form where one is kept.
    let forms = store.advisory_forms(&[
        "C-2".to_owned(),
        "C-9".to_owned(),
        "C-1".to_owned(),
        "C-2".to_owned(),
    ])?;
    assert_eq!(found_ids(&forms), vec!["C-1", "C-2"]);
    assert_eq!(forms[1].json, b.json);
    assert!(store.advisory_forms(&[])?.is_empty());
    // A compiled form over the limit refuses the whole batch.
    let mut big = advisory("C-4", "2024-01-01T00:00:00.000000000Z", &[("npm", "z")]);
    big.compiled = vec![Some(vec![0; crate::MAX_ADVISORY_BYTES + 1])];
    assert!(matches!(
        store.put_advisories(&[big]),
        Err(StoreError::TooLarge { .. })
    ));
    assert!(store.advisory("C-4")?.is_none());
    Ok(())
}

/// A withdrawn record is kept (and counted, and can be updated) but never found by
/// package; one that becomes withdrawn leaves the index.
pub fn withdrawn_advisories_are_kept_but_not_indexed(store: &dyn Store) -> Result<(), StoreError> {
    let live = advisory("C-1", "2024-01-01T00:00:00.000000000Z", &[("PyPI", "p")]);
    let mut gone = advisory("C-2", "2024-01-01T00:00:00.000000000Z", &[("PyPI", "p")]);
    gone.withdrawn = true;
    store.put_advisories(&[live, gone])?;
    let p = keys(&[("PyPI", "p")]);
    assert_eq!(found_ids(&store.advisories_for_packages(&p)?), vec!["C-1"]);
    assert!(store.advisory("C-2")?.expect("C-2 is kept").withdrawn);
    assert_eq!(store.advisory_count()?, 2);
    let mut withdrawn_later = advisory("C-1", "2024-05-01T00:00:00.000000000Z", &[("PyPI", "p")]);
    withdrawn_later.withdrawn = true;
    assert_eq!(
        store.put_advisories(&[withdrawn_later])?,
        vec![AdvisoryPut::Updated]
    );
    assert!(store.advisories_for_packages(&p)?.is_empty());
    assert_eq!(store.advisory_count()?, 2);
    // The database's state lists every kept record, withdrawn ones included.
    assert_eq!(
        store.advisory_versions()?,
        vec![
            (
                "C-1".to_owned(),
                "2024-05-01T00:00:00.000000000Z".to_owned(),
                true
            ),
            (
                "C-2".to_owned(),
                "2024-01-01T00:00:00.000000000Z".to_owned(),
                true
            ),
        ]
    );
    Ok(())
}

/// A stored SBOM is found by each component's name, in one ecosystem or in any;
/// a component listed twice in one SBOM is one hit; the hit names the artifact.
pub fn sboms_are_found_by_package(store: &dyn Store) -> Result<(), StoreError> {
    assert!(store.where_package(None, "smallvec")?.is_empty());
    let a = store.add_sbom(&sbom(
        "app-a",
        &[
            ("crates.io", "smallvec", "0.6.10"),
            ("crates.io", "smallvec", "0.6.10"),
            ("crates.io", "serde", "1.0.0"),
        ],
    ))?;
    let mut b_sbom = sbom(
        "app-b",
        &[
            ("crates.io", "smallvec", "1.6.1"),
            ("npm", "smallvec", "2.0.0"),
        ],
    );
    b_sbom.workload = Some("shop".to_owned());
    b_sbom.environment = Some("production".to_owned());
    let b = store.add_sbom(&b_sbom)?;
    assert!(b > a, "ids grow: {a} then {b}");
    let any = store.where_package(None, "smallvec")?;
    assert_eq!(
        hit_summary(&any),
        vec![
            (a, "app-a", "crates.io", "0.6.10"),
            (b, "app-b", "crates.io", "1.6.1"),
            (b, "app-b", "npm", "2.0.0"),
        ]
    );
    assert_eq!(any[0].subject_digest, "sha256:app-a");
    assert_eq!(any[0].purl, "pkg:crates.io/smallvec@0.6.10");
    assert_eq!(any[0].workload, None);
    assert_eq!(any[1].workload.as_deref(), Some("shop"));
    assert_eq!(any[1].environment.as_deref(), Some("production"));
    assert_eq!(
        hit_summary(&store.where_package(Some("npm"), "smallvec")?),
        vec![(b, "app-b", "npm", "2.0.0")]
    );
    assert_eq!(
        hit_summary(&store.where_package(Some("crates.io"), "serde")?),
        vec![(a, "app-a", "crates.io", "1.0.0")]
    );
    assert!(store.where_package(Some("PyPI"), "smallvec")?.is_empty());
    assert!(store.where_package(None, "SmallVec")?.is_empty());
    Ok(())
}

/// A batch is kept whole or not at all: one oversized document or component list
/// refuses every SBOM in it; an empty batch stores nothing.
pub fn sbom_batches_are_all_or_nothing(store: &dyn Store) -> Result<(), StoreError> {
    assert!(store.add_sboms(&[])?.is_empty());
    let fine = sbom("fine", &[("crates.io", "libc", "0.2.0")]);
    let mut big = sbom("big", &[("crates.io", "libc", "0.2.1")]);
    big.document = vec![b' '; crate::MAX_SBOM_BYTES + 1];
    assert!(matches!(
        store.add_sboms(&[fine.clone(), big]),
        Err(StoreError::TooLarge { limit, .. }) if limit == crate::MAX_SBOM_BYTES
    ));
    let mut many = sbom("many", &[]);
    many.components = vec![
        (
            "crates.io".to_owned(),
            "libc".to_owned(),
            "0.2.2".to_owned(),
            "pkg:cargo/libc@0.2.2".to_owned(),
        );
        crate::MAX_SBOM_COMPONENTS + 1
    ];
    assert!(matches!(
        store.add_sboms(&[fine.clone(), many]),
        Err(StoreError::TooLarge { limit, .. }) if limit == crate::MAX_SBOM_COMPONENTS
    ));
    assert!(store.where_package(None, "libc")?.is_empty());
    let ids = store.add_sboms(&[
        fine.clone(),
        sbom("other", &[("crates.io", "libc", "0.2.3")]),
    ])?;
    assert_eq!(ids.len(), 2);
    assert_eq!(
        hit_summary(&store.where_package(Some("crates.io"), "libc")?),
        vec![
            (ids[0], "fine", "crates.io", "0.2.0"),
            (ids[1], "other", "crates.io", "0.2.3"),
        ]
    );
    Ok(())
}

/// Components are found by (ecosystem, name), each once, in one SBOM or in all.
pub fn components_are_found_by_package(store: &dyn Store) -> Result<(), StoreError> {
    assert!(store.components_for_packages(&[], None)?.is_empty());
    let a = store.add_sbom(&sbom(
        "app-a",
        &[
            ("crates.io", "smallvec", "0.6.10"),
            ("crates.io", "smallvec", "0.6.10"),
            ("crates.io", "serde", "1.0.0"),
            ("npm", "smallvec", "1.0.0"),
        ],
    ))?;
    let b = store.add_sbom(&sbom("app-b", &[("crates.io", "smallvec", "1.6.1")]))?;
    let got = store.components_for_packages(&packages(&[("crates.io", "smallvec")]), None)?;
    let summary: Vec<(i64, &str)> = got
        .iter()
        .map(|c| (c.sbom_id, c.version.as_str()))
        .collect();
    assert_eq!(summary, vec![(a, "0.6.10"), (b, "1.6.1")]);
    assert_eq!(
        got[0],
        StoredComponent {
            sbom_id: a,
            ecosystem: "crates.io".to_owned(),
            name: "smallvec".to_owned(),
            version: "0.6.10".to_owned(),
            purl: "pkg:crates.io/smallvec@0.6.10".to_owned(),
        }
    );
    let only_b = store.components_for_packages(&packages(&[("crates.io", "smallvec")]), Some(b))?;
    assert_eq!(only_b.len(), 1);
    assert_eq!(only_b[0].sbom_id, b);
    let two = store.components_for_packages(
        &packages(&[
            ("crates.io", "serde"),
            ("npm", "smallvec"),
            ("PyPI", "serde"),
        ]),
        None,
    )?;
    assert_eq!(two.len(), 2);
    Ok(())
}

/// A match is opened once with its first-seen time; the same match again keeps it
/// open (and its first-seen time); a match that is gone is fixed; a fixed one that
/// matches again is opened again. Every re-match is logged with its counts.
pub fn findings_open_persist_and_fix(store: &dyn Store) -> Result<(), StoreError> {
    let a = store.add_sbom(&sbom(
        "app-a",
        &[
            ("crates.io", "smallvec", "0.6.10"),
            ("crates.io", "serde", "1.0.0"),
        ],
    ))?;
    let b = store.add_sbom(&sbom("app-b", &[("crates.io", "smallvec", "0.6.10")]))?;
    let scope = MatchScope {
        packages: packages(&[("crates.io", "smallvec")]),
        advisories: vec!["RUSTSEC-1".to_owned()],
        sbom: None,
    };
    let matches = [
        found("RUSTSEC-1", a, "crates.io", "smallvec", "0.6.10"),
        found("RUSTSEC-1", b, "crates.io", "smallvec", "0.6.10"),
    ];
    let first = store.record_matches(&scope, &matches, 1_000)?;
    assert_eq!(first.components, 2);
    assert_eq!(first.still_open, 0);
    assert!(first.fixed.is_empty());
    assert_eq!(
        finding_summary(&first.opened),
        vec![
            (
                "RUSTSEC-1".to_owned(),
                a,
                "smallvec@0.6.10".to_owned(),
                FindingState::Open
            ),
            (
                "RUSTSEC-1".to_owned(),
                b,
                "smallvec@0.6.10".to_owned(),
                FindingState::Open
            ),
        ]
    );
    let opened = &first.opened[1];
    assert_eq!(opened.subject_name, "app-b");
    assert_eq!(opened.subject_digest, "sha256:app-b");
    assert_eq!(opened.first_seen_ms, 1_000);
    assert_eq!(opened.severity.as_deref(), Some("high"));
    assert_eq!(opened.kind, "vulnerability");
    assert_eq!(opened.purl, "pkg:crates.io/smallvec@0.6.10");

    // The same matches again: nothing new, first-seen kept.
    let again = store.record_matches(&scope, &matches, 2_000)?;
    assert!(again.opened.is_empty());
    assert_eq!(again.still_open, 2);
    let kept = store.findings(&FindingFilter {
        sbom: Some(b),
        ..FindingFilter::default()
    })?;
    assert_eq!(kept.len(), 1);
    assert_eq!(
        (kept[0].first_seen_ms, kept[0].last_seen_ms),
        (1_000, 2_000)
    );
    // Found by the artifact's digest as well (exposures read them so).
    let by_digest = store.findings(&FindingFilter {
        subject_digest: Some("sha256:app-b".to_owned()),
        ..FindingFilter::default()
    })?;
    assert_eq!(by_digest, kept);
    assert!(
        store
            .findings(&FindingFilter {
                subject_digest: Some("sha256:elsewhere".to_owned()),
                ..FindingFilter::default()
            })?
            .is_empty()
    );

    // Gone from app-a: fixed there, still open in app-b.
    let third = store.record_matches(&scope, &matches[1..], 3_000)?;
    assert_eq!(
        finding_summary(&third.fixed),
        vec![(
            "RUSTSEC-1".to_owned(),
            a,
            "smallvec@0.6.10".to_owned(),
            FindingState::Fixed
        )]
    );
    assert_eq!(third.fixed[0].fixed_at_ms, Some(3_000));
    assert_eq!(
        finding_summary(&store.findings(&FindingFilter {
            state: Some(FindingState::Open),
            ..FindingFilter::default()
        })?),
        vec![(
            "RUSTSEC-1".to_owned(),
            b,
            "smallvec@0.6.10".to_owned(),
            FindingState::Open
        )]
    );

    // It matches again: opened again, first-seen kept, no longer fixed.
    let fourth = store.record_matches(&scope, &matches, 4_000)?;
    assert_eq!(fourth.opened.len(), 1);
    assert_eq!(fourth.opened[0].key.sbom_id, a);
    assert_eq!(fourth.opened[0].first_seen_ms, 1_000);
    assert_eq!(fourth.opened[0].fixed_at_ms, None);
    // What a re-match returns is what it stored (it is not read back row by row).
    let stored = store.findings(&FindingFilter::default())?;
    for f in fourth.opened.iter().chain(&third.fixed) {
        let now = stored.iter().find(|s| s.key == f.key).expect("stored");
        if f.state == FindingState::Open {
            assert_eq!(now, f);
        } else {
            assert_eq!(f.fixed_at_ms, Some(3_000));
        }
    }
    let first_stored = first.opened.iter().all(|f| {
        stored
            .iter()
            .any(|s| s.key == f.key && s.first_seen_ms == f.first_seen_ms && s.purl == f.purl)
    });
    assert!(first_stored);

    // A finding given twice counts once.
    let twice = store.record_matches(
        &scope,
        &[matches[0].clone(), matches[0].clone(), matches[1].clone()],
        5_000,
    )?;
    assert_eq!((twice.opened.len(), twice.still_open), (0, 2));

    let log = store.rematches(10)?;
    assert_eq!(log.len(), 5);
    assert!(log[0].id > log[1].id, "newest first");
    assert_eq!(
        (log[0].at_ms, log[0].components, log[0].still_open),
        (5_000, 2, 2)
    );
    assert_eq!(
        (
            log[2].opened,
            log[2].fixed,
            log[2].packages,
            log[2].advisories
        ),
        (0, 1, 1, 1)
    );
    assert_eq!(log[4].opened, 2);
    assert_eq!(store.rematches(1)?.len(), 1);
    assert!(store.rematches(0)?.is_empty());
    assert_eq!(
        store.findings(&FindingFilter {
            advisory: Some("RUSTSEC-404".to_owned()),
            ..FindingFilter::default()
        })?,
        vec![]
    );
    Ok(())
}

/// A re-match fixes only what it covers: findings of its packages, of its
/// advisories whatever their package, and only in its SBOM when it names one.
pub fn rematch_scope_covers_packages_advisories_and_one_sbom(
    store: &dyn Store,
) -> Result<(), StoreError> {
    let a = store.add_sbom(&sbom(
        "app-a",
        &[
            ("crates.io", "smallvec", "0.6.10"),
            ("npm", "left-pad", "1.0.0"),
        ],
    ))?;
    let b = store.add_sbom(&sbom("app-b", &[("crates.io", "smallvec", "0.6.10")]))?;
    let everything = MatchScope {
        packages: packages(&[("crates.io", "smallvec"), ("npm", "left-pad")]),
        advisories: Vec::new(),
        sbom: None,
    };
    store.record_matches(
        &everything,
        &[
            found("X-1", a, "crates.io", "smallvec", "0.6.10"),
            found("X-1", b, "crates.io", "smallvec", "0.6.10"),
            found("X-2", a, "npm", "left-pad", "1.0.0"),
            found("X-3", a, "npm", "left-pad", "1.0.0"),
        ],
        1_000,
    )?;
    // Re-matching app-b alone fixes nothing in app-a.
    let only_b = store.record_matches(
        &MatchScope {
            packages: packages(&[("crates.io", "smallvec")]),
            advisories: Vec::new(),
            sbom: Some(b),
        },
        &[],
        2_000,
    )?;
    assert_eq!(only_b.components, 1);
    assert_eq!(
        finding_summary(&only_b.fixed),
        vec![(
            "X-1".to_owned(),
            b,
            "smallvec@0.6.10".to_owned(),
            FindingState::Fixed
        )]
    );
    // X-2 no longer names left-pad (its package is not re-matched): fixed; X-3 and
    // the rest are untouched.
    let by_advisory = store.record_matches(
        &MatchScope {
            packages: Vec::new(),
            advisories: vec!["X-2".to_owned()],
            sbom: None,
        },
        &[],
        3_000,
    )?;
    assert_eq!(by_advisory.components, 0);
    assert_eq!(
        finding_summary(&by_advisory.fixed),
        vec![(
            "X-2".to_owned(),
            a,
            "left-pad@1.0.0".to_owned(),
            FindingState::Fixed
        )]
    );
    assert_eq!(
        all_findings(store)?,
        vec![
            (
                "X-1".to_owned(),
                a,
                "smallvec@0.6.10".to_owned(),
                FindingState::Open
            ),
            (
                "X-2".to_owned(),
                a,
                "left-pad@1.0.0".to_owned(),
                FindingState::Fixed
            ),
            (
                "X-3".to_owned(),
                a,
                "left-pad@1.0.0".to_owned(),
                FindingState::Open
            ),
            (
                "X-1".to_owned(),
                b,
                "smallvec@0.6.10".to_owned(),
                FindingState::Fixed
            ),
        ]
    );
    Ok(())
}

/// A match outside the scope, or of a component that is not stored, refuses the
/// whole re-match: nothing is stored or logged.
pub fn rematch_refuses_findings_outside_its_scope(store: &dyn Store) -> Result<(), StoreError> {
    let a = store.add_sbom(&sbom("app-a", &[("crates.io", "smallvec", "0.6.10")]))?;
    let b = store.add_sbom(&sbom("app-b", &[("crates.io", "smallvec", "0.6.10")]))?;
    let scope = MatchScope {
        packages: packages(&[("crates.io", "smallvec")]),
        advisories: Vec::new(),
        sbom: Some(a),
    };
    let ok = found("X-1", a, "crates.io", "smallvec", "0.6.10");
    assert!(matches!(
        store.record_matches(&scope, &[ok.clone(), found("X-1", b, "crates.io", "smallvec", "0.6.10")], 1),
        Err(StoreError::OutOfScope { sbom, .. }) if sbom == b
    ));
    assert!(matches!(
        store.record_matches(
            &scope,
            &[ok.clone(), found("X-1", a, "crates.io", "serde", "1.0.0")],
            1
        ),
        Err(StoreError::OutOfScope { .. })
    ));
    assert!(matches!(
        store.record_matches(
            &scope,
            &[
                ok.clone(),
                found("X-1", a, "crates.io", "smallvec", "9.9.9")
            ],
            1
        ),
        Err(StoreError::NotFound { .. })
    ));
    assert!(all_findings(store)?.is_empty());
    assert!(store.rematches(10)?.is_empty());
    assert_eq!(store.record_matches(&scope, &[ok], 1)?.opened.len(), 1);
    Ok(())
}

/// The same digest built twice hands in the same SBOM twice (its creation time
/// aside): it is kept once, the second store returns the first id, and matching
/// it again finds the findings already open instead of a second set. An SBOM of
/// the same digest that differs in its document, workload or components is
/// another SBOM.
pub fn the_same_sbom_stored_twice_is_one_sbom_with_one_set_of_findings(
    store: &dyn Store,
) -> Result<(), StoreError> {
    let built = sbom(
        "app",
        &[("npm", "left-pad", "1.2.0"), ("npm", "chalk", "5.0.0")],
    );
    let first = store.add_sbom(&built)?;
    let scope = MatchScope {
        packages: packages(&[("npm", "left-pad")]),
        advisories: Vec::new(),
        sbom: Some(first),
    };
    let matches = [found("GHSA-1", first, "npm", "left-pad", "1.2.0")];
    assert_eq!(
        store.record_matches(&scope, &matches, 1_000)?.opened.len(),
        1
    );

    let again = NewSbom {
        created_at_ms: 9_000,
        // The same components in another order are the same SBOM.
        components: built.components.iter().rev().cloned().collect(),
        ..built.clone()
    };
    let second = store.add_sbom(&again)?;
    assert_eq!(second, first, "the same SBOM again must not be a new row");
    let rematched = store.record_matches(
        &MatchScope {
            sbom: Some(second),
            ..scope.clone()
        },
        &[found("GHSA-1", second, "npm", "left-pad", "1.2.0")],
        2_000,
    )?;
    assert!(rematched.opened.is_empty(), "{:?}", rematched.opened);
    assert_eq!(rematched.still_open, 1);
    let about = store.sboms_about("sha256:app")?;
    assert_eq!(about.len(), 1, "{about:?}");
    assert_eq!(
        (
            about[0].id,
            about[0].created_at_ms,
            about[0].format.as_str()
        ),
        (first, 1_000, "cyclonedx")
    );
    assert_eq!(
        hit_summary(&store.where_package(None, "left-pad")?).len(),
        1
    );
    assert_eq!(
        all_findings(store)?,
        vec![(
            "GHSA-1".to_owned(),
            first,
            "left-pad@1.2.0".to_owned(),
            FindingState::Open
        )]
    );
    // In one batch, equal SBOMs get one id too.
    let other = sbom("other", &[("npm", "chalk", "5.0.0")]);
    let batch = store.add_sboms(&[other.clone(), other.clone()])?;
    assert_eq!(batch.len(), 2);
    assert_eq!(batch[0], batch[1]);
    assert_ne!(batch[0], first);

    // The same digest with another document, workload or component list is
    // another SBOM, found as such.
    let mut differs = Vec::new();
    let mut doc = built.clone();
    doc.document = b"{\"subject\":\"app\",\"rebuilt\":true}".to_vec();
    differs.push(doc);
    let mut workload = built.clone();
    workload.workload = Some("web".to_owned());
    differs.push(workload);
    let mut fewer = built.clone();
    fewer.components.pop();
    differs.push(fewer);
    let mut ids = vec![first];
    for s in &differs {
        let id = store.add_sbom(s)?;
        assert!(!ids.contains(&id), "{s:?} was taken for a stored SBOM");
        ids.push(id);
    }
    let about: Vec<(i64, Option<String>)> = store
        .sboms_about("sha256:app")?
        .into_iter()
        .map(|s| (s.id, s.workload))
        .collect();
    assert_eq!(
        about,
        vec![
            (ids[0], None),
            (ids[1], None),
            (ids[2], Some("web".to_owned())),
            (ids[3], None)
        ]
    );
    assert!(store.sboms_about("sha256:nothing")?.is_empty());
    Ok(())
}

/// `limit` bounds the findings returned, the first in the listing's order,
/// alone and with the other filters; `None` returns them all.
pub fn the_finding_limit_bounds_the_results(store: &dyn Store) -> Result<(), StoreError> {
    let a = store.add_sbom(&sbom("a", &[("npm", "left-pad", "1.2.0")]))?;
    let b = store.add_sbom(&sbom("b", &[("npm", "left-pad", "1.2.0")]))?;
    let scope = MatchScope {
        packages: packages(&[("npm", "left-pad")]),
        advisories: Vec::new(),
        sbom: None,
    };
    let mut matches = Vec::new();
    for sbom_id in [a, b] {
        for advisory in ["GHSA-1", "GHSA-2", "GHSA-3"] {
            matches.push(found(advisory, sbom_id, "npm", "left-pad", "1.2.0"));
        }
    }
    store.record_matches(&scope, &matches, 1_000)?;
    let every = store.findings(&FindingFilter::default())?;
    assert_eq!(every.len(), 6);
    for limit in [0, 1, 2, 5, 6, 7, usize::MAX] {
        let some = store.findings(&FindingFilter {
            limit: Some(limit),
            ..FindingFilter::default()
        })?;
        assert_eq!(some, every[..limit.min(6)], "limit {limit}");
    }
    let of_b = store.findings(&FindingFilter {
        subject_digest: Some("sha256:b".to_owned()),
        limit: Some(2),
        ..FindingFilter::default()
    })?;
    assert_eq!(
        finding_summary(&of_b),
        vec![
            (
                "GHSA-1".to_owned(),
                b,
                "left-pad@1.2.0".to_owned(),
                FindingState::Open
            ),
            (
                "GHSA-2".to_owned(),
                b,
                "left-pad@1.2.0".to_owned(),
                FindingState::Open
            ),
        ]
    );
    let one_advisory = store.findings(&FindingFilter {
        advisory: Some("GHSA-3".to_owned()),
        state: Some(FindingState::Open),
        limit: Some(1),
        ..FindingFilter::default()
    })?;
    assert_eq!(finding_summary(&one_advisory).len(), 1);
    assert_eq!(one_advisory[0].key.sbom_id, a);
    Ok(())
}

/// A re-match with more matches than one statement writes (SQLite inserts new
/// findings 64 rows at a time), each given twice: every match is stored once,
/// open, first seen at the re-match; the same matches again keep them open.
pub fn a_large_rematch_stores_every_match_once(store: &dyn Store) -> Result<(), StoreError> {
    let sboms = [
        store.add_sbom(&sbom("app-a", &[("npm", "left-pad", "1.0.0")]))?,
        store.add_sbom(&sbom("app-b", &[("npm", "left-pad", "1.0.0")]))?,
        store.add_sbom(&sbom("app-c", &[("npm", "left-pad", "1.0.0")]))?,
    ];
    let scope = MatchScope {
        packages: packages(&[("npm", "left-pad")]),
        advisories: Vec::new(),
        sbom: None,
    };
    let mut matches = Vec::new();
    for i in 0..150 {
        for &s in &sboms {
            let m = found(&format!("X-{i:03}"), s, "npm", "left-pad", "1.0.0");
            matches.push(m.clone());
            matches.push(m);
        }
    }
    let first = store.record_matches(&scope, &matches, 1_000)?;
    assert_eq!(first.opened.len(), 450);
    assert!(first.opened.iter().all(|f| f.first_seen_ms == 1_000
        && f.state == FindingState::Open
        && f.subject_name.starts_with("app-")));
    let stored = store.findings(&FindingFilter {
        limit: Some(1_000),
        ..FindingFilter::default()
    })?;
    assert_eq!(stored.len(), 450);
    assert!(stored.iter().all(|f| f.state == FindingState::Open
        && f.first_seen_ms == 1_000
        && f.last_seen_ms == 1_000
        && f.purl == "pkg:npm/left-pad@1.0.0"));
    let again = store.record_matches(&scope, &matches, 2_000)?;
    assert_eq!(
        (again.opened.len(), again.still_open, again.fixed.len()),
        (0, 450, 0)
    );
    Ok(())
}
