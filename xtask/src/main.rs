//! `cargo xtask demo|test|bench-cli`: berth's project commands, runnable with nothing but
//! rustup's stable toolchain; each installs what it needs on first use (see `setup`).

mod bounded;
mod run;
mod setup;

use std::process::ExitCode;
use std::time::Duration;

use bounded::Deadline;

use run::{cargo, program, release_binary, repo_root, script};

const USAGE: &str = "\
usage: cargo xtask <command>

  demo        berth's main job on the example components, on the local control plane
  test        every test: formatting, lints (native and guest), docs, unit, CLI and
              local-control-plane tests
  test --quick  the edit loop's tier: formatting, lints, docs, unit tests and the offline
              test binary (render, sandbox, contract, runtime, site rules); no control
              plane, no registry
  bench-cli   whole-process timing of `berth render` (installs hyperfine from Debian)
  bench-fleet 50 components deployed by one berth, by 50 berths and by kubectl (installs
              kubectl from Debian's kubernetes-client)
  bench-controller  200 Components applied with kubectl and kept by one controller until
              all Ready, against one `berth deploy --spec DIR --wait` of the same specs;
              the controller's memory and requests at steady state
  image [--push oci://REGISTRY/REPOSITORY:TAG]
              the controller's image as an OCI image layout in target/berth-image (no
              Docker daemon: the release binary, its C libraries, a non-root user),
              pushed with berth's own registry client when asked

Each command installs what it needs on first use (the wasm32-wasip2 target, Debian
packages, the control plane's binaries) and says so before it does.";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("demo") => demo(),
        Some("test") => match args.get(1).map(String::as_str) {
            None => test(),
            Some("--quick") => quick_test(),
            Some(other) => {
                eprintln!("xtask: unknown option to test: `{other}`\n{USAGE}");
                return ExitCode::from(2);
            }
        },
        Some("bench-cli") => bench_cli(),
        Some("bench-fleet") => bench_fleet(),
        Some("bench-controller") => bench_controller(),
        Some("image") => match (args.get(1).map(String::as_str), args.get(2)) {
            (None, _) => image(None),
            (Some("--push"), Some(reference)) => image(Some(reference)),
            _ => {
                eprintln!("xtask: image takes `--push oci://REGISTRY/REPOSITORY:TAG`\n{USAGE}");
                return ExitCode::from(2);
            }
        },
        Some("-h" | "--help" | "help") => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        other => {
            if let Some(other) = other {
                eprintln!("xtask: unknown command `{other}`");
            }
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(failed) => {
            eprintln!("xtask: {failed}");
            ExitCode::FAILURE
        }
    }
}

fn demo() -> Result<(), String> {
    setup::toolchain(&[])?;
    setup::control_plane()?;
    let berth = release_binary()?;
    script("tests/demo.sh").arg(&berth).run()
}

fn bench_controller() -> Result<(), String> {
    setup::toolchain(&[])?;
    setup::control_plane()?;
    let berth = release_binary()?;
    script("tests/bench-controller.sh").arg(&berth).run()
}

fn image(push: Option<&String>) -> Result<(), String> {
    setup::toolchain(&[])?;
    let berth = release_binary()?;
    let layout = repo_root().join("target/berth-image");
    script("tests/image.sh").arg(&berth).arg(&layout).run()?;
    match push {
        Some(reference) => program(&berth.to_string_lossy())
            .args(["controller", "push-image"])
            .arg(&layout)
            .arg(reference)
            .run(),
        None => Ok(()),
    }
}

fn bench_cli() -> Result<(), String> {
    setup::toolchain(&[])?;
    let berth = release_binary()?;
    script("tests/bench-cli.sh").arg(&berth).run()
}

fn bench_fleet() -> Result<(), String> {
    setup::toolchain(&[])?;
    setup::control_plane()?;
    let berth = release_binary()?;
    script("tests/bench-fleet.sh").arg(&berth).run()
}

fn test() -> Result<(), String> {
    setup::toolchain(&["rustfmt", "clippy"])?;
    setup::control_plane()?;
    setup::debian_packages(&["docker-registry", "curl"], "for the registry tests")?;
    // From here on nothing is installed: the whole test phase has one bound, so a hang
    // fails the command (naming the tests still running) instead of holding CI.
    let deadline = test_phase_deadline();
    static_checks(deadline)?;
    let cluster = Cluster::up()?;
    cargo(["test", "--workspace"])
        .env("BERTH_KUBECONFIG", &cluster.kubeconfig)
        .run_tests_until(deadline)?;
    // The library as a platform team embeds it, on the same control plane.
    cargo(["run", "--quiet", "-p", "berth", "--example", "embed"])
        .env("KUBECONFIG", &cluster.kubeconfig)
        .run_until(deadline)
}

/// `test --quick`: what needs neither a control plane nor a registry, for the edit loop.
fn quick_test() -> Result<(), String> {
    setup::toolchain(&["rustfmt", "clippy"])?;
    let deadline = test_phase_deadline();
    static_checks(deadline)?;
    cargo(["test", "--workspace", "--lib", "--bins"]).run_tests_until(deadline)?;
    cargo(["test", "-p", "berth"])
        .args(QUICK_TESTS.iter().flat_map(|t| ["--test", t]))
        .run_tests_until(deadline)
}

/// The integration tests `test --quick` runs: the binary needing no control plane or registry.
const QUICK_TESTS: [&str; 1] = ["offline"];

fn test_phase_deadline() -> Deadline {
    let limit = std::env::var("BERTH_TEST_PHASE_LIMIT_S")
        .ok()
        .and_then(|s| s.parse().ok())
        .map_or(TEST_PHASE_LIMIT, Duration::from_secs);
    Deadline::after(limit)
}

/// Formatting, lints (native and guest target) and docs.
fn static_checks(deadline: Deadline) -> Result<(), String> {
    cargo(["fmt", "--all", "--", "--check"]).run_until(deadline)?;
    cargo([
        "clippy",
        "--workspace",
        "--all-targets",
        "--quiet",
        "--",
        "-D",
        "warnings",
    ])
    .run_until(deadline)?;
    // The default rules alone first: with their default features they bring a global
    // allocator, which the crates using them as a library (without it) must not see.
    for packages in [&GUEST_PACKAGES[..1], &GUEST_PACKAGES[1..]] {
        cargo(["clippy", "--target", "wasm32-wasip2", "--quiet"])
            .args(packages.iter().flat_map(|p| ["-p", p]))
            .args(["--", "-D", "warnings"])
            .run_until(deadline)?;
    }
    cargo(["doc", "--no-deps", "--quiet", "-p", "berth"])
        .env("RUSTDOCFLAGS", "-D warnings")
        .run_until(deadline)
}

/// How long the test phase (everything after the first-use installs) may take: about six
/// times its warm time here, so only a hang or a runaway reaches it
/// (`BERTH_TEST_PHASE_LIMIT_S` sets another bound, in seconds).
const TEST_PHASE_LIMIT: Duration = Duration::from_secs(45 * 60);

/// The crates built for wasm32-wasip2, linted on that target as well as natively; the
/// default rules first.
const GUEST_PACKAGES: [&str; 5] = [
    "berth-rules",
    "site-rules",
    "berth-hostile-rules",
    "berth-other-world",
    "berth-defaults-caller",
];

/// The local control plane for the length of `xtask test`, stopped on drop (also on error).
struct Cluster {
    kubeconfig: String,
}

impl Cluster {
    fn up() -> Result<Self, String> {
        let out = script("tests/cluster/up.sh").output()?;
        let kubeconfig = out.lines().last().unwrap_or_default().trim().to_owned();
        if kubeconfig.is_empty() {
            return Err("tests/cluster/up.sh printed no kubeconfig path".into());
        }
        Ok(Self { kubeconfig })
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if let Err(e) = script("tests/cluster/down.sh").quiet().run() {
            eprintln!("xtask: stopping the control plane: {e}");
        }
    }
}
