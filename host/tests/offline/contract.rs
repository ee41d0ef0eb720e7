//! Released contract versions stay supported: components built for `berth:rules@0.1.0`
//! before any later contract existed (frozen in `tests/fixtures/rules-0.1.0/`) load in this
//! berth and render the examples byte for byte as berth printed them then.

use berth_e2e::command::{BERTH_LIMIT, OutputWithin as _};
use std::path::Path;

use berth_e2e::{berth_command, repo_root};

/// `berth render` of `examples/<spec>.yaml` with the example site config, by `rules` (the
/// embedded default rules when `None`).
fn render(rules: Option<&Path>, spec: &str, cache: &Path) -> Vec<u8> {
    let mut command = berth_command(env!("CARGO_BIN_EXE_berth"));
    command
        .env("BERTH_CACHE_DIR", cache)
        .args(["render", "--config", "examples/site.yaml", "--spec"])
        .arg(format!("examples/{spec}.yaml"));
    if let Some(rules) = rules {
        command.arg("--rules").arg(rules);
    }
    let out = command.output_within(BERTH_LIMIT);
    assert!(
        out.status.success(),
        "{rules:?}: {}",
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
            let rendered = render(Some(&component), spec, cache.path());
            assert!(
                rendered == expected,
                "{rules} rules on {spec}.yaml:\n{}",
                String::from_utf8_lossy(&rendered)
            );
        }
    }
}

#[test]
fn the_default_rules_moved_to_0_2_0_and_build_the_same_objects() {
    let fixtures = repo_root().join("tests/fixtures/rules-0.1.0");
    let cache = tempfile::tempdir().expect("temp dir");
    for spec in ["full", "minimal"] {
        let rendered = render(None, spec, cache.path());
        let before = std::fs::read(fixtures.join(format!("{spec}.default.yaml"))).expect("fixture");
        assert!(
            rendered == before,
            "{spec}.yaml:\n{}",
            String::from_utf8_lossy(&rendered)
        );
    }
    let rules =
        berth::Rules::default_rules(&berth::RulesOptions::default()).expect("default rules");
    assert_eq!(rules.contract_version(), "0.2.0");
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
            .output_within(BERTH_LIMIT);
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
        .output_within(BERTH_LIMIT);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(": extensions: the site config uses it, but the component"),
        "{stderr}"
    );
}

#[test]
fn the_default_rules_build_the_0_2_0_keys() {
    let dir = tempfile::tempdir().expect("temp dir");
    let spec = dir.path().join("spec.yaml");
    std::fs::write(
        &spec,
        "component_name: web\nimage: nginx:1.27\nports: ['8080:0']\n\
         command: [/bin/server]\nargs: [--port, '8080']\n\
         liveness: {type: script, script: /opt/live.sh --deep, interval: 20s}\n\
         readiness: {type: docker, script: /opt/ready.sh -q}\n\
         env: {MODE: fast, PASSWORD: {secret: db, key: password}, LEVEL: {config_map: cfg, key: level}}\n\
         volumes: [{config_volume: {name: cfg}, container: {bind: /etc/web}}]\n",
    )
    .expect("write spec");
    let out = berth_command(env!("CARGO_BIN_EXE_berth"))
        .args(["render", "-o", "json", "--kube-version", "1.20", "--spec"])
        .arg(&spec)
        .output_within(BERTH_LIMIT);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let pod = &list["items"][0]["spec"]["template"]["spec"];
    let main = &pod["containers"][0];
    assert_eq!(main["command"], serde_json::json!(["/bin/server"]));
    assert_eq!(main["args"], serde_json::json!(["--port", "8080"]));
    assert_eq!(
        main["livenessProbe"]["exec"]["command"],
        serde_json::json!(["/opt/live.sh", "--deep"])
    );
    assert_eq!(main["livenessProbe"]["periodSeconds"], 20);
    assert_eq!(
        main["readinessProbe"]["exec"]["command"],
        serde_json::json!(["/opt/ready.sh", "-q"])
    );
    assert_eq!(
        main["env"],
        serde_json::json!([
            {"name": "MODE", "value": "fast"},
            {"name": "PASSWORD", "valueFrom": {"secretKeyRef": {"key": "password", "name": "db"}}},
            {"name": "LEVEL", "valueFrom": {"configMapKeyRef": {"key": "level", "name": "cfg"}}},
            {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}
        ])
    );
    assert_eq!(
        pod["volumes"][0],
        serde_json::json!({"name": "volume-0", "configMap": {"defaultMode": 420, "name": "cfg", "optional": true}})
    );
    assert_eq!(main["volumeMounts"][0]["readOnly"], true);

    // An extension key the default rules do not use, at the top level: refused by name.
    std::fs::write(
        &spec,
        "component_name: web\nimage: nginx:1.27\nextensions: {acme: {min_available: 2}}\n",
    )
    .expect("write spec");
    let out = berth_command(env!("CARGO_BIN_EXE_berth"))
        .args(["render", "--spec"])
        .arg(&spec)
        .output_within(BERTH_LIMIT);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        format!(
            "berth: {}: extensions.acme: not used by the default rules\n",
            spec.display()
        )
    );
}
