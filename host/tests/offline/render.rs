//! `berth render` as a user runs it: the examples, byte-identical reruns, and every bad
//! input of the reference notes refused with the field and the value.

use berth_e2e::command::{BERTH_LIMIT, OutputWithin as _};
use std::path::Path;
use std::process::Output;
use std::sync::OnceLock;

use serde_json::Value;

/// Run berth with a private compiled-code cache.
fn berth(args: &[&str], cache: &Path) -> Output {
    berth_e2e::berth_command(env!("CARGO_BIN_EXE_berth"))
        .args(args)
        .env("BERTH_CACHE_DIR", cache)
        .output_within(BERTH_LIMIT)
}

/// One compiled-code cache for the whole test process: only the first run compiles.
fn shared_cache() -> &'static Path {
    static CACHE: OnceLock<tempfile::TempDir> = OnceLock::new();
    CACHE
        .get_or_init(|| tempfile::tempdir().expect("temp dir"))
        .path()
}

fn scratch() -> tempfile::TempDir {
    tempfile::tempdir().expect("temp dir")
}

fn render_json(args: &[&str]) -> Value {
    let out = berth(&[&["render", "-o", "json"], args].concat(), shared_cache());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON output")
}

/// Write `spec` to a file and render it; returns (exit code, stderr).
fn refuse(spec: &str) -> (i32, String) {
    let dir = scratch();
    let path = dir.path().join("spec.yaml");
    std::fs::write(&path, spec).expect("write spec");
    refuse_path(&path)
}

/// Render the spec file or directory at `path`, which must fail with nothing printed on
/// stdout; returns (exit code, stderr).
fn refuse_path(path: &Path) -> (i32, String) {
    let out = berth(
        &["render", "--spec", path.to_str().expect("utf-8 path")],
        shared_cache(),
    );
    assert!(out.stdout.is_empty(), "nothing printed on stdout on error");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn full_example_renders_deployment_and_two_services_in_namespace() {
    let list = render_json(&[
        "--spec",
        "examples/full.yaml",
        "--config",
        "examples/site.yaml",
        "-n",
        "shop",
    ]);
    assert_eq!(
        (list["apiVersion"].as_str(), list["kind"].as_str()),
        (Some("v1"), Some("List"))
    );
    let items = list["items"].as_array().expect("items");
    let ids: Vec<String> = items
        .iter()
        .map(|i| {
            format!(
                "{} {}/{} ns={}",
                i["apiVersion"], i["kind"], i["metadata"]["name"], i["metadata"]["namespace"]
            )
        })
        .collect();
    assert_eq!(
        ids,
        [
            r#""apps/v1" "Deployment"/"dep-inventory" ns="shop""#,
            r#""v1" "Service"/"inventory" ns="shop""#,
            r#""v1" "Service"/"xinventory" ns="shop""#,
        ]
    );
    let pod = &items[0]["spec"]["template"]["spec"];
    let containers: Vec<&str> = pod["containers"]
        .as_array()
        .expect("containers")
        .iter()
        .filter_map(|c| c["name"].as_str())
        .collect();
    assert_eq!(containers, ["inventory", "filebeat"]);
    assert_eq!(pod["initContainers"][0]["name"], "init-tls");
    assert_eq!(pod["imagePullSecrets"][0]["name"], "regcred");
    let env: Vec<&str> = pod["containers"][0]["env"]
        .as_array()
        .expect("env")
        .iter()
        .filter_map(|e| e["name"].as_str())
        .collect();
    assert_eq!(
        env,
        ["LOG_LEVEL", "DB_HOST", "CACHE_TTL", "POD_IP"],
        "env keeps the spec's order"
    );
    assert_eq!(
        pod["containers"][0]["readinessProbe"]["httpGet"]["port"],
        8080
    );
    assert_eq!(items[2]["spec"]["ports"][0]["nodePort"], 30443);
    assert!(items[1]["metadata"]["annotations"]["msb.onap.org/service-info"].is_string());
}

#[test]
fn minimal_example_renders_only_a_deployment_as_yaml() {
    let out = berth(
        &["render", "--spec", "examples/minimal.yaml"],
        shared_cache(),
    );
    assert!(out.status.success());
    let yaml = String::from_utf8(out.stdout).expect("utf-8");
    assert!(
        yaml.starts_with("apiVersion: apps/v1\nkind: Deployment\n"),
        "{yaml}"
    );
    assert!(!yaml.contains("\n---\n"), "one document only");
    assert!(yaml.contains("  namespace: default\n"));
}

#[test]
fn rendering_twice_gives_identical_bytes() {
    let cache = shared_cache();
    for format in ["yaml", "json"] {
        let args = [
            "render",
            "--spec",
            "examples/full.yaml",
            "--config",
            "examples/site.yaml",
            "-o",
            format,
        ];
        let first = berth(&args, cache);
        let second = berth(&args, cache);
        assert!(first.status.success() && !first.stdout.is_empty());
        assert_eq!(first.stdout, second.stdout, "{format}");
    }
}

#[test]
fn reference_bad_ports_are_refused_naming_field_and_value() {
    for port in [
        "9101",
        "9101:",
        "9101:0x453",
        "9101:0/udp",
        "9101/:0",
        "9101/u:0",
        "9101/http:404",
        "9101:-1",
    ] {
        let (code, stderr) = refuse(&format!(
            "component_name: web\nimage: x\nports: ['80:0', '{port}']\n"
        ));
        assert_eq!(code, 1, "{port}: {stderr}");
        assert!(
            stderr.ends_with(&format!(
                "spec.yaml: ports[1]: \"{port}\" is not CONTAINER_PORT[/tcp|udp]:NODE_PORT\n"
            )),
            "{stderr}"
        );
        assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    }
}

#[test]
fn reference_bad_intervals_are_refused_naming_field_and_value() {
    let cases = [
        ("-99", "-99"),
        ("'-99'", "-99"),
        ("-99s", "-99s"),
        ("30d", "30d"),
        ("30w", "30w"),
        ("3 0s", "3 0s"),
        ("30.0", "30.0"),
        ("30.0s", "30.0s"),
        ("a 30s", "a 30s"),
        ("30s a", "30s a"),
        ("30 s", "30 s"),
        ("thirty seconds", "thirty seconds"),
        ("3m05s", "3m05s"),
        ("3seconds", "3seconds"),
        ("3S", "3S"),
        ("1minute", "1minute"),
        ("'10E0'", "10E0"),
        ("3.14159", "3.14159"),
    ];
    for (yaml, shown) in cases {
        let (code, stderr) = refuse(&format!(
            "component_name: web\nimage: x\nports: ['80:0']\nreadiness: {{type: http, endpoint: /, interval: {yaml}}}\n"
        ));
        assert_eq!(code, 1, "{yaml}: {stderr}");
        assert!(
            stderr.contains(&format!(
                "readiness.interval: \"{shown}\" is not N, Ns, Nm or Nh"
            )),
            "{yaml}: {stderr}"
        );
    }
}

#[test]
fn structural_errors_name_the_field() {
    let cases = [
        (
            "component_name: web\nimage: x\nport: ['80:0']\n",
            "spec.yaml: port: unknown field `port`",
        ),
        ("image: x\n", "missing field `component_name`"),
        (
            "component_name: web\nimage: x\nreplicas: many\n",
            "replicas: invalid type: string \"many\"",
        ),
        (
            "component_name: web\nimage: x\nvolumes: [{host: {path: /a}}]\n",
            "volumes[0]: missing field `container`",
        ),
        (
            "component_name: web\nimage: x\nlog_info: {log_directory: /logs}\n",
            "log_info.log_directory: logging is asked for but the site config has no `filebeat` section",
        ),
        (
            "component_name: web\nimage: x\nresources: {limits: {cpu: lots}}\n",
            "resources.limits.cpu: \"lots\" is not a Kubernetes quantity",
        ),
        (
            "component_name: web\nimage: x\nreadiness: {type: http, endpoint: /}\n",
            "readiness.type: an \"http\" check probes the first container port, but `ports` is empty",
        ),
        ("component_name: [web\n", "not valid YAML"),
    ];
    for (spec, expected) in cases {
        let (code, stderr) = refuse(spec);
        assert_eq!(code, 1, "{spec}");
        assert!(
            stderr.starts_with("berth: ") && stderr.contains(expected),
            "expected {expected:?} in {stderr:?}"
        );
    }
}

#[test]
fn unreadable_or_invalid_rules_component_is_a_clear_error() {
    let dir = scratch();
    let bogus = dir.path().join("rules.wasm");
    std::fs::write(&bogus, b"not wasm").expect("write");
    let out = berth(
        &[
            "render",
            "--spec",
            "examples/minimal.yaml",
            "--rules",
            bogus.to_str().expect("utf-8"),
        ],
        shared_cache(),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr.contains("rules.wasm: not a valid wasm component"),
        "{stderr}"
    );
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
}

#[test]
fn bad_arguments_exit_2() {
    let out = berth(
        &["render", "--spec", "examples/minimal.yaml", "-o", "xml"],
        shared_cache(),
    );
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn only_the_controller_takes_several_namespaces() {
    let out = berth(
        &[
            "-n",
            "a",
            "-n",
            "b",
            "render",
            "--spec",
            "examples/minimal.yaml",
        ],
        shared_cache(),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("--namespace given 2 times (a, b): only `berth controller` watches"),
        "{stderr}"
    );
    assert!(out.stdout.is_empty());
    let out = berth(
        &["-n", "a", "-n", "b", "controller", "rbac"],
        shared_cache(),
    );
    let rbac: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let all = items(&rbac);
    let roles: Vec<&str> = all
        .iter()
        .filter(|i| i["kind"] == "Role")
        .filter_map(|i| i["metadata"]["namespace"].as_str())
        .collect();
    // The Lease's Role in the controller's own namespace, then one per namespace watched.
    assert_eq!(roles, ["berth-system", "a", "b"]);
}

#[test]
fn a_controller_that_cannot_load_its_rules_or_config_exits_naming_why() {
    let dir = scratch();
    let bad = dir.path().join("rules.wasm");
    std::fs::write(&bad, "not wasm").expect("write");
    let bad = bad.to_str().expect("utf-8 path");
    for (args, names) in [
        (
            vec!["controller", "--config", "/nonexistent/site.yaml"],
            "/nonexistent/site.yaml",
        ),
        (vec!["controller", "--rules", bad], "rules.wasm"),
        (
            vec!["controller", "--rules", "oci://registry.example/r:1"],
            "pinned by digest",
        ),
    ] {
        let out = berth(&args, shared_cache());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(stderr.contains(names), "{args:?}: {stderr}");
    }
}

/// A directory of spec files, one of them holding two YAML documents.
fn spec_set() -> tempfile::TempDir {
    let dir = scratch();
    let write =
        |name: &str, text: &str| std::fs::write(dir.path().join(name), text).expect("write");
    write(
        "a.yaml",
        "component_name: web-a\nimage: nginx\nports: ['80:0']\n---\n\
         component_name: web-b\nimage: nginx\nports: ['81:30081']\n",
    );
    write("b.json", r#"{"component_name": "web-c", "image": "nginx"}"#);
    write(
        "c.yml",
        "component_name: web-d\nimage: nginx\nreplicas: 3\n",
    );
    // Not specs: other extensions, hidden files, subdirectories.
    write("notes.txt", "component_name: no\n");
    write(".draft.yaml", "component_name: no\n");
    std::fs::create_dir(dir.path().join("old")).expect("mkdir");
    std::fs::write(dir.path().join("old/d.yaml"), "component_name: no\n").expect("write");
    dir
}

fn items(list: &Value) -> Vec<Value> {
    list["items"].as_array().expect("items").clone()
}

#[test]
fn a_directory_or_a_multi_document_file_renders_every_component_in_order() {
    let dir = spec_set();
    let path = |name: &str| dir.path().join(name).to_str().expect("utf-8").to_owned();
    let all = items(&render_json(&["--spec", &path("")]));
    // The same objects, in file-name and document order, as rendering each spec alone.
    let mut one_by_one = Vec::new();
    for doc in [
        "component_name: web-a\nimage: nginx\nports: ['80:0']\n",
        "component_name: web-b\nimage: nginx\nports: ['81:30081']\n",
    ] {
        std::fs::write(dir.path().join("old/one.yaml"), doc).expect("write");
        one_by_one.extend(items(&render_json(&["--spec", &path("old/one.yaml")])));
    }
    one_by_one.extend(items(&render_json(&["--spec", &path("b.json")])));
    one_by_one.extend(items(&render_json(&["--spec", &path("c.yml")])));
    assert_eq!(all, one_by_one);
    let names: Vec<&str> = all
        .iter()
        .map(|o| o["metadata"]["name"].as_str().expect("name"))
        .collect();
    assert_eq!(
        names,
        [
            "dep-web-a",
            "web-a",
            "dep-web-b",
            "web-b",
            "xweb-b",
            "dep-web-c",
            "dep-web-d"
        ]
    );
    // The file of two documents alone gives its two components.
    assert_eq!(items(&render_json(&["--spec", &path("a.yaml")])).len(), 5);
}

#[test]
fn a_bad_spec_in_a_set_is_named_by_file_and_document_and_nothing_is_printed() {
    let dir = spec_set();
    let file = dir.path().join("a.yaml");
    std::fs::write(
        &file,
        "component_name: web-a\nimage: nginx\n---\ncomponent_name: web-b\nimage: nginx\nports: ['9101:']\n",
    )
    .expect("write");
    let (code, stderr) = refuse_path(dir.path());
    assert_eq!(code, 1, "{stderr}");
    assert_eq!(
        stderr.trim_end(),
        format!(
            "berth: {} (document 2): ports[0]: \"9101:\" is not CONTAINER_PORT[/tcp|udp]:NODE_PORT",
            file.display()
        )
    );
}

#[test]
fn two_specs_building_the_same_object_are_refused() {
    let dir = scratch();
    let file = dir.path().join("twice.yaml");
    std::fs::write(
        &file,
        "component_name: web\nimage: nginx:1\n---\ncomponent_name: web\nimage: nginx:2\n",
    )
    .expect("write");
    let (code, stderr) = refuse_path(&file);
    assert_eq!(code, 1, "{stderr}");
    let f = file.display();
    assert_eq!(
        stderr.trim_end(),
        format!(
            "berth: {f} (document 2): builds Deployment/dep-web, which {f} (document 1) builds too"
        )
    );
}

#[test]
fn an_empty_spec_directory_is_an_error() {
    let dir = scratch();
    std::fs::write(dir.path().join("README.md"), "no specs here").expect("write");
    let (code, stderr) = refuse_path(dir.path());
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("no component spec in it"), "{stderr}");
}

#[test]
fn deploy_reads_every_spec_before_it_reaches_the_cluster() {
    let dir = spec_set();
    std::fs::write(dir.path().join("d.yaml"), "component_name: [broken\n").expect("write");
    // A cluster that is never reached: the set is refused before any request.
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        "apiVersion: v1\nkind: Config\ncurrent-context: c\n\
         clusters: [{name: c, cluster: {server: 'https://127.0.0.1:1'}}]\n\
         users: [{name: u, user: {token: t}}]\n\
         contexts: [{name: c, context: {cluster: c, user: u}}]\n",
    )
    .expect("kubeconfig");
    let out = berth(
        &[
            "deploy",
            "--kubeconfig",
            kubeconfig.to_str().expect("utf-8"),
            "--spec",
            dir.path().to_str().expect("utf-8"),
        ],
        shared_cache(),
    );
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.starts_with(&format!(
            "berth: {}: not valid YAML",
            dir.path().join("d.yaml").display()
        )),
        "{err}"
    );
}

#[test]
fn two_specs_building_one_object_at_two_api_versions_are_refused() {
    // One PodDisruptionBudget, asked for at policy/v1beta1 by one spec and at policy/v1 by
    // the other: the API server serves it at both, so the second would replace the first.
    let dir = scratch();
    let file = dir.path().join("versions.yaml");
    let doc = |component: &str, api_version: &str| {
        serde_json::json!({
            "component_name": component,
            "image": "example/app:1",
            "extensions": {"objects": [{
                "apiVersion": api_version,
                "kind": "PodDisruptionBudget",
                "metadata": {"name": "shared"},
                "spec": {"minAvailable": 1},
            }]},
        })
        .to_string()
    };
    std::fs::write(
        &file,
        format!(
            "---\n{}\n---\n{}\n",
            doc("first", "policy/v1beta1"),
            doc("second", "policy/v1")
        ),
    )
    .expect("write");
    let rules = berth_e2e::components::component("berth-defaults-caller");
    let out = berth(
        &[
            "render",
            "--spec",
            file.to_str().expect("utf-8 path"),
            "--rules",
            rules.to_str().expect("utf-8 path"),
        ],
        shared_cache(),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(out.stdout.is_empty(), "nothing printed on stdout on error");
    let f = file.display();
    assert_eq!(
        stderr.trim_end(),
        format!(
            "berth: {f} (document 2): builds PodDisruptionBudget/shared, which {f} (document 1) builds too"
        )
    );
}
