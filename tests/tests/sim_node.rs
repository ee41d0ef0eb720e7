//! The simulated node behaves like a kubelet where berth can tell the difference: a deleted
//! pod is Terminating for its (capped) grace period, exec sessions end with their pod, exec
//! speaks the subprotocol the client prefers, and exec probes run for real.

use std::time::{Duration, Instant};

use berth_e2e::{Check, cluster, unique_name, wait_for};
use k8s_openapi::{
    api::core::v1::{ContainerStatus, Namespace, Node, Pod},
    apimachinery::pkg::apis::meta::v1::Status,
};
use kube::{
    Api,
    api::{AttachParams, DeleteParams, ListParams, PostParams},
};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _, BufReader};

const WAIT: Duration = Duration::from_secs(30);
/// The node's annotation giving its grace cap in ms.
const GRACE_CAP_ANNOTATION: &str = "sim.berth.dev/grace-cap-ms";

/// The grace cap the simulated node publishes on its Node.
async fn grace_cap(client: &kube::Client) -> Duration {
    let node = Api::<Node>::all(client.clone())
        .get("sim-node")
        .await
        .expect("the simulated Node");
    let ms = node
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(GRACE_CAP_ANNOTATION))
        .unwrap_or_else(|| {
            panic!("the Node has no {GRACE_CAP_ANNOTATION} annotation: an older sim node?")
        });
    Duration::from_millis(ms.parse().expect("a number of ms"))
}

async fn namespace(client: &kube::Client, prefix: &str) -> (String, Api<Pod>) {
    let name = unique_name(prefix);
    let ns: Namespace =
        serde_json::from_value(json!({ "metadata": { "name": name } })).expect("namespace");
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &ns)
        .await
        .unwrap_or_else(|e| panic!("creating namespace {name}: {e}"));
    let pods = Api::namespaced(client.clone(), &name);
    (name, pods)
}

async fn drop_namespace(client: &kube::Client, ns: &str) {
    Api::<Namespace>::all(client.clone())
        .delete(ns, &DeleteParams::default())
        .await
        .expect("deleting the test namespace");
}

fn ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|cs| cs.iter().find(|c| c.type_ == "Ready"))
        .is_some_and(|c| c.status == "True")
}

fn container(pod: &Pod, name: &str) -> Option<ContainerStatus> {
    pod.status
        .as_ref()?
        .container_statuses
        .as_ref()?
        .iter()
        .find(|c| c.name == name)
        .cloned()
}

/// Creates pod `name` from `spec` and waits until it is Running (and Ready if `until_ready`).
async fn run_pod(pods: &Api<Pod>, name: &str, spec: Value, until_ready: bool) {
    let pod: Pod = serde_json::from_value(json!({ "metadata": { "name": name }, "spec": spec }))
        .expect("pod object");
    pods.create(&PostParams::default(), &pod)
        .await
        .unwrap_or_else(|e| panic!("creating pod {name}: {e}"));
    wait_for(&format!("pod {name} running"), WAIT, || async {
        match pods.get(name).await {
            Ok(p) => {
                let phase = p.status.as_ref().and_then(|s| s.phase.clone());
                if phase.as_deref() == Some("Running") && (ready(&p) || !until_ready) {
                    Check::Done(())
                } else {
                    Check::Pending(format!("phase {phase:?} ready {}", ready(&p)))
                }
            }
            Err(e) => Check::Pending(e.to_string()),
        }
    })
    .await;
}

/// Runs `command` in `container` of `pod`; its stdout and final status.
async fn exec(pods: &Api<Pod>, pod: &str, container: &str, command: &[&str]) -> (String, Status) {
    let params = AttachParams::default()
        .container(container)
        .stdout(true)
        .stderr(false);
    let mut attached = pods
        .exec(pod, command.iter().copied(), &params)
        .await
        .unwrap_or_else(|e| panic!("exec {command:?} in {pod}: {e}"));
    let status = attached.take_status().expect("status taken once");
    let mut stdout = String::new();
    attached
        .stdout()
        .expect("stdout requested")
        .read_to_string(&mut stdout)
        .await
        .expect("reading stdout");
    let status = status
        .await
        .unwrap_or_else(|| panic!("exec {command:?}: no status"));
    (stdout, status)
}

fn exit_code(status: &Status) -> Option<i32> {
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

fn one_container(extra: Value) -> Value {
    let mut main = json!({ "name": "main", "image": "registry.invalid/berth/sim:1" });
    if let (Some(main), Some(extra)) = (main.as_object_mut(), extra.as_object()) {
        main.extend(extra.clone());
    }
    json!({ "containers": [main] })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_pod_is_terminating_for_its_capped_grace_then_gone() {
    let client = cluster().admin_client().await;
    let grace = grace_cap(&client).await.min(Duration::from_secs(30));
    // Below that, the pod may be gone before a list sees it Terminating: the test would
    // prove nothing, so it refuses rather than skip its checks.
    assert!(
        grace >= Duration::from_millis(500),
        "this test needs the node's grace cap at 500 ms or more (BERTH_SIM_GRACE_CAP_MS), not {grace:?}"
    );
    let (ns, pods) = namespace(&client, "sim-term").await;
    let mut spec = one_container(json!({}));
    spec["terminationGracePeriodSeconds"] = json!(30);
    run_pod(&pods, "p", spec, true).await;

    let started = Instant::now();
    pods.delete("p", &DeleteParams::default())
        .await
        .expect("deleting the pod");
    let by_name = ListParams::default().fields("metadata.name=p");
    let (mut listed_terminating, mut seen_not_ready) = (0, false);
    loop {
        let list = pods.list(&by_name).await.expect("listing pods");
        let Some(p) = list.items.first() else { break };
        assert!(
            p.metadata.deletion_timestamp.is_some(),
            "listed without a deletionTimestamp after its deletion"
        );
        listed_terminating += 1;
        seen_not_ready |= !ready(p) && container(p, "main").is_some_and(|c| !c.ready);
        assert!(
            started.elapsed() < grace + Duration::from_secs(15),
            "still there {:?} after its deletion (grace {grace:?})",
            started.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let gone_after = started.elapsed();
    assert!(
        gone_after >= grace.mul_f64(0.9),
        "gone after {gone_after:?}, before its grace of {grace:?}"
    );
    assert!(
        listed_terminating >= 2,
        "seen Terminating {listed_terminating} times"
    );
    assert!(
        seen_not_ready,
        "its container never went not ready while Terminating"
    );
    drop_namespace(&client, &ns).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exec_session_in_a_deleted_pod_ends_when_its_grace_does() {
    let client = cluster().admin_client().await;
    let grace = grace_cap(&client).await.min(Duration::from_secs(30));
    let (ns, pods) = namespace(&client, "sim-exec-end").await;
    let mut spec = one_container(json!({}));
    spec["terminationGracePeriodSeconds"] = json!(30);
    run_pod(&pods, "p", spec, false).await;

    let params = AttachParams::default()
        .container("main")
        .stdout(true)
        .stderr(false);
    let command = ["sh", "-c", "echo started; sleep 60; echo finished"];
    let mut attached = pods.exec("p", command, &params).await.expect("exec");
    let status = attached.take_status().expect("status taken once");
    let mut stdout = BufReader::new(attached.stdout().expect("stdout requested"));
    let mut line = String::new();
    stdout.read_line(&mut line).await.expect("first line");
    assert_eq!(line, "started\n");

    let started = Instant::now();
    pods.delete("p", &DeleteParams::default())
        .await
        .expect("deleting the pod");
    let limit = grace + Duration::from_secs(20);
    let mut rest = String::new();
    tokio::time::timeout(limit, stdout.read_to_string(&mut rest))
        .await
        .unwrap_or_else(|_| panic!("the session outlived its pod's grace by far ({limit:?})"))
        .expect("reading stdout");
    let status = tokio::time::timeout(limit, status)
        .await
        .expect("the status in time")
        .expect("a final status");
    let ended_after = started.elapsed();
    assert_eq!(rest, "", "the command went on");
    assert_eq!(status.status.as_deref(), Some("Failure"), "{status:?}");
    assert_eq!(
        status.reason.as_deref(),
        Some("NonZeroExitCode"),
        "{status:?}"
    );
    assert_eq!(exit_code(&status), Some(137), "killed: {status:?}");
    assert!(
        ended_after >= grace.mul_f64(0.9),
        "ended {ended_after:?} after the deletion, before the grace of {grace:?} was over"
    );
    wait_for("the pod gone", WAIT, || async {
        match pods.get_opt("p").await {
            Ok(None) => Check::Done(()),
            other => Check::Pending(format!("{:?}", other.map(|p| p.is_some()))),
        }
    })
    .await;
    drop_namespace(&client, &ns).await;
}

/// Opens an exec WebSocket offering `offered`; the answer's status and chosen subprotocol.
async fn handshake(client: &kube::Client, ns: &str, offered: &str) -> (u16, Option<String>) {
    let params = AttachParams::default().container("main").stderr(false);
    let mut request = kube::core::Request::new(format!("/api/v1/namespaces/{ns}/pods"))
        .exec("p", ["true"], &params)
        .expect("an exec request");
    let headers = request.headers_mut();
    headers.insert("connection", "Upgrade".parse().expect("header"));
    headers.insert("upgrade", "websocket".parse().expect("header"));
    headers.insert("sec-websocket-version", "13".parse().expect("header"));
    headers.insert(
        "sec-websocket-key",
        "dGhlIHNhbXBsZSBub25jZQ==".parse().expect("header"),
    );
    headers.insert("sec-websocket-protocol", offered.parse().expect("header"));
    let response = client
        .send(request.map(kube::client::Body::from))
        .await
        .expect("the handshake");
    let chosen = response
        .headers()
        .get("sec-websocket-protocol")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    (response.status().as_u16(), chosen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_speaks_the_subprotocol_the_client_prefers() {
    let client = cluster().admin_client().await;
    let (ns, pods) = namespace(&client, "sim-proto").await;
    let side = json!({ "name": "side", "image": "registry.invalid/berth/side:1" });
    let mut spec = one_container(json!({}));
    spec["containers"]
        .as_array_mut()
        .expect("containers")
        .push(side);
    run_pod(&pods, "p", spec, false).await;

    // As the 1.20 kubelet it claims to be: v4 at the newest (v5 came with 1.30), so a
    // client that prefers v5 (kube-rs) gets v4, and one offering v5 alone is refused.
    let v4 = "v4.channel.k8s.io";
    let v5 = "v5.channel.k8s.io";
    for (offered, answer) in [
        (v4.to_owned(), (101, Some(v4.to_owned()))),
        (format!("{v4}, {v5}"), (101, Some(v4.to_owned()))),
        (format!("{v5}, {v4}"), (101, Some(v4.to_owned()))),
    ] {
        assert_eq!(
            handshake(&client, &ns, &offered).await,
            answer,
            "offered {offered}"
        );
    }
    let (code, _) = handshake(&client, &ns, v5).await;
    assert_ne!(code, 101, "a 1.20 kubelet does not speak v5 alone");

    // On v4 a client can end its stdin only by closing the whole connection: the session
    // ends at once, the command with it, and there is no status (what berth's exec must
    // never do before the status has come).
    let params = AttachParams::default()
        .container("main")
        .stdin(true)
        .stdout(true)
        .stderr(false);
    let started = Instant::now();
    let mut attached = pods
        .exec("p", ["sh", "-c", "sleep 20; echo late"], &params)
        .await
        .expect("exec");
    let status = attached.take_status().expect("status taken once");
    attached
        .stdin()
        .expect("stdin requested")
        .shutdown()
        .await
        .expect("closing stdin");
    let status = tokio::time::timeout(WAIT, status)
        .await
        .expect("the session ended");
    let ended = started.elapsed();
    assert!(
        status.is_none(),
        "a status after the client's close: {status:?}"
    );
    assert!(
        ended < Duration::from_secs(10),
        "the session went on for {ended:?}"
    );

    // The command learns which container it runs in.
    for name in ["main", "side"] {
        let (out, status) =
            exec(&pods, "p", name, &["sh", "-c", "echo $BERTH_SIM_CONTAINER"]).await;
        assert_eq!(status.status.as_deref(), Some("Success"), "{status:?}");
        assert_eq!(out, format!("{name}\n"));
    }
    drop_namespace(&client, &ns).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exec_readiness_probe_decides_whether_the_pod_is_ready() {
    let client = cluster().admin_client().await;
    let (ns, pods) = namespace(&client, "sim-ready").await;
    let probe = json!({ "readinessProbe": {
        "exec": { "command": ["test", "-f", "ready"] },
        "periodSeconds": 1, "failureThreshold": 1,
    } });
    run_pod(&pods, "p", one_container(probe), false).await;

    // Probes at 0, 1 s: the file is not there, the pod is not Ready.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let p = pods.get("p").await.expect("the pod");
    assert!(!ready(&p), "Ready though its readiness probe fails");
    assert_eq!(container(&p, "main").map(|c| c.ready), Some(false));

    let (_, status) = exec(&pods, "p", "main", &["touch", "ready"]).await;
    assert_eq!(status.status.as_deref(), Some("Success"), "{status:?}");
    let readiness = |want: bool| {
        let pods = pods.clone();
        async move {
            match pods.get("p").await {
                Ok(p)
                    if ready(&p) == want
                        && container(&p, "main").is_some_and(|c| c.ready == want) =>
                {
                    Check::Done(())
                }
                Ok(p) => Check::Pending(format!("ready {}", ready(&p))),
                Err(e) => Check::Pending(e.to_string()),
            }
        }
    };
    wait_for(
        "Ready once the probe passes",
        Duration::from_secs(10),
        || readiness(true),
    )
    .await;

    exec(&pods, "p", "main", &["rm", "ready"]).await;
    wait_for(
        "not Ready once it fails again",
        Duration::from_secs(10),
        || readiness(false),
    )
    .await;
    drop_namespace(&client, &ns).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_liveness_probe_restarts_the_container() {
    let client = cluster().admin_client().await;
    // The kubelet kills the container with its grace period (1 s here), capped.
    let kill = grace_cap(&client).await.min(Duration::from_secs(1));
    let (ns, pods) = namespace(&client, "sim-live").await;
    // Fails once when the file is there (and removes it): exactly one restart.
    let probe = json!({ "livenessProbe": {
        "exec": { "command": ["sh", "-c", "if [ -f broken ]; then rm broken; exit 1; fi"] },
        "periodSeconds": 1, "failureThreshold": 1,
    } });
    let mut spec = one_container(probe);
    spec["terminationGracePeriodSeconds"] = json!(1);
    run_pod(&pods, "p", spec, true).await;
    let before = container(&pods.get("p").await.expect("pod"), "main").expect("status");
    assert_eq!(before.restart_count, 0);

    exec(&pods, "p", "main", &["touch", "broken"]).await;
    let started = Instant::now();
    let mut seen_not_ready = false;
    let restarted = loop {
        let p = pods.get("p").await.expect("the pod");
        let c = container(&p, "main").expect("a container status");
        seen_not_ready |= !c.ready;
        if c.restart_count >= 1 && c.ready {
            break c;
        }
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "no restart yet: {c:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let last = restarted
        .last_state
        .and_then(|s| s.terminated)
        .expect("lastState.terminated after a restart");
    assert_eq!(last.exit_code, 137);
    assert_eq!(last.reason.as_deref(), Some("Error"));
    assert!(last.finished_at.is_some() && last.started_at.is_some());
    if kill >= Duration::from_millis(300) {
        assert!(seen_not_ready, "never seen not ready around its restart");
    }
    // The probe passes again: no more restarts.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let after = container(&pods.get("p").await.expect("pod"), "main").expect("status");
    assert_eq!(after.restart_count, 1, "{after:?}");
    drop_namespace(&client, &ns).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_session_ends_with_its_status_even_when_the_client_keeps_talking() {
    // A client still sending (stdin frames, here) when the command has ended: a node that
    // closed its socket with that input unread made the kernel answer with a reset, and
    // the API server then cut the client off before passing on the status (the `exec`
    // flake). Many short sessions at once, each with a chatty client: every one gets its
    // output and its exit status.
    let client = cluster().admin_client().await;
    let (ns, pods) = namespace(&client, "sim-chatty").await;
    run_pod(&pods, "p", one_container(json!({})), false).await;
    const SESSIONS: usize = 24;
    let sessions: Vec<_> = (0..SESSIONS)
        .map(|i| {
            let pods = pods.clone();
            tokio::spawn(async move {
                let params = AttachParams::default()
                    .container("main")
                    .stdin(true)
                    .stdout(true)
                    .stderr(false);
                let command = ["sh", "-c", &format!("echo {i}; exit {}", i % 3)];
                let mut attached = pods.exec("p", command, &params).await.expect("exec");
                let status = attached.take_status().expect("status taken once");
                let mut stdin = attached.stdin().expect("stdin requested");
                let mut stdout = attached.stdout().expect("stdout requested");
                // Talks until the session is over (its writes then fail).
                let talking = tokio::spawn(async move {
                    let chunk = [b'x'; 512];
                    for _ in 0..2000 {
                        if stdin.write_all(&chunk).await.is_err() {
                            break;
                        }
                        tokio::time::sleep(Duration::from_millis(1)).await;
                    }
                });
                // A broken session leaves kube's stdout open: bounded, so a loss is a failure
                // of this test, not a hang.
                let mut out = String::new();
                let read = tokio::time::timeout(WAIT, stdout.read_to_string(&mut out)).await;
                let status = match read {
                    Ok(_) => tokio::time::timeout(WAIT, status).await.ok().flatten(),
                    Err(_) => None,
                };
                talking.abort();
                (i, out, status)
            })
        })
        .collect();
    let mut lost = Vec::new();
    for session in sessions {
        let (i, out, status) = session.await.expect("the session's task");
        let code = match &status {
            Some(s) if s.status.as_deref() == Some("Success") => Some(0),
            Some(s) => exit_code(s),
            None => None,
        };
        if (out.as_str(), code) != (format!("{i}\n").as_str(), Some((i % 3) as i32)) {
            lost.push(format!("session {i}: output {out:?}, status {status:?}"));
        }
    }
    assert!(
        lost.is_empty(),
        "{} of {SESSIONS} sessions:\n{}",
        lost.len(),
        lost.join("\n")
    );
    drop_namespace(&client, &ns).await;
}
