//! What the cluster tests share: running berth as a user would, a namespace per test, and
//! what is left of a component afterwards.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use berth_e2e::command::{self, BERTH_LIMIT};
use berth_e2e::{berth_command, cluster, unique_name};
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Pod, Service};
use kube::api::{Api, ApiResource, DeleteParams, DynamicObject, ListParams, PostParams};
use serde_json::{Value, json};

pub const WAIT: Duration = Duration::from_secs(60);

pub fn root() -> PathBuf {
    berth_e2e::repo_root()
}

/// Run berth as a user would, against the test cluster's admin kubeconfig.
pub fn berth(namespace: &str, args: &[&str]) -> Output {
    berth_as(&cluster().admin_kubeconfig, namespace, args)
}

/// Run berth with `kubeconfig`, killed (and the test failed, showing its output) if it
/// runs past [`BERTH_LIMIT`].
pub fn berth_as(kubeconfig: &Path, namespace: &str, args: &[&str]) -> Output {
    command::output(&mut berth_in(kubeconfig, namespace, args), BERTH_LIMIT)
}

/// The berth command line a user would type, not started.
pub fn berth_in(kubeconfig: &Path, namespace: &str, args: &[&str]) -> Command {
    let mut berth = berth_command(env!("CARGO_BIN_EXE_berth"));
    // Global flags first: whatever follows `--` belongs to exec's command.
    berth
        .args(["-n", namespace, "--kubeconfig"])
        .arg(kubeconfig)
        .args(args)
        .env(
            "BERTH_CACHE_DIR",
            std::env::temp_dir().join("berth-test-cache"),
        );
    berth
}

pub fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "berth failed ({:?}):\n{}\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// An error: exit code 1; returns stderr.
pub fn failed(out: &Output) -> String {
    exited(out, 1)
}

/// Not available, or a rollout that did not finish: exit code 3; returns stderr.
pub fn not_available(out: &Output) -> String {
    exited(out, 3)
}

pub fn exited(out: &Output, code: i32) -> String {
    assert_eq!(
        out.status.code(),
        Some(code),
        "expected exit code {code}:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

pub async fn namespace(prefix: &str) -> (kube::Client, String) {
    let client = cluster().admin_client().await;
    let name = unique_name(prefix);
    let ns: Namespace =
        serde_json::from_value(json!({"metadata": {"name": name}})).expect("namespace");
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &ns)
        .await
        .expect("create namespace");
    (client, name)
}

/// A quota of `pods` pods in `ns`, counted by the quota controller before this returns: a
/// pod beyond it is never made, so a rollout that needs one cannot finish.
pub async fn pod_quota(client: &kube::Client, ns: &str, pods: u32) {
    let quotas: Api<k8s_openapi::api::core::v1::ResourceQuota> =
        Api::namespaced(client.clone(), ns);
    let quota = serde_json::from_value(
        json!({"metadata": {"name": "pods"}, "spec": {"hard": {"pods": pods.to_string()}}}),
    )
    .expect("quota");
    quotas
        .create(&PostParams::default(), &quota)
        .await
        .expect("create quota");
    berth_e2e::wait_for("the quota counted", Duration::from_secs(30), || async {
        let used = quotas
            .get("pods")
            .await
            .expect("quota")
            .status
            .and_then(|s| s.used);
        match used.and_then(|u| u.get("pods").cloned()) {
            Some(_) => berth_e2e::Check::Done(()),
            None => berth_e2e::Check::Pending("no usage yet".to_owned()),
        }
    })
    .await;
}

/// Delete a test's namespace (the namespace controller removes what is left in it).
pub async fn drop_namespace(client: &kube::Client, ns: &str) {
    Api::<Namespace>::all(client.clone())
        .delete(ns, &DeleteParams::default())
        .await
        .expect("delete namespace");
}

/// Every object berth or the controllers made for `component` in `ns`.
pub async fn leftovers(client: &kube::Client, ns: &str) -> Vec<String> {
    let lp = ListParams::default();
    let mut found = Vec::new();
    for d in Api::<Deployment>::namespaced(client.clone(), ns)
        .list(&lp)
        .await
        .expect("list")
        .items
    {
        found.push(format!(
            "Deployment/{}",
            d.metadata.name.unwrap_or_default()
        ));
    }
    for s in Api::<Service>::namespaced(client.clone(), ns)
        .list(&lp)
        .await
        .expect("list")
        .items
    {
        found.push(format!("Service/{}", s.metadata.name.unwrap_or_default()));
    }
    for r in Api::<ReplicaSet>::namespaced(client.clone(), ns)
        .list(&lp)
        .await
        .expect("list")
        .items
    {
        found.push(format!(
            "ReplicaSet/{}",
            r.metadata.name.unwrap_or_default()
        ));
    }
    for p in Api::<Pod>::namespaced(client.clone(), ns)
        .list(&lp)
        .await
        .expect("list")
        .items
    {
        found.push(format!("Pod/{}", p.metadata.name.unwrap_or_default()));
    }
    // berth's inventories (the namespace's own kube-root-ca.crt is not berth's).
    let berths = ListParams::default().labels("app.kubernetes.io/managed-by=berth");
    for c in Api::<ConfigMap>::namespaced(client.clone(), ns)
        .list(&berths)
        .await
        .expect("list")
        .items
    {
        found.push(format!("ConfigMap/{}", c.metadata.name.unwrap_or_default()));
    }
    found
}

/// What the controllers and the node have made of the rollouts in `ns`, with times: put
/// beside a failed command, so a slow controller, a lost pod and a stuck berth can be told
/// apart from the test's output alone.
pub async fn rollout_state(client: &kube::Client, ns: &str) -> String {
    let lp = ListParams::default();
    let mut lines = vec![format!(
        "at {} in {ns}:",
        k8s_openapi::jiff::Timestamp::now()
    )];
    let time = |t: Option<&k8s_openapi::apimachinery::pkg::apis::meta::v1::Time>| {
        t.map_or_else(|| "-".to_owned(), |t| t.0.to_string())
    };
    if let Ok(list) = Api::<Deployment>::namespaced(client.clone(), ns)
        .list(&lp)
        .await
    {
        for d in list.items {
            let status = d.status.unwrap_or_default();
            let conditions: Vec<String> = status
                .conditions
                .iter()
                .flatten()
                .map(|c| {
                    format!(
                        "{}={} since {}",
                        c.type_,
                        c.status,
                        time(c.last_transition_time.as_ref())
                    )
                })
                .collect();
            lines.push(format!(
                "  Deployment/{} generation {:?} observed {:?}: replicas {:?} updated {:?} ready {:?} available {:?}; {}",
                d.metadata.name.unwrap_or_default(),
                d.metadata.generation,
                status.observed_generation,
                status.replicas,
                status.updated_replicas,
                status.ready_replicas,
                status.available_replicas,
                conditions.join(", ")
            ));
        }
    }
    if let Ok(list) = Api::<ReplicaSet>::namespaced(client.clone(), ns)
        .list(&lp)
        .await
    {
        for r in list.items {
            let status = r.status.unwrap_or_default();
            lines.push(format!(
                "  ReplicaSet/{} created {}: replicas {} ready {:?} available {:?}",
                r.metadata.name.unwrap_or_default(),
                time(r.metadata.creation_timestamp.as_ref()),
                status.replicas,
                status.ready_replicas,
                status.available_replicas,
            ));
        }
    }
    if let Ok(list) = Api::<Pod>::namespaced(client.clone(), ns).list(&lp).await {
        for p in list.items {
            let node = p
                .spec
                .and_then(|s| s.node_name)
                .unwrap_or_else(|| "-".to_owned());
            let status = p.status.unwrap_or_default();
            let ready = status
                .conditions
                .iter()
                .flatten()
                .find(|c| c.type_ == "Ready")
                .map_or_else(
                    || "-".to_owned(),
                    |c| {
                        format!(
                            "{} since {}",
                            c.status,
                            time(c.last_transition_time.as_ref())
                        )
                    },
                );
            lines.push(format!(
                "  Pod/{} created {} on {node}{}: {} Ready={ready}",
                p.metadata.name.unwrap_or_default(),
                time(p.metadata.creation_timestamp.as_ref()),
                if p.metadata.deletion_timestamp.is_some() {
                    " (Terminating)"
                } else {
                    ""
                },
                status.phase.unwrap_or_default(),
            ));
        }
    }
    lines.join("\n")
}

/// Nothing of berth's, and nothing the controllers made for it, is left in `ns` — checked
/// once, at once: called the moment `undeploy --wait` returns, which promises exactly that
/// (a switch to background deletion, or a wait that returns early, fails here).
pub async fn all_gone(client: &kube::Client, ns: &str) {
    let left = leftovers(client, ns).await;
    assert!(
        left.is_empty(),
        "left after undeploy --wait returned: {}",
        left.join(", ")
    );
}

/// Node port `slot` (0 to 9) of the block this test process holds on the cluster: no
/// other test process has it (node ports are cluster-wide and tests run in parallel).
/// Within the process each test deploying a node port has a slot of its own (lifecycle 0
/// to 4, fleet 5 and 6): they run at once.
pub fn node_port(slot: u16) -> u16 {
    cluster().node_port(slot)
}

/// Assert that everything in `want` is in `live`: object keys recursively, arrays element
/// by element with the same length, scalars equal.
pub fn assert_subset(want: &Value, live: &Value, path: &str) {
    match (want, live) {
        (Value::Object(w), Value::Object(l)) => {
            for (key, value) in w {
                let here = format!("{path}.{key}");
                assert!(l.contains_key(key), "{here} missing in the cluster");
                assert_subset(value, &l[key], &here);
            }
        }
        (Value::Array(w), Value::Array(l)) => {
            assert_eq!(w.len(), l.len(), "{path}: length");
            for (i, (a, b)) in w.iter().zip(l).enumerate() {
                assert_subset(a, b, &format!("{path}[{i}]"));
            }
        }
        _ => assert_eq!(want, live, "{path}"),
    }
}

/// The full example with its node port moved to one no other test uses (node ports are
/// cluster-wide and tests run in parallel).
pub fn full_example(dir: &tempfile::TempDir, node_port: u16) -> String {
    let spec = std::fs::read_to_string(root().join("examples/full.yaml")).expect("example");
    write_spec(dir, &spec.replace("30443", &node_port.to_string()))
}

pub fn write_spec(dir: &tempfile::TempDir, text: &str) -> String {
    let path = dir.path().join("spec.yaml");
    std::fs::write(&path, text).expect("write spec");
    path.to_string_lossy().into_owned()
}

/// Everything in `ns` that carries berth's ownership labels for `component`: of the kinds a
/// workload commonly owns, Secrets, and `extra` (kinds the cluster does not serve count as
/// empty). The inventory's parent is among the ConfigMaps.
pub async fn labelled(
    client: &kube::Client,
    ns: &str,
    component: &str,
    extra: &[ApiResource],
) -> Vec<String> {
    let owned = ListParams::default().labels(&format!(
        "app.kubernetes.io/managed-by=berth,berth.dev/component={component}"
    ));
    let kinds = [
        ApiResource::erase::<Deployment>(&()),
        ApiResource::erase::<Service>(&()),
        ApiResource::erase::<ConfigMap>(&()),
        ApiResource::erase::<k8s_openapi::api::core::v1::Secret>(&()),
        ApiResource::erase::<k8s_openapi::api::core::v1::ServiceAccount>(&()),
        ApiResource::erase::<k8s_openapi::api::networking::v1::NetworkPolicy>(&()),
        ApiResource::erase::<k8s_openapi::api::networking::v1::Ingress>(&()),
        ApiResource::erase::<k8s_openapi::api::autoscaling::v1::HorizontalPodAutoscaler>(&()),
    ];
    let mut found = Vec::new();
    for (i, kind) in kinds.iter().chain(extra).enumerate() {
        let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns, kind);
        let items = match api.list(&owned).await {
            Ok(list) => list.items,
            // Only an extra kind the cluster does not serve (a custom kind before its CRD)
            // has nothing to list: a 404 for a kind discovery lists is a failure.
            Err(kube::Error::Api(status))
                if status.code == 404 && i >= kinds.len() && !served(client, kind).await =>
            {
                Vec::new()
            }
            Err(e) => panic!("list {}: {e}", kind.plural),
        };
        for o in items {
            found.push(format!(
                "{}/{}",
                kind.kind,
                o.metadata.name.unwrap_or_default()
            ));
        }
    }
    found
}

/// Whether discovery lists `kind`'s resource in its group version.
async fn served(client: &kube::Client, kind: &ApiResource) -> bool {
    let resources = if kind.group.is_empty() {
        client.list_core_api_resources(&kind.version).await
    } else {
        client.list_api_group_resources(&kind.api_version).await
    };
    match resources {
        Ok(list) => list.resources.iter().any(|r| r.name == kind.plural),
        Err(kube::Error::Api(status)) if status.code == 404 => false,
        Err(e) => panic!("discovery of {}: {e}", kind.api_version),
    }
}

/// Whether RBAC already lets `user` `verb` `resource` in `ns` (the authorizer learns of a
/// new Role and binding through its own watch).
pub async fn allowed(
    client: &kube::Client,
    user: &str,
    ns: &str,
    group: &str,
    resource: &str,
    verb: &str,
) -> bool {
    use k8s_openapi::api::authorization::v1::SubjectAccessReview;
    let review: SubjectAccessReview = serde_json::from_value(json!({
        "spec": {"user": user, "resourceAttributes": {
            "namespace": ns, "group": group, "resource": resource, "verb": verb}}
    }))
    .expect("review");
    Api::<SubjectAccessReview>::all(client.clone())
        .create(&PostParams::default(), &review)
        .await
        .expect("a SubjectAccessReview")
        .status
        .is_some_and(|s| s.allowed)
}

/// Whether the tests run as root (else a user namespace grants what root would).
pub fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0\n"))
}
