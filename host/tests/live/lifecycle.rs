//! berth's cluster operations end to end, on the local control plane (real kube-apiserver,
//! etcd and controller-manager; simulated kubelet): each test in its own namespace.

use crate::common;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use berth_e2e::components;

use berth_e2e::{cluster, unique_name};
use common::*;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Pod, Service};
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use serde_json::{Value, json};

#[tokio::test(flavor = "multi_thread")]
async fn full_example_lifecycle() {
    let (client, ns) = namespace("life").await;
    let dir = tempfile::tempdir().expect("dir");
    let spec = full_example(&dir, node_port(0));
    let deploy = ["deploy", "--spec", &spec, "--config", "examples/site.yaml"];

    let out = ok(&berth(
        &ns,
        &[&deploy[..], &["--wait", "--timeout", "60s"]].concat(),
    ));
    assert!(out.contains("Service/inventory created\nService/xinventory created\nDeployment/dep-inventory created\n"), "{out}");
    assert!(
        out.contains(&format!(
            "namespace: {ns}\ndeployment: dep-inventory\nservices: inventory, xinventory\n"
        )),
        "{out}"
    );
    assert!(out.contains("successfully rolled out"), "{out}");

    // The objects in the cluster are the rendered ones, plus berth's ownership stamp.
    let rendered: Value = serde_json::from_slice(
        &berth(
            &ns,
            &[
                "render",
                "--spec",
                &spec,
                "--config",
                "examples/site.yaml",
                "-o",
                "json",
            ],
        )
        .stdout,
    )
    .expect("render json");
    let live = Api::<Deployment>::namespaced(client.clone(), &ns)
        .get("dep-inventory")
        .await
        .expect("deployment");
    let live = serde_json::to_value(&live).expect("json");
    // Every rendered field is in the cluster (the API server adds its defaults).
    assert_subset(&rendered["items"][0], &live, "Deployment");
    assert_eq!(
        live["metadata"]["labels"]["app.kubernetes.io/managed-by"],
        "berth"
    );
    assert_eq!(
        live["metadata"]["labels"]["berth.dev/component"],
        "inventory"
    );
    let svc = Api::<Service>::namespaced(client.clone(), &ns)
        .get("xinventory")
        .await
        .expect("service");
    assert_eq!(
        svc.spec.and_then(|s| s.ports).expect("ports")[0].node_port,
        Some(i32::from(node_port(0)))
    );

    // Deploying the same spec again changes nothing.
    let again = ok(&berth(&ns, &deploy));
    assert!(again.contains("Service/inventory unchanged\nService/xinventory unchanged\nDeployment/dep-inventory unchanged\n"), "{again}");

    let status: Value =
        serde_json::from_str(&ok(&berth(&ns, &["status", "inventory", "-o", "json"])))
            .expect("status json");
    assert_eq!(
        (status["desired"].as_i64(), status["available"].as_i64()),
        (Some(2), Some(2))
    );
    assert_eq!(status["is_available"], true);

    // exec: output from every pod, prefixed, and each pod's real exit code.
    let out = berth(
        &ns,
        &[
            "exec",
            "inventory",
            "--",
            "sh",
            "-c",
            "echo hello; echo warn >&2; exit 3",
        ],
    );
    assert_eq!(
        out.status.code(),
        Some(4),
        "a command failing in a pod: exec's own exit code"
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(stdout.matches("] hello\n").count(), 2, "{stdout}");
    assert_eq!(stdout.matches(": exit code 3\n").count(), 2, "{stdout}");
    assert_eq!(
        String::from_utf8_lossy(&out.stderr)
            .matches("] warn\n")
            .count(),
        2
    );
    let outcomes: Value = serde_json::from_str(&ok(&berth(
        &ns,
        &["exec", "inventory", "-o", "json", "--", "echo", "hi"],
    )))
    .expect("exec json");
    let outcomes = outcomes.as_array().expect("array");
    assert_eq!(outcomes.len(), 2);
    for o in outcomes {
        assert_eq!(
            (o["exit_code"].as_i64(), o["stdout"].as_str()),
            (Some(0), Some("hi\n")),
            "{o}"
        );
    }

    // Scale up and down.
    ok(&berth(
        &ns,
        &["scale", "inventory", "4", "--wait", "--timeout", "60s"],
    ));
    let status: Value =
        serde_json::from_str(&ok(&berth(&ns, &["status", "inventory", "-o", "json"])))
            .expect("json");
    assert_eq!(
        (status["desired"].as_i64(), status["available"].as_i64()),
        (Some(4), Some(4))
    );
    ok(&berth(
        &ns,
        &["scale", "inventory", "1", "--wait", "--timeout", "60s"],
    ));
    let status: Value =
        serde_json::from_str(&ok(&berth(&ns, &["status", "inventory", "-o", "json"])))
            .expect("json");
    assert_eq!(
        (status["desired"].as_i64(), status["available"].as_i64()),
        (Some(1), Some(1))
    );

    // Upgrade, then roll back to the previous image.
    let old = "registry.example.com/platform/inventory:2.4.1";
    let new = "registry.example.com/platform/inventory:2.5.0";
    ok(&berth(
        &ns,
        &["upgrade", "inventory", new, "--wait", "--timeout", "60s"],
    ));
    let status: Value =
        serde_json::from_str(&ok(&berth(&ns, &["status", "inventory", "-o", "json"])))
            .expect("json");
    assert_eq!(status["images"][0], new);
    let history: Value =
        serde_json::from_str(&ok(&berth(&ns, &["history", "inventory", "-o", "json"])))
            .expect("json");
    assert_eq!(
        history,
        json!([
            {"revision": 1, "images": [old, "docker.elastic.co/beats/filebeat:5.5.0"], "current": false},
            {"revision": 2, "images": [new, "docker.elastic.co/beats/filebeat:5.5.0"], "current": true}
        ])
    );
    let out = ok(&berth(
        &ns,
        &["rollback", "inventory", "--wait", "--timeout", "60s"],
    ));
    assert!(
        out.starts_with("rolled back inventory to revision 1"),
        "{out}"
    );
    let status: Value =
        serde_json::from_str(&ok(&berth(&ns, &["status", "inventory", "-o", "json"])))
            .expect("json");
    assert_eq!(
        (status["images"][0].as_str(), status["revision"].as_str()),
        (Some(old), Some("3"))
    );
    let err = failed(&berth(
        &ns,
        &["rollback", "inventory", "--to-revision", "7"],
    ));
    assert!(
        err.contains("\"inventory\" has no revision 7 (known: 2, 3)"),
        "{err}"
    );

    // Undeploy leaves nothing: Services, Deployment, ReplicaSets and pods all gone.
    let out = ok(&berth(
        &ns,
        &["undeploy", "inventory", "--wait", "--timeout", "60s"],
    ));
    assert!(out.contains("Deployment/dep-inventory deleted"), "{out}");
    all_gone(&client, &ns).await;
    let err = failed(&berth(&ns, &["undeploy", "inventory"]));
    assert!(
        err.contains(&format!(
            "no component \"inventory\" deployed by berth in namespace \"{ns}\""
        )),
        "{err}"
    );
    let err = failed(&berth(&ns, &["status", "inventory"]));
    assert!(err.contains("no component"), "{err}");
    drop_namespace(&client, &ns).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_deploy_whose_second_object_fails_leaves_nothing() {
    let (client, ns) = namespace("half").await;
    // Someone else's Service holds the node port the full example asks for.
    let dir = tempfile::tempdir().expect("dir");
    let port = node_port(1);
    let squatter: Service = serde_json::from_value(json!({
        "metadata": {"name": "squatter"},
        "spec": {"type": "NodePort", "selector": {"x": "y"}, "ports": [{"port": 1, "nodePort": port}]}
    }))
    .expect("service");
    Api::<Service>::namespaced(client.clone(), &ns)
        .create(&PostParams::default(), &squatter)
        .await
        .expect("squatter");

    let err = failed(&berth(
        &ns,
        &[
            "deploy",
            "--spec",
            &full_example(&dir, port),
            "--config",
            "examples/site.yaml",
        ],
    ));
    assert!(err.contains("cannot create Service xinventory"), "{err}");
    assert!(err.contains("already allocated"), "{err}");
    assert!(
        err.contains("(rolled back: removed Service/inventory, ConfigMap/berth-inventory)"),
        "{err}"
    );
    assert_eq!(leftovers(&client, &ns).await, ["Service/squatter"]);
    drop_namespace(&client, &ns).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn wait_times_out_on_pods_that_never_become_ready() {
    let (client, ns) = namespace("stuck").await;
    let dir = tempfile::tempdir().expect("dir");
    let spec = write_spec(
        &dir,
        "component_name: stuck\nimage: example/never-ready:1\n",
    );
    ok(&berth(&ns, &["deploy", "--spec", &spec]));
    let err = not_available(&berth(&ns, &["wait", "stuck", "--timeout", "3s"]));
    assert!(
        err.contains("timed out after 3s waiting for \"stuck\": 0 of 1 updated replicas available"),
        "{err}"
    );
    let err = not_available(&berth(&ns, &["status", "stuck"]));
    assert!(
        err.is_empty(),
        "status of an unavailable component is exit 3, not an error: {err}"
    );
    drop_namespace(&client, &ns).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn exec_reports_a_pod_deleted_midway_and_carries_on() {
    let (client, ns) = namespace("gone").await;
    let dir = tempfile::tempdir().expect("dir");
    let spec = write_spec(
        &dir,
        "component_name: twins\nimage: example/app:1\nreplicas: 2\n",
    );
    ok(&berth(
        &ns,
        &["deploy", "--spec", &spec, "--wait", "--timeout", "60s"],
    ));
    let pods = Api::<Pod>::namespaced(client.clone(), &ns);
    let mut names: Vec<String> = pods
        .list(&ListParams::default())
        .await
        .expect("pods")
        .items
        .into_iter()
        .filter_map(|p| p.metadata.name)
        .collect();
    names.sort();
    assert_eq!(names.len(), 2);

    // One pod at a time: the second pod is deleted while the first still runs.
    let kubeconfig = cluster().admin_kubeconfig.clone();
    let namespace = ns.clone();
    let exec = std::thread::spawn(move || {
        berth_as(
            &kubeconfig,
            &namespace,
            &[
                "exec",
                "twins",
                "--max-concurrency",
                "1",
                "--",
                "sh",
                "-c",
                "sleep 3; echo done",
            ],
        )
    });
    tokio::time::sleep(Duration::from_millis(1000)).await;
    pods.delete(
        &names[1],
        &DeleteParams {
            grace_period_seconds: Some(0),
            ..DeleteParams::default()
        },
    )
    .await
    .expect("delete pod");
    let out = exec.join().expect("exec thread");
    assert_eq!(out.status.code(), Some(4), "{out:?}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(&format!("[{}] done\n", names[0])),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains(&format!("{}: exit code 0\n", names[0])),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("{}: pod no longer exists\n", names[1])),
        "{stdout}"
    );
    drop_namespace(&client, &ns).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn clear_errors_for_forbidden_missing_namespace_and_no_history() {
    // A user limited by RBAC to its own namespace.
    let limited = cluster()
        .limited_kubeconfig
        .clone()
        .expect("limited kubeconfig");
    let err = failed(&berth_as(
        &limited,
        "default",
        &["deploy", "--spec", "examples/minimal.yaml"],
    ));
    // The inventory is the first object a deploy writes.
    assert!(
        err.contains("cannot create ConfigMap berth-hello: configmaps is forbidden: User \"limited-user\" cannot create resource \"configmaps\""),
        "{err}"
    );
    // A namespace that does not exist.
    let err = failed(&berth(
        &unique_name("missing"),
        &["deploy", "--spec", "examples/minimal.yaml"],
    ));
    assert!(
        err.contains("cannot create ConfigMap berth-hello: namespaces \"missing-"),
        "{err}"
    );
    assert!(err.contains("not found"), "{err}");
    // Rollback with no earlier revision.
    let (client, ns) = namespace("nohist").await;
    ok(&berth(
        &ns,
        &[
            "deploy",
            "--spec",
            "examples/minimal.yaml",
            "--wait",
            "--timeout",
            "60s",
        ],
    ));
    let err = failed(&berth(&ns, &["rollback", "hello"]));
    assert!(
        err.contains("\"hello\" has no previous revision to roll back to"),
        "{err}"
    );
    drop_namespace(&client, &ns).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_deploy_makes_a_read_and_an_apply_per_object_and_nothing_else() {
    let (admin, ns) = namespace("count").await;
    let (client, requests) = counting_client().await;
    let cluster = berth::Cluster::new(client, ns.clone());
    let dir = tempfile::tempdir().expect("dir");
    let spec = berth::load_spec(Path::new(&full_example(&dir, node_port(2)))).expect("spec");
    let site = berth::load_site(&root().join("examples/site.yaml")).expect("site");
    let rules = berth::Rules::default_rules(&berth::RulesOptions::default()).expect("rules");
    let rendered = rules
        .render(&spec, &site, &berth::Capabilities::newest_known(), &ns)
        .expect("render");
    let component = rendered.component.clone();
    cluster
        .deploy(&component, rendered.clone())
        .await
        .expect("deploy");
    assert_eq!(
        requests.load(Ordering::SeqCst),
        1 + 3 * 2,
        "the inventory's create; a read and an apply for each of two Services and a Deployment"
    );
    // Counted from a settled state: while the Deployment rolls out its controller writes
    // its status, and such a write between berth's read (the plan's) and its conditional
    // take-over patch below costs one read and one patch more (a conflict, handled).
    cluster
        .wait(&component, std::time::Duration::from_secs(60), |_| {})
        .await
        .expect("rolled out");
    requests.store(0, Ordering::SeqCst);
    cluster
        .deploy(&component, rendered.clone())
        .await
        .expect("redeploy");
    // The inventory: a create that fails, a read. Each object: a read; then, this first
    // time only, one patch making the fields its create set berth's applied ones, and one
    // strategic merge patch clearing what the create owned but berth does not render (the
    // server's defaults, set again at once: nothing changes); then the apply (never
    // skipped: drift is put back). Then one list per kind (Services, Deployments) for what
    // to prune. The kind list is unchanged: no write.
    assert_eq!(requests.load(Ordering::SeqCst), 2 + 3 * 4 + 2);
    requests.store(0, Ordering::SeqCst);
    let report = cluster
        .deploy(&component, rendered)
        .await
        .expect("redeploy");
    assert_eq!(requests.load(Ordering::SeqCst), 2 + 3 * 2 + 2);
    assert!(
        report
            .actions
            .iter()
            .all(|(_, a)| *a == berth::Action::Unchanged),
        "{:?}",
        report.actions
    );
    drop_namespace(&admin, &ns).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn wait_fails_when_the_progress_deadline_passes() {
    let (client, ns) = namespace("deadline").await;
    // A Deployment carrying berth's labels, with a 1 s progress deadline and pods that never
    // become ready: the deployment controller marks it ProgressDeadlineExceeded.
    let deployment: Deployment = serde_json::from_value(json!({
        "metadata": {"name": "dep-late", "labels": {
            "app.kubernetes.io/managed-by": "berth", "berth.dev/component": "late"}},
        "spec": {
            "replicas": 1,
            "progressDeadlineSeconds": 1,
            "selector": {"matchLabels": {"app": "late"}},
            "template": {
                "metadata": {"labels": {"app": "late"}},
                "spec": {"containers": [{"name": "late", "image": "example/never-ready:1"}]}
            }
        }
    }))
    .expect("deployment");
    Api::<Deployment>::namespaced(client.clone(), &ns)
        .create(&PostParams::default(), &deployment)
        .await
        .expect("create");
    let err = not_available(&berth(&ns, &["wait", "late", "--timeout", "60s"]));
    assert!(
        err.contains(
            "rollout of \"late\" failed: deployment \"dep-late\" exceeded its progress deadline"
        ),
        "{err}"
    );
    drop_namespace(&client, &ns).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn site_rules_work_end_to_end_because_objects_are_found_by_ownership_labels() {
    let (client, ns) = namespace("site").await;
    let rules = components::component("site-rules");
    let rules = rules.to_str().expect("utf-8 path");
    let site = root().join("examples/site-rules/site.yaml");
    let site = site.to_str().expect("utf-8 path");
    let dir = tempfile::tempdir().expect("dir");
    let spec = write_spec(
        &dir,
        &format!(
            "component_name: shop\nimage: example/shop:1\nreplicas: 2\nports: ['8080:{}']\nlabels: {{team: payments}}\n",
            node_port(3)
        ),
    );

    let out = ok(&berth(
        &ns,
        &[
            "deploy",
            "--spec",
            &spec,
            "--rules",
            rules,
            "--config",
            site,
            "--wait",
            "--timeout",
            "60s",
        ],
    ));
    assert!(
        out.contains("deployment: acme-shop\nservices: acme-shop, acme-shop-ext\n"),
        "{out}"
    );
    let d = Api::<Deployment>::namespaced(client.clone(), &ns)
        .get("acme-shop")
        .await
        .expect("site-named Deployment");
    let labels = d.metadata.labels.unwrap_or_default();
    assert_eq!(labels.get("team").map(String::as_str), Some("payments"));
    assert_eq!(
        labels.get("cost-center").map(String::as_str),
        Some("cc-2040")
    );
    assert_eq!(
        labels.get("berth.dev/component").map(String::as_str),
        Some("shop")
    );

    let status: Value =
        serde_json::from_str(&ok(&berth(&ns, &["status", "shop", "-o", "json"]))).expect("json");
    assert_eq!(
        (status["deployment"].as_str(), status["available"].as_i64()),
        (Some("acme-shop"), Some(2))
    );
    ok(&berth(
        &ns,
        &["scale", "shop", "3", "--wait", "--timeout", "60s"],
    ));
    let outcomes: Value = serde_json::from_str(&ok(&berth(
        &ns,
        &["exec", "shop", "-o", "json", "--", "echo", "acme"],
    )))
    .expect("json");
    assert_eq!(outcomes.as_array().map(Vec::len), Some(3));
    let out = ok(&berth(
        &ns,
        &["undeploy", "shop", "--wait", "--timeout", "60s"],
    ));
    assert!(
        out.contains("Service/acme-shop deleted") && out.contains("Deployment/acme-shop deleted"),
        "{out}"
    );
    all_gone(&client, &ns).await;
    drop_namespace(&client, &ns).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn capabilities_come_from_discovery_even_for_a_limited_user() {
    // Discovery is open to every authenticated user: the RBAC-limited one reads it too.
    let client = cluster().limited_client().await;
    let caps = berth::Cluster::new(client, berth_e2e::LIMITED_NAMESPACE)
        .capabilities()
        .await
        .expect("discovery");
    assert_eq!(caps.kube_version, "1.20");
    for served in ["v1", "apps/v1", "policy/v1beta1", "networking.k8s.io/v1"] {
        assert!(caps.serves(served), "{served} in {:?}", caps.api_versions);
    }
    assert!(!caps.serves("policy/v1"), "policy/v1 came with 1.21");
    let mut sorted = caps.api_versions.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted, caps.api_versions);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_inventory_is_an_applyset_that_prunes_adopts_and_survives_its_parent() {
    let (client, ns) = namespace("inv").await;
    let dir = tempfile::tempdir().expect("dir");
    let config_maps = Api::<ConfigMap>::namespaced(client.clone(), &ns);
    let services = Api::<Service>::namespaced(client.clone(), &ns);
    let deployments = Api::<Deployment>::namespaced(client.clone(), &ns);
    let id = berth::hooks::applyset_id("inventory", &ns);
    let members = |kind: &'static str| {
        let (services, deployments, id) = (services.clone(), deployments.clone(), id.clone());
        async move {
            let lp = ListParams::default().labels(&format!("applyset.kubernetes.io/part-of={id}"));
            let mut names: Vec<String> = match kind {
                "Service" => services
                    .list(&lp)
                    .await
                    .expect("list")
                    .items
                    .into_iter()
                    .map(|s| s.metadata.name.unwrap_or_default())
                    .collect(),
                _ => deployments
                    .list(&lp)
                    .await
                    .expect("list")
                    .items
                    .into_iter()
                    .map(|d| d.metadata.name.unwrap_or_default())
                    .collect(),
            };
            names.sort();
            names
        }
    };
    let deploy = |node_port: u16| {
        let spec = full_example(&dir, node_port);
        ok(&berth(
            &ns,
            &["deploy", "--spec", &spec, "--config", "examples/site.yaml"],
        ))
    };

    // The parent, as KEP-3659 has it, and every member part of the set.
    deploy(node_port(4));
    let parent = config_maps.get("berth-inventory").await.expect("parent");
    let labels = parent.metadata.labels.clone().unwrap_or_default();
    let annotations = parent.metadata.annotations.clone().unwrap_or_default();
    assert_eq!(labels["applyset.kubernetes.io/id"], id);
    assert_eq!(labels["app.kubernetes.io/managed-by"], "berth");
    assert_eq!(labels["berth.dev/component"], "inventory");
    assert_eq!(
        annotations["applyset.kubernetes.io/contains-group-kinds"],
        "Deployment.apps,Service"
    );
    assert_eq!(annotations["applyset.kubernetes.io/tooling"], "berth/0.1.0");
    assert!(id.starts_with("applyset-") && id.ends_with("-v1"), "{id}");
    assert_eq!(members("Service").await, ["inventory", "xinventory"]);
    assert_eq!(members("Deployment").await, ["dep-inventory"]);

    // Prune: without a node port the rules build no `xinventory` Service.
    let out = deploy(0);
    assert!(out.contains("Service/xinventory deleted"), "{out}");
    assert_eq!(members("Service").await, ["inventory"]);
    assert!(services.get_opt("xinventory").await.expect("get").is_none());

    // Adoption: the component as the previous berth left it (no parent, no part-of labels).
    config_maps
        .delete("berth-inventory", &DeleteParams::default())
        .await
        .expect("delete parent");
    let unlabel = json!({"metadata": {"labels": {"applyset.kubernetes.io/part-of": null}}});
    let patch = kube::api::Patch::Merge(&unlabel);
    let params = kube::api::PatchParams::default();
    services
        .patch("inventory", &params, &patch)
        .await
        .expect("unlabel");
    deployments
        .patch("dep-inventory", &params, &patch)
        .await
        .expect("unlabel");
    assert!(members("Service").await.is_empty() && members("Deployment").await.is_empty());
    let before = deployments.get("dep-inventory").await.expect("deployment");
    let service_uid = services
        .get("inventory")
        .await
        .expect("service")
        .metadata
        .uid;
    let out = deploy(0);
    assert!(!out.contains("created"), "nothing recreated: {out}");
    assert!(out.contains("Deployment/dep-inventory updated"), "{out}");
    let after = deployments.get("dep-inventory").await.expect("deployment");
    assert_eq!(
        after.metadata.uid, before.metadata.uid,
        "the same Deployment"
    );
    assert_eq!(
        after.metadata.generation, before.metadata.generation,
        "no new pod template: no pod restarted"
    );
    assert_eq!(
        services
            .get("inventory")
            .await
            .expect("service")
            .metadata
            .uid,
        service_uid
    );
    assert_eq!(members("Service").await, ["inventory"]);
    assert_eq!(members("Deployment").await, ["dep-inventory"]);
    assert!(
        config_maps
            .get_opt("berth-inventory")
            .await
            .expect("get")
            .is_some()
    );

    // Undeploy finds the members by their ownership labels even when the parent is gone.
    config_maps
        .delete("berth-inventory", &DeleteParams::default())
        .await
        .expect("delete parent");
    let out = ok(&berth(
        &ns,
        &["undeploy", "inventory", "--wait", "--timeout", "60s"],
    ));
    assert!(out.contains("Deployment/dep-inventory deleted"), "{out}");
    assert!(!out.contains("ConfigMap"), "{out}");
    all_gone(&client, &ns).await;
    drop_namespace(&client, &ns).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn exec_reaches_exactly_the_pods_a_match_expressions_selector_selects() {
    let (client, ns) = namespace("expr").await;
    let (mine, theirs) = (
        tempfile::tempdir().expect("dir"),
        tempfile::tempdir().expect("dir"),
    );
    // Another component beside it, with pods of its own.
    let neighbour = write_spec(
        &theirs,
        "component_name: neighbour\nimage: example/n:1\nreplicas: 2\n",
    );
    ok(&berth(
        &ns,
        &["deploy", "--spec", &neighbour, "--wait", "--timeout", "60s"],
    ));
    // Rules whose Deployment selects with matchExpressions only.
    let rules = components::component("berth-hostile-rules");
    let spec = write_spec(
        &mine,
        "component_name: expressions-only\nimage: example/e:1\nreplicas: 1\n",
    );
    ok(&berth(
        &ns,
        &[
            "deploy",
            "--spec",
            &spec,
            "--rules",
            rules.to_str().expect("utf-8"),
            "--wait",
            "--timeout",
            "60s",
        ],
    ));
    let live = Api::<Deployment>::namespaced(client.clone(), &ns)
        .get("dep-expressions-only")
        .await
        .expect("deployment");
    let selector = live.spec.expect("spec").selector;
    assert!(selector.match_labels.is_none(), "{selector:?}");
    assert_eq!(selector.match_expressions.map(|e| e.len()), Some(1));

    let out: Value = serde_json::from_str(&ok(&berth(
        &ns,
        &["exec", "expressions-only", "-o", "json", "--", "true"],
    )))
    .expect("json");
    let pods: Vec<&str> = out
        .as_array()
        .expect("outcomes")
        .iter()
        .map(|o| o["pod"].as_str().expect("pod"))
        .collect();
    assert_eq!(
        pods.len(),
        1,
        "its one pod, not the neighbour's two: {pods:?}"
    );
    assert!(pods[0].starts_with("dep-expressions-only-"), "{pods:?}");
    // History finds its ReplicaSets through the same selector.
    let history: Value = serde_json::from_str(&ok(&berth(
        &ns,
        &["history", "expressions-only", "-o", "json"],
    )))
    .expect("json");
    assert_eq!(history.as_array().map(Vec::len), Some(1), "{history}");
    drop_namespace(&client, &ns).await;
}

/// A client that counts its requests.
async fn counting_client() -> (kube::Client, Arc<AtomicUsize>) {
    let requests = Arc::new(AtomicUsize::new(0));
    let counter = requests.clone();
    let config = kube::Config::from_custom_kubeconfig(
        kube::config::Kubeconfig::read_from(&cluster().admin_kubeconfig).expect("kubeconfig"),
        &kube::config::KubeConfigOptions::default(),
    )
    .await
    .expect("config");
    let client = kube::client::ClientBuilder::try_from(config)
        .expect("builder")
        .with_layer(&tower::util::MapRequestLayer::new(move |req| {
            counter.fetch_add(1, Ordering::SeqCst);
            req
        }))
        .build();
    (client, requests)
}

#[tokio::test(flavor = "multi_thread")]
async fn list_shows_components_across_namespaces_in_one_request_with_their_rules() {
    let (admin, a) = namespace("list-a").await;
    let (_, b) = namespace("list-b").await;
    let (_, c) = namespace("list-c").await;
    let dir = tempfile::tempdir().expect("dir");
    let labelled = write_spec(
        &dir,
        "component_name: listed\nimage: example/l:1\nreplicas: 2\nlabels: {team: payments}\n",
    );
    ok(&berth(&a, &["deploy", "--spec", "examples/minimal.yaml"]));
    ok(&berth(&b, &["deploy", "--spec", "examples/minimal.yaml"]));
    ok(&berth(&c, &["deploy", "--spec", &labelled]));
    let default_digest = format!(
        "sha256:{}",
        berth::Rules::default_rules(&berth::RulesOptions::default())
            .expect("rules")
            .digest()
    );

    // The CLI, one namespace: only that namespace's component.
    let listed: Value =
        serde_json::from_str(&ok(&berth(&a, &["list", "-o", "json"]))).expect("json");
    let rows = listed.as_array().expect("list");
    assert_eq!(rows.len(), 1, "{listed}");
    assert_eq!(rows[0]["namespace"], a.as_str());
    assert_eq!(rows[0]["name"], "hello");
    assert_eq!(rows[0]["deployment"], "dep-hello");
    assert_eq!(rows[0]["desired"], 1);
    assert_eq!(rows[0]["revision"], "1");
    assert_eq!(rows[0]["rules_digest"], default_digest.as_str());
    assert!(
        rows[0]["age_seconds"]
            .as_i64()
            .is_some_and(|s| (0..600).contains(&s))
    );
    let text = ok(&berth(&a, &["list"]));
    assert!(text.starts_with("NAMESPACE "), "{text}");
    assert!(text.contains(&format!("{a}  hello")), "{text}");

    // All namespaces, and a label selector, through the library: one request each.
    let ours = |rows: &[berth::ComponentSummary]| -> Vec<(String, String)> {
        rows.iter()
            .filter(|r| [&a, &b, &c].contains(&&r.namespace))
            .map(|r| (r.namespace.clone(), r.name.clone()))
            .collect()
    };
    let (client, requests) = counting_client().await;
    let cluster = berth::Cluster::new(client, a.clone());
    let all = cluster
        .list(berth::Scope::AllNamespaces, None)
        .await
        .expect("list");
    assert_eq!(requests.swap(0, Ordering::SeqCst), 1, "one list request");
    assert_eq!(
        ours(&all),
        [
            (a.clone(), "hello".to_owned()),
            (b.clone(), "hello".to_owned()),
            (c.clone(), "listed".to_owned())
        ]
    );
    let payments = cluster
        .list(berth::Scope::AllNamespaces, Some("team=payments"))
        .await
        .expect("list");
    assert_eq!(requests.swap(0, Ordering::SeqCst), 1, "one list request");
    assert_eq!(ours(&payments), [(c.clone(), "listed".to_owned())]);
    let cli: Value = serde_json::from_str(&ok(&berth(
        &a,
        &["list", "-A", "-l", "team=payments", "-o", "json"],
    )))
    .expect("json");
    assert!(
        cli.as_array()
            .expect("list")
            .iter()
            .any(|r| r["namespace"] == c.as_str() && r["name"] == "listed"),
        "{cli}"
    );

    // New rules that render the same objects are a change: their digest is recorded.
    let hostile = components::component("berth-hostile-rules");
    let hostile = hostile.to_str().expect("utf-8");
    let redeploy = [
        "deploy",
        "--spec",
        "examples/minimal.yaml",
        "--rules",
        hostile,
    ];
    let out = ok(&berth(&a, &redeploy));
    assert!(out.contains("Deployment/dep-hello updated"), "{out}");
    let out = ok(&berth(&a, &redeploy));
    assert!(out.contains("Deployment/dep-hello unchanged"), "{out}");
    let listed: Value =
        serde_json::from_str(&ok(&berth(&a, &["list", "-o", "json"]))).expect("json");
    let digest = listed[0]["rules_digest"].as_str().expect("digest");
    assert!(
        digest.starts_with("sha256:") && digest != default_digest,
        "{digest}"
    );
    assert_eq!(listed[0]["revision"], "1", "same pod template: no rollout");
    for ns in [&a, &b, &c] {
        drop_namespace(&admin, ns).await;
    }
}
