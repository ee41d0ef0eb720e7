//! berth when the cluster misbehaves, on a control plane of the fault tests' own: the API
//! server killed and started again in the middle of `deploy --wait`, `wait`, `status` and
//! `undeploy --wait`; an outage longer than the timeout; two deploys of one component at
//! once. Each test says how long berth took to recover.

use std::process::{Command, Output};
use std::time::{Duration, Instant, SystemTime};

use berth_e2e::command::{self, Running};
use common::ok;

use crate::common;
use berth_e2e::faults::{drop_namespace, exclusive, fault_cluster, namespace};
use berth_e2e::proxy::{Outcome, Proxy, Rule};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::api::{Api, DeleteParams, ListParams};

/// How long the API server stays away in the restart tests.
const OUTAGE: Duration = Duration::from_secs(3);

/// The timeout of every command that needs the controllers to act after a restart. The
/// 1.20 controller manager's informers whose watches broke list again only after a back-off
/// of [30 s, 60 s) while their previous one is under 2 minutes old (client-go's reflector:
/// 800 ms doubling to 30 s, jitter 1.0, reset after 2 min), and these tests restart the
/// server about once a minute. Measured here: a Deployment's ReplicaSet made 55 s after the
/// restart; once `wait` timed out at 90 s with 0 of 2 pods available. Two such waits in a
/// row (the ReplicaSet, then its pods' readiness) fit in this; berth's own part is bounded
/// by [`noticed_within`].
const CATCH_UP: &str = "180s";

/// Every berth process of these tests is killed, and its test failed, past this.
const LIMIT: Duration = Duration::from_secs(210);

fn berth(ns: &str, args: &[&str]) -> Command {
    common::berth_in(&fault_cluster().admin_kubeconfig, ns, args)
}

/// Run berth to its end (killed, and the test failed, past [`LIMIT`]).
fn run(ns: &str, args: &[&str]) -> Output {
    command::output(&mut berth(ns, args), LIMIT)
}

fn spawn(ns: &str, args: &[&str]) -> Running {
    command::spawn(&mut berth(ns, args))
}

fn finish(running: Running) -> Output {
    running.finish(LIMIT)
}

/// A spec whose pods become ready 5 s after they start (the default rules' HTTP readiness
/// probe has a 5 s initial delay): a rollout that stays open long enough for an outage.
fn slow_spec(dir: &tempfile::TempDir, name: &str, image: &str) -> String {
    let path = dir
        .path()
        .join(format!("{name}-{}.yaml", image.replace([':', '/'], "-")));
    let text = format!(
        "component_name: {name}\nimage: {image}\nreplicas: 2\nports: ['80:0']\nreadiness:\n  type: http\n  endpoint: /healthz\n"
    );
    std::fs::write(&path, text).expect("spec");
    path.to_string_lossy().into_owned()
}

/// The Deployment of `component`, with every replica updated and available.
async fn rolled_out(client: &kube::Client, ns: &str, component: &str) -> Deployment {
    let d = Api::<Deployment>::namespaced(client.clone(), ns)
        .get(&format!("dep-{component}"))
        .await
        .expect("the Deployment");
    let status = d.status.clone().unwrap_or_default();
    let want = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
    assert_eq!(
        (status.updated_replicas, status.available_replicas),
        (Some(want), Some(want)),
        "not rolled out: {status:?}"
    );
    d
}

/// [`ok`], and when berth failed, what the controllers and the node had made of the
/// rollouts in `ns` at that moment (beside berth's own output).
async fn ok_or_show(out: &Output, client: &kube::Client, ns: &str) -> String {
    if !out.status.success() {
        eprintln!("{}", common::rollout_state(client, ns).await);
    }
    ok(out)
}

/// Asserts that berth, returning at `returned`, did so within a few seconds of the moment
/// the controller manager saw `component`'s rollout complete (its Progressing condition
/// turning NewReplicaSetAvailable; server times are whole seconds). berth watches: a berth
/// that lost its watch in the restart and noticed only at a slow poll, or only at its
/// timeout, fails here however long the controllers took.
async fn noticed_within(client: &kube::Client, ns: &str, component: &str, returned: SystemTime) {
    const BOUND: Duration = Duration::from_secs(6);
    let d = rolled_out(client, ns, component).await;
    let conditions = d.status.and_then(|s| s.conditions).unwrap_or_default();
    let complete = conditions
        .iter()
        .find(|c| c.type_ == "Progressing" && c.reason.as_deref() == Some("NewReplicaSetAvailable"))
        .and_then(|c| c.last_update_time.as_ref())
        .unwrap_or_else(|| panic!("no completed Progressing condition: {conditions:?}"));
    let returned = Timestamp::try_from(returned).expect("a time after 1970");
    let lag = returned.duration_since(complete.0);
    assert!(
        lag < SignedDuration::try_from(BOUND).unwrap(),
        "berth returned {lag:#} after the controllers saw the rollout complete ({})",
        complete.0
    );
}

/// Wait a little into a command, so the outage falls in its middle.
fn into_the_command() {
    std::thread::sleep(Duration::from_millis(1500));
}

#[tokio::test(flavor = "multi_thread")]
async fn deploy_wait_rides_out_an_api_server_restart() {
    let _one = exclusive().await;
    let (client, ns) = namespace("fault-deploy").await;
    let dir = tempfile::tempdir().unwrap();
    let spec = slow_spec(&dir, "ride", "nginx:1.27");
    let started = Instant::now();
    let deploy = spawn(
        &ns,
        &["deploy", "--spec", &spec, "--wait", "--timeout", CATCH_UP],
    );
    into_the_command();
    let outage = tokio::task::spawn_blocking(|| fault_cluster().restart_apiserver(OUTAGE))
        .await
        .unwrap();
    let out = finish(deploy);
    let returned = SystemTime::now();
    ok_or_show(&out, &client, &ns).await;
    eprintln!(
        "deploy --wait: API server away {:.1?}; berth finished {:.1?} after it started",
        outage,
        started.elapsed()
    );
    // Right when it returns: every replica of the new template available, and berth
    // returned as soon as the controllers said so.
    noticed_within(&client, &ns, "ride", returned).await;
    drop_namespace(&client, &ns).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn wait_and_status_ride_out_an_api_server_restart() {
    let _one = exclusive().await;
    let (client, ns) = namespace("fault-wait").await;
    let dir = tempfile::tempdir().unwrap();
    let steady = slow_spec(&dir, "steady", "nginx:1.27");
    ok(&run(
        &ns,
        &["deploy", "--spec", &steady, "--wait", "--timeout", CATCH_UP],
    ));
    let spec = slow_spec(&dir, "patient", "nginx:1.27");
    ok(&run(&ns, &["deploy", "--spec", &spec]));
    let wait = spawn(&ns, &["wait", "patient", "--timeout", CATCH_UP]);
    into_the_command();
    // A plain read sent while the API server is away (it is, the moment `status` starts):
    // retried until it is back, then answered exactly. A status that gave up, or answered
    // before the server was back, fails here.
    let stopped = tokio::task::spawn_blocking(|| fault_cluster().stop_apiserver())
        .await
        .unwrap();
    let asked = Instant::now();
    let status = spawn(&ns, &["status", "steady"]);
    tokio::time::sleep(OUTAGE).await;
    let outage = tokio::task::spawn_blocking(move || stopped.start())
        .await
        .unwrap();
    let back = asked.elapsed();
    let status = finish(status);
    let answered = asked.elapsed();
    let stdout = ok(&status);
    assert!(
        stdout.contains("replicas: 2 desired, 2 updated, 2 ready, 2 available\n")
            && stdout.contains("available: yes\n"),
        "status of an available component: {stdout}"
    );
    assert!(
        answered >= OUTAGE && answered < back + Duration::from_secs(10),
        "status answered {answered:.1?} after it was sent; the API server was back after {back:.1?}"
    );
    let waited = finish(wait);
    let returned = SystemTime::now();
    ok_or_show(&waited, &client, &ns).await;
    eprintln!(
        "wait: API server away {outage:.1?}; status sent into the outage answered after \
         {answered:.1?} (server back after {back:.1?})"
    );
    noticed_within(&client, &ns, "patient", returned).await;
    drop_namespace(&client, &ns).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn undeploy_wait_rides_out_an_api_server_restart_and_leaves_nothing() {
    let _one = exclusive().await;
    let (client, ns) = namespace("fault-undeploy").await;
    let dir = tempfile::tempdir().unwrap();
    let spec = slow_spec(&dir, "leaving", "nginx:1.27");
    ok(&run(
        &ns,
        &["deploy", "--spec", &spec, "--wait", "--timeout", CATCH_UP],
    ));
    // The API server goes away first and undeploy starts into the outage: its reads and
    // deletes are sent again until the server is back, then it waits for the pods.
    let restart = tokio::task::spawn_blocking(|| fault_cluster().restart_apiserver(OUTAGE));
    tokio::time::sleep(Duration::from_millis(500)).await;
    let undeploy = spawn(
        &ns,
        &["undeploy", "leaving", "--wait", "--timeout", CATCH_UP],
    );
    let outage = restart.await.unwrap();
    ok_or_show(&finish(undeploy), &client, &ns).await;
    eprintln!("undeploy --wait: API server away {outage:.1?}");
    // Right when it returns: nothing of the component (Deployment, Service, inventory) and
    // nothing the controllers made for it (ReplicaSets, pods).
    assert_eq!(common::leftovers(&client, &ns).await, Vec::<String>::new());
    drop_namespace(&client, &ns).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn undeploy_wait_rides_out_an_api_server_restart_in_the_middle_of_the_deletion() {
    let _one = exclusive().await;
    let (client, ns) = namespace("fault-mid-delete").await;
    let dir = tempfile::tempdir().unwrap();
    let spec = slow_spec(&dir, "midway", "nginx:1.27");
    ok(&run(
        &ns,
        &["deploy", "--spec", &spec, "--wait", "--timeout", CATCH_UP],
    ));
    let undeploy = spawn(
        &ns,
        &["undeploy", "midway", "--wait", "--timeout", CATCH_UP],
    );
    // The API server is killed the moment the foreground deletion has reached the pods
    // (one is Terminating) and stays away past their grace (the node's cap, 1 s): the
    // node's look at a pod whose grace ended fails, and so do the garbage collector's
    // requests. Once a fresh-machine run saw the Deployment still being deleted 90 s
    // later: the simulated node had lost the pod whose look failed (fixed: it retries
    // and, as a kubelet does, looks at every ending pod again every 10 s).
    let pods = Api::<Pod>::namespaced(client.clone(), &ns);
    let reached = Instant::now();
    let terminating = loop {
        let listed = pods.list(&ListParams::default()).await.unwrap().items;
        let ending: Vec<String> = listed
            .iter()
            .filter(|p| p.metadata.deletion_timestamp.is_some())
            .filter_map(|p| p.metadata.name.clone())
            .collect();
        if !ending.is_empty() {
            break ending;
        }
        assert!(
            reached.elapsed() < Duration::from_secs(30),
            "no pod was ever Terminating: {listed:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let stopped = tokio::task::spawn_blocking(|| fault_cluster().stop_apiserver())
        .await
        .unwrap();
    tokio::time::sleep(OUTAGE).await;
    let outage = tokio::task::spawn_blocking(move || stopped.start())
        .await
        .unwrap();
    let back = Instant::now();
    let out = finish(undeploy);
    let after = back.elapsed();
    ok_or_show(&out, &client, &ns).await;
    // Right when it returns: nothing of the component and nothing the controllers made.
    assert_eq!(common::leftovers(&client, &ns).await, Vec::<String>::new());
    eprintln!(
        "undeploy --wait with the API server killed while {terminating:?} was Terminating \
         ({outage:.1?} away): returned {after:.1?} after the server was back"
    );
    drop_namespace(&client, &ns).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_outage_longer_than_the_timeout_fails_clearly_and_in_time() {
    let _one = exclusive().await;
    let (client, ns) = namespace("fault-long").await;
    let dir = tempfile::tempdir().unwrap();
    let spec = slow_spec(&dir, "stranded", "nginx:1.27");
    ok(&run(&ns, &["deploy", "--spec", &spec]));
    let started = Instant::now();
    let wait = spawn(&ns, &["wait", "stranded", "--timeout", "4s"]);
    into_the_command();
    let restart =
        tokio::task::spawn_blocking(|| fault_cluster().restart_apiserver(Duration::from_secs(8)));
    let out = finish(wait);
    let took = started.elapsed();
    restart.await.unwrap();
    // Exit 3 (not available) naming the timeout, within it and a little: never a hang.
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("timed out") || stderr.contains("4s"),
        "{stderr}"
    );
    assert!(
        took < Duration::from_secs(8),
        "berth took {took:?} for a 4 s timeout"
    );
    eprintln!("wait --timeout 4s during an 8 s outage: failed after {took:.1?}: {stderr}");
    drop_namespace(&client, &ns).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn two_deploys_of_one_component_at_once_leave_exactly_one_of_them() {
    let _one = exclusive().await;
    let (client, ns) = namespace("fault-race").await;
    let dir = tempfile::tempdir().unwrap();
    let a = slow_spec(&dir, "racer", "nginx:1.27");
    let b = slow_spec(&dir, "racer", "nginx:1.28");
    // The overlap forced, not hoped for: the first deploy's create of the Deployment is held
    // by the proxy until the second deploy has created it and finished; released, it meets
    // the second's object (409) and must apply over it.
    let proxy = Proxy::start(fault_cluster());
    proxy.add(
        Rule::pause()
            .matching("the first create of the Deployment", |method, path| {
                method == "POST"
                    && path
                        .split('?')
                        .next()
                        .unwrap_or_default()
                        .ends_with("/deployments")
            })
            .times(1),
    );
    let first = command::spawn(&mut common::berth_in(
        proxy.kubeconfig(),
        &ns,
        &["deploy", "--spec", &a],
    ));
    let held = proxy.until_paused(Duration::from_secs(30)).await;
    assert!(
        held.is_some(),
        "the first deploy never created the Deployment:\n{}",
        proxy.log_text()
    );
    let second = command::output(
        &mut common::berth_in(proxy.kubeconfig(), &ns, &["deploy", "--spec", &b]),
        LIMIT,
    );
    ok(&second);
    proxy.release();
    let first = tokio::task::spawn_blocking(move || first.finish(LIMIT))
        .await
        .unwrap();
    ok(&first);
    let creates: Vec<Outcome> = proxy
        .log()
        .into_iter()
        .filter(|s| s.method == "POST" && s.key().ends_with("/deployments"))
        .map(|s| s.outcome)
        .collect();
    assert_eq!(
        creates,
        [Outcome::Forwarded(409), Outcome::Forwarded(201)],
        "the first deploy's create (held, then meeting the second's object), the second's:\n{}",
        proxy.log_text()
    );
    let owned = ListParams::default().labels("berth.dev/component=racer");
    let deployments = Api::<Deployment>::namespaced(client.clone(), &ns)
        .list(&owned)
        .await
        .unwrap();
    assert_eq!(deployments.items.len(), 1, "one Deployment");
    let image = deployments.items[0]
        .spec
        .as_ref()
        .and_then(|s| s.template.spec.as_ref())
        .and_then(|p| p.containers[0].image.clone())
        .unwrap_or_default();
    // The first deploy wrote last: its template is the one left.
    assert_eq!(image, "nginx:1.27");
    // The rest agrees with it: the inventory lists what exists, one of each.
    let maps = Api::<ConfigMap>::namespaced(client.clone(), &ns)
        .list(&owned)
        .await
        .unwrap();
    assert_eq!(maps.items.len(), 1, "one inventory");
    let services = Api::<k8s_openapi::api::core::v1::Service>::namespaced(client.clone(), &ns)
        .list(&owned)
        .await
        .unwrap();
    let mut names: Vec<_> = services
        .items
        .iter()
        .filter_map(|s| s.metadata.name.clone())
        .collect();
    names.sort();
    assert_eq!(names, ["racer"]);
    // And a third deploy of the winner's spec changes nothing: both left one consistent set.
    let diff = run(&ns, &["diff", "--spec", &a]);
    assert_eq!(
        diff.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&diff.stdout)
    );
    drop_namespace(&client, &ns).await;
}

/// The component's running pods, by name.
async fn pods_of(client: &kube::Client, ns: &str, component: &str) -> Vec<String> {
    let lp = ListParams::default().labels(&format!("app={component}"));
    let pods = Api::<Pod>::namespaced(client.clone(), ns)
        .list(&lp)
        .await
        .unwrap();
    let mut names: Vec<String> = pods
        .items
        .into_iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .filter_map(|p| p.metadata.name)
        .collect();
    names.sort();
    names
}

/// A spec of two pods that are ready at once (no readiness probe).
fn quick_spec(dir: &tempfile::TempDir, name: &str) -> String {
    let path = dir.path().join(format!("{name}.yaml"));
    std::fs::write(
        &path,
        format!("component_name: {name}\nimage: nginx:1.27\nreplicas: 2\n"),
    )
    .expect("spec");
    path.to_string_lossy().into_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn exec_in_a_pod_deleted_meanwhile_reports_that_pod_and_finishes_the_others() {
    let _one = exclusive().await;
    let (client, ns) = namespace("fault-exec-del").await;
    let dir = tempfile::tempdir().unwrap();
    let spec = quick_spec(&dir, "busy");
    ok(&run(
        &ns,
        &["deploy", "--spec", &spec, "--wait", "--timeout", CATCH_UP],
    ));
    let pods = pods_of(&client, &ns, "busy").await;
    assert_eq!(pods.len(), 2, "{pods:?}");
    let started = Instant::now();
    let exec = spawn(
        &ns,
        &["exec", "busy", "--", "sh", "-c", "sleep 4; echo done"],
    );
    tokio::time::sleep(Duration::from_millis(1000)).await;
    // A graceful delete: the pod stays Terminating for the node's capped grace, then its
    // containers (and the command in them) are stopped.
    Api::<Pod>::namespaced(client.clone(), &ns)
        .delete(&pods[0], &DeleteParams::default())
        .await
        .expect("delete a pod");
    let out = finish(exec);
    let took = started.elapsed();
    let stdout = String::from_utf8_lossy(&out.stdout);
    // Right when it returns: exit 4 (failed in some pod), the deleted pod's session ended
    // (killed: 137), the other pod's command ran to its end.
    assert_eq!(
        out.status.code(),
        Some(4),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains(&format!("{}: exit code 137", pods[0])),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("{}: exit code 0", pods[1])),
        "{stdout}"
    );
    assert!(stdout.contains(&format!("[{}] done", pods[1])), "{stdout}");
    assert!(!stdout.contains(&format!("[{}] done", pods[0])), "{stdout}");
    eprintln!("exec while a pod is deleted: returned after {took:.1?}:\n{stdout}");
    drop_namespace(&client, &ns).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn exec_across_an_api_server_restart_fails_clearly_and_never_hangs() {
    let _one = exclusive().await;
    let (client, ns) = namespace("fault-exec-api").await;
    let dir = tempfile::tempdir().unwrap();
    let spec = quick_spec(&dir, "cut");
    ok(&run(
        &ns,
        &["deploy", "--spec", &spec, "--wait", "--timeout", CATCH_UP],
    ));
    let pods = pods_of(&client, &ns, "cut").await;
    assert_eq!(pods.len(), 2, "{pods:?}");
    let exec = spawn(
        &ns,
        &["exec", "cut", "--", "sh", "-c", "sleep 6; echo done"],
    );
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let stopped = tokio::task::spawn_blocking(|| fault_cluster().stop_apiserver())
        .await
        .unwrap();
    let killed = Instant::now();
    // Never hangs, and never waits for the command (5 s more) it can no longer hear from:
    // berth returns once the connection broke, while the API server is still away.
    let out = tokio::task::spawn_blocking(move || exec.finish(Duration::from_secs(20)))
        .await
        .unwrap();
    let returned = killed.elapsed();
    let outage = tokio::task::spawn_blocking(move || stopped.start())
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    // The streams ran through the API server, which went away: each command's outcome is
    // unknown, and berth says so per pod (exit 4) rather than inventing an exit code.
    assert_eq!(
        out.status.code(),
        Some(4),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("--- 2 pods, 2 failed\n"), "{stdout}");
    for pod in &pods {
        assert_eq!(
            stdout
                .matches(&format!(
                    "{pod}: the connection broke, the exit status is unknown: "
                ))
                .count(),
            1,
            "{pod}: {stdout}"
        );
    }
    assert!(!stdout.contains("exit code"), "{stdout}");
    assert!(
        returned < Duration::from_secs(3),
        "exec returned {returned:.1?} after the API server was killed"
    );
    eprintln!(
        "exec across an API server restart ({outage:.1?} away): returned {returned:.1?} after the kill:\n{stdout}"
    );
    drop_namespace(&client, &ns).await;
}
