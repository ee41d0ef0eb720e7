//! Rules that misbehave on purpose, for the host's sandbox tests. The spec's
//! `component_name` chooses the misbehaviour, so one component covers every case; any
//! other name gets the default rules, to show the next build still works afterwards.

use std::hint::black_box;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant, SystemTime};

use berth_rules::{DefaultRules, FieldError, K8sObject, SiteConfig, Spec};
use serde_json::{Value, json};

berth_rules::export_rules!(build = hostile);

/// The misbehaviour named by the component name, or the default rules.
fn hostile(spec: &Spec, site: &SiteConfig, namespace: &str) -> Result<Vec<K8sObject>, FieldError> {
    let default = || berth_rules::build(&DefaultRules, spec, site, namespace);
    match spec.component_name.as_str() {
        "loop" => spin(),
        "sleep-loop" => loop {
            std::thread::sleep(Duration::from_secs(60));
        },
        "bomb" => bomb(),
        // Holds 24 MiB while it builds: within the default cap, beyond a lower one.
        "hold-24mi" => {
            let held = black_box(vec![1u8; 24 << 20]);
            let objects = default();
            black_box(&held);
            objects
        }
        "panic" => panic!("hostile rules panic on purpose"),
        // State carried from one build to the next: the count of builds this instance
        // has seen, as a refusal so the host can read it.
        "count" => {
            static BUILDS: AtomicU32 = AtomicU32::new(0);
            let seen = BUILDS.fetch_add(1, Ordering::Relaxed) + 1;
            Err(FieldError::new("count", seen.to_string()))
        }
        "exit" => std::process::exit(3),
        "sandbox" => Err(FieldError::new("sandbox", sandbox_report().to_string())),
        "huge" => {
            let mut objects = default()?;
            edit(&mut objects[0], |d| {
                d["metadata"]["annotations"] = json!({ "filler": "x".repeat(8 << 20) });
            });
            Ok(objects)
        }
        "other-ns" => {
            let mut objects = default()?;
            edit(&mut objects[0], |d| {
                d["metadata"]["namespace"] = "kube-system".into();
            });
            Ok(objects)
        }
        "crb" => {
            let mut objects = default()?;
            objects.push(object(
                "rbac.authorization.k8s.io/v1",
                "ClusterRoleBinding",
                json!({
                    "apiVersion": "rbac.authorization.k8s.io/v1",
                    "kind": "ClusterRoleBinding",
                    "metadata": {"name": "crb-admin"},
                    "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
                    "subjects": [{"kind": "ServiceAccount", "name": "default", "namespace": namespace}],
                }),
            ));
            Ok(objects)
        }
        "two-deps" => {
            let mut objects = default()?;
            let mut second = objects[0].clone();
            edit(&mut second, |d| {
                d["metadata"]["name"] = "dep-two-deps-b".into()
            });
            objects.push(second);
            Ok(objects)
        }
        "bad-name" => {
            let mut objects = default()?;
            edit(&mut objects[0], |d| {
                d["metadata"]["name"] = "Dep_Bad".into()
            });
            Ok(objects)
        }
        "bad-service-name" => {
            let mut objects = default()?;
            edit(&mut objects[1], |s| s["metadata"]["name"] = "9svc".into());
            Ok(objects)
        }
        "selector" => {
            let mut objects = default()?;
            edit(&mut objects[0], |d| {
                d["spec"]["selector"]["matchLabels"]["app"] = "someone-else".into();
            });
            Ok(objects)
        }
        "expressions-only" => {
            // A valid Deployment that selects its pods with matchExpressions alone.
            let mut objects = default()?;
            edit(&mut objects[0], |d| {
                d["spec"]["selector"] = json!({"matchExpressions": [
                    {"key": "app", "operator": "In", "values": ["expressions-only"]}
                ]});
            });
            Ok(objects)
        }
        "unknown-field" => {
            let mut objects = default()?;
            edit(&mut objects[0], |d| {
                d["spec"]["template"]["spec"]["containers"][0]["privileged"] = true.into();
            });
            Ok(objects)
        }
        _ => default(),
    }
}

/// Burn CPU forever, in a way the optimizer cannot remove.
fn spin() -> ! {
    let mut n = 0u64;
    loop {
        n = black_box(n.wrapping_add(1));
    }
}

/// Allocate and touch memory until the host stops it.
fn bomb() -> ! {
    let mut hoard: Vec<Vec<u8>> = Vec::new();
    loop {
        let mut chunk = vec![0u8; 1 << 20];
        for page in chunk.iter_mut().step_by(4096) {
            *page = 1;
        }
        hoard.push(black_box(chunk));
    }
}

/// What the component can learn about the world it runs in.
fn sandbox_report() -> Value {
    let wall = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_nanos().to_string())
        .unwrap_or_else(|e| e.to_string());
    let start = Instant::now();
    std::thread::sleep(Duration::from_secs(3600));
    let slept = start.elapsed().as_nanos().to_string();
    let random = std::collections::hash_map::RandomState::new();
    let mut stdin = String::new();
    let stdin = std::io::Read::read_to_string(&mut std::io::stdin(), &mut stdin)
        .map(|n| n.to_string())
        .unwrap_or_else(|e| e.to_string());
    json!({
        "wall_clock_ns": wall,
        "slept_ns": slept,
        "random_hash": std::hash::BuildHasher::hash_one(&random, 0u64).to_string(),
        "env": std::env::vars().collect::<Vec<_>>(),
        "args": std::env::args().collect::<Vec<_>>(),
        "cwd": outcome(std::env::current_dir().map(|d| d.display().to_string())),
        "read_root": outcome(std::fs::read_dir("/").map(|d| d.count().to_string())),
        "read_passwd": outcome(std::fs::read_to_string("/etc/passwd")),
        "write_tmp": outcome(std::fs::write("/tmp/berth-hostile", "x").map(|()| "written".to_owned())),
        "tcp_connect": outcome(std::net::TcpStream::connect("127.0.0.1:80").map(|_| "connected".to_owned())),
        "udp_bind": outcome(std::net::UdpSocket::bind("0.0.0.0:0").map(|_| "bound".to_owned())),
        "resolve": outcome(std::net::ToSocketAddrs::to_socket_addrs(&("localhost", 80)).map(|a| a.count().to_string())),
        "stdin": stdin,
    })
}

/// `ok: value` or `err: message`, so the test sees which happened.
fn outcome<E: std::fmt::Display>(result: Result<String, E>) -> String {
    match result {
        Ok(value) => format!("ok: {value}"),
        Err(err) => format!("err: {err}"),
    }
}

/// Change an object's JSON, keeping its declared name in step with `metadata.name`.
fn edit(object: &mut K8sObject, change: impl FnOnce(&mut Value)) {
    let mut value: Value = serde_json::from_str(&object.json).expect("the default rules emit JSON");
    change(&mut value);
    if let Some(name) = value["metadata"]["name"].as_str() {
        object.name = name.to_owned();
    }
    object.json = value.to_string();
}

fn object(api_version: &str, kind: &str, value: Value) -> K8sObject {
    K8sObject {
        api_version: api_version.into(),
        kind: kind.into(),
        name: value["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
        json: value.to_string(),
    }
}
