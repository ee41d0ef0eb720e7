//! The rules runtime as a library: the compiled-code cache and the reused instance.

use berth::{Rules, RulesOptions, Source};

fn spec_and_site() -> (berth::Spec, berth::SiteConfig) {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples");
    (
        berth::load_spec(&root.join("full.yaml")).expect("full example"),
        berth::load_site(&root.join("site.yaml")).expect("site example"),
    )
}

#[test]
fn second_load_comes_from_the_cache_and_builds_the_same() {
    let dir = tempfile::tempdir().expect("temp dir");
    let options = RulesOptions {
        cache_dir: Some(dir.path().to_owned()),
        ..RulesOptions::default()
    };
    let (spec, site) = spec_and_site();

    let first = Rules::default_rules(&options).expect("compile");
    assert!(
        !first.from_cache(),
        "an empty cache cannot hold the component"
    );
    let cached: Vec<_> = std::fs::read_dir(dir.path()).expect("cache dir").collect();
    assert_eq!(cached.len(), 1, "one compiled component stored");

    let second = Rules::default_rules(&options).expect("load");
    assert!(second.from_cache());
    let a = first
        .build(&spec, &site, &berth::Capabilities::newest_known(), "ns")
        .expect("run")
        .expect("objects");
    let b = second
        .build(&spec, &site, &berth::Capabilities::newest_known(), "ns")
        .expect("run")
        .expect("objects");
    assert_eq!(
        a.iter().map(|o| &o.json).collect::<Vec<_>>(),
        b.iter().map(|o| &o.json).collect::<Vec<_>>()
    );
}

#[test]
fn a_corrupt_cache_entry_is_recompiled() {
    let dir = tempfile::tempdir().expect("temp dir");
    let options = RulesOptions {
        cache_dir: Some(dir.path().to_owned()),
        ..RulesOptions::default()
    };
    drop(Rules::default_rules(&options).expect("compile"));
    for entry in std::fs::read_dir(dir.path()).expect("cache dir") {
        std::fs::write(entry.expect("entry").path(), b"garbage").expect("corrupt");
    }
    let rules = Rules::default_rules(&options).expect("recompile");
    assert!(!rules.from_cache());
    let (spec, site) = spec_and_site();
    assert_eq!(
        rules
            .build(&spec, &site, &berth::Capabilities::newest_known(), "ns")
            .expect("run")
            .expect("objects")
            .len(),
        3
    );
}

#[test]
fn one_instance_serves_many_calls_and_refusals() {
    let options = RulesOptions {
        cache_dir: None,
        ..RulesOptions::default()
    };
    let rules = Rules::default_rules(&options).expect("compile");
    assert_eq!(rules.source(), &Source::Default);
    let (mut spec, site) = spec_and_site();
    for _ in 0..3 {
        assert_eq!(
            rules
                .build(&spec, &site, &berth::Capabilities::newest_known(), "ns")
                .expect("run")
                .expect("objects")
                .len(),
            3
        );
    }
    spec.ports.push("bad".into());
    let refusal = rules
        .build(&spec, &site, &berth::Capabilities::newest_known(), "ns")
        .expect("run")
        .expect_err("refused");
    assert_eq!(refusal.field, "ports[3]");
    spec.ports.pop();
    assert_eq!(
        rules
            .build(&spec, &site, &berth::Capabilities::newest_known(), "ns")
            .expect("run")
            .expect("objects")
            .len(),
        3
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_loaded_component_renders_for_eight_tasks_at_once() {
    // No Mutex around it: `Rules` is shared by reference, every build on its own instance.
    let rules = std::sync::Arc::new(Rules::default_rules(&RulesOptions::default()).expect("load"));
    let (spec, site) = spec_and_site();
    let caps = berth::Capabilities::newest_known();
    let spec_of = |i: usize| {
        let mut spec = spec.clone();
        spec.component_name = format!("web-{i}");
        spec
    };
    // Each task's render, alone and in order, as the reference.
    let alone: Vec<String> = (0..8)
        .map(|i| {
            let rendered = rules
                .render(&spec_of(i), &site, &caps, "shop")
                .expect("renders");
            shown(rendered)
        })
        .collect();
    let start = std::sync::Arc::new(tokio::sync::Barrier::new(8));
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let (rules, site, caps, start) =
                (rules.clone(), site.clone(), caps.clone(), start.clone());
            let spec = spec_of(i);
            tokio::spawn(async move {
                start.wait().await;
                let mut shown = Vec::new();
                for _ in 0..20 {
                    let rendered = rules.render(&spec, &site, &caps, "shop").expect("renders");
                    shown.push(self::shown(rendered));
                }
                shown
            })
        })
        .collect();
    for (i, task) in tasks.into_iter().enumerate() {
        let shown = task.await.expect("task");
        assert_eq!(shown.len(), 20);
        for one in shown {
            assert_eq!(
                one, alone[i],
                "task {i}: byte-identical to its render alone"
            );
        }
    }
}

fn shown(rendered: berth::Rendered) -> String {
    berth::format_rendered(&[rendered], berth::Format::Yaml, berth::Secrets::Show).expect("YAML")
}
