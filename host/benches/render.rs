//! Render benchmarks: the default rules natively vs through the wasm component (a fresh
//! instance per build, against a reused one), instance costs, N components.
//!
//! Run with `just bench` (or `cargo bench -p berth --bench render`). Every figure of one run is
//! measured side by side in one process; the summary printed at the end gives the ratios of
//! that run. BENCHMARKS.md explains each figure. `BERTH_BENCH_RULES=A.wasm:B.wasm` (absolute
//! paths) adds those components (a site's rules, or the default rules built differently)
//! beside the default one.

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use berth::Rendered;
use berth::{AllowedKinds, Capabilities, SiteConfig, Spec};
use berth::{Format, Secrets};
use berth::{Rules, RulesOptions, Source, hooks::DEFAULT_RULES};
use berth_rules::types as native;

use berth_e2e::guest_records;
use criterion::{BenchmarkId, Criterion, Throughput};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Service;
use wasmtime::component::{Component, Linker};
use wasmtime::{Config, Engine, Store, StoreLimits, StoreLimitsBuilder};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{Deterministic, ResourceTable, WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

const NAMESPACE: &str = "default";
/// Component counts of the scaling benchmark.
const COUNTS: [usize; 4] = [1, 10, 100, 1000];

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples")
}

fn read(name: &str) -> String {
    std::fs::read_to_string(examples().join(name)).expect("example file")
}

/// The full example and the example site config, as the host reads them.
fn inputs() -> (Spec, SiteConfig) {
    let dir = examples();
    (
        berth::load_spec(&dir.join("full.yaml")).expect("full example"),
        berth::load_site(&dir.join("site.yaml")).expect("site example"),
    )
}

/// `count` distinct specs: the full example under names `inventory-0` …, as documents of
/// one file.
fn many(spec: &Spec, count: usize) -> Vec<(berth::Origin, Spec)> {
    (0..count)
        .map(|i| {
            let origin = berth::Origin {
                path: "many.yaml".into(),
                document: Some(i + 1),
            };
            let mut spec = spec.clone();
            spec.component_name = format!("{}-{i}", spec.component_name);
            (origin, spec)
        })
        .collect()
}

/// A cache directory holding the compiled default rules, and options using it.
fn warm_cache() -> (tempfile::TempDir, RulesOptions) {
    let dir = tempfile::tempdir().expect("temp dir");
    let options = RulesOptions {
        cache_dir: Some(dir.path().to_owned()),
        ..RulesOptions::default()
    };
    drop(Rules::default_rules(&options).expect("compile the default rules"));
    let again = Rules::default_rules(&options).expect("load the default rules");
    assert!(again.from_cache(), "the cache must be warm");
    (dir, options)
}

fn wasm_build(rules: &Rules, spec: &Spec, site: &SiteConfig) -> usize {
    rules
        .build(spec, site, &Capabilities::newest_known(), NAMESPACE)
        .expect("run")
        .expect("objects")
        .len()
}

fn wasm_render(rules: &Rules, spec: &Spec, site: &SiteConfig) -> Rendered {
    rules
        .render_from(
            &berth::Origin::file(Path::new("full.yaml")),
            spec,
            site,
            &Capabilities::newest_known(),
            NAMESPACE,
        )
        .expect("render")
}

fn native_build(spec: &native::Spec, site: &native::SiteConfig) -> usize {
    berth_rules::build(&berth_rules::DefaultRules, spec, site, NAMESPACE)
        .expect("objects")
        .len()
}

/// The full example: the same rules natively, through wasm (a fresh instance per build, as
/// berth runs them; a reused raw instance beside it), and through wasm plus the host's
/// checks of what came back (what `berth render` does per component).
fn full_example(c: &mut Criterion, raw: &RawRules, raw_no_epoch: &RawRules) {
    let (spec, site) = inputs();
    let (native_spec, native_site) = (guest_records::spec(&spec), guest_records::site(&site));
    let (_cache, options) = warm_cache();
    let rules = Rules::default_rules(&options).expect("rules");

    // The comparison is only meaningful if both produce the same objects.
    let from_wasm = rules
        .build(&spec, &site, &Capabilities::newest_known(), NAMESPACE)
        .expect("run")
        .expect("objects");
    let from_native = berth_rules::build(
        &berth_rules::DefaultRules,
        &native_spec,
        &native_site,
        NAMESPACE,
    )
    .expect("objects");
    assert_eq!(
        from_wasm.iter().map(|o| &o.json).collect::<Vec<_>>(),
        from_native.iter().map(|o| &o.json).collect::<Vec<_>>(),
        "native and wasm rules disagree"
    );

    let mut group = c.benchmark_group("full");
    group.bench_function("native_build", |b| {
        b.iter(|| native_build(black_box(&native_spec), black_box(&native_site)))
    });
    group.bench_function("wasm_build", |b| {
        b.iter(|| wasm_build(&rules, black_box(&spec), black_box(&site)))
    });
    group.bench_function("wasm_render", |b| {
        b.iter(|| wasm_render(&rules, black_box(&spec), black_box(&site)))
    });
    // The same call without berth's runtime around it: a reused raw instance, with and
    // without epoch interruption (the deadline's cost inside the guest's loops).
    let (raw_spec, raw_site) = (raw::spec(&spec), raw::site(&site));
    for (id, raw) in [("raw_build", raw), ("raw_build_no_epoch", raw_no_epoch)] {
        let (mut store, instance) = raw.instance();
        group.bench_function(id, |b| {
            b.iter(|| {
                raw.build(
                    &mut store,
                    &instance,
                    black_box(&raw_spec),
                    black_box(&raw_site),
                )
            })
        });
    }
    for path in alternative_rules() {
        let alt = Rules::from_file(&path, &options).expect("BERTH_BENCH_RULES");
        let id = BenchmarkId::new("wasm_build_alt", stem(&path));
        group.bench_function(id, |b| {
            b.iter(|| wasm_build(&alt, black_box(&spec), black_box(&site)))
        });
    }
    group.finish();
}

/// The components named by `BERTH_BENCH_RULES`, a `:`-separated list of `.wasm` files.
fn alternative_rules() -> Vec<PathBuf> {
    std::env::var_os("BERTH_BENCH_RULES")
        .map(|list| std::env::split_paths(&list).collect())
        .unwrap_or_default()
}

fn stem(path: &Path) -> String {
    path.file_stem()
        .map_or_else(|| "alt".into(), |s| s.to_string_lossy().into_owned())
}

/// The parts of a `berth render` process around the build: reading the inputs, printing.
fn process_parts(c: &mut Criterion) {
    let (spec_text, site_text) = (read("full.yaml"), read("site.yaml"));
    let (spec, site) = inputs();
    let (_cache, options) = warm_cache();
    let rules = Rules::default_rules(&options).expect("rules");
    let rendered = [wasm_render(&rules, &spec, &site)];

    let mut group = c.benchmark_group("process");
    group.bench_function("parse_inputs", |b| {
        b.iter(|| {
            (
                berth::parse_spec(Path::new("full.yaml"), black_box(&spec_text)).expect("spec"),
                berth::parse_site(Path::new("site.yaml"), black_box(&site_text)).expect("site"),
            )
        })
    });
    group.bench_function("format_yaml", |b| {
        b.iter(|| {
            berth::format_rendered(black_box(&rendered), Format::Yaml, Secrets::Mask).expect("yaml")
        })
    });
    group.bench_function("format_json", |b| {
        b.iter(|| {
            berth::format_rendered(black_box(&rendered), Format::Json, Secrets::Mask).expect("json")
        })
    });
    group.finish();
}

/// The host's checks of what the rules returned (`Rendered::from_objects`: parse into the
/// Kubernetes types, refuse unknown fields, names, labels, selector), against parsing alone.
fn host_checks(c: &mut Criterion) {
    let (spec, site) = inputs();
    let (_cache, options) = warm_cache();
    let rules = Rules::default_rules(&options).expect("rules");
    let objects = rules
        .build(&spec, &site, &Capabilities::newest_known(), NAMESPACE)
        .expect("run")
        .expect("objects");

    let mut group = c.benchmark_group("check");
    group.bench_function("from_objects", |b| {
        b.iter(|| {
            Rendered::from_objects(
                &Source::Default,
                "",
                &spec.component_name,
                black_box(objects.clone()),
                NAMESPACE,
                &AllowedKinds::new(),
            )
            .expect("valid objects")
        })
    });
    // The floor of any check: one typed parse per object, straight from the JSON text.
    group.bench_function("typed_parse", |b| {
        b.iter(|| {
            let mut services = Vec::new();
            let mut deployment = None;
            for object in black_box(&objects) {
                if object.kind == "Deployment" {
                    deployment =
                        Some(serde_json::from_str::<Deployment>(&object.json).expect("Deployment"));
                } else {
                    services.push(serde_json::from_str::<Service>(&object.json).expect("Service"));
                }
            }
            (deployment, services)
        })
    });
    group.finish();
}

/// What a fresh instance costs, against the warm call: per-process loading, then each part
/// of a build on a fresh instance (store with its WASI context, instantiation, the first
/// call), with wasmtime's on-demand allocator and with berth's pooling one.
fn instance(c: &mut Criterion, raw: &RawRules, pooled: &[(&str, RawRules)]) {
    let (spec, site) = inputs();
    let (_cache, options) = warm_cache();

    let mut group = c.benchmark_group("instance");
    // Per process: engine (already up), cache lookup (SHA-256 of the component), deserialize,
    // linker with WASI, type-check of the imports. No instance yet.
    group.bench_function("load_cached", |b| {
        b.iter(|| {
            Rules::from_bytes(Source::Default, black_box(DEFAULT_RULES), &options).expect("load")
        })
    });
    // A fresh `Rules` per call: load_cached + the first build.
    group.bench_function("load_cached_and_build", |b| {
        b.iter(|| {
            let rules = Rules::from_bytes(Source::Default, DEFAULT_RULES, &options).expect("load");
            wasm_build(&rules, black_box(&spec), black_box(&site))
        })
    });
    // The same for the components of `BERTH_BENCH_RULES` (a Python one: tens of MB).
    for path in alternative_rules() {
        let bytes = std::fs::read(&path).expect("BERTH_BENCH_RULES");
        Rules::from_bytes(Source::File(path.clone()), &bytes, &options).expect("compile");
        let id = BenchmarkId::new("load_cached_alt", stem(&path));
        group.bench_function(id, |b| {
            b.iter(|| {
                Rules::from_bytes(Source::File(path.clone()), black_box(&bytes), &options)
                    .expect("load")
            })
        });
    }
    let (raw_spec, raw_site) = (raw::spec(&spec), raw::site(&site));
    let allocators = std::iter::once(("on_demand", raw)).chain(pooled.iter().map(|(n, r)| (*n, r)));
    for (allocator, raw) in allocators {
        // The store alone: WASI context (stderr pipe, clocks, random), limits, deadline.
        group.bench_function(BenchmarkId::new("store", allocator), |b| {
            b.iter(|| raw.store())
        });
        // Store + instantiate from a ready `InstancePre`.
        group.bench_function(BenchmarkId::new("instantiate", allocator), |b| {
            b.iter(|| raw.instance())
        });
        // Store + instantiate + the build: a fresh instance for every call.
        group.bench_function(BenchmarkId::new("fresh_instance_build", allocator), |b| {
            b.iter(|| {
                let (mut store, instance) = raw.instance();
                raw.build(
                    &mut store,
                    &instance,
                    black_box(&raw_spec),
                    black_box(&raw_site),
                )
            })
        });
    }
    group.finish();
}

/// N distinct components in one process: linear if the per-element time stays flat.
fn components(c: &mut Criterion) {
    let (spec, site) = inputs();
    let native_site = guest_records::site(&site);
    let (_cache, options) = warm_cache();
    let rules = Rules::default_rules(&options).expect("rules");

    let mut group = c.benchmark_group("components");
    group
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4));
    for count in COUNTS {
        let specs = many(&spec, count);
        let native_specs: Vec<_> = specs.iter().map(|(_, s)| guest_records::spec(s)).collect();
        group.throughput(Throughput::Elements(count as u64));
        group.bench_with_input(
            BenchmarkId::new("native_build", count),
            &native_specs,
            |b, specs| {
                b.iter(|| {
                    specs
                        .iter()
                        .map(|s| native_build(s, &native_site))
                        .sum::<usize>()
                })
            },
        );
        group.bench_with_input(
            BenchmarkId::new("wasm_render", count),
            &specs,
            |b, specs| {
                // What `berth render --spec many.yaml` does between reading and printing.
                b.iter(|| {
                    rules
                        .render_all(specs, &site, &Capabilities::newest_known(), NAMESPACE)
                        .expect("render")
                })
            },
        );
    }
    group.finish();
}

/// Bindings of the same world, sharing berth's record types, to run the component without
/// berth's runtime around it: instance strategies and engine settings berth does not expose.
mod raw {
    wasmtime::component::bindgen!({
        path: "../wit/berth-rules@0.2.0",
        world: "default-rules",
    });
    pub use self::berth::rules::types as wit;
    pub use records::{site, spec};

    mod records {
        use super::wit;
        use ::berth as spec;
        include!("../src/runtime/bindings/records_v0_2.in.rs");
    }
}

/// The default rules, compiled by an engine of their own, ready to instantiate into a store
/// like the runtime's sandbox (WASI without capabilities, memory limit, captured stderr).
struct RawRules {
    pre: raw::DefaultRulesPre<Bare>,
}

struct Bare {
    wasi: WasiCtx,
    table: ResourceTable,
    limits: StoreLimits,
}

impl WasiView for Bare {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// The `cluster` import, answered as an offline render would (the default rules never ask).
impl raw::berth::rules::cluster::Host for Bare {
    fn kube_version(&mut self) -> String {
        ::berth::hooks::NEWEST_KNOWN_VERSION.to_owned()
    }

    fn serves(&mut self, api_version: String) -> bool {
        Capabilities::newest_known().serves(&api_version)
    }
}

impl RawRules {
    /// Compile with berth's engine settings (epoch interruption on or off; berth's pooling
    /// allocator or wasmtime's default, on-demand one).
    /// `pooling`: berth's pool, keeping that much memory resident (`None`: berth's amount).
    fn new(epoch: bool, pooling: Option<Option<usize>>) -> Self {
        let mut config = Config::new();
        config.wasm_component_model(true).epoch_interruption(epoch);
        if let Some(keep_resident) = pooling {
            config.allocation_strategy(berth::hooks::instance_allocation(keep_resident));
        }
        let engine = Engine::new(&config).expect("engine");
        let component = Component::new(&engine, DEFAULT_RULES).expect("compile");
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker).expect("wasi");
        raw::berth::rules::cluster::add_to_linker::<Bare, wasmtime::component::HasSelf<Bare>>(
            &mut linker,
            |bare| bare,
        )
        .expect("cluster");
        let pre = linker.instantiate_pre(&component).expect("pre");
        Self {
            pre: raw::DefaultRulesPre::new(pre).expect("the rules world"),
        }
    }

    fn instance(&self) -> (Store<Bare>, raw::DefaultRules) {
        let mut store = self.store();
        let instance = self.pre.instantiate(&mut store).expect("instantiate");
        (store, instance)
    }

    /// A store like the runtime's sandbox: WASI context, limits, deadline.
    fn store(&self) -> Store<Bare> {
        let wasi = WasiCtxBuilder::new()
            .stderr(MemoryOutputPipe::new(64 << 10))
            .secure_random(Deterministic::new(vec![0x5a]))
            .insecure_random(Deterministic::new(vec![0xa5]))
            .insecure_random_seed(0)
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .build();
        let limits = StoreLimitsBuilder::new()
            .memory_size(64 << 20)
            .instances(16)
            .tables(16)
            .memories(4)
            .trap_on_grow_failure(true)
            .build();
        let mut store = Store::new(
            self.pre.engine(),
            Bare {
                wasi,
                table: ResourceTable::new(),
                limits,
            },
        );
        store.limiter(|bare| &mut bare.limits);
        // Never reached: no epoch ticks in these engines.
        store.set_epoch_deadline(u64::MAX);
        store
    }

    fn build(
        &self,
        store: &mut Store<Bare>,
        instance: &raw::DefaultRules,
        spec: &raw::wit::Spec,
        site: &raw::wit::SiteConfig,
    ) -> usize {
        instance
            .call_build(store, spec, site, NAMESPACE)
            .expect("run")
            .expect("objects")
            .len()
    }
}

/// Time of one benchmark of this run, in nanoseconds, from criterion's estimates: the slope
/// where criterion fitted one (the figure it prints), the mean otherwise.
fn estimate_ns(id: &str, since: SystemTime) -> Option<f64> {
    criterion_dirs().into_iter().find_map(|root| {
        let path = root.join(id).join("new/estimates.json");
        let modified = std::fs::metadata(&path).and_then(|m| m.modified()).ok()?;
        if modified < since {
            return None; // from an earlier run, or filtered out of this one
        }
        let text = std::fs::read_to_string(path).ok()?;
        let value: serde_json::Value = serde_json::from_str(&text).ok()?;
        value["slope"]["point_estimate"]
            .as_f64()
            .or_else(|| value["mean"]["point_estimate"].as_f64())
    })
}

/// Where criterion may have written: `$CRITERION_HOME`, the cargo target directory (under
/// `cargo bench`), or `target/` of the working directory (the bench binary run by hand).
fn criterion_dirs() -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::env::var_os("CRITERION_HOME")
        .map(PathBuf::from)
        .into_iter()
        .collect();
    if let Some(target) = std::env::var_os("CARGO_TARGET_DIR") {
        dirs.push(Path::new(&target).join("criterion"));
    }
    dirs.push(Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/criterion"));
    dirs.push(PathBuf::from("target/criterion"));
    dirs
}

/// Native and wasm builds of the full example timed in alternation, round after round, so
/// that all see the same machine: per wasm component (the default rules, then those of
/// `BERTH_BENCH_RULES`), the median and range of its per-round ratio to native. Criterion
/// times one benchmark after the other, and on a shared VM the speed drifts between them.
fn interleaved_ratios() -> Vec<(String, [f64; 3])> {
    const ROUNDS: usize = 31;
    const CALLS: u32 = 2000;
    let (spec, site) = inputs();
    let (native_spec, native_site) = (guest_records::spec(&spec), guest_records::site(&site));
    let (_cache, options) = warm_cache();
    let mut contenders = vec![(
        "default rules".to_owned(),
        Rules::default_rules(&options).expect("rules"),
    )];
    for path in alternative_rules() {
        let rules = Rules::from_file(&path, &options).expect("BERTH_BENCH_RULES");
        contenders.push((format!("{}.wasm", stem(&path)), rules));
    }
    let native = || {
        let start = Instant::now();
        for _ in 0..CALLS {
            black_box(native_build(
                black_box(&native_spec),
                black_box(&native_site),
            ));
        }
        start.elapsed().as_secs_f64()
    };
    let wasm = |rules: &Rules| {
        let start = Instant::now();
        for _ in 0..CALLS {
            black_box(wasm_build(rules, black_box(&spec), black_box(&site)));
        }
        start.elapsed().as_secs_f64()
    };
    let mut ratios = vec![Vec::new(); contenders.len()];
    for round in 0..=ROUNDS {
        // Native first in even rounds, last in odd ones; the first round only warms up.
        let native_first = round % 2 == 0;
        let first = if native_first { native() } else { 0.0 };
        // The components in turn, starting with another one each round.
        let count = contenders.len();
        let mut times = vec![0.0; count];
        for k in 0..count {
            let i = (k + round) % count;
            times[i] = wasm(&mut contenders[i].1);
        }
        let native_time = if native_first { first } else { native() };
        if round > 0 {
            for (list, time) in ratios.iter_mut().zip(times) {
                list.push(time / native_time);
            }
        }
    }
    contenders
        .into_iter()
        .zip(ratios)
        .map(|((name, _), mut list)| {
            list.sort_by(f64::total_cmp);
            (name, [list[ROUNDS / 2], list[0], list[ROUNDS - 1]])
        })
        .collect()
}

/// The figures of this run against issue 6's targets.
fn summary(since: SystemTime) {
    let get = |id: &str| estimate_ns(id, since);
    let us = |ns: f64| format!("{:.2} µs", ns / 1e3);
    println!("\n== summary of this run ==");
    if let (Some(native), Some(build), Some(render)) = (
        get("full/native_build"),
        get("full/wasm_build"),
        get("full/wasm_render"),
    ) {
        println!("full example, native build:          {}", us(native));
        println!(
            "full example, wasm build (fresh instance, what berth does): {}  = {:.2}x native",
            us(build),
            build / native
        );
        if let Some(reused) = get("full/raw_build") {
            println!(
                "  = {:.2}x the same build on a reused instance ({})  (target <= 1.25x)",
                build / reused,
                us(reused)
            );
        }
        println!(
            "full example, wasm render (checked): {}  = {:.2}x native",
            us(render),
            render / native
        );
        println!(
            "wasm / native build of the full example, timed in alternation (31 rounds of 2000 calls):"
        );
        for (name, [median, low, high]) in interleaved_ratios() {
            println!("  {name:<24} median {median:.2}x (range {low:.2}x - {high:.2}x)");
        }
        for (id, what) in [
            ("full/raw_build", "raw instance, epoch on: "),
            ("full/raw_build_no_epoch", "raw instance, epoch off:"),
        ] {
            if let Some(ns) = get(id) {
                println!(
                    "full example, {what}  {}  = {:.2}x native",
                    us(ns),
                    ns / native
                );
            }
        }
        for path in alternative_rules() {
            if let Some(ns) = get(&format!("full/wasm_build_alt/{}", stem(&path))) {
                println!(
                    "full example, {:<24} {}  = {:.2}x native",
                    format!("{}.wasm build:", stem(&path)),
                    us(ns),
                    ns / native
                );
            }
        }
    }
    for (id, what) in [
        ("check/from_objects", "host checks of the objects:       "),
        ("check/typed_parse", "typed parse alone (floor):        "),
        ("process/parse_inputs", "parse spec + site (YAML):         "),
        ("process/format_yaml", "print the objects as YAML:        "),
        ("instance/load_cached", "load from warm cache:             "),
        (
            "instance/load_cached_and_build",
            "load + instantiate + first build: ",
        ),
    ] {
        if let Some(ns) = get(id) {
            println!("{what}   {}", us(ns));
        }
    }
    for allocator in [
        "on_demand",
        "pooling",
        "pooling_resident_0",
        "pooling_resident_8mi",
    ] {
        let at = |what: &str| get(&format!("instance/{what}/{allocator}"));
        if let (Some(store), Some(instantiate), Some(fresh)) =
            (at("store"), at("instantiate"), at("fresh_instance_build"))
        {
            println!(
                "fresh instance ({allocator}): {} = store {} + instantiate {} + build {}",
                us(fresh),
                us(store),
                us(instantiate - store),
                us(fresh - instantiate)
            );
        }
    }
    for count in COUNTS {
        if let (Some(native), Some(wasm)) = (
            get(&format!("components/native_build/{count}")),
            get(&format!("components/wasm_render/{count}")),
        ) {
            let n = count as f64;
            println!(
                "{count:>5} components: native {:>10}/component, wasm render {:>10}/component ({:.2}x)",
                us(native / n),
                us(wasm / n),
                wasm / native
            );
        }
    }
}

fn main() {
    let since = SystemTime::now();
    let mut c = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .configure_from_args();
    let raw = RawRules::new(true, None);
    let raw_no_epoch = RawRules::new(false, None);
    full_example(&mut c, &raw, &raw_no_epoch);
    process_parts(&mut c);
    host_checks(&mut c);
    let pooled = [
        ("pooling", RawRules::new(true, Some(None))),
        ("pooling_resident_0", RawRules::new(true, Some(Some(0)))),
        (
            "pooling_resident_8mi",
            RawRules::new(true, Some(Some(8 << 20))),
        ),
    ];
    instance(&mut c, &raw, &pooled);
    components(&mut c);
    c.final_summary();
    summary(since);
}
