//! The controller on the local control plane: a Component made with kubectl is applied,
//! rolled out and Ready; a spec change follows; a refused spec changes nothing; nothing is
//! written while nothing changes; deleting it removes what it made.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use berth::{COMPONENT_LABEL, MANAGED_BY, MANAGED_BY_LABEL};
use berth_e2e::command::{self, Running};
use berth_e2e::faults::{exclusive, fault_cluster};
use berth_e2e::proxy::Proxy;
use berth_e2e::{Check, cluster, wait_for};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::authentication::v1::TokenRequest;
use k8s_openapi::api::core::v1::{Service, ServiceAccount};
use kube::api::{
    Api, ApiResource, DynamicObject, GroupVersionKind, ListParams, Patch, PatchParams, PostParams,
};
use serde_json::{Value, json};

use crate::common::*;

/// kubectl with `kubeconfig`, as a platform team runs it.
fn kubectl_at(kubeconfig: &Path, args: &[&str], input: Option<&str>) -> std::process::Output {
    let mut command = Command::new("kubectl");
    command.arg("--kubeconfig").arg(kubeconfig).args(args);
    let Some(input) = input else {
        return command::output(&mut command, Duration::from_secs(90));
    };
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kubectl runs");
    use std::io::Write;
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input.as_bytes())
        .expect("kubectl reads");
    child.wait_with_output().expect("kubectl ends")
}

fn kubectl_ok(args: &[&str], input: Option<&str>) -> String {
    kubectl_ok_at(&cluster().admin_kubeconfig, args, input)
}

fn kubectl_ok_at(kubeconfig: &Path, args: &[&str], input: Option<&str>) -> String {
    let out = kubectl_at(kubeconfig, args, input);
    assert!(
        out.status.success(),
        "kubectl {args:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `kubectl apply` of objects several tests apply (the CRD, the controller's namespace and
/// ServiceAccount): kubectl's apply is a read then a create, so of two at once on a cluster
/// without them one meets AlreadyExists. One at a time in this process, and one that met
/// another process's create applies again (an update then).
fn apply_shared(kubeconfig: &Path, objects: &str) {
    static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _turn = ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let first = kubectl_at(kubeconfig, &["apply", "-f", "-"], Some(objects));
    if !first.status.success() {
        let why = String::from_utf8_lossy(&first.stderr);
        assert!(why.contains("AlreadyExists"), "kubectl apply failed: {why}");
        kubectl_ok_at(kubeconfig, &["apply", "-f", "-"], Some(objects));
    }
}

/// The CRD as `berth controller crd` prints it, applied with kubectl and established.
fn install_crd(kubeconfig: &Path) {
    let crd = ok(&berth_as(kubeconfig, "default", &["controller", "crd"]));
    apply_shared(kubeconfig, &crd);
    kubectl_ok_at(
        kubeconfig,
        &[
            "wait",
            "--for=condition=Established",
            "crd/components.berth.dev",
            "--timeout=30s",
        ],
        None,
    );
}

/// The controller's namespace, where its Lease lives (on a cluster no test applied `berth
/// controller rbac` to yet).
fn lease_home(kubeconfig: &Path) {
    let rbac = ok(&berth_as(kubeconfig, "default", &["controller", "rbac"]));
    apply_shared(kubeconfig, &rbac);
}

/// A kubeconfig for the controller's ServiceAccount, with exactly the rules `berth
/// controller rbac -n <ns>` prints (applied here): a TokenRequest token, the cluster's CA.
async fn service_account_kubeconfig(
    admin: &Path,
    client: &kube::Client,
    ns: &str,
    dir: &tempfile::TempDir,
) -> std::path::PathBuf {
    let rbac = ok(&berth_as(admin, ns, &["controller", "rbac"]));
    apply_shared(admin, &rbac);
    let token = service_account_token(client).await;
    let mut config = admin_config(admin);
    let account = berth::SERVICE_ACCOUNT.1;
    config["users"] = json!([{"name": account, "user": {"token": token}}]);
    config["contexts"][0]["context"]["user"] = json!(account);
    let path = dir.path().join("controller.kubeconfig");
    std::fs::write(&path, config.to_string()).expect("write the kubeconfig");
    path
}

/// A TokenRequest token of the controller's ServiceAccount, an hour long.
async fn service_account_token(client: &kube::Client) -> String {
    let (home, account) = berth::SERVICE_ACCOUNT;
    let request: TokenRequest =
        serde_json::from_value(json!({"spec": {"audiences": [], "expirationSeconds": 3600}}))
            .expect("token request");
    Api::<ServiceAccount>::namespaced(client.clone(), home)
        .create_token_request(account, &PostParams::default(), &request)
        .await
        .expect("a token for the controller's ServiceAccount")
        .status
        .expect("token")
        .token
}

/// The admin kubeconfig of the current context, its certificates inline (JSON).
fn admin_config(admin: &Path) -> Value {
    serde_json::from_str(&kubectl_ok_at(
        admin,
        &["config", "view", "--raw", "--minify", "-o", "json"],
        None,
    ))
    .expect("the admin kubeconfig")
}

fn components(client: &kube::Client, ns: &str) -> Api<DynamicObject> {
    let gvk = GroupVersionKind::gvk("berth.dev", "v1alpha1", "Component");
    Api::namespaced_with(client.clone(), ns, &ApiResource::from_gvk(&gvk))
}

fn condition<'a>(component: &'a DynamicObject, type_: &str) -> Option<&'a Value> {
    component.data["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == type_)
}

/// A Component `web` of `image` in `ns`, with `extra` keys in its component spec.
fn declared(ns: &str, image: &str, extra: Value) -> String {
    let mut component = json!({"component_name": "web", "image": image, "replicas": 2});
    if let (Some(c), Value::Object(extra)) = (component.as_object_mut(), extra) {
        c.extend(extra);
    }
    json!({"apiVersion": "berth.dev/v1alpha1", "kind": "Component",
           "metadata": {"name": "web", "namespace": ns},
           "spec": {"component": component}})
    .to_string()
}

/// Until the Component's status describes `generation` with `Ready` of `status`.
async fn until_ready(
    client: &kube::Client,
    ns: &str,
    generation: i64,
    ready: &str,
) -> DynamicObject {
    let api = components(client, ns);
    wait_for(
        &format!("status of generation {generation} with Ready={ready}"),
        Duration::from_secs(90),
        || async {
            let now = api.get("web").await.expect("Component");
            let observed = now.data["status"]["observedGeneration"].as_i64();
            let is = condition(&now, "Ready").map(|c| c["status"].clone());
            if observed == Some(generation) && is == Some(json!(ready)) {
                Check::Done(now)
            } else {
                Check::Pending(format!("{}", now.data["status"]))
            }
        },
    )
    .await
}

fn image(deployment: &Deployment) -> Option<String> {
    let containers = &deployment.spec.as_ref()?.template.spec.as_ref()?.containers;
    containers.first()?.image.clone()
}

/// Until `dep-web`'s first container runs `want`, at most `within`.
async fn until_image(deployments: &Api<Deployment>, what: &str, want: &str, within: Duration) {
    wait_for(what, within, || async {
        let now = deployments.get("dep-web").await.expect("Deployment");
        match image(&now).as_deref() {
            Some(is) if is == want => Check::Done(()),
            other => Check::Pending(format!("{other:?}")),
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_component_declared_with_kubectl_is_kept_as_declared_and_removed_when_deleted() {
    install_crd(&cluster().admin_kubeconfig);
    let (client, ns) = namespace("controller").await;
    // As the ServiceAccount `berth controller rbac` makes, with exactly its rules.
    let dir = tempfile::tempdir().expect("dir");
    let kubeconfig =
        service_account_kubeconfig(&cluster().admin_kubeconfig, &client, &ns, &dir).await;
    // 12. A Component in a namespace the controller does not watch, declared first.
    let (_, elsewhere) = namespace("controller-b").await;
    kubectl_ok(
        &["apply", "-f", "-"],
        Some(&declared(&elsewhere, "example/web:1", json!({}))),
    );
    let controller: Running = command::spawn(&mut berth_in(
        &kubeconfig,
        &ns,
        &["controller", "--lease", &ns],
    ));

    // 1. Declared with kubectl: applied, rolled out, Ready; kubectl wait understands it.
    let declared = |image: &str, extra: Value| declared(&ns, image, extra);
    kubectl_ok(
        &["apply", "-f", "-"],
        Some(&declared("example/web:1", json!({}))),
    );
    let started = Instant::now();
    kubectl_ok(
        &[
            "-n",
            &ns,
            "wait",
            "--for=condition=Ready",
            "component/web",
            "--timeout=90s",
        ],
        None,
    );
    eprintln!("Ready {:.1?} after kubectl apply", started.elapsed());
    let web = components(&client, &ns)
        .get("web")
        .await
        .expect("Component");
    let status = &web.data["status"];
    assert_eq!(status["observedGeneration"], 1, "{status}");
    assert_eq!(status["lastAppliedGeneration"], 1, "{status}");
    assert_eq!(status["revision"], 1, "{status}");
    assert_eq!(
        status["rulesDigest"].as_str().map(str::len),
        Some(64),
        "{status}"
    );
    assert_eq!(condition(&web, "Ready").unwrap()["reason"], "Succeeded");
    assert!(condition(&web, "Stalled").is_none(), "{status}");
    let kinds = status["inventory"]["kinds"].as_array().unwrap();
    assert!(kinds.contains(&json!("Deployment.apps")), "{status}");
    assert!(
        web.metadata
            .finalizers
            .unwrap_or_default()
            .contains(&"berth.dev/cleanup".to_owned())
    );
    let deployments = Api::<Deployment>::namespaced(client.clone(), &ns);
    let deployment = deployments.get("dep-web").await.expect("Deployment");
    assert_eq!(image(&deployment).as_deref(), Some("example/web:1"));
    assert_eq!(
        deployment.status.and_then(|s| s.available_replicas),
        Some(2)
    );
    let events = kubectl_ok(&["-n", &ns, "get", "events", "-o", "json"], None);
    assert!(
        events.contains("\"Applied\"") && events.contains("applied generation 1"),
        "{events}"
    );
    // 12. Left alone: no finalizer, no status, nothing made there.
    let other = components(&client, &elsewhere)
        .get("web")
        .await
        .expect("Component");
    assert!(
        other.metadata.finalizers.is_none() && other.data.get("status").is_none(),
        "the controller touched {elsewhere}/web: {:?}",
        other.data
    );
    all_gone(&client, &elsewhere).await;

    // 2. A spec change: a new revision rolls out; the status follows.
    kubectl_ok(
        &["apply", "-f", "-"],
        Some(&declared("example/web:2", json!({}))),
    );
    let web = until_ready(&client, &ns, 2, "True").await;
    assert_eq!(web.data["status"]["revision"], 2);
    let deployment = deployments.get("dep-web").await.expect("Deployment");
    assert_eq!(image(&deployment).as_deref(), Some("example/web:2"));

    // 10. Nothing changes: nothing is written (the Deployment and the Component stay at
    // their resource versions).
    let before = (
        deployments
            .get("dep-web")
            .await
            .unwrap()
            .metadata
            .resource_version,
        components(&client, &ns)
            .get("web")
            .await
            .unwrap()
            .metadata
            .resource_version,
    );
    tokio::time::sleep(Duration::from_secs(10)).await;
    let after = (
        deployments
            .get("dep-web")
            .await
            .unwrap()
            .metadata
            .resource_version,
        components(&client, &ns)
            .get("web")
            .await
            .unwrap()
            .metadata
            .resource_version,
    );
    assert_eq!(before, after, "written while nothing changed");

    // 3. A foreign edit of the image by another field manager: put back within 10 s, an
    // Event naming the field and the manager; an annotation another manager added stays.
    kubectl_ok(
        &[
            "-n",
            &ns,
            "annotate",
            "deployment/dep-web",
            "other.example/note=keep",
        ],
        None,
    );
    let edited = Instant::now();
    kubectl_ok(
        &[
            "-n",
            &ns,
            "set",
            "image",
            "deployment/dep-web",
            "*=example/web:hacked",
        ],
        None,
    );
    let put_back = Duration::from_secs(10);
    until_image(
        &deployments,
        "the image put back",
        "example/web:2",
        put_back,
    )
    .await;
    eprintln!("foreign edit put back {:.1?} after it", edited.elapsed());
    let deployment = deployments.get("dep-web").await.expect("Deployment");
    let annotations = deployment.metadata.annotations.unwrap_or_default();
    assert_eq!(
        annotations.get("other.example/note").map(String::as_str),
        Some("keep")
    );
    let events = kubectl_ok(&["-n", &ns, "get", "events", "-o", "json"], None);
    assert!(
        events.contains("\"DriftCorrected\"")
            && events.contains("spec.template.spec.containers[name=web].image from kubectl"),
        "{events}"
    );
    until_ready(&client, &ns, 2, "True").await;

    // 11. Suspended: acknowledged (the status observes the generation), then a foreign
    // edit stays; resumed, it is put back.
    let suspend = |on: bool| {
        let patch = json!({"spec": {"suspend": on}}).to_string();
        kubectl_ok(
            &[
                "-n",
                &ns,
                "patch",
                "component/web",
                "--type=merge",
                "-p",
                &patch,
            ],
            None,
        );
    };
    suspend(true);
    let api = components(&client, &ns);
    wait_for("the suspension seen", Duration::from_secs(30), || async {
        let now = api.get("web").await.expect("Component");
        match now.data["status"]["observedGeneration"].as_i64() {
            Some(3) => Check::Done(()),
            other => Check::Pending(format!("observedGeneration {other:?}")),
        }
    })
    .await;
    kubectl_ok(
        &[
            "-n",
            &ns,
            "set",
            "image",
            "deployment/dep-web",
            "*=example/web:mine",
        ],
        None,
    );
    // Put back within about a second when not suspended (above): 5 s shows it stays.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let deployment = deployments.get("dep-web").await.expect("Deployment");
    assert_eq!(image(&deployment).as_deref(), Some("example/web:mine"));
    suspend(false);
    until_image(&deployments, "resumed: put back", "example/web:2", put_back).await;
    let web = until_ready(&client, &ns, 4, "True").await;
    let after = (
        deployments
            .get("dep-web")
            .await
            .unwrap()
            .metadata
            .resource_version,
        web.metadata.resource_version,
    );

    // 4. A key berth does not know: InvalidSpec naming it, nothing changed, the previous
    // version still serving.
    kubectl_ok(
        &["apply", "-f", "-"],
        Some(&declared("example/web:3", json!({"imagee": "x"}))),
    );
    let web = until_ready(&client, &ns, 5, "False").await;
    let ready = condition(&web, "Ready").unwrap();
    assert_eq!(ready["reason"], "InvalidSpec", "{ready}");
    let message = ready["message"].as_str().unwrap();
    assert!(
        message.starts_with("spec.component") && message.contains("imagee"),
        "{message}"
    );
    assert_eq!(condition(&web, "Stalled").unwrap()["reason"], "InvalidSpec");
    assert_eq!(web.data["status"]["lastAppliedGeneration"], 4);
    let events = kubectl_ok(&["-n", &ns, "get", "events", "-o", "json"], None);
    assert!(
        events.contains("\"Refused\"") && events.contains("generation 5 refused: spec.component"),
        "{events}"
    );
    let deployment = deployments.get("dep-web").await.expect("Deployment");
    assert_eq!(
        deployment.metadata.resource_version, after.0,
        "the Deployment was written"
    );
    assert_eq!(image(&deployment).as_deref(), Some("example/web:2"));

    // A spec the rules refuse: RulesRefused, the field named.
    kubectl_ok(
        &["apply", "-f", "-"],
        Some(&declared("example/web:3", json!({"ports": ["65536:0"]}))),
    );
    let web = until_ready(&client, &ns, 6, "False").await;
    let ready = condition(&web, "Ready").unwrap();
    assert_eq!(ready["reason"], "RulesRefused", "{ready}");
    assert!(
        ready["message"].as_str().unwrap().contains("ports[0]"),
        "{ready}"
    );
    let deployment = deployments.get("dep-web").await.expect("Deployment");
    assert_eq!(
        deployment.metadata.resource_version, after.0,
        "the Deployment was written"
    );

    // 6. Deleted while the controller is stopped: the Component waits, its objects stay;
    // the controller, started again, removes everything it made, then the Component.
    // Stopped as Kubernetes stops a pod: SIGTERM, the Lease handed back at once.
    let shown = controller.terminate(Duration::from_secs(10));
    let log = String::from_utf8_lossy(&shown.stderr);
    assert!(log.contains(&format!("reconciled {ns}/web")), "{log}");
    assert_eq!(shown.status.code(), Some(0), "{log}");
    kubectl_ok(
        &["-n", &ns, "delete", "component", "web", "--wait=false"],
        None,
    );
    let waiting = api.get("web").await.expect("the Component waits");
    assert!(waiting.metadata.deletion_timestamp.is_some());
    deployments
        .get("dep-web")
        .await
        .expect("the Deployment stays");
    let started = Instant::now();
    let _controller = command::spawn(&mut berth_in(
        &kubeconfig,
        &ns,
        &["controller", "--lease", &ns],
    ));
    kubectl_ok(
        &[
            "-n",
            &ns,
            "wait",
            "--for=delete",
            "component/web",
            "--timeout=90s",
        ],
        None,
    );
    eprintln!(
        "deleted {:.1?} after the controller started",
        started.elapsed()
    );
    all_gone(&client, &ns).await;
    drop_namespace(&client, &ns).await;
    drop_namespace(&client, &elsewhere).await;
}

/// Item 10 of the controller's issue and the production issue's steady-state target: once
/// a Component is as declared, the controller looks whenever something of it changes —
/// reading it afresh — and every `interval` (2 s here), when nothing changed, from its
/// watches alone: over 60 s it writes nothing, and in the last 30 s of quiet it sends no
/// request but the Lease's renewals, while its log shows a look every interval. A drifted
/// Service (a kind only its own watches follow) is still put back within seconds. Every
/// request goes through a proxy that counts them. (Mutations caught: a status patched on
/// every reconcile; an apply on every reconcile; the quiet skip removed — reads in the
/// quiet window; Services not watched — the drifted port name never put back.)
#[tokio::test(flavor = "multi_thread")]
async fn at_steady_state_the_controller_writes_nothing_and_reads_nothing() {
    let _one = exclusive().await;
    let admin = &fault_cluster().admin_kubeconfig;
    install_crd(admin);
    let (client, ns) = berth_e2e::faults::namespace("ctl-steady").await;
    lease_home(admin);
    let proxy = Proxy::start(fault_cluster());
    let controller = command::spawn(&mut berth_in(
        proxy.kubeconfig(),
        &ns,
        &["controller", "--lease", &ns],
    ));
    let web = declared(&ns, "example/web:1", json!({"ports": ["8080:0"]}));
    let mut web: Value = serde_json::from_str(&web).unwrap();
    web["spec"]["interval"] = json!("2s");
    kubectl_ok_at(admin, &["apply", "-f", "-"], Some(&web.to_string()));
    until_ready(&client, &ns, 1, "True").await;

    proxy.reset();
    let started = Instant::now();
    // Something of it changes, nothing berth renders: an annotation on the Component (no
    // new generation) and a label another manager puts on the Deployment (which stays).
    let deployments = Api::<Deployment>::namespaced(client.clone(), &ns);
    for i in 0..5 {
        let touch = format!("touch={i}");
        kubectl_ok_at(
            admin,
            &[
                "-n",
                &ns,
                "annotate",
                "--overwrite",
                "component/web",
                &touch,
            ],
            None,
        );
        let label = json!({"metadata": {"labels": {"other.example/touched": i.to_string()}}});
        deployments
            .patch(
                "dep-web",
                &PatchParams::apply("other"),
                &Patch::Apply(&json!({
                    "apiVersion": "apps/v1", "kind": "Deployment",
                    "metadata": {"name": "dep-web", "labels": label["metadata"]["labels"]},
                })),
            )
            .await
            .expect("another manager's label");
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    // Settled: the last change looked at.
    tokio::time::sleep(Duration::from_secs(30).saturating_sub(started.elapsed())).await;
    let changing = proxy.log();
    let looked = |seen: &[berth_e2e::proxy::Seen]| {
        seen.iter()
            .filter(|s| s.method == "GET" && s.key().ends_with("/deployments/dep-web"))
            .count()
    };
    // Each of the 10 changes looked at with a fresh read, never in a loop.
    let looks = looked(&changing);
    assert!(
        (5..=30).contains(&looks),
        "{looks} reads of the Deployment while it changed:\n{}",
        proxy.log_text()
    );

    proxy.reset();
    let reconciled = |log: &str| log.matches(&format!("reconciled {ns}/web")).count();
    let before = reconciled(&controller.stderr_so_far());
    tokio::time::sleep(Duration::from_secs(30)).await;
    let quiet = proxy.log();
    let looks_quiet = reconciled(&controller.stderr_so_far()) - before;
    let lease = |s: &&berth_e2e::proxy::Seen| s.key().contains("/leases/");
    let others: Vec<String> = quiet
        .iter()
        .filter(|s| !lease(s))
        .map(ToString::to_string)
        .collect();
    assert!(
        others.is_empty(),
        "in 30 s of quiet the controller sent more than the Lease's renewals:\n{}",
        others.join("\n")
    );
    let renewals = quiet.iter().filter(lease).count();
    assert!((10..=20).contains(&renewals), "{renewals} renewals in 30 s");
    // It did look, every 2 s: about 15 times.
    assert!(
        (10..=20).contains(&looks_quiet),
        "{looks_quiet} looks in 30 s of quiet"
    );
    let writes: Vec<String> = changing
        .iter()
        .filter(|s| s.method != "GET" && !lease(s))
        .map(ToString::to_string)
        .collect();
    assert!(
        writes.is_empty(),
        "the controller wrote:\n{}",
        writes.join("\n")
    );
    eprintln!(
        "changing: {looks} reads of the Deployment; quiet 30 s: {looks_quiet} looks, \
         {renewals} Lease requests, no other request"
    );
    let deployment = deployments.get("dep-web").await.expect("Deployment");
    let labels = deployment.metadata.labels.unwrap_or_default();
    assert_eq!(
        labels.get("other.example/touched").map(String::as_str),
        Some("4")
    );

    // A field of the Service taken by another manager: put back, the watch of Services
    // telling of the change (without it, the quiet looks would see nothing changed).
    let services = Api::<Service>::namespaced(client.clone(), &ns);
    let owned = format!("{MANAGED_BY_LABEL}={MANAGED_BY},{COMPONENT_LABEL}=web");
    let listed = services
        .list(&ListParams::default().labels(&owned))
        .await
        .expect("Services");
    let [service] = &listed.items[..] else {
        panic!("{} Services of web", listed.items.len());
    };
    let name = service.metadata.name.clone().expect("name");
    let port_name = |s: &Service| {
        let ports = s.spec.as_ref().and_then(|s| s.ports.clone());
        ports
            .unwrap_or_default()
            .first()
            .and_then(|p| p.name.clone())
    };
    let rendered = port_name(service);
    assert_eq!(rendered.as_deref(), Some("port-t-8080"));
    let tampered =
        json!({"spec": {"ports": [{"port": 8080, "protocol": "TCP", "name": "hacked"}]}});
    let other = PatchParams {
        field_manager: Some("other".into()),
        ..PatchParams::default()
    };
    services
        .patch(&name, &other, &Patch::Strategic(&tampered))
        .await
        .expect("the Service tampered with");
    let tampered_at = Instant::now();
    wait_for(
        "the Service's port name put back",
        Duration::from_secs(10),
        || async {
            let now = services.get(&name).await.expect("Service");
            if port_name(&now) == rendered {
                Check::Done(())
            } else {
                Check::Pending(format!("{:?}", port_name(&now)))
            }
        },
    )
    .await;
    eprintln!("drifted Service put back in {:?}", tampered_at.elapsed());
    drop(controller);
    kubectl_ok_at(
        admin,
        &["-n", &ns, "delete", "component", "web", "--wait=false"],
        None,
    );
    berth_e2e::faults::drop_namespace(&client, &ns).await;
}

/// Items 7, 11 and 6: a component the CLI deployed, then declared as a Component with the
/// same spec, is adopted (the same objects, no pod restarted); the CLI then refuses to change
/// it; deleted with the orphan policy, it is the CLI's again.
#[tokio::test(flavor = "multi_thread")]
async fn a_component_the_cli_deployed_is_adopted_kept_from_the_cli_and_handed_back() {
    install_crd(&cluster().admin_kubeconfig);
    let (client, ns) = namespace("ctl-adopt").await;
    let dir = tempfile::tempdir().expect("dir");
    let spec = write_spec(
        &dir,
        "component_name: web\nimage: example/web:1\nreplicas: 2\n",
    );
    ok(&berth(
        &ns,
        &["deploy", "--spec", &spec, "--wait", "--timeout", "60s"],
    ));
    let deployments = Api::<Deployment>::namespaced(client.clone(), &ns);
    let uid = deployments.get("dep-web").await.unwrap().metadata.uid;
    let pods = || async {
        let listed = Api::<k8s_openapi::api::core::v1::Pod>::namespaced(client.clone(), &ns)
            .list(&Default::default())
            .await
            .expect("pods");
        let mut running: Vec<(Option<String>, bool)> = listed
            .items
            .into_iter()
            .map(|p| (p.metadata.uid, p.metadata.deletion_timestamp.is_some()))
            .collect();
        running.sort();
        running
    };
    let before = pods().await;
    assert_eq!(before.len(), 2, "{before:?}");

    let account = tempfile::tempdir().expect("dir");
    let kubeconfig =
        service_account_kubeconfig(&cluster().admin_kubeconfig, &client, &ns, &account).await;
    let controller = command::spawn(&mut berth_in(
        &kubeconfig,
        &ns,
        &["controller", "--lease", &ns],
    ));
    kubectl_ok(
        &["apply", "-f", "-"],
        Some(&declared(&ns, "example/web:1", json!({}))),
    );
    let web = until_ready(&client, &ns, 1, "True").await;
    assert_eq!(web.data["status"]["lastAppliedGeneration"], 1);
    assert_eq!(deployments.get("dep-web").await.unwrap().metadata.uid, uid);
    assert_eq!(pods().await, before, "a pod was restarted");
    let events = kubectl_ok(&["-n", &ns, "get", "events", "-o", "json"], None);
    assert!(events.contains("applied generation 1"), "{events}");

    // 11. The CLI beside it: deploy, scale and undeploy refuse, naming the Component, and
    // change nothing; status works.
    let version = deployments
        .get("dep-web")
        .await
        .unwrap()
        .metadata
        .resource_version;
    for args in [
        vec!["deploy", "--spec", spec.as_str()],
        vec!["scale", "web", "3"],
        vec!["undeploy", "web"],
    ] {
        let err = failed(&berth(&ns, &args));
        assert!(
            err.contains("\"web\" is kept by Component/web")
                && err.contains("change the Component"),
            "{args:?}: {err}"
        );
    }
    let now = deployments.get("dep-web").await.unwrap();
    assert_eq!(now.metadata.resource_version, version, "the CLI changed it");
    ok(&berth(&ns, &["status", "web"]));
    // diff compares as the controller applies: nothing to change (exit 0).
    let diff = ok(&berth(&ns, &["diff", "--spec", &spec]));
    assert!(!diff.contains("controlled-by"), "{diff}");
    let listed = ok(&berth(&ns, &["list"]));
    assert!(
        listed.contains("MANAGED BY") && listed.contains(" Component/web "),
        "{listed}"
    );

    // 9. New rules (the controller restarted with another component): re-rendered, the
    // status and the objects name the new digest; no pod restarted.
    controller.terminate(Duration::from_secs(10));
    let rules = berth_e2e::components::component("berth-defaults-caller");
    let digest = berth::hooks::sha256(&std::fs::read(&rules).expect("the rules component"));
    let rules = rules.to_str().expect("utf-8 path").to_owned();
    let controller = command::spawn(&mut berth_in(
        &kubeconfig,
        &ns,
        &["controller", "--lease", &ns, "--rules", &rules],
    ));
    let api = components(&client, &ns);
    wait_for(
        "the new rules' digest in the status",
        Duration::from_secs(60),
        || async {
            let now = api.get("web").await.expect("Component");
            match now.data["status"]["rulesDigest"].as_str() {
                Some(d) if format!("sha256:{d}") == digest => Check::Done(()),
                other => Check::Pending(format!("{other:?}")),
            }
        },
    )
    .await;
    let now = deployments.get("dep-web").await.unwrap();
    let marks = now.metadata.annotations.unwrap_or_default();
    assert_eq!(marks.get("berth.dev/rules-digest"), Some(&digest));
    assert_eq!(pods().await, before, "a pod was restarted");

    // 6. Deleted with the orphan policy: the objects stay, handed back to the CLI.
    kubectl_ok(
        &[
            "-n",
            &ns,
            "annotate",
            "component/web",
            "berth.dev/deletion-policy=orphan",
        ],
        None,
    );
    kubectl_ok(
        &["-n", &ns, "delete", "component", "web", "--timeout=90s"],
        None,
    );
    drop(controller);
    let now = deployments
        .get("dep-web")
        .await
        .expect("the Deployment stays");
    assert_eq!(now.metadata.uid, uid);
    let marks = now.metadata.annotations.unwrap_or_default();
    assert!(!marks.contains_key("berth.dev/controlled-by"), "{marks:?}");
    assert_eq!(pods().await, before, "a pod was restarted");
    let listed = ok(&berth(&ns, &["list"]));
    assert!(listed.contains(" cli "), "{listed}");
    ok(&berth(
        &ns,
        &["undeploy", "web", "--wait", "--timeout", "60s"],
    ));
    all_gone(&client, &ns).await;
    drop_namespace(&client, &ns).await;
}

/// Item 8: the API server restarted while the controller reconciles: it resumes without a
/// restart of its own, and every Component converges. (The controllers of kube-controller-
/// manager 1.20 relist 30-60 s after a restart, so the rollouts get 180 s.)
#[tokio::test(flavor = "multi_thread")]
async fn the_controller_rides_out_an_api_server_restart() {
    let _one = exclusive().await;
    let admin = &fault_cluster().admin_kubeconfig;
    install_crd(admin);
    let (client, ns) = berth_e2e::faults::namespace("ctl-restart").await;
    lease_home(admin);
    let mut controller = command::spawn(&mut berth_in(admin, &ns, &["controller", "--lease", &ns]));
    let names = ["one", "two", "three"];
    for name in names {
        let component = json!({"apiVersion": "berth.dev/v1alpha1", "kind": "Component",
            "metadata": {"name": name, "namespace": ns},
            "spec": {"component": {"component_name": name, "image": "example/web:1"}}});
        kubectl_ok_at(admin, &["apply", "-f", "-"], Some(&component.to_string()));
    }
    // While the first reconciles run.
    let outage =
        tokio::task::spawn_blocking(|| fault_cluster().restart_apiserver(Duration::from_secs(3)))
            .await
            .expect("restart");
    let api = components(&client, &ns);
    let started = Instant::now();
    for name in names {
        wait_for(
            &format!("{name} Ready"),
            Duration::from_secs(180),
            || async {
                let Ok(now) = api.get(name).await else {
                    return Check::Pending("the API server is not back".to_owned());
                };
                match condition(&now, "Ready").map(|c| c["status"].clone()) {
                    Some(ready) if ready == json!("True") => Check::Done(()),
                    other => Check::Pending(format!("{other:?}: {}", now.data["status"])),
                }
            },
        )
        .await;
    }
    eprintln!(
        "API server away {outage:.1?}; every Component Ready {:.1?} after it was back",
        started.elapsed()
    );
    assert!(controller.is_running(), "the controller exited");
    for name in names {
        kubectl_ok_at(
            admin,
            &["-n", &ns, "delete", "component", name, "--timeout=90s"],
            None,
        );
    }
    drop(controller);
    berth_e2e::faults::drop_namespace(&client, &ns).await;
}

/// Item 5: a never-ready image is rolled back to the last good revision (its pods serving
/// all along), tried again, then Stalled; nothing is written after that until the reset
/// annotation asks for another attempt.
#[tokio::test(flavor = "multi_thread")]
async fn a_rollout_that_never_finishes_is_rolled_back_retried_then_stalled() {
    install_crd(&cluster().admin_kubeconfig);
    let (client, ns) = namespace("ctl-remedy").await;
    let dir = tempfile::tempdir().expect("dir");
    let kubeconfig =
        service_account_kubeconfig(&cluster().admin_kubeconfig, &client, &ns, &dir).await;
    let controller = command::spawn(&mut berth_in(
        &kubeconfig,
        &ns,
        &["controller", "--lease", &ns],
    ));
    let declare = |image: &str| {
        json!({"apiVersion": "berth.dev/v1alpha1", "kind": "Component",
               "metadata": {"name": "web", "namespace": ns},
               "spec": {"component": {"component_name": "web", "image": image, "replicas": 2},
                        "timeout": "5s", "remediation": {"retries": 2}}})
        .to_string()
    };
    kubectl_ok(&["apply", "-f", "-"], Some(&declare("example/web:1")));
    let web = until_ready(&client, &ns, 1, "True").await;
    assert_eq!(web.data["status"]["lastGoodRevision"], 1);

    let started = Instant::now();
    kubectl_ok(
        &["apply", "-f", "-"],
        Some(&declare("example/never-ready:2")),
    );
    let api = components(&client, &ns);
    let stalled = wait_for("Stalled", Duration::from_secs(90), || async {
        let now = api.get("web").await.expect("Component");
        match condition(&now, "Stalled") {
            Some(c) if c["status"] == "True" => Check::Done(now),
            _ => Check::Pending(format!("{}", now.data["status"])),
        }
    })
    .await;
    eprintln!(
        "Stalled {:.1?} after the never-ready image",
        started.elapsed()
    );
    let status = &stalled.data["status"];
    assert_eq!(status["failures"], 2, "{status}");
    let stalled_by = condition(&stalled, "Stalled").unwrap();
    assert_eq!(stalled_by["reason"], "RolloutFailed", "{stalled_by}");
    assert!(
        stalled_by["message"]
            .as_str()
            .unwrap()
            .contains("not rolled out within 5s"),
        "{stalled_by}"
    );
    // Rolled back to revision 1's template, its pods serving.
    let deployments = Api::<Deployment>::namespaced(client.clone(), &ns);
    wait_for(
        "the rollback's rollout",
        Duration::from_secs(60),
        || async {
            let d = deployments.get("dep-web").await.expect("Deployment");
            let available = d.status.as_ref().and_then(|s| s.available_replicas);
            match (image(&d).as_deref(), available) {
                (Some("example/web:1"), Some(2)) => Check::Done(()),
                other => Check::Pending(format!("{other:?}")),
            }
        },
    )
    .await;
    let events = kubectl_ok(&["-n", &ns, "get", "events", "-o", "json"], None);
    assert!(
        events.contains("\"RolledBack\"") && events.contains("\"Stalled\""),
        "{events}"
    );

    // No more writes.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let before = (
        deployments
            .get("dep-web")
            .await
            .unwrap()
            .metadata
            .resource_version,
        api.get("web").await.unwrap().metadata.resource_version,
    );
    tokio::time::sleep(Duration::from_secs(10)).await;
    let after = (
        deployments
            .get("dep-web")
            .await
            .unwrap()
            .metadata
            .resource_version,
        api.get("web").await.unwrap().metadata.resource_version,
    );
    assert_eq!(before, after, "written after it gave up");

    // The reset annotation: another attempt.
    kubectl_ok(
        &[
            "-n",
            &ns,
            "annotate",
            "component/web",
            "berth.dev/reconcile-requested-at=1",
        ],
        None,
    );
    let again = Duration::from_secs(30);
    until_image(
        &deployments,
        "another attempt",
        "example/never-ready:2",
        again,
    )
    .await;
    // The count starts again: 0, then 1 when this attempt fails too — never 2 or more (a
    // field left out of a merge patch stays 2, and this attempt's failure makes it 3).
    wait_for("the failures reset", Duration::from_secs(5), || async {
        let now = api.get("web").await.expect("Component");
        match now.data["status"]["failures"].as_i64() {
            Some(n) if n >= 2 => Check::Pending(format!("{}", now.data["status"])),
            _ => Check::Done(()),
        }
    })
    .await;

    kubectl_ok(
        &["-n", &ns, "delete", "component", "web", "--timeout=90s"],
        None,
    );
    all_gone(&client, &ns).await;
    drop(controller);
    drop_namespace(&client, &ns).await;
}

/// The controller as in a pod: the in-cluster configuration (the ServiceAccount's token,
/// the cluster's CA and namespace at `/var/run/secrets/kubernetes.io/serviceaccount`, bind-
/// mounted in a mount namespace of its own; `KUBERNETES_SERVICE_HOST`/`_PORT`), no
/// kubeconfig. `server` is the API server's URL; `args` follow `berth`.
fn in_cluster(secrets: &Path, server: &str, args: &[&str]) -> Command {
    let authority = server.trim_start_matches("https://");
    let (host, port) = authority.rsplit_once(':').expect("host:port");
    let script = "mount -t tmpfs berth-test /run \
        && mkdir -p /run/secrets/kubernetes.io/serviceaccount \
        && mount --bind \"$1\" /run/secrets/kubernetes.io/serviceaccount \
        && shift && exec \"$@\"";
    // Root here; elsewhere a user namespace grants the mounts.
    let mut command = Command::new("unshare");
    command.arg("--mount");
    if !is_root() {
        command.arg("--map-root-user");
    }
    command
        .args(["sh", "-c", script, "sh"])
        .arg(secrets)
        .arg(env!("CARGO_BIN_EXE_berth"))
        .args(args)
        .current_dir(root())
        .env_remove("KUBECONFIG")
        .env("HOME", secrets)
        .env("KUBERNETES_SERVICE_HOST", host)
        .env("KUBERNETES_SERVICE_PORT", port)
        .env(
            "BERTH_CACHE_DIR",
            std::env::temp_dir().join("berth-test-cache"),
        );
    command
}

/// Item 12: one controller, in-cluster, watching the namespaces `-n` names (several), with
/// the namespaced RBAC `berth controller rbac -n …` prints for them: enough for a component
/// of every kind the rules grant (a Service, a PodDisruptionBudget, an autoscaler, a
/// NetworkPolicy) to roll out and be removed. And each rule is needed: in each of the other
/// namespaces one rule is taken out of the Role, and there the request that needs it is
/// refused (403 naming the rule's resource, in the controller's log), or, for Events,
/// nothing is published.
#[tokio::test(flavor = "multi_thread")]
async fn one_controller_in_cluster_needs_each_rule_of_its_namespaced_rbac() {
    let admin = &cluster().admin_kubeconfig;
    install_crd(admin);
    let (client, base) = namespace("ctl-rbac").await;
    let printed = berth::rbac(&["any".to_owned()]);
    let rules = printed["items"]
        .as_array()
        .expect("items")
        .iter()
        .find(|i| i["metadata"]["namespace"] == "any")
        .expect("the Role in `any`")["rules"]
        .as_array()
        .expect("rules")
        .clone();
    let mut minus = Vec::new();
    for i in 0..rules.len() {
        minus.push(namespace(&format!("ctl-minus-{i}")).await.1);
    }
    // Every -n after the command: clap takes a global flag's values from the subcommand
    // when both have some.
    let mut args = vec!["controller", "rbac"];
    for ns in std::iter::once(&base).chain(&minus) {
        args.extend(["-n", ns.as_str()]);
    }
    let mut printed: Value = serde_json::from_str(&ok(&berth_as(admin, &base, &args))).unwrap();
    let mut taken = Vec::new();
    for item in printed["items"].as_array_mut().expect("items") {
        let Some(i) = minus
            .iter()
            .position(|ns| item["metadata"]["namespace"] == json!(ns))
        else {
            continue;
        };
        if item["kind"] == "Role" {
            let rule = item["rules"].as_array_mut().expect("rules").remove(i);
            let resources: Vec<String> = serde_json::from_value(rule["resources"].clone()).unwrap();
            taken.push((minus[i].clone(), resources));
        }
    }
    assert_eq!(taken.len(), rules.len(), "a Role per namespace");
    apply_shared(admin, &printed.to_string());
    // The Roles in force (the authorizer learns of them through its own watch).
    let (home, account) = berth::SERVICE_ACCOUNT;
    let user = format!("system:serviceaccount:{home}:{account}");
    for (ns, resources) in &taken {
        let (group, resource) = if resources[0] == "components" {
            ("apps", "deployments")
        } else {
            ("berth.dev", "components")
        };
        wait_for("the Role in force", WAIT, || async {
            if allowed(&client, &user, ns, group, resource, "list").await {
                Check::Done(())
            } else {
                Check::Pending("not yet allowed".into())
            }
        })
        .await;
    }

    // A component of every kind the rules grant, in every namespace.
    let object = |api_version: &str, kind: &str, spec: Value| {
        json!({"apiVersion": api_version, "kind": kind, "metadata": {"name": "extra"},
               "spec": spec})
    };
    let component = |ns: &str, image: &str| {
        json!({"apiVersion": "berth.dev/v1alpha1", "kind": "Component",
        "metadata": {"name": "web", "namespace": ns},
        "spec": {"timeout": "60s", "component": {
            "component_name": "web", "image": image, "ports": ["8080:0"],
            "extensions": {"objects": [
                object("policy/v1beta1", "PodDisruptionBudget",
                       json!({"minAvailable": 1,
                              "selector": {"matchLabels": {"app": "web"}}})),
                object("autoscaling/v1", "HorizontalPodAutoscaler",
                       json!({"scaleTargetRef": {"apiVersion": "apps/v1",
                              "kind": "Deployment", "name": "dep-web"},
                              "maxReplicas": 2})),
                object("networking.k8s.io/v1", "NetworkPolicy",
                       json!({"podSelector": {}})),
            ]}}}})
        .to_string()
    };
    for ns in std::iter::once(&base).chain(&minus) {
        kubectl_ok(&["apply", "-f", "-"], Some(&component(ns, "example/web:1")));
    }
    let secrets = tempfile::tempdir().expect("dir");
    let config = admin_config(admin);
    let ca = config["clusters"][0]["cluster"]["certificate-authority-data"]
        .as_str()
        .expect("the cluster's CA");
    use base64::Engine as _;
    let ca = base64::engine::general_purpose::STANDARD
        .decode(ca)
        .expect("base64");
    std::fs::write(secrets.path().join("ca.crt"), ca).expect("ca.crt");
    std::fs::write(
        secrets.path().join("token"),
        service_account_token(&client).await,
    )
    .expect("token");
    std::fs::write(secrets.path().join("namespace"), &base).expect("namespace");
    let caller = berth_e2e::components::component("berth-defaults-caller");
    let mut args = vec!["-n", base.as_str()];
    for ns in &minus {
        args.extend(["-n", ns.as_str()]);
    }
    args.extend([
        "controller",
        "--lease",
        &base,
        "--rules",
        caller.to_str().expect("utf-8 path"),
    ]);
    let server = config["clusters"][0]["cluster"]["server"]
        .as_str()
        .expect("the API server's URL");
    let controller = command::spawn(&mut in_cluster(secrets.path(), server, &args));

    // What shows each rule needed, and when: most at the first apply; the others once
    // the Component is Ready — ReplicaSets when a failed rollout is rolled back, pods
    // when it is deleted, Events by their absence.
    let refused = |log: &str, ns: &str, resources: &[String]| {
        log.lines().any(|line| {
            line.contains("forbidden")
                && line.contains(&format!("\"{ns}\""))
                && resources
                    .iter()
                    .any(|r| line.contains(&format!("resource \"{r}\"")))
        })
    };
    let later = |resources: &[String]| {
        resources == ["replicasets"] || resources == ["pods"] || resources == ["events"]
    };
    let api = |ns: &str| components(&client, ns);
    let ready = |ns: String| async move {
        let now = api(&ns).get("web").await.expect("Component");
        condition(&now, "Ready").is_some_and(|c| c["status"] == "True")
    };
    let started = Instant::now();
    wait_for(
        "Ready, or refused for the rule taken out",
        Duration::from_secs(120),
        || async {
            let log = controller.stderr_so_far();
            let mut pending = Vec::new();
            if !ready(base.clone()).await {
                pending.push(format!("{base}: not Ready"));
            }
            for (ns, resources) in &taken {
                let done = if later(resources) {
                    ready(ns.clone()).await
                } else {
                    refused(&log, ns, resources)
                };
                if !done {
                    pending.push(format!("without {resources:?}: nothing yet"));
                }
            }
            if pending.is_empty() {
                Check::Done(())
            } else {
                Check::Pending(format!("{}\n{log}", pending.join("; ")))
            }
        },
    )
    .await;
    eprintln!(
        "applied or refused {:.1?} after the start",
        started.elapsed()
    );
    for (ns, resources) in std::iter::once(&(base.clone(), vec![])).chain(&taken) {
        if resources == &["replicasets"] {
            let mut never = component(ns, "example/never-ready:2");
            never = never.replace("\"60s\"", "\"2s\"");
            kubectl_ok(&["apply", "-f", "-"], Some(&never));
        } else {
            kubectl_ok(
                &["-n", ns, "delete", "component", "web", "--wait=false"],
                None,
            );
        }
    }
    kubectl_ok(
        &[
            "-n",
            &base,
            "wait",
            "--for=delete",
            "component/web",
            "--timeout=90s",
        ],
        None,
    );
    all_gone(&client, &base).await;
    wait_for(
        "refused at a rollback or removal for the rule taken out",
        Duration::from_secs(90),
        || async {
            let log = controller.stderr_so_far();
            let left: Vec<_> = taken
                .iter()
                .filter(|(ns, r)| later(r) && r != &["events"] && !refused(&log, ns, r))
                .map(|(_, r)| r)
                .collect();
            if left.is_empty() {
                Check::Done(())
            } else {
                Check::Pending(format!("without {left:?}: nothing yet\n{log}"))
            }
        },
    )
    .await;
    // Events: published where the rule is, none where it is not.
    let published = |ns: &str| {
        kubectl_ok(&["-n", ns, "get", "events", "-o", "json"], None).contains("berth-controller")
    };
    assert!(published(&base), "no Event in {base}");
    for (ns, resources) in &taken {
        if resources == &["events"] {
            assert!(!published(ns), "an Event in {ns} without the rule");
        }
    }
    let log = controller.kill();
    let log = String::from_utf8_lossy(&log.stderr);
    assert!(
        !log.lines()
            .any(|l| l.contains("forbidden") && l.contains(&format!("\"{base}\""))),
        "refused with every rule:\n{log}"
    );
    // What the controller could not finish: its finalizers go by hand.
    for ns in &minus {
        let _ = api(ns)
            .patch(
                "web",
                &PatchParams::default(),
                &Patch::Merge(&json!({"metadata": {"finalizers": null}})),
            )
            .await;
        drop_namespace(&client, ns).await;
    }
    drop_namespace(&client, &base).await;
    eprintln!(
        "each rule needed: {:?}",
        taken.iter().map(|(_, r)| r.join(",")).collect::<Vec<_>>()
    );
}

/// A copy of `kubeconfig` that talks to the API server through `proxy` (the same
/// credentials: the proxy forwards the bearer token).
fn through(proxy: &Proxy, kubeconfig: &Path, dir: &tempfile::TempDir, name: &str) -> PathBuf {
    let mut config: Value =
        serde_json::from_str(&std::fs::read_to_string(kubeconfig).expect("kubeconfig"))
            .expect("kubeconfig JSON");
    config["clusters"][0]["cluster"]["server"] = json!(format!("https://{}", proxy.address()));
    let path = dir.path().join(format!("{name}.kubeconfig"));
    std::fs::write(&path, config.to_string()).expect("write the kubeconfig");
    path
}

/// How long until `running` has printed `line`, at most `within` (else the test fails).
fn until_logged(running: &Running, line: &str, within: Duration) -> Duration {
    let started = Instant::now();
    loop {
        if running.stderr_so_far().contains(line) {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < within,
            "not {line:?} within {within:?}:\n{}",
            running.stderr_so_far()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Until Component `name` in `ns` is Ready, at most `within`.
async fn until_component_ready(client: &kube::Client, ns: &str, name: &str, within: Duration) {
    let api = components(client, ns);
    wait_for(&format!("{name} Ready"), within, || async {
        let now = api.get(name).await.expect("Component");
        match condition(&now, "Ready") {
            Some(c) if c["status"] == "True" => Check::Done(()),
            _ => Check::Pending(format!("{}", now.data["status"])),
        }
    })
    .await;
}

/// Issue 23, item 1: replicas of the controller, one Lease. Exactly one leads and writes;
/// a leader paused (SIGSTOP) until another leads writes nothing when it resumes (each
/// replica talks through a proxy of its own that counts its requests); SIGTERM hands the
/// Lease over within 2 s; a leader killed (SIGKILL) is replaced, and a new Component
/// reconciled, within 20 s.
#[tokio::test(flavor = "multi_thread")]
async fn replicas_elect_one_leader_that_alone_writes_and_hand_over_when_it_goes() {
    install_crd(&cluster().admin_kubeconfig);
    let (client, ns) = namespace("ctl-ha").await;
    let dir = tempfile::tempdir().expect("dir");
    let account = service_account_kubeconfig(&cluster().admin_kubeconfig, &client, &ns, &dir).await;
    let replica = |name: &str| {
        let proxy = Proxy::start(cluster());
        let kubeconfig = through(&proxy, &account, &dir, name);
        let running = command::spawn(&mut berth_in(
            &kubeconfig,
            &ns,
            &["controller", "--lease", &ns],
        ));
        (proxy, running)
    };
    let declare = |name: &str| {
        let component = json!({"apiVersion": "berth.dev/v1alpha1", "kind": "Component",
            "metadata": {"name": name, "namespace": ns},
            "spec": {"component": {"component_name": name, "image": "example/web:1"}}});
        kubectl_ok(&["apply", "-f", "-"], Some(&component.to_string()));
    };
    let writes = |proxy: &Proxy| -> Vec<String> {
        proxy
            .log()
            .iter()
            .filter(|s| s.method != "GET")
            .map(ToString::to_string)
            .collect()
    };
    const LEADS: &str = "leading: reconciling";

    // One leads; the other waits and writes nothing at all.
    let (proxy_a, a) = replica("a");
    until_logged(&a, LEADS, Duration::from_secs(30));
    let (proxy_b, b) = replica("b");
    until_logged(&b, "waiting to lead", Duration::from_secs(30));
    declare("one");
    until_component_ready(&client, &ns, "one", Duration::from_secs(60)).await;
    assert!(!b.stderr_so_far().contains(LEADS), "{}", b.stderr_so_far());
    assert_eq!(writes(&proxy_b), Vec::<String>::new(), "a follower wrote");
    assert!(
        writes(&proxy_a)
            .iter()
            .any(|w| w.contains("/components/one")),
        "{}",
        proxy_a.log_text()
    );

    // The leader paused until the other leads (its Lease lapses: 15 s by b's clock), then
    // resumed: it finds it no longer leads and writes nothing.
    a.signal("STOP");
    let paused = Instant::now();
    let took = until_logged(&b, LEADS, Duration::from_secs(25));
    eprintln!("b leads {took:.1?} after a was paused");
    declare("two");
    until_component_ready(&client, &ns, "two", Duration::from_secs(60)).await;
    // Something for a to do the moment it resumes: a foreign edit its watch tells it of
    // (b puts it back).
    kubectl_ok(
        &[
            "-n",
            &ns,
            "set",
            "image",
            "deployment/dep-one",
            "*=example/web:edited",
        ],
        None,
    );
    proxy_a.reset();
    a.signal("CONT");
    until_logged(&a, "no longer leading", Duration::from_secs(10));
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        writes(&proxy_a),
        Vec::<String>::new(),
        "a wrote after it resumed ({:.1?} paused)",
        paused.elapsed()
    );
    assert!(
        writes(&proxy_b)
            .iter()
            .any(|w| w.contains("/components/two")),
        "{}",
        proxy_b.log_text()
    );

    // SIGTERM: b hands the Lease back; a leads within 2 s.
    let before = a.stderr_so_far().matches(LEADS).count();
    let stopped = Instant::now();
    let ended = b.terminate(Duration::from_secs(10));
    assert_eq!(ended.status.code(), Some(0));
    loop {
        if a.stderr_so_far().matches(LEADS).count() > before {
            break;
        }
        assert!(
            stopped.elapsed() < Duration::from_secs(2),
            "a does not lead 2 s after b's SIGTERM:\n{}",
            a.stderr_so_far()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    eprintln!("a leads {:.2?} after b's SIGTERM", stopped.elapsed());

    // SIGKILL: c, waiting, leads and reconciles a new Component within 20 s (its status
    // written by c: a's Lease lapses after 15 s by c's clock); then it rolls out.
    let (_proxy_c, c) = replica("c");
    until_logged(&c, "waiting to lead", Duration::from_secs(30));
    let killed = Instant::now();
    let _ = a.kill();
    declare("three");
    wait_for("three reconciled by c", Duration::from_secs(20), || async {
        let now = components(&client, &ns).get("three").await.expect("three");
        match now.data["status"]["observedGeneration"].as_i64() {
            Some(1) => Check::Done(()),
            _ => Check::Pending(c.stderr_so_far()),
        }
    })
    .await;
    eprintln!(
        "three reconciled {:.1?} after a was killed",
        killed.elapsed()
    );
    until_component_ready(&client, &ns, "three", Duration::from_secs(60)).await;

    for name in ["one", "two", "three"] {
        kubectl_ok(
            &["-n", &ns, "delete", "component", name, "--timeout=90s"],
            None,
        );
    }
    all_gone(&client, &ns).await;
    drop(c);
    drop_namespace(&client, &ns).await;
}

/// `method path` to the controller's HTTP address: the status code and the body.
fn http(address: &str, method: &str, path: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(address).expect("the controller listens");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    write!(stream, "{method} {path} HTTP/1.1\r\nHost: berth\r\n\r\n").expect("send");
    let mut reply = String::new();
    stream.read_to_string(&mut reply).expect("the reply");
    let code = reply
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = reply.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
    (code, body.to_owned())
}

/// The value of the metric line `name{labels}` (0 when absent).
fn metric(text: &str, series: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or(0)
}

/// Issue 23, item 2: `/metrics` counts what happened — Components by their Ready condition
/// as they are created, broken and deleted, reconciles by result, their durations, the
/// rules' — and `/healthz`, `/readyz` answer as the README says.
#[tokio::test(flavor = "multi_thread")]
async fn the_controller_serves_metrics_and_probes_that_match_what_happened() {
    let admin = &cluster().admin_kubeconfig;
    install_crd(admin);
    lease_home(admin);
    let (client, ns) = namespace("ctl-metrics").await;
    let controller = command::spawn(&mut berth_in(
        admin,
        &ns,
        &[
            "controller",
            "--lease",
            &ns,
            "--http",
            "127.0.0.1:0",
            "--log-format",
            "json",
        ],
    ));
    // Every line a JSON object.
    let lines = |log: &str| -> Vec<Value> {
        log.lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .collect()
    };
    until_logged(&controller, "\"http\":", Duration::from_secs(30));
    let address = lines(&controller.stderr_so_far())
        .iter()
        .find_map(|l| l["http"].as_str().map(str::to_owned))
        .expect("the address");
    assert_eq!(http(&address, "GET", "/healthz"), (200, "ok\n".to_owned()));
    wait_for("ready", Duration::from_secs(30), || async {
        match http(&address, "GET", "/readyz") {
            (200, _) => Check::Done(()),
            other => Check::Pending(format!("{other:?}")),
        }
    })
    .await;
    assert_eq!(http(&address, "GET", "/nothing").0, 404);
    assert_eq!(http(&address, "POST", "/metrics").0, 405);

    let declare = |name: &str, extra: Value| {
        let mut component = json!({"component_name": name, "image": "example/web:1"});
        if let (Some(c), Value::Object(extra)) = (component.as_object_mut(), extra) {
            c.extend(extra);
        }
        let object = json!({"apiVersion": "berth.dev/v1alpha1", "kind": "Component",
            "metadata": {"name": name, "namespace": ns}, "spec": {"component": component}});
        kubectl_ok(&["apply", "-f", "-"], Some(&object.to_string()));
    };
    let scrape = || http(&address, "GET", "/metrics").1;
    let ready = |text: &str, status: &str, reason: &str| {
        metric(
            text,
            &format!("berth_controller_components{{ready=\"{status}\",reason=\"{reason}\"}}"),
        )
    };
    declare("good", json!({}));
    declare("bad", json!({"imagee": "x"}));
    until_component_ready(&client, &ns, "good", Duration::from_secs(60)).await;
    wait_for(
        "one Ready, one InvalidSpec",
        Duration::from_secs(10),
        || async {
            let text = scrape();
            if ready(&text, "True", "Succeeded") == 1 && ready(&text, "False", "InvalidSpec") == 1 {
                Check::Done(())
            } else {
                Check::Pending(text)
            }
        },
    )
    .await;
    let text = scrape();
    let ok = metric(
        &text,
        "berth_controller_reconciles_total{result=\"success\"}",
    );
    let failed = metric(&text, "berth_controller_reconciles_total{result=\"error\"}");
    assert!(ok >= 2, "{text}");
    assert_eq!(failed, 0, "{text}");
    assert_eq!(
        metric(&text, "berth_controller_reconcile_duration_seconds_count"),
        ok + failed,
        "{text}"
    );
    assert!(metric(&text, "berth_controller_render_duration_seconds_count") >= 1);
    assert_eq!(metric(&text, "berth_controller_leader"), 1, "{text}");

    // Broken: both refused.
    declare("good", json!({"imagee": "x"}));
    wait_for("two InvalidSpec", Duration::from_secs(30), || async {
        let text = scrape();
        if ready(&text, "False", "InvalidSpec") == 2 && ready(&text, "True", "Succeeded") == 0 {
            Check::Done(())
        } else {
            Check::Pending(text)
        }
    })
    .await;
    // Deleted: none left.
    for name in ["good", "bad"] {
        kubectl_ok(
            &["-n", &ns, "delete", "component", name, "--timeout=90s"],
            None,
        );
    }
    wait_for("no Component counted", Duration::from_secs(30), || async {
        let text = scrape();
        if text.contains("berth_controller_components{") {
            Check::Pending(text)
        } else {
            Check::Done(())
        }
    })
    .await;
    all_gone(&client, &ns).await;
    // A line per reconcile: the Component, its generation, the result, the duration.
    let log = controller.kill();
    let log = lines(&String::from_utf8_lossy(&log.stderr));
    let good = log
        .iter()
        .find(|l| l["component"] == format!("{ns}/good") && l["generation"] == 1)
        .expect("a line for good's reconcile");
    assert_eq!(good["result"], "success", "{good}");
    assert_eq!(good["level"], "info", "{good}");
    assert!(
        good["duration_ms"].as_f64().is_some_and(|ms| ms > 0.0),
        "{good}"
    );
    assert!(
        good["time"].as_str().is_some_and(|t| t.ends_with('Z')),
        "{good}"
    );
    drop_namespace(&client, &ns).await;
}

/// Issue 23, item 3: `berth controller manifests` applied with kubectl is accepted by the
/// API server (the CRD, the RBAC for one namespace, the site config, a Deployment of 2
/// replicas in berth-system); applying a newer berth's manifests over them keeps every
/// Component and its status as they were.
#[tokio::test(flavor = "multi_thread")]
async fn the_manifests_install_and_a_newer_apply_keeps_components_and_status() {
    let admin = &cluster().admin_kubeconfig;
    install_crd(admin);
    let (client, ns) = namespace("ctl-install").await;
    let dir = tempfile::tempdir().expect("dir");
    let site = dir.path().join("site.yaml");
    std::fs::write(&site, "image_pull_secrets: [pull]\n").expect("site config");
    let site = site.to_str().expect("utf-8 path");
    let manifests = |image: &str| {
        ok(&berth_as(
            admin,
            &ns,
            &[
                "controller",
                "manifests",
                "--image",
                image,
                "--config",
                site,
            ],
        ))
    };
    apply_shared(admin, &manifests("registry.example/berth:1"));
    let (home, account) = berth::SERVICE_ACCOUNT;
    let deployments = Api::<Deployment>::namespaced(client.clone(), home);
    let installed = deployments.get(account).await.expect("the Deployment");
    assert_eq!(installed.spec.as_ref().and_then(|s| s.replicas), Some(2));
    let config = Api::<k8s_openapi::api::core::v1::ConfigMap>::namespaced(client.clone(), home)
        .get(account)
        .await
        .expect("the site config");
    assert_eq!(
        config
            .data
            .unwrap_or_default()
            .get("site.yaml")
            .map(String::as_str),
        Some("image_pull_secrets: [pull]\n")
    );

    // A Component kept by a controller (here out of the cluster), then left as it is.
    let controller = command::spawn(&mut berth_in(
        admin,
        &ns,
        &["controller", "--lease", &ns, "--config", site],
    ));
    kubectl_ok(
        &["apply", "-f", "-"],
        Some(&declared(&ns, "example/web:1", json!({}))),
    );
    until_ready(&client, &ns, 1, "True").await;
    controller.terminate(Duration::from_secs(10));
    let before = components(&client, &ns)
        .get("web")
        .await
        .expect("the Component");

    // A newer berth's manifests over them.
    apply_shared(admin, &manifests("registry.example/berth:2"));
    let upgraded = deployments.get(account).await.expect("the Deployment");
    assert_eq!(
        image(&upgraded).as_deref(),
        Some("registry.example/berth:2")
    );
    let after = components(&client, &ns)
        .get("web")
        .await
        .expect("the Component");
    assert_eq!(
        after.metadata.resource_version,
        before.metadata.resource_version
    );
    assert_eq!(after.data["status"], before.data["status"]);

    deployments
        .delete(account, &Default::default())
        .await
        .expect("delete the Deployment");
    let _ = components(&client, &ns)
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(&json!({"metadata": {"finalizers": null}})),
        )
        .await;
    drop_namespace(&client, &ns).await;
}
