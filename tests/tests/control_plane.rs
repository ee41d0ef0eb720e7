//! Proves the local control plane end to end: Deployment → Ready pods → exec → rollout →
//! foreground delete; plus the never-ready knob and the limited user's confinement.

use std::time::Duration;

use berth_e2e::{Check, LIMITED_NAMESPACE, cluster, unique_name, wait_for};
use k8s_openapi::api::{
    apps::v1::{Deployment, ReplicaSet},
    core::v1::{Namespace, Pod, Secret},
};
use kube::{
    Api, ResourceExt as _,
    api::{AttachParams, DeleteParams, ListParams, Patch, PatchParams, PostParams},
};
use serde_json::json;
use tokio::io::AsyncReadExt as _;

const WAIT: Duration = Duration::from_secs(90);

fn pod_ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|cs| cs.iter().find(|c| c.type_ == "Ready"))
        .is_some_and(|c| c.status == "True")
}

fn phase(pod: &Pod) -> String {
    pod.status
        .as_ref()
        .and_then(|s| s.phase.clone())
        .unwrap_or_else(|| "<none>".to_owned())
}

async fn create_namespace(client: &kube::Client, name: &str) {
    let ns: Namespace =
        serde_json::from_value(json!({ "metadata": { "name": name } })).expect("namespace object");
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &ns)
        .await
        .unwrap_or_else(|e| panic!("creating namespace {name}: {e}"));
}

/// Output and final status of one exec through the apiserver.
struct ExecResult {
    stdout: String,
    stderr: String,
    status: k8s_openapi::apimachinery::pkg::apis::meta::v1::Status,
}

async fn exec(pods: &Api<Pod>, pod: &str, command: &[&str]) -> ExecResult {
    let params = AttachParams::default()
        .container("main")
        .stdout(true)
        .stderr(true);
    let mut attached = pods
        .exec(pod, command.iter().copied(), &params)
        .await
        .unwrap_or_else(|e| panic!("exec {command:?} in {pod}: {e}"));
    let mut out = attached.stdout().expect("stdout requested");
    let mut err = attached.stderr().expect("stderr requested");
    let status = attached.take_status().expect("status taken once");
    let (mut stdout, mut stderr) = (String::new(), String::new());
    let (o, e) = tokio::join!(
        out.read_to_string(&mut stdout),
        err.read_to_string(&mut stderr)
    );
    o.expect("reading stdout");
    e.expect("reading stderr");
    let status = status
        .await
        .unwrap_or_else(|| panic!("exec {command:?}: no status received"));
    attached.join().await.expect("exec session ends cleanly");
    ExecResult {
        stdout,
        stderr,
        status,
    }
}

fn exit_code(status: &k8s_openapi::apimachinery::pkg::apis::meta::v1::Status) -> Option<i32> {
    status
        .details
        .as_ref()?
        .causes
        .as_ref()?
        .iter()
        .find(|c| c.reason.as_deref() == Some("ExitCode"))?
        .message
        .as_ref()?
        .parse()
        .ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deployment_becomes_available_execs_and_deletes_in_foreground() {
    let cluster = cluster();
    let client = cluster.admin_client().await;
    let ns = unique_name("e2e");
    create_namespace(&client, &ns).await;

    let deployments: Api<Deployment> = Api::namespaced(client.clone(), &ns);
    let replicasets: Api<ReplicaSet> = Api::namespaced(client.clone(), &ns);
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
    let deployment: Deployment = serde_json::from_value(json!({
        "metadata": { "name": "web", "labels": { "app": "web" } },
        "spec": {
            "replicas": 2,
            "selector": { "matchLabels": { "app": "web" } },
            "template": {
                "metadata": { "labels": { "app": "web" } },
                "spec": { "containers": [ {
                    "name": "main",
                    "image": "registry.invalid/berth/web:1",
                    "env": [ { "name": "GREETING", "value": "hello from the pod spec" } ],
                    "readinessProbe": { "initialDelaySeconds": 1, "exec": { "command": ["true"] } },
                } ] },
            },
        },
    }))
    .expect("deployment object");
    deployments
        .create(&PostParams::default(), &deployment)
        .await
        .expect("creating the deployment");

    let by_app = ListParams::default().labels("app=web");
    let ready_pods = wait_for("2 Ready pods of deployment web", WAIT, || async {
        let list = match pods.list(&by_app).await {
            Ok(list) => list,
            Err(e) => return Check::Pending(format!("list error {e}")),
        };
        let seen: Vec<String> = list
            .items
            .iter()
            .map(|p| format!("{} {} ready={}", p.name_any(), phase(p), pod_ready(p)))
            .collect();
        let ready: Vec<String> = list
            .items
            .iter()
            .filter(|p| pod_ready(p) && phase(p) == "Running")
            .map(|p| p.name_any())
            .collect();
        if ready.len() == 2 {
            Check::Done(ready)
        } else {
            Check::Pending(format!("{seen:?} ({})", cluster.logs_hint()))
        }
    })
    .await;

    wait_for("deployment web available with 2 replicas", WAIT, || async {
        let d = match deployments.get("web").await {
            Ok(d) => d,
            Err(e) => return Check::Pending(format!("get error {e}")),
        };
        let status = d.status.clone().unwrap_or_default();
        let available = status
            .conditions
            .unwrap_or_default()
            .iter()
            .any(|c| c.type_ == "Available" && c.status == "True");
        if available && status.available_replicas == Some(2) {
            Check::Done(())
        } else {
            Check::Pending(format!(
                "available={available} availableReplicas={:?} readyReplicas={:?}",
                status.available_replicas, status.ready_replicas
            ))
        }
    })
    .await;

    // Exec through the apiserver, into the simulated kubelet, which runs it for real.
    let pod = &ready_pods[0];
    let ok = exec(&pods, pod, &["sh", "-c", "echo \"$GREETING\"; pwd"]).await;
    assert_eq!(
        ok.status.status.as_deref(),
        Some("Success"),
        "{:?}",
        ok.status
    );
    let mut lines = ok.stdout.lines();
    assert_eq!(lines.next(), Some("hello from the pod spec"));
    let cwd = lines.next().unwrap_or_default();
    assert!(
        cwd.ends_with(&format!("/{ns}/{pod}")),
        "runs in the pod's scratch dir, got {cwd:?}"
    );
    assert_eq!(ok.stderr, "");

    let failed = exec(&pods, pod, &["sh", "-c", "echo out; echo err >&2; exit 3"]).await;
    assert_eq!(failed.stdout, "out\n");
    assert_eq!(failed.stderr, "err\n");
    assert_eq!(failed.status.status.as_deref(), Some("Failure"));
    assert_eq!(failed.status.reason.as_deref(), Some("NonZeroExitCode"));
    assert_eq!(exit_code(&failed.status), Some(3), "{:?}", failed.status);

    let missing = exec(&pods, pod, &["/nonexistent/berth-no-such-command"]).await;
    assert_eq!(missing.status.status.as_deref(), Some("Failure"));
    assert!(
        missing
            .status
            .message
            .as_deref()
            .is_some_and(|m| m.contains("failed to start")),
        "{:?}",
        missing.status
    );

    // A rollout completes: old pods are finalized by the node, new ones become Ready.
    let patch = json!({ "spec": { "template": { "spec": { "containers": [
        { "name": "main", "image": "registry.invalid/berth/web:2" }
    ] } } } });
    deployments
        .patch("web", &PatchParams::default(), &Patch::Strategic(&patch))
        .await
        .expect("updating the deployment image");
    wait_for("rollout of web:2 to complete", WAIT, || async {
        let (d, list) = match (deployments.get("web").await, pods.list(&by_app).await) {
            (Ok(d), Ok(list)) => (d, list),
            (d, l) => return Check::Pending(format!("errors {:?} {:?}", d.err(), l.err())),
        };
        let status = d.status.clone().unwrap_or_default();
        let images: Vec<String> = list
            .items
            .iter()
            .filter_map(|p| p.spec.as_ref()?.containers.first()?.image.clone())
            .collect();
        let done = status.observed_generation == d.metadata.generation
            && status.updated_replicas == Some(2)
            && status.available_replicas == Some(2)
            && status.replicas == Some(2)
            && images.len() == 2
            && images.iter().all(|i| i.ends_with(":2"));
        if done {
            Check::Done(())
        } else {
            Check::Pending(format!("status={status:?} pod images={images:?}"))
        }
    })
    .await;

    // Foreground deletion: the Deployment goes only after its ReplicaSet and pods.
    deployments
        .delete("web", &DeleteParams::foreground())
        .await
        .expect("deleting the deployment");
    wait_for("deployment, replicaset and pods gone", WAIT, || async {
        let d = deployments.get_opt("web").await;
        let rs = replicasets.list(&by_app).await;
        let p = pods.list(&ListParams::default()).await;
        match (d, rs, p) {
            (Ok(None), Ok(rs), Ok(p)) if rs.items.is_empty() && p.items.is_empty() => {
                Check::Done(())
            }
            (d, rs, p) => Check::Pending(format!(
                "deployment={:?} replicasets={:?} pods={:?}",
                d.map(|d| d.map(|d| d.name_any())),
                rs.map(|l| l.items.iter().map(|r| r.name_any()).collect::<Vec<_>>()),
                p.map(|l| l
                    .items
                    .iter()
                    .map(|p| format!("{} {}", p.name_any(), phase(p)))
                    .collect::<Vec<_>>()),
            )),
        }
    })
    .await;

    Api::<Namespace>::all(client)
        .delete(&ns, &DeleteParams::default())
        .await
        .expect("deleting the test namespace");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn never_ready_image_runs_but_never_becomes_ready() {
    let cluster = cluster();
    let client = cluster.admin_client().await;
    let ns = unique_name("e2e-nr");
    create_namespace(&client, &ns).await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
    let pod: Pod = serde_json::from_value(json!({
        "metadata": { "name": "stuck" },
        "spec": { "containers": [ { "name": "main", "image": "registry.invalid/never-ready:1" } ] },
    }))
    .expect("pod object");
    pods.create(&PostParams::default(), &pod)
        .await
        .expect("creating the pod");
    wait_for("pod stuck Running", WAIT, || async {
        match pods.get("stuck").await {
            Ok(p) if phase(&p) == "Running" => Check::Done(()),
            Ok(p) => Check::Pending(phase(&p)),
            Err(e) => Check::Pending(e.to_string()),
        }
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let p = pods.get("stuck").await.expect("pod still there");
    assert_eq!(phase(&p), "Running");
    assert!(!pod_ready(&p), "a never-ready pod became Ready");
    Api::<Namespace>::all(client)
        .delete(&ns, &DeleteParams::default())
        .await
        .expect("deleting the test namespace");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limited_user_is_confined_to_its_namespace() {
    let limited = cluster().limited_client().await;
    let forbidden = |r: Result<_, kube::Error>, what: &str| match r {
        Err(kube::Error::Api(s)) if s.code == 403 => {}
        other => panic!("{what}: expected 403 Forbidden, got {other:?}"),
    };

    Api::<Pod>::namespaced(limited.clone(), LIMITED_NAMESPACE)
        .list(&ListParams::default())
        .await
        .expect("limited user may list pods in its namespace");
    Api::<Deployment>::namespaced(limited.clone(), LIMITED_NAMESPACE)
        .list(&ListParams::default())
        .await
        .expect("limited user may list deployments in its namespace");

    forbidden(
        Api::<Pod>::namespaced(limited.clone(), "default")
            .list(&ListParams::default())
            .await
            .map(|_| ()),
        "pods in default",
    );
    forbidden(
        Api::<Deployment>::all(limited.clone())
            .list(&ListParams::default())
            .await
            .map(|_| ()),
        "deployments in all namespaces",
    );
    forbidden(
        Api::<Namespace>::all(limited.clone())
            .list(&ListParams::default())
            .await
            .map(|_| ()),
        "namespaces",
    );
    forbidden(
        Api::<Secret>::namespaced(limited, LIMITED_NAMESPACE)
            .list(&ListParams::default())
            .await
            .map(|_| ()),
        "secrets in its own namespace (not granted)",
    );
}
