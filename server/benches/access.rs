//! The cost of a permission decision with many bindings: `cargo bench -p berth --bench access`.
//!
//! Fills the store with 10,000 role bindings (users, groups and service accounts on namespaces
//! and streams, and a few registry-wide), loads the authorizer, and times decisions for
//! subjects that are allowed, denied, and hold many groups: the median and the 99th percentile
//! over 100,000 decisions each.

use std::hint::black_box;
use std::sync::Arc;
use std::time::Instant;

use berth::auth::{Action, Authorizer, Subject, Target};
use berth::config::auth::NamespaceCreation;
use berth::storage::auth::{AuthStore, BindingRecord};
use berth::storage::sqlite::SqliteMetadata;
use berth::storage::{ImageStreamStore, Labels};

const BINDINGS: usize = 10_000;
const DECISIONS: usize = 100_000;

fn percentile(samples: &mut [u128], p: f64) -> f64 {
    samples.sort_unstable();
    samples[((samples.len() as f64 - 1.0) * p) as usize] as f64 / 1000.0
}

fn main() {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = Arc::new(
            SqliteMetadata::open(&dir.path().join("berth.db"))
                .await
                .expect("store"),
        );
        let namespaces = 500;
        for n in 0..namespaces {
            store
                .create_namespace(&format!("ns{n}"), &Labels::new(), &Labels::new())
                .await
                .expect("namespace");
        }
        let started = Instant::now();
        let roles = ["viewer", "editor", "admin"];
        for i in 0..BINDINGS {
            let (kind, name, subject_namespace) = match i % 3 {
                0 => ("User", format!("user{}", i % 2000), None),
                1 => ("Group", format!("group{}", i % 300), None),
                _ => (
                    "ServiceAccount",
                    "robot".to_owned(),
                    Some(format!("ns{}", i % namespaces)),
                ),
            };
            let record = BindingRecord {
                name: format!("b{i}"),
                namespace: Some(format!("ns{}", i % namespaces)),
                stream: (i % 2 == 0).then(|| format!("stream{}", i % 50)),
                role: roles[i % 3].into(),
                subject_kind: kind.into(),
                subject_name: name,
                subject_namespace,
                created_at: chrono::Utc::now(),
            };
            store.create_binding(&record).await.expect("binding");
        }
        eprintln!("stored {BINDINGS} bindings in {:.1?}", started.elapsed());
        let authorizer = Authorizer::load(
            store.clone(),
            store.clone(),
            NamespaceCreation::Authenticated,
        )
        .await
        .expect("authorizer");

        let cases: Vec<(&str, Subject, Target<'_>, Action)> = vec![
            (
                "user allowed (namespace binding)",
                Subject::User {
                    name: "user3".into(),
                    groups: vec![],
                },
                Target::stream("ns3", "stream3"),
                Action::Pull,
            ),
            (
                "user denied",
                Subject::User {
                    name: "user3".into(),
                    groups: vec![],
                },
                Target::stream("ns400", "stream9"),
                Action::Delete,
            ),
            (
                "user in 20 groups",
                Subject::User {
                    name: "nobody".into(),
                    groups: (0..20).map(|g| format!("group{g}")).collect(),
                },
                Target::stream("ns7", "stream7"),
                Action::Push,
            ),
            (
                "service account",
                Subject::ServiceAccount {
                    namespace: "ns2".into(),
                    name: "robot".into(),
                },
                Target::stream("ns2", "stream2"),
                Action::Pull,
            ),
            (
                "anonymous denied",
                Subject::Anonymous,
                Target::stream("ns1", "stream1"),
                Action::Pull,
            ),
        ];
        println!("{BINDINGS} bindings, {DECISIONS} decisions per case, microseconds");
        println!("{:<34} {:>8} {:>8}", "case", "median", "p99");
        for (label, subject, target, action) in cases {
            let mut samples = Vec::with_capacity(DECISIONS);
            for _ in 0..DECISIONS {
                let started = Instant::now();
                black_box(authorizer.allows(black_box(&subject), action, target));
                samples.push(started.elapsed().as_nanos());
            }
            let median = percentile(&mut samples, 0.5);
            let p99 = percentile(&mut samples, 0.99);
            println!("{label:<34} {median:>8.3} {p99:>8.3}");
        }
        let mut samples = Vec::with_capacity(1000);
        let subject = Subject::User {
            name: "user3".into(),
            groups: vec!["group1".into()],
        };
        for _ in 0..1000 {
            let started = Instant::now();
            black_box(authorizer.visible_namespaces(&subject));
            samples.push(started.elapsed().as_nanos());
        }
        println!(
            "{:<34} {:>8.3} {:>8.3}",
            "visible namespaces (a list page)",
            percentile(&mut samples, 0.5),
            percentile(&mut samples, 0.99)
        );
    });
}
