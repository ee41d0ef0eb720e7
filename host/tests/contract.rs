//! Released contract versions stay supported: components built for `berth:rules@0.1.0`
//! before any later contract existed (frozen in `tests/fixtures/rules-0.1.0/`) load in this
//! berth and render the examples byte for byte as berth printed them then.

use std::path::Path;

use berth_e2e::{berth_command, repo_root};

fn render(rules: &Path, spec: &str, cache: &Path) -> Vec<u8> {
    let out = berth_command(env!("CARGO_BIN_EXE_berth"))
        .env("BERTH_CACHE_DIR", cache)
        .args(["render", "--config", "examples/site.yaml", "--spec"])
        .arg(format!("examples/{spec}.yaml"))
        .arg("--rules")
        .arg(rules)
        .output()
        .expect("run berth");
    assert!(
        out.status.success(),
        "{}: {}",
        rules.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

#[test]
fn components_built_for_0_1_0_render_as_they_did() {
    let fixtures = repo_root().join("tests/fixtures/rules-0.1.0");
    let cache = tempfile::tempdir().expect("temp dir");
    for rules in ["default", "site"] {
        let component = fixtures.join(format!("{rules}-rules.wasm"));
        for spec in ["full", "minimal"] {
            let expected = std::fs::read(fixtures.join(format!("{spec}.{rules}.yaml")))
                .expect("expected output");
            let rendered = render(&component, spec, cache.path());
            assert!(
                rendered == expected,
                "{rules} rules on {spec}.yaml:\n{}",
                String::from_utf8_lossy(&rendered)
            );
        }
    }
}

#[test]
fn a_0_1_0_component_refuses_what_only_0_2_0_carries_naming_key_and_version() {
    let fixtures = repo_root().join("tests/fixtures/rules-0.1.0");
    let rules = fixtures.join("default-rules.wasm");
    let cache = tempfile::tempdir().expect("temp dir");
    let dir = tempfile::tempdir().expect("temp dir");
    let cases = [
        ("liveness: {type: http, endpoint: /}\n", "liveness"),
        ("command: [/bin/server]\n", "command"),
        ("args: [--deep]\n", "args"),
        ("extensions: {acme: {min_available: 1}}\n", "extensions"),
        ("env: {A: x, P: {secret: db, key: pw}}\n", "env.P"),
        (
            "volumes: [{config_volume: {name: cfg}, container: {bind: /etc/cfg}}]\n",
            "volumes[0].config_volume",
        ),
    ];
    for (extra, field) in cases {
        let spec = dir.path().join("spec.yaml");
        std::fs::write(&spec, format!("component_name: web\nimage: nginx\n{extra}"))
            .expect("write spec");
        let out = berth_command(env!("CARGO_BIN_EXE_berth"))
            .env("BERTH_CACHE_DIR", cache.path())
            .arg("render")
            .arg("--spec")
            .arg(&spec)
            .arg("--rules")
            .arg(&rules)
            .output()
            .expect("run berth");
        assert_eq!(out.status.code(), Some(1), "{extra}");
        assert!(out.stdout.is_empty(), "nothing rendered for {extra}");
        assert_eq!(
            String::from_utf8_lossy(&out.stderr),
            format!(
                "berth: {}: {field}: the spec uses it, but the component (rules component {}) \
                 is built for berth:rules@0.1.0, which has no place for it (it needs \
                 berth:rules@0.2.0)\n",
                spec.display(),
                rules.display()
            )
        );
    }
    // The site config's extensions too.
    let site = dir.path().join("site.yaml");
    std::fs::write(&site, "extensions: {acme: {cost_centers: {}}}\n").expect("write site");
    let out = berth_command(env!("CARGO_BIN_EXE_berth"))
        .env("BERTH_CACHE_DIR", cache.path())
        .args(["render", "--spec", "examples/minimal.yaml", "--config"])
        .arg(&site)
        .arg("--rules")
        .arg(&rules)
        .output()
        .expect("run berth");
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(": extensions: the site config uses it, but the component"),
        "{stderr}"
    );
}
