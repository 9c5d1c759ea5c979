use super::*;
use crate::conn::Conn;
use crate::dialect::MAX_TRACKED_NAME_CHARS;
use crate::migration::{MigrationFuture, Reversal};

fn noop<'a>(_: &'a mut Conn<'_>) -> MigrationFuture<'a> {
    Box::pin(async { Ok(()) })
}

static SET: MigrationSet = MigrationSet::__new("app", "app_crate", &[]);

fn migration(
    table: &'static str,
    version: &'static str,
    parent: Option<&'static str>,
    after: Option<&'static str>,
) -> &'static Migration {
    named_in(&SET, table, version, parent, after, "m")
}

/// A migration of `set` named `name`.
fn named_in(
    set: &'static MigrationSet,
    table: &'static str,
    version: &'static str,
    parent: Option<&'static str>,
    after: Option<&'static str>,
    name: &'static str,
) -> &'static Migration {
    Box::leak(Box::new(Migration::__new(
        set,
        table,
        version,
        parent,
        name,
        noop,
        Reversal::Down(noop),
        true,
        after,
        "fnv1a64:0000000000000000",
        "graph.rs",
        // A line of its own per migration, so that errors show which one they name.
        NEXT_LINE.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
    )))
}

static NEXT_LINE: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(1);

fn order(graph: &Graph) -> Vec<String> {
    graph
        .steps()
        .map(|s| format!("{}@{}", s.table, s.version))
        .collect()
}

#[test]
fn orders_by_version_then_table_respecting_after() {
    let graph = Graph::from_migrations([
        migration("b", "1.0.0", None, None),
        migration("a", "1.0.0", None, None),
        migration("a", "2.0.0", Some("1.0.0"), Some("b@3.0.0")),
        migration("b", "3.0.0", Some("1.0.0"), None),
    ])
    .unwrap();
    assert_eq!(order(&graph), ["a@1.0.0", "b@1.0.0", "b@3.0.0", "a@2.0.0"]);
}

/// The names found valid are remembered by address: a bad name among many good ones, at an
/// address of its own, is still refused, at its own migration.
#[test]
fn a_bad_name_after_remembered_good_ones_is_refused() {
    let mut migrations = Vec::new();
    // More valid table names than are remembered, each used twice.
    for round in 0..2 {
        for i in 0..40 {
            let table: &'static str = Box::leak(format!("table_{i}").into_boxed_str());
            let version = if round == 0 { "1.0.0" } else { "2.0.0" };
            let parent = (round == 1).then_some("1.0.0");
            migrations.push(migration(table, version, parent, None));
        }
    }
    assert!(Graph::from_migrations(migrations.clone()).is_ok());
    // The same text as a remembered name, with a trailing space: another address.
    let bad = migration("table_0 ", "1.0.0", None, None);
    migrations.insert(41, bad);
    let err = Graph::from_migrations(migrations).unwrap_err();
    assert!(
        matches!(&err, GraphError::InvalidName { what: "table", .. }),
        "{err}"
    );
    assert!(
        err.to_string()
            .starts_with(&format!("{}: table name", bad.location())),
        "{err}"
    );
}

#[test]
fn rejects_names_the_tracking_tables_cannot_keep() {
    let long: &'static str = Box::leak("t".repeat(MAX_TRACKED_NAME_CHARS + 1).into_boxed_str());
    // 192 characters of two bytes each: counted in characters, not bytes.
    let long_wide: &'static str =
        Box::leak("é".repeat(MAX_TRACKED_NAME_CHARS + 1).into_boxed_str());
    for (table, reason) in [
        ("a\0b", "contains NUL"),
        ("  ", "is blank"),
        (long, "is 192 characters long"),
        (long_wide, "is 192 characters long"),
    ] {
        let m = migration(table, "1.0.0", None, None);
        let err = Graph::from_migrations([m]).unwrap_err();
        assert!(
            matches!(&err, GraphError::InvalidName { what: "table", reason: r, .. } if r.starts_with(reason)),
            "{err}"
        );
        assert!(
            err.to_string()
                .starts_with(&format!("{}: table name", m.location())),
            "{err}"
        );
    }
    static NUL_MODULE: MigrationSet = MigrationSet::__new("app\0x", "app_crate", &[]);
    let bad = named_in(&NUL_MODULE, "t", "1.0.0", None, None, "m");
    let named = named_in(&SET, "t", "1.0.0", None, None, "m\0");
    let err = Graph::from_migrations([named]).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("{}: migration name `m\\0` contains NUL", named.location())
    );
    let err = Graph::from_migrations([bad]).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("{}: module name `app\\0x` contains NUL", bad.location())
    );
    let err = Graph::from_migrations([migration("session ", "1.0.0", None, None)]).unwrap_err();
    assert!(
        err.to_string().ends_with("starts or ends with whitespace"),
        "{err}"
    );
    let long_version: &'static str =
        Box::leak(format!("1.0.0-{}", "a".repeat(MAX_TRACKED_NAME_CHARS)).into_boxed_str());
    let err = Graph::from_migrations([migration("t", long_version, None, None)]).unwrap_err();
    assert!(
        matches!(
            err,
            GraphError::InvalidName {
                what: "version",
                ..
            }
        ),
        "{err}"
    );
    let err = Graph::from_migrations([
        migration("Session", "1.0.0", None, None),
        migration("session", "1.0.0", None, None),
    ])
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "`app` table names `Session` and `session` differ only in case; MySQL's tracking tables would take them for one: rename one"
    );
    static UPPER: MigrationSet = MigrationSet::__new("App", "other_crate", &[]);
    let upper = named_in(&UPPER, "t", "1.0.0", None, None, "m");
    let err = Graph::from_migrations([migration("t", "1.0.0", None, None), upper]).unwrap_err();
    assert!(
        matches!(&err, GraphError::NamesDifferOnlyInCase { what, .. } if what == "module"),
        "{err}"
    );
    let longest: &'static str = Box::leak("é".repeat(MAX_TRACKED_NAME_CHARS).into_boxed_str());
    assert!(Graph::from_migrations([migration(longest, "1.0.0", None, None)]).is_ok());
}

#[test]
fn rejects_forks_roots_gaps_duplicates_and_cycles() {
    let err = |ms: Vec<&'static Migration>| Graph::from_migrations(ms).unwrap_err();
    assert!(matches!(
        err(vec![
            migration("t", "1.0.0", None, None),
            migration("t", "1.1.0", Some("1.0.0"), None),
            migration("t", "1.2.0", Some("1.0.0"), None),
        ]),
        GraphError::Fork { .. }
    ));
    // A fork whose second child's parent is not the version just below it, registered in
    // any order: the parent it names is reported, and its two children in version order.
    let chain = [
        migration("t", "1.0.0", None, None),
        migration("t", "1.1.0", Some("1.0.0"), None),
        migration("t", "1.2.0", Some("1.1.0"), None),
        migration("t", "1.3.0", Some("1.0.0"), None),
    ];
    for ms in [chain.to_vec(), chain.iter().rev().copied().collect()] {
        match err(ms) {
            GraphError::Fork {
                parent,
                first,
                second,
                ..
            } => {
                assert_eq!(parent, "1.0.0");
                assert_eq!((first, second), (chain[1].location(), chain[3].location()));
            }
            other => panic!("expected the fork at 1.0.0, got {other}"),
        }
    }
    // Two migrations of one version, another version registered between them: the first
    // registered is named first.
    let (b, x, a) = (
        named_in(&SET, "t", "1.0.0", None, None, "b"),
        migration("t", "0.9.0", None, None),
        named_in(&SET, "t", "1.0.0", None, None, "a"),
    );
    match err(vec![b, x, a]) {
        GraphError::Duplicate { first, second, .. } => {
            assert_eq!((first, second), (b.location(), a.location()));
        }
        other => panic!("expected a duplicate, got {other}"),
    }
    assert!(matches!(
        err(vec![
            migration("t", "1.0.0", None, None),
            migration("t", "2.0.0", None, None)
        ]),
        GraphError::TwoRoots { .. }
    ));
    assert!(matches!(
        err(vec![
            migration("t", "1.0.0", None, None),
            migration("t", "1.2.0", Some("1.1.0"), None)
        ]),
        GraphError::MissingParent { .. }
    ));
    assert!(matches!(
        err(vec![
            migration("t", "1.0.0", None, None),
            migration("t", "1.0.0", None, None)
        ]),
        GraphError::Duplicate { .. }
    ));
    assert!(matches!(
        err(vec![
            migration("t", "2.0.0", None, None),
            migration("t", "1.0.0", Some("2.0.0"), None)
        ]),
        GraphError::NotIncreasing { .. }
    ));
    assert!(matches!(
        err(vec![
            migration("a", "1.0.0", None, Some("b@1.0.0")),
            migration("b", "1.0.0", None, Some("a@1.0.0")),
        ]),
        GraphError::Cycle { .. }
    ));
    assert!(matches!(
        err(vec![migration("a", "1.0.0", None, Some("b@9.0.0"))]),
        GraphError::UnknownAfter { .. }
    ));
}

#[test]
fn an_after_edge_already_implied_leaves_the_order_as_it_is() {
    // Three tables with the same versions (ties go by table), registered out of order:
    // the order without any `after` edge (the sorted order itself) and with one that the
    // versions already imply (Kahn's algorithm) must be the same.
    let build = |implied_after: Option<&'static str>| {
        let mut ms = Vec::new();
        for table in ["c", "a", "b"] {
            let mut parent = None;
            for minor in 0..10 {
                let version: &'static str = Box::leak(format!("1.{minor}.0").into_boxed_str());
                let after = (table == "c" && minor == 9)
                    .then_some(implied_after)
                    .flatten();
                ms.push(migration(table, version, parent, after));
                parent = Some(version);
            }
        }
        ms.reverse();
        let graph = Graph::from_migrations(ms).unwrap();
        graph
            .steps()
            .map(|s| format!("{}@{}", s.table, s.version))
            .collect::<Vec<_>>()
    };
    let plain = build(None);
    assert_eq!(plain.len(), 30);
    assert_eq!(plain[..4], ["a@1.0.0", "b@1.0.0", "c@1.0.0", "a@1.1.0"]);
    assert_eq!(plain[29], "c@1.9.0");
    assert_eq!(plain, build(Some("a@1.0.0")));
}

#[test]
fn ten_thousand_migrations_build_into_one_chain_per_table() {
    let mut ms = Vec::new();
    let tables = ["s", "m", "x", "e", "k", "c"];
    let mut last: [Option<&'static str>; 6] = [None; 6];
    for i in 0..10_000 {
        let t = i % 6;
        let version: &'static str = Box::leak(format!("1.0.{i}").into_boxed_str());
        ms.push(migration(tables[t], version, last[t], None));
        last[t] = Some(version);
    }
    let graph = Graph::from_migrations(ms).unwrap();
    assert_eq!(graph.len(), 10_000);
    assert_eq!(graph.chains.len(), 6);
    assert_eq!(
        graph.steps().next().map(|s| s.version.to_string()),
        Some("1.0.0".into())
    );
}

#[test]
fn the_order_is_every_step_sorted_by_version_then_table() {
    // Four tables whose versions interleave, pre-releases among them, registered shuffled: the
    // run order (the chains merged) must be every step sorted by (version, table).
    let mut random = 0x2545_f491_4f6c_dd1d_u64;
    let mut next = move |below: u64| {
        random ^= random << 13;
        random ^= random >> 7;
        random ^= random << 17;
        random % below
    };
    let mut ms = Vec::new();
    let mut expected = Vec::new();
    for table in ["t3", "t1", "t2", "t0"] {
        let mut parent = None;
        let mut step = 0;
        for _ in 0..40 {
            // Even steps are a release's candidate, odd ones the release: 1.4.0-rc.1 < 1.4.0.
            step += 1 + next(3);
            let pre = if step % 2 == 0 { "-rc.1" } else { "" };
            let version: &'static str =
                Box::leak(format!("1.{}.0{pre}", step / 2).into_boxed_str());
            ms.push(migration(table, version, parent, None));
            expected.push((Version::parse(version).unwrap(), table));
            parent = Some(version);
        }
    }
    for i in (1..ms.len()).rev() {
        let j = usize::try_from(next(i as u64 + 1)).unwrap();
        ms.swap(i, j);
    }
    expected.sort();
    let expected: Vec<String> = expected
        .iter()
        .map(|(version, table)| format!("{table}@{version}"))
        .collect();
    assert_eq!(order(&Graph::from_migrations(ms).unwrap()), expected);
}

#[test]
fn a_table_named_at_two_addresses_is_one_chain_among_few_tables_or_many() {
    // Tables are grouped by the address of their name first, then by its text: half of each
    // table's steps name it through a copy at another address. 3 tables are found by address
    // among all groups, 40 (more than are scanned) by text.
    for tables in [3, 40] {
        let shared: Vec<&'static str> = (0..tables)
            .map(|t| &*Box::leak(format!("t{t:02}").into_boxed_str()))
            .collect();
        let mut ms = Vec::new();
        let versions = ["1.0.0", "1.1.0", "1.2.0", "1.3.0"];
        for (step, &version) in versions.iter().enumerate() {
            for &name in &shared {
                let table: &'static str = if step % 2 == 0 {
                    name
                } else {
                    Box::leak(name.to_string().into_boxed_str())
                };
                let parent = step.checked_sub(1).map(|p| versions[p]);
                ms.push(migration(table, version, parent, None));
            }
        }
        let graph = Graph::from_migrations(ms).unwrap();
        assert_eq!(graph.chains.len(), tables);
        assert!(graph.chains.iter().all(|c| c.nodes.len() == versions.len()));
        let expected: Vec<String> = versions
            .iter()
            .flat_map(|v| shared.iter().map(move |t| format!("{t}@{v}")))
            .collect();
        assert_eq!(order(&graph), expected);
    }
}

#[test]
fn one_table_name_in_two_modules_is_two_chains_ordered_by_module() {
    // Both modules name their table through the same string: a group is its module and its
    // table, so the two are never taken for one (which would be a fork, or two roots).
    static ZETA: MigrationSet = MigrationSet::__new("zeta", "zeta_crate", &[]);
    static ALPHA: MigrationSet = MigrationSet::__new("alpha", "alpha_crate", &[]);
    let table: &'static str = "t";
    let mut ms = Vec::new();
    for set in [&ZETA, &ALPHA] {
        ms.push(named_in(set, table, "1.0.0", None, None, "m"));
        ms.push(named_in(set, table, "2.0.0", Some("1.0.0"), None, "m"));
    }
    let graph = Graph::from_migrations(ms).unwrap();
    let chains: Vec<(&str, &str, usize)> = graph
        .chains
        .iter()
        .map(|c| (c.module, c.table, c.nodes.len()))
        .collect();
    assert_eq!(chains, [("alpha", "t", 2), ("zeta", "t", 2)]);
    let order: Vec<String> = graph
        .steps()
        .map(|s| format!("{}/{}@{}", s.module, s.table, s.version))
        .collect();
    assert_eq!(
        order,
        [
            "alpha/t@1.0.0",
            "zeta/t@1.0.0",
            "alpha/t@2.0.0",
            "zeta/t@2.0.0"
        ]
    );
}
