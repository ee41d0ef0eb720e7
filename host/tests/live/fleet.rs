//! Operating components as a fleet on the local control plane: `diff` and its exit codes,
//! `deploy --dry-run=server`, a directory of specs deployed component by component, and a
//! failed rollout undone.

use crate::common;

use std::collections::BTreeMap;

use common::*;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams, Patch, PatchParams};
use serde_json::json;

/// Write `text` to `file` in `dir`, returning its path.
fn spec_file(dir: &tempfile::TempDir, file: &str, text: &str) -> String {
    let path = dir.path().join(file);
    std::fs::write(&path, text).expect("write spec");
    path.to_string_lossy().into_owned()
}

/// A small spec: `name`, `image`, and its ports.
fn spec(name: &str, image: &str, ports: &str) -> String {
    format!("component_name: {name}\nimage: {image}\nreplicas: 2\nports: [{ports}]\n")
}

#[tokio::test(flavor = "multi_thread")]
async fn diff_shows_what_deploy_would_change_with_kubectl_diffs_exit_codes() {
    let (client, ns) = namespace("diff").await;
    let dir = tempfile::tempdir().expect("dir");
    let diff = |spec: &str| berth(&ns, &["diff", "--spec", spec]);
    let v1 = spec_file(&dir, "v1.yaml", &spec("web", "example/web:1", "'80:0'"));

    // Not deployed yet: every object is added.
    let out = exited(&diff(&v1), 1);
    assert!(out.is_empty(), "{out}");
    let out = String::from_utf8_lossy(&diff(&v1).stdout).into_owned();
    for object in ["apps/v1/Deployment", "v1/Service"] {
        assert!(
            out.contains(&format!("+++ berth/{object}/{ns}/")),
            "{object}: {out}"
        );
    }
    assert!(
        labelled(&client, &ns, "web", &[]).await.is_empty(),
        "diff created something"
    );

    ok(&berth(&ns, &["deploy", "--spec", &v1]));
    let out = diff(&v1);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(out.stdout.is_empty());

    // A new image: the Deployment changes, line by line.
    let v2 = spec_file(&dir, "v2.yaml", &spec("web", "example/web:2", "'80:0'"));
    let out = diff(&v2);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("-        image: example/web:1\n+        image: example/web:2\n"),
        "{text}"
    );
    assert!(
        !text.contains("v1/Service"),
        "the Service does not change: {text}"
    );

    // Drift made by someone else shows, and deploy puts it back: then there is no diff.
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), &ns);
    let drift = json!({"spec": {"template": {"spec": {"containers": [{"name": "web", "image": "example/hotfix:9"}]}}}});
    deployments
        .patch(
            "dep-web",
            &PatchParams {
                field_manager: Some("hotfix".into()),
                ..PatchParams::default()
            },
            &Patch::Strategic(&drift),
        )
        .await
        .expect("drift");
    let out = diff(&v1);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("-        image: example/hotfix:9\n+        image: example/web:1\n"),
        "{text}"
    );
    let out = ok(&berth(&ns, &["deploy", "--spec", &v1]));
    assert!(out.contains("Deployment/dep-web updated"), "{out}");
    // And says whose field it took back.
    assert!(
        out.contains(
            "Deployment/dep-web: took spec.template.spec.containers[name=web].image from field manager hotfix\n"
        ),
        "{out}"
    );
    let after = diff(&v1);
    assert_eq!(
        after.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&after.stdout)
    );

    // Without ports the Service would be pruned: a deletion.
    let portless = write_spec(
        &dir,
        "component_name: web\nimage: example/web:1\nreplicas: 2\n",
    );
    let out = diff(&portless);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(&format!(
            "--- live/v1/Service/{ns}/web\n+++ berth/v1/Service/{ns}/web\n"
        )),
        "{text}"
    );
    assert!(text.contains("-kind: Service\n"), "{text}");

    // An error is above 1, and names the field.
    let bad = write_spec(
        &dir,
        "component_name: web\nimage: example/web:1\nports: ['80:']\n",
    );
    let err = exited(&diff(&bad), 2);
    assert!(err.contains("ports[0]"), "{err}");
    drop_namespace(&client, &ns).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_server_dry_run_creates_nothing_and_surfaces_the_api_servers_refusals() {
    let (client, ns) = namespace("dry").await;
    let dir = tempfile::tempdir().expect("dir");
    let port = node_port(5);
    let taker = write_spec(
        &dir,
        &spec("taker", "example/taker:1", &format!("'80:{port}'")),
    );
    let out = ok(&berth(
        &ns,
        &["deploy", "--dry-run", "server", "--spec", &taker],
    ));
    assert!(
        out.starts_with("server dry run: nothing was changed\n")
            && out.contains("Deployment/dep-taker created"),
        "{out}"
    );
    assert!(labelled(&client, &ns, "taker", &[]).await.is_empty());

    // Admission runs: a node port another component holds is refused, nothing is made.
    ok(&berth(&ns, &["deploy", "--spec", &taker]));
    let other = write_spec(
        &dir,
        &spec("other", "example/other:1", &format!("'81:{port}'")),
    );
    let err = failed(&berth(
        &ns,
        &["deploy", "--dry-run=server", "--spec", &other],
    ));
    assert!(err.contains("provided port is already allocated"), "{err}");
    assert!(
        !err.contains("rolled back"),
        "a dry run has nothing to roll back: {err}"
    );
    assert!(labelled(&client, &ns, "other", &[]).await.is_empty());
    drop_namespace(&client, &ns).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_directory_deploys_each_component_on_its_own() {
    let (client, ns) = namespace("many").await;
    let dir = tempfile::tempdir().expect("dir");
    let port = node_port(6);
    // The port another component holds already.
    ok(&berth(
        &ns,
        &[
            "deploy",
            "--spec",
            &write_spec(
                &dir,
                &spec("holder", "example/holder:1", &format!("'80:{port}'")),
            ),
        ],
    ));
    let specs = dir.path().join("specs");
    std::fs::create_dir(&specs).expect("mkdir");
    for i in 0..8 {
        let text = spec(&format!("svc-{i}"), "example/svc:1", "'8080:0'");
        std::fs::write(specs.join(format!("svc-{i}.yaml")), text).expect("write");
    }
    std::fs::write(
        specs.join("bad.yaml"),
        spec("bad", "example/bad:1", "'80:'"),
    )
    .expect("write");
    let taken = spec(
        "taken",
        "example/taken:1",
        &format!("'8080:0', '9090:{port}'"),
    );
    std::fs::write(specs.join("taken.yaml"), taken).expect("write");

    let out = berth(
        &ns,
        &[
            "deploy",
            "--spec",
            specs.to_str().expect("utf-8"),
            "--wait",
            "--timeout",
            "60s",
            "--max-concurrency",
            "4",
        ],
    );
    assert_eq!(out.status.code(), Some(1), "not every component succeeded");
    let stdout = String::from_utf8_lossy(&out.stdout);
    for i in 0..8 {
        assert!(
            stdout.contains(&format!("svc-{i}: rolled out\n")),
            "{stdout}"
        );
    }
    assert!(
        stdout.contains("bad: failed: ") && stdout.contains("ports[0]"),
        "{stdout}"
    );
    assert!(
        stdout.contains("taken: failed: ") && stdout.contains("provided port is already allocated"),
        "{stdout}"
    );
    assert!(labelled(&client, &ns, "bad", &[]).await.is_empty());
    assert!(
        labelled(&client, &ns, "taken", &[]).await.is_empty(),
        "the failed component is rolled back whole"
    );
    let listed = ok(&berth(&ns, &["list", "-o", "json"]));
    let listed: serde_json::Value = serde_json::from_str(&listed).expect("json");
    let mut names: Vec<&str> = listed
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|c| c["name"].as_str())
        .collect();
    names.sort_unstable();
    assert_eq!(
        names,
        [
            "holder", "svc-0", "svc-1", "svc-2", "svc-3", "svc-4", "svc-5", "svc-6", "svc-7"
        ]
    );

    // Several names: status and undeploy take them all.
    let names: Vec<String> = (0..8).map(|i| format!("svc-{i}")).collect();
    let mut args = vec!["status"];
    args.extend(names.iter().map(String::as_str));
    ok(&berth(&ns, &args));
    let mut args = vec!["undeploy", "--wait", "--timeout", "60s"];
    args.extend(names.iter().map(String::as_str));
    ok(&berth(&ns, &args));
    for name in &names {
        assert!(labelled(&client, &ns, name, &[]).await.is_empty(), "{name}");
    }
    drop_namespace(&client, &ns).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_never_ready_first_deploy_leaves_nothing_unless_kept() {
    let (client, ns) = namespace("never").await;
    let dir = tempfile::tempdir().expect("dir");
    let stuck = write_spec(&dir, &spec("stuck", "example/never-ready:1", "'80:0'"));
    let out = berth(
        &ns,
        &["deploy", "--spec", &stuck, "--wait", "--timeout", "10s"],
    );
    let err = exited(&out, 3);
    assert!(
        err.contains("undone: removed Deployment/dep-stuck, Service/stuck, ConfigMap/berth-stuck"),
        "{err}"
    );
    assert!(err.contains("timed out after 10s"), "{err}");
    assert!(labelled(&client, &ns, "stuck", &[]).await.is_empty());

    let out = berth(
        &ns,
        &[
            "deploy",
            "--spec",
            &stuck,
            "--wait",
            "--timeout",
            "2s",
            "--keep-on-failure",
        ],
    );
    let err = exited(&out, 3);
    assert!(!err.contains("undone"), "{err}");
    assert_eq!(
        labelled(&client, &ns, "stuck", &[]).await.len(),
        3,
        "kept for debugging"
    );
    drop_namespace(&client, &ns).await;
}

/// The pods of `ns` that are Ready, by name, with their image.
async fn ready_pods(client: &kube::Client, ns: &str) -> BTreeMap<String, String> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
    pods.list(&ListParams::default())
        .await
        .expect("pods")
        .items
        .into_iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .filter(|p| {
            p.status
                .as_ref()
                .and_then(|s| s.conditions.as_ref())
                .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
        })
        .map(|p| {
            let image = p
                .spec
                .and_then(|s| s.containers.first().and_then(|c| c.image.clone()));
            (
                p.metadata.name.unwrap_or_default(),
                image.unwrap_or_default(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_never_ready_update_is_undone_and_the_old_pods_keep_serving() {
    let (client, ns) = namespace("undo").await;
    let dir = tempfile::tempdir().expect("dir");
    let wait = ["--wait", "--timeout", "60s"];
    let v1 = write_spec(&dir, &spec("web", "example/web:1", "'80:0'"));
    ok(&berth(
        &ns,
        &[&["deploy", "--spec", &v1][..], &wait].concat(),
    ));
    let serving = ready_pods(&client, &ns).await;
    assert_eq!(serving.len(), 2);
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), &ns);
    let image = || async {
        deployments
            .get("dep-web")
            .await
            .expect("Deployment")
            .spec
            .expect("spec")
            .template
            .spec
            .expect("pod")
            .containers[0]
            .image
            .clone()
    };

    // upgrade: the image goes back, the pods that served keep serving.
    let out = berth(
        &ns,
        &[
            "upgrade",
            "web",
            "example/never-ready:2",
            "--wait",
            "--timeout",
            "8s",
        ],
    );
    let err = exited(&out, 3);
    assert!(
        err.contains(
            "undone: container 0 of web back to example/web:1 (a new revision in its history)"
        ),
        "{err}"
    );
    assert_eq!(image().await.as_deref(), Some("example/web:1"));
    assert_eq!(
        ready_pods(&client, &ns).await,
        serving,
        "the old pods, still ready"
    );
    // Undone whole, not spot by spot: v1's spec has nothing to change.
    let diff = berth(&ns, &["diff", "--spec", &v1]);
    exited(&diff, 0);

    // deploy of a changed spec: the Deployment is restored as it was.
    // It also drops the ports, so it prunes the Service: made again on undo.
    let broken = spec_file(
        &dir,
        "broken.yaml",
        "component_name: web\nimage: example/never-ready:3\nreplicas: 2\n",
    );
    let out = berth(
        &ns,
        &["deploy", "--spec", &broken, "--wait", "--timeout", "8s"],
    );
    let err = exited(&out, 3);
    assert!(err.contains("undone: restored Deployment/dep-web"), "{err}");
    assert!(err.contains("undone: made again Service/web"), "{err}");
    assert_eq!(image().await.as_deref(), Some("example/web:1"));
    let service: Api<k8s_openapi::api::core::v1::Service> = Api::namespaced(client.clone(), &ns);
    let ports = service
        .get("web")
        .await
        .expect("the Service, made again")
        .spec
        .expect("spec")
        .ports;
    assert_eq!(ports.expect("ports")[0].port, 80);
    assert_eq!(ready_pods(&client, &ns).await, serving);
    // Every object as v1's deploy left it (Deployment, Service, inventory): a restore that
    // missed a field, or a member, shows here. (It caught the undo making the Service again
    // with the cluster IP the server had allocated, as berth's own field: every later
    // deploy then failed, "primary clusterIP can not be unset".)
    let diff = berth(&ns, &["diff", "--spec", &v1]);
    exited(&diff, 0);
    let history = ok(&berth(&ns, &["history", "web"]));
    assert!(
        history.contains("example/never-ready:3"),
        "the failed template is a revision: {history}"
    );
    drop_namespace(&client, &ns).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_scale_that_cannot_finish_is_scaled_back() {
    let (client, ns) = namespace("quota").await;
    let dir = tempfile::tempdir().expect("dir");
    let web = spec_file(&dir, "web.yaml", &spec("web", "example/web:1", "'80:0'"));
    ok(&berth(
        &ns,
        &["deploy", "--spec", &web, "--wait", "--timeout", "60s"],
    ));
    // A quota of two pods: the third is never made, so the rollout cannot finish.
    pod_quota(&client, &ns, 2).await;
    let out = berth(&ns, &["scale", "web", "3", "--wait", "--timeout", "5s"]);
    let err = exited(&out, 3);
    assert!(
        err.contains("undone: scaled web back to 2 replicas"),
        "{err}"
    );
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), &ns);
    let replicas = deployments
        .get("dep-web")
        .await
        .expect("Deployment")
        .spec
        .and_then(|s| s.replicas);
    assert_eq!(replicas, Some(2));
    drop_namespace(&client, &ns).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_field_the_rules_stop_building_goes_even_from_objects_an_earlier_berth_created() {
    let (client, ns) = namespace("legacy").await;
    let dir = tempfile::tempdir().expect("dir");
    let probed = spec_file(
        &dir,
        "probed.yaml",
        "component_name: web\nimage: example/web:1\nports: ['80:0']\nreadiness: {type: http, endpoint: /ready}\n",
    );
    // What an earlier berth left: the objects made by a plain create (no field manager)
    // with the ownership labels, no inventory.
    let rendered = ok(&berth(&ns, &["render", "--spec", &probed, "-o", "json"]));
    let rendered: serde_json::Value = serde_json::from_str(&rendered).expect("json");
    for item in rendered["items"].as_array().expect("items") {
        let mut object: kube::api::DynamicObject =
            serde_json::from_value(item.clone()).expect("object");
        let labels = object.metadata.labels.get_or_insert_with(Default::default);
        labels.insert("app.kubernetes.io/managed-by".into(), "berth".into());
        labels.insert("berth.dev/component".into(), "web".into());
        let types = object.types.clone().expect("types");
        let (group, version) = types
            .api_version
            .rsplit_once('/')
            .unwrap_or(("", &types.api_version));
        let resource = kube::api::ApiResource::from_gvk(&kube::api::GroupVersionKind::gvk(
            group,
            version,
            &types.kind,
        ));
        Api::<kube::api::DynamicObject>::namespaced_with(client.clone(), &ns, &resource)
            .create(&kube::api::PostParams::default(), &object)
            .await
            .expect("create as an earlier berth did");
    }
    let plain = spec_file(
        &dir,
        "plain.yaml",
        "component_name: web\nimage: example/web:1\nports: ['80:0']\n",
    );
    let out = ok(&berth(&ns, &["deploy", "--spec", &plain]));
    assert!(out.contains("Deployment/dep-web updated"), "{out}");
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), &ns);
    let d = deployments.get("dep-web").await.expect("Deployment");
    let container = &d
        .spec
        .as_ref()
        .expect("spec")
        .template
        .spec
        .as_ref()
        .expect("pod")
        .containers[0];
    assert!(
        container.readiness_probe.is_none(),
        "the probe the rules no longer build is gone; managers: {:?}",
        d.metadata
            .managed_fields
            .iter()
            .flatten()
            .map(|e| (&e.manager, &e.operation))
            .collect::<Vec<_>>()
    );
    let updates: Vec<_> = d
        .metadata
        .managed_fields
        .iter()
        .flatten()
        .filter(|e| {
            e.operation.as_deref() == Some("Update") && e.manager.as_deref() == Some("unknown")
        })
        .collect();
    assert!(
        updates.is_empty(),
        "the earlier create's fields are berth's applied ones now: {updates:?}"
    );
    assert_eq!(
        berth(&ns, &["diff", "--spec", &plain]).status.code(),
        Some(0)
    );
    drop_namespace(&client, &ns).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_field_the_rules_stop_building_goes() {
    let (client, ns) = namespace("drop").await;
    let dir = tempfile::tempdir().expect("dir");
    let probed = spec_file(
        &dir,
        "probed.yaml",
        "component_name: web\nimage: example/web:1\nports: ['80:0']\nreadiness: {type: http, endpoint: /ready}\nenv: {A: '1'}\n",
    );
    ok(&berth(&ns, &["deploy", "--spec", &probed]));
    let plain = spec_file(
        &dir,
        "plain.yaml",
        "component_name: web\nimage: example/web:1\nports: ['80:0']\n",
    );
    let out = berth(&ns, &["diff", "--spec", &plain]);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    let removed = |what: &str| {
        text.lines()
            .any(|l| l.starts_with('-') && l.trim_start_matches('-').trim() == what)
    };
    assert!(
        removed("readinessProbe:") && removed("value: \"1\""),
        "{text}"
    );
    let out = ok(&berth(&ns, &["deploy", "--spec", &plain]));
    assert!(out.contains("Deployment/dep-web updated"), "{out}");
    assert_eq!(
        berth(&ns, &["diff", "--spec", &plain]).status.code(),
        Some(0)
    );
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), &ns);
    let d = deployments.get("dep-web").await.expect("Deployment");
    let container = &d.spec.expect("spec").template.spec.expect("pod").containers[0];
    assert!(
        container.readiness_probe.is_none(),
        "{:?}",
        container.readiness_probe
    );
    let env: Vec<&str> = container
        .env
        .iter()
        .flatten()
        .map(|e| e.name.as_str())
        .collect();
    assert_eq!(env, ["POD_IP"], "the dropped variable is gone");
    drop_namespace(&client, &ns).await;
}

/// Run berth as a person at a terminal does: under a pseudo-terminal (util-linux's
/// `script`, in every Debian), stdout and stderr as the terminal shows them.
fn at_a_terminal(ns: &str, args: &[&str]) -> (Option<i32>, String) {
    let inner = berth_in(&berth_e2e::cluster().admin_kubeconfig, ns, args);
    let quote = |s: &std::ffi::OsStr| format!("'{}'", s.to_string_lossy().replace('\'', r"'\''"));
    let line: Vec<String> = std::iter::once(inner.get_program())
        .chain(inner.get_args())
        .map(quote)
        .collect();
    let mut script = std::process::Command::new("script");
    script
        .args(["-q", "-e", "-c", &line.join(" "), "/dev/null"])
        .stdin(std::process::Stdio::null());
    for (key, value) in inner.get_envs() {
        match value {
            Some(value) => script.env(key, value),
            None => script.env_remove(key),
        };
    }
    let out = berth_e2e::command::output(&mut script, berth_e2e::command::BERTH_LIMIT);
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn diff_at_a_terminal_names_the_components_in_flight() {
    let (client, ns) = namespace("live").await;
    let dir = tempfile::tempdir().expect("dir");
    spec_file(&dir, "a.yaml", &spec("alpha", "example/web:1", ""));
    spec_file(&dir, "b.yaml", &spec("beta", "example/web:1", ""));
    let specs = dir.path().to_string_lossy().into_owned();
    // Both in flight at once (the default concurrency is above 2): the live line names
    // both, as deploy's and undeploy's do. It named none ("diffing 0/2: , ").
    let (code, shown) = at_a_terminal(&ns, &["diff", "--spec", &specs]);
    assert_eq!(code, Some(1), "{shown}");
    assert!(shown.contains("diffing 0/2: alpha, beta"), "{shown:?}");
    let (code, shown) = at_a_terminal(&ns, &["deploy", "--spec", &specs]);
    assert_eq!(code, Some(0), "{shown}");
    assert!(shown.contains("deploying 0/2: alpha, beta"), "{shown:?}");
    drop_namespace(&client, &ns).await;
}
