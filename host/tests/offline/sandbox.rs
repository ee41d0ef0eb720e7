//! Hostile rules components against the sandbox: every misbehaviour ends in its own clear
//! error within the limits, and the host keeps working afterwards (the same `Rules` and the
//! default rules both render again).
//!
//! The components come from `tests/hostile/` (built here with cargo): `berth-hostile-rules`
//! misbehaves as the spec's `component_name` says, `berth-other-world` implements
//! `berth:rules@0.9.0`. Times and memory are printed, not asserted: run with
//! `cargo test -p berth --test offline sandbox:: -- --nocapture` to see them.

use berth_e2e::command::Watchdog;
use berth_e2e::components;

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use berth::{Limits, Rules, RulesError, RulesOptions, Source};
use berth::{Problem, Rendered};
use berth::{SiteConfig, Spec};

/// The tests run one at a time: the memory figures are the process's, and a deadline is
/// only meaningful without other tests competing for the two cores.
fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Compiled code shared by every test of this process: only the first load compiles.
fn options() -> RulesOptions {
    static CACHE: OnceLock<tempfile::TempDir> = OnceLock::new();
    let cache = CACHE.get_or_init(|| tempfile::tempdir().expect("temp dir"));
    RulesOptions {
        cache_dir: Some(cache.path().to_owned()),
        ..RulesOptions::default()
    }
}

fn hostile_path() -> PathBuf {
    components::component("berth-hostile-rules")
}

fn hostile(options: &RulesOptions) -> Rules {
    Rules::from_file(&hostile_path(), options).expect("the hostile component loads")
}

/// A spec whose name picks the misbehaviour; with a port, so Services are built too.
fn spec(name: &str) -> Spec {
    let text = format!("component_name: {name}\nimage: nginx:1.27\nports: ['80:30080']\n");
    berth::parse_spec(Path::new("spec.yaml"), &text).expect("valid spec")
}

/// Build with `rules` and check the objects as `berth render` does.
fn render(rules: &Rules, name: &str) -> Result<Rendered, String> {
    rules
        .render(
            &spec(name),
            &SiteConfig::default(),
            &berth::Capabilities::newest_known(),
            "team",
        )
        .map_err(|e| match e {
            berth::RenderError::Refused { refusal, .. } => refusal.to_string(),
            other => other.to_string(),
        })
}

/// The host is still usable: the same rules render a well-behaved spec, and so do the
/// default rules.
fn still_works(rules: &Rules) {
    let rendered = render(rules, "web").expect("the same rules work after the failure");
    assert_eq!(
        rendered.deployment.metadata.name.as_deref(),
        Some("dep-web")
    );
    let default = Rules::default_rules(&options()).expect("default rules load");
    render(&default, "web").expect("the default rules work after the failure");
}

/// A build that must fail in the runtime; returns the error and how long it took. A build
/// still running after 20 s (no deadline enforced) ends the test process rather than hang.
fn fails(rules: &Rules, name: &str) -> (RulesError, Duration) {
    let _bound = Watchdog::new(&format!("the build of {name:?}"), Duration::from_secs(20));
    let start = Instant::now();
    let result = rules.build(
        &spec(name),
        &SiteConfig::default(),
        &berth::Capabilities::newest_known(),
        "team",
    );
    let elapsed = start.elapsed();
    match result {
        Err(err) => (err, elapsed),
        Ok(outcome) => panic!("{name}: expected a runtime error, got {outcome:?}"),
    }
}

/// A build that succeeds in the runtime but whose objects the host refuses.
fn refused(rules: &Rules, name: &str) -> berth::InvalidObject {
    match rules.render(
        &spec(name),
        &SiteConfig::default(),
        &berth::Capabilities::newest_known(),
        "team",
    ) {
        Err(berth::RenderError::Invalid(invalid)) => invalid,
        other => panic!("{name}: expected the host to refuse the objects, got {other:?}"),
    }
}

/// A build stopped at its deadline: not before it, and not much after (the tests run one
/// at a time; a second is room for a loaded machine, and ten times late fails).
fn within(took: Duration, deadline: Duration) {
    assert!(
        took >= deadline && took < deadline + Duration::from_secs(1),
        "stopped after {took:?}, deadline {deadline:?}"
    );
}

fn is_source(source: &Source) -> bool {
    *source == Source::File(hostile_path())
}

#[test]
fn infinite_loop_is_stopped_at_the_deadline() {
    let _serial = serial();
    let rules = hostile(&options());
    render(&rules, "web").expect("warm instance");
    let (err, took) = fails(&rules, "loop");
    eprintln!("infinite loop: stopped after {took:?} (deadline 1s)");
    within(took, Duration::from_secs(1));
    assert!(
        matches!(&err, RulesError::Deadline { source_name, deadline }
            if is_source(source_name) && *deadline == Duration::from_secs(1)),
        "{err}"
    );
    assert!(
        err.to_string().ends_with(
            "berth_hostile_rules.wasm: build ran past its deadline of 1s and was stopped"
        ),
        "{err}"
    );
    still_works(&rules);
}

#[test]
fn the_deadline_is_configurable() {
    let _serial = serial();
    // Above the default of 1 s: the loop runs at least the 2 s configured (a lower bound,
    // whatever the machine's load) and the error names them.
    let options = RulesOptions {
        limits: Limits {
            deadline: Duration::from_secs(2),
            ..Limits::default()
        },
        ..options()
    };
    let rules = hostile(&options);
    let (err, took) = fails(&rules, "loop");
    eprintln!("infinite loop: stopped after {took:?} (deadline 2s)");
    within(took, Duration::from_secs(2));
    assert!(
        err.to_string()
            .ends_with("build ran past its deadline of 2s and was stopped"),
        "{err}"
    );
    still_works(&rules);
}

#[test]
fn sleeping_does_not_hold_the_host() {
    let _serial = serial();
    // Each `sleep(60s)` returns at once (time is stopped), so the loop meets the deadline
    // like any other; a real timer would hold the host thread where epochs cannot reach.
    let rules = hostile(&options());
    let (err, took) = fails(&rules, "sleep-loop");
    eprintln!("sleep loop: stopped after {took:?} (deadline 1s)");
    within(took, Duration::from_secs(1));
    assert!(matches!(err, RulesError::Deadline { .. }), "{err}");
    still_works(&rules);
}

#[test]
fn memory_bomb_is_stopped_at_the_cap() {
    let _serial = serial();
    let rules = hostile(&options());
    render(&rules, "web").expect("warm instance");
    let before = proc_status("VmRSS");
    reset_peak_rss();
    let (err, took) = fails(&rules, "bomb");
    let peak = proc_status("VmHWM");
    eprintln!(
        "memory bomb: stopped after {took:?}; host RSS {} before, peak {} during (cap 64 MiB)",
        kib(before),
        kib(peak)
    );
    let limit = 64 << 20;
    assert!(
        matches!(&err, RulesError::Memory { limit: l, source, .. }
            if *l == limit && source.limit == limit && source.wanted > limit),
        "{err}"
    );
    assert!(
        err.to_string()
            .ends_with("build needed more than the memory limit of 64 MiB and was stopped"),
        "{err}"
    );
    still_works(&rules);
}

#[test]
fn the_memory_cap_is_configurable() {
    let _serial = serial();
    // A build holding 24 MiB fits the default cap (64 MiB) and not a configured 16 MiB.
    render(&hostile(&options()), "hold-24mi").expect("fits the default cap");
    let options = RulesOptions {
        limits: Limits {
            memory: 16 << 20,
            ..Limits::default()
        },
        ..options()
    };
    let rules = hostile(&options);
    let (err, _) = fails(&rules, "hold-24mi");
    assert!(
        err.to_string()
            .ends_with("build needed more than the memory limit of 16 MiB and was stopped"),
        "{err}"
    );
    still_works(&rules);
}

#[test]
fn every_build_starts_from_a_fresh_instance() {
    let _serial = serial();
    let rules = hostile(&options());
    // The component counts its builds in a global: a reused instance would say 1, 2, 3.
    let counts: Vec<String> = (0..3)
        .map(|_| {
            let refusal = rules
                .build(
                    &spec("count"),
                    &SiteConfig::default(),
                    &berth::Capabilities::newest_known(),
                    "team",
                )
                .expect("runs")
                .expect_err("the component answers with its count");
            assert_eq!(refusal.field, "count");
            refusal.message
        })
        .collect();
    assert_eq!(counts, ["1", "1", "1"]);
}

#[test]
fn a_panic_is_a_clear_error() {
    let _serial = serial();
    let rules = hostile(&options());
    render(&rules, "web").expect("warm instance");
    let (err, _) = fails(&rules, "panic");
    let RulesError::Trap { stderr, .. } = &err else {
        panic!("expected a trap, got {err}");
    };
    assert!(
        stderr.contains("hostile rules panic on purpose"),
        "{stderr}"
    );
    let message = err.to_string();
    assert!(
        message.contains("build failed inside the component (wasm trap: wasm `unreachable` instruction executed): thread '<unnamed>' (1) panicked at tests/hostile/rules/src/lib.rs:"),
        "{message}"
    );
    assert!(!message.contains("RUST_BACKTRACE"), "{message}");
    assert!(
        message.contains("hostile rules panic on purpose"),
        "{message}"
    );
    still_works(&rules);
    // The stderr of one failure is not repeated in the next.
    let (again, _) = fails(&rules, "panic");
    let RulesError::Trap { stderr, .. } = &again else {
        panic!("expected a trap, got {again}");
    };
    assert_eq!(stderr.matches("panicked at").count(), 1, "{stderr}");
}

#[test]
fn exit_is_a_clear_error() {
    let _serial = serial();
    let rules = hostile(&options());
    let (err, _) = fails(&rules, "exit");
    // WASI 0.2 knows only success and failure: exit(3) arrives as 1.
    assert!(matches!(err, RulesError::Exit { code: 1, .. }), "{err}");
    assert!(
        err.to_string()
            .ends_with("build called exit(1) instead of returning"),
        "{err}"
    );
    still_works(&rules);
}

#[test]
fn huge_output_is_refused() {
    let _serial = serial();
    let rules = hostile(&options());
    let (err, _) = fails(&rules, "huge");
    assert!(
        matches!(err, RulesError::OutputTooLarge { size, limit, .. }
            if size > 8 << 20 && limit == 4 << 20),
        "{err}"
    );
    still_works(&rules);
}

#[test]
fn an_object_in_another_namespace_is_refused() {
    let _serial = serial();
    let rules = hostile(&options());
    let err = refused(&rules, "other-ns");
    assert!(is_source(&err.source_name));
    assert_eq!(err.object, "apps/v1 Deployment/dep-other-ns");
    assert_eq!(
        err.problem,
        Problem::Namespace {
            found: "kube-system".into(),
            target: "team".into()
        }
    );
    assert!(
        err.to_string().ends_with(
            "berth_hostile_rules.wasm: returned apps/v1 Deployment/dep-other-ns: namespace \"kube-system\" is not the target namespace \"team\""
        ),
        "{err}"
    );
    still_works(&rules);
}

#[test]
fn a_cluster_role_binding_is_refused() {
    let _serial = serial();
    let rules = hostile(&options());
    let err = refused(&rules, "crb");
    assert_eq!(
        err.object,
        "rbac.authorization.k8s.io/v1 ClusterRoleBinding/crb-admin"
    );
    assert!(
        matches!(&err.problem, Problem::ClusterScoped { kind } if kind.to_string() == "rbac.authorization.k8s.io/v1/ClusterRoleBinding"),
        "{}",
        err.problem
    );
    still_works(&rules);
}

#[test]
fn two_deployments_are_refused() {
    let _serial = serial();
    let rules = hostile(&options());
    let err = refused(&rules, "two-deps");
    assert_eq!(err.object, "output");
    assert_eq!(err.problem, Problem::DeploymentCount(2));
    still_works(&rules);
}

#[test]
fn invalid_names_a_foreign_selector_and_unknown_fields_are_refused() {
    let _serial = serial();
    let rules = hostile(&options());
    let err = refused(&rules, "bad-name");
    assert_eq!(err.object, "apps/v1 Deployment/Dep_Bad");
    assert!(matches!(err.problem, Problem::InvalidName { .. }), "{err}");
    let err = refused(&rules, "bad-service-name");
    assert_eq!(err.object, "v1 Service/9svc");
    assert!(matches!(err.problem, Problem::InvalidName { .. }), "{err}");
    let err = refused(&rules, "selector");
    assert_eq!(
        err.problem,
        Problem::Selector(
            "requires app=someone-else, which the pod template labels do not have".into()
        )
    );
    let err = refused(&rules, "unknown-field");
    assert_eq!(
        err.problem,
        Problem::UnknownField {
            kind: "Deployment",
            path: "spec.template.spec.containers[0].privileged".into()
        }
    );
    still_works(&rules);
}

#[test]
fn the_sandbox_gives_no_capabilities() {
    let _serial = serial();
    let report = |rules: &Rules| -> serde_json::Value {
        let refusal = rules
            .build(
                &spec("sandbox"),
                &SiteConfig::default(),
                &berth::Capabilities::newest_known(),
                "team",
            )
            .expect("runs")
            .expect_err("the report comes back as a refusal");
        assert_eq!(refusal.field, "sandbox");
        serde_json::from_str(&refusal.message).expect("a JSON report")
    };
    let rules = hostile(&options());
    let seen = report(&rules);
    eprintln!("what a rules component sees: {seen:#}");
    assert_eq!(seen["wall_clock_ns"], "0", "the wall clock is stopped");
    assert_eq!(seen["slept_ns"], "0", "sleep(1h) took no time");
    assert_eq!(seen["env"], serde_json::json!([]));
    assert_eq!(seen["args"], serde_json::json!([]));
    assert_eq!(seen["stdin"], "0", "stdin is empty");
    // wasi-libc's own idea of a working directory, with no host directory behind it.
    assert_eq!(seen["cwd"], "ok: /");
    for denied in [
        "read_root",
        "read_passwd",
        "write_tmp",
        "tcp_connect",
        "udp_bind",
        "resolve",
    ] {
        let outcome = seen[denied].as_str().unwrap_or_default();
        assert!(outcome.starts_with("err: "), "{denied}: {outcome}");
    }
    // Randomness is a fixed sequence: a fresh instance sees exactly the same.
    let mut fresh = hostile(&options());
    assert_eq!(report(&mut fresh), seen);
    assert!(!Path::new("/tmp/berth-hostile").exists());
    still_works(&rules);
}

#[test]
fn a_component_for_another_version_is_refused_at_load() {
    let _serial = serial();
    let path = components::component("berth-other-world");
    let err = Rules::from_file(&path, &options()).expect_err("refused at load");
    assert!(
        matches!(&err, RulesError::OtherVersion { found, .. } if found == "0.9.0"),
        "{err}"
    );
    assert!(
        err.to_string().ends_with(
            "berth_other_world.wasm: built for berth:rules@0.9.0; this berth supports berth:rules/rules@0.1.0, berth:rules/rules@0.2.0"
        ),
        "{err}"
    );
    let default = Rules::default_rules(&options()).expect("default rules load");
    render(&default, "web").expect("the default rules still work");
}

#[test]
fn a_component_without_build_is_refused_at_load() {
    let _serial = serial();
    let source = Source::File("empty.wasm".into());
    // The smallest component: magic, component-model version 0xd, layer 1; no exports.
    let err = Rules::from_bytes(source.clone(), b"\0asm\x0d\0\x01\0", &options())
        .expect_err("refused at load");
    assert_eq!(
        err.to_string(),
        "rules component empty.wasm: does not export the function `build` (its exports: none); this berth supports berth:rules/rules@0.1.0, berth:rules/rules@0.2.0"
    );
    // A core module, not a component.
    let err = Rules::from_bytes(source, b"\0asm\x01\0\0\0", &options()).expect_err("refused");
    assert!(matches!(err, RulesError::Compile { .. }), "{err}");
    assert_eq!(
        err.to_string(),
        "rules component empty.wasm: not a valid wasm component"
    );
}

/// A field of /proc/self/status, in KiB.
fn proc_status(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|rest| rest.trim().trim_end_matches(" kB").parse().ok())
        .unwrap_or(0)
}

/// Start VmHWM afresh from the current RSS (Linux ≥ 4.0), so it shows the bomb's peak
/// rather than compilation's.
fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

fn kib(n: u64) -> String {
    format!("{:.1} MiB", n as f64 / 1024.0)
}

#[test]
fn a_0_2_component_starts_from_the_defaults_import() {
    let _serial = serial();
    let path = components::component("berth-defaults-caller");
    let rules = Rules::from_file(&path, &options()).expect("a 0.2.0 component loads");
    assert_eq!(rules.contract_version(), "0.2.0");
    let default = Rules::default_rules(&options()).expect("default rules load");
    let via = render(&rules, "web").expect("renders through the import");
    let plain = render(&default, "web").expect("renders");
    // The default rules' objects, plus what the caller added.
    let mut labels = via.deployment.metadata.labels.clone().unwrap_or_default();
    assert_eq!(labels.remove("via").as_deref(), Some("defaults"));
    // What the `cluster` import answered: the capabilities of the call (the newest known).
    assert_eq!(labels.remove("kube").as_deref(), Some("1.33"));
    assert_eq!(labels.remove("pdb-api").as_deref(), Some("v1"));
    assert_eq!(Some(labels), plain.deployment.metadata.labels);
    assert_eq!(via.deployment.spec, plain.deployment.spec);
    assert_eq!(via.services.len(), plain.services.len());

    // Another cluster, on the same instance: the import answers for it.
    let old = berth::Capabilities {
        kube_version: "1.20".into(),
        api_versions: vec!["apps/v1".into(), "policy/v1beta1".into(), "v1".into()],
    };
    let objects = rules
        .render(&spec("web"), &SiteConfig::default(), &old, "team")
        .expect("renders");
    let labels = objects.deployment.metadata.labels.unwrap_or_default();
    assert_eq!(
        (labels["kube"].as_str(), labels["pdb-api"].as_str()),
        ("1.20", "v1beta1")
    );

    // A refusal of the nested default rules is the caller's, naming the field.
    let mut bad = spec("web");
    bad.ports = vec!["80:".into()];
    let caps = berth::Capabilities::newest_known();
    let refusal = rules
        .build(&bad, &SiteConfig::default(), &caps, "team")
        .expect("runs")
        .expect_err("refused");
    assert_eq!(refusal.field, "ports[0]");
    // Extensions are the caller's to validate: through the import the default rules leave
    // them alone, while at the top level they refuse them by name.
    let mut extended = spec("web");
    extended
        .extensions
        .insert("acme".into(), serde_json::json!({"min_available": 1}));
    let site = SiteConfig::default();
    rules
        .build(&extended, &site, &caps, "team")
        .expect("runs")
        .expect("the caller accepts its own extensions");
    let refusal = default
        .build(&extended, &site, &caps, "team")
        .expect("runs")
        .expect_err("the default rules refuse a key they do not use");
    assert_eq!(
        refusal.to_string(),
        "extensions.acme: not used by the default rules"
    );

    // The limits hold after a nested call, and the component works again afterwards.
    let (err, took) = fails(&rules, "defaults-loop");
    eprintln!("loop after a nested build: stopped after {took:?} (deadline 1s)");
    within(took, Duration::from_secs(1));
    assert!(matches!(err, RulesError::Deadline { .. }), "{err}");
    let (err, _) = fails(&rules, "defaults-bomb");
    assert!(matches!(err, RulesError::Memory { .. }), "{err}");
    render(&rules, "web").expect("works again after the failures");
}
