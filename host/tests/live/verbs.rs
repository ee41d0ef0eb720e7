//! The options of single verbs on the local control plane, each checked right when the
//! command returns: `undeploy --wait`, `rollback --to-revision`, `upgrade
//! --container-index`, exec's main container, `--context`.

use crate::common;

use common::*;
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams, Patch, PatchParams};
use serde_json::json;

/// The images of `dep-<name>`'s containers, in order.
async fn images(client: &kube::Client, ns: &str, deployment: &str) -> Vec<String> {
    let d = Api::<Deployment>::namespaced(client.clone(), ns)
        .get(deployment)
        .await
        .expect("Deployment");
    d.spec
        .and_then(|s| s.template.spec)
        .map(|p| p.containers.into_iter().filter_map(|c| c.image).collect())
        .unwrap_or_default()
}

/// What the pods and ReplicaSets of `component` run right now: the images of each pod that
/// is not terminating, and the desired and current replicas of each ReplicaSet not running
/// `images` (the old ones).
async fn running(
    client: &kube::Client,
    ns: &str,
    component: &str,
    images: &[&str],
) -> (Vec<Vec<String>>, Vec<(i32, i32)>) {
    let owned = ListParams::default().labels(&format!("app={component}"));
    let pods = Api::<Pod>::namespaced(client.clone(), ns)
        .list(&owned)
        .await
        .expect("pods");
    let pods = pods
        .items
        .into_iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .map(|p| {
            let spec = p.spec.unwrap_or_default();
            spec.containers
                .into_iter()
                .filter_map(|c| c.image)
                .collect()
        })
        .collect();
    let sets = Api::<ReplicaSet>::namespaced(client.clone(), ns)
        .list(&owned)
        .await
        .expect("replica sets");
    let old = sets
        .items
        .into_iter()
        .filter(|rs| {
            let template = rs.spec.as_ref().and_then(|s| s.template.as_ref());
            let containers = template
                .and_then(|t| t.spec.as_ref())
                .map(|p| &p.containers);
            let run: Vec<&str> = containers
                .into_iter()
                .flatten()
                .filter_map(|c| c.image.as_deref())
                .collect();
            run != images
        })
        .map(|rs| {
            let desired = rs.spec.and_then(|s| s.replicas).unwrap_or(0);
            (desired, rs.status.map_or(0, |s| s.replicas))
        })
        .collect();
    (pods, old)
}

/// Right when a `--wait` returns: every pod that is not terminating runs `images`, as
/// many as wanted, and no old ReplicaSet keeps a pod.
async fn all_pods_run(
    client: &kube::Client,
    ns: &str,
    component: &str,
    images: &[&str],
    want: usize,
) {
    let (pods, old) = running(client, ns, component, images).await;
    assert_eq!(pods.len(), want, "{pods:?}");
    for pod in &pods {
        assert_eq!(pod, images, "a pod runs another template: {pods:?}");
    }
    assert!(
        old.iter()
            .all(|&(desired, current)| desired == 0 && current == 0),
        "{old:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn undeploy_wait_returns_when_nothing_is_left() {
    let (client, ns) = namespace("gone").await;
    let dir = tempfile::tempdir().expect("dir");
    let spec = write_spec(
        &dir,
        "component_name: gone\nimage: example/gone:1\nreplicas: 3\nports: ['80:0']\n",
    );
    ok(&berth(
        &ns,
        &["deploy", "--spec", &spec, "--wait", "--timeout", "60s"],
    ));
    let out = ok(&berth(
        &ns,
        &["undeploy", "gone", "--wait", "--timeout", "60s"],
    ));
    assert!(out.ends_with("gone\n"), "{out}");
    // No polling: the moment it returns, no Deployment, ReplicaSet, pod, Service or
    // inventory of it is left.
    let left = leftovers(&client, &ns).await;
    assert!(
        left.is_empty(),
        "left when undeploy --wait returned: {left:?}"
    );
    drop_namespace(&client, &ns).await;
}

/// `undeploy --wait` the moment a deploy returns, while the controllers are still making
/// the ReplicaSet and pods: a fresh-machine run once saw a pod made after the wait had
/// returned (the deployment controller, its cache behind, made the ReplicaSet again after
/// the foreground deletion was over). Rounds in several namespaces at once, so the
/// controllers lag as they did; each checked at once and again 2 s later.
#[tokio::test(flavor = "multi_thread")]
async fn undeploy_wait_right_after_a_deploy_leaves_nothing_behind_later_either() {
    const NAMESPACES: usize = 4;
    const ROUNDS: usize = 5;
    const CHURN: usize = 12;
    // A command of berth's, on a blocking thread: the rounds run at once.
    async fn run(ns: &str, args: &[&str]) -> std::process::Output {
        let ns = ns.to_owned();
        let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
        tokio::task::spawn_blocking(move || {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            berth(&ns, &args)
        })
        .await
        .expect("berth ran")
    }
    let rounds = (0..NAMESPACES).map(|_| {
        tokio::spawn(async {
            let (client, ns) = namespace("race-gone").await;
            let dir = tempfile::tempdir().expect("dir");
            let spec = write_spec(
                &dir,
                "component_name: race\nimage: example/race:1\nreplicas: 3\nports: ['80:0']\n",
            );
            for round in 0..ROUNDS {
                ok(&run(&ns, &["deploy", "--spec", &spec]).await);
                let args = ["undeploy", "race", "--wait", "--timeout", "60s"];
                let out = ok(&run(&ns, &args).await);
                assert!(out.ends_with("gone\n"), "round {round}: {out}");
                let left = leftovers(&client, &ns).await;
                assert!(left.is_empty(), "{ns} round {round}, at once: {left:?}");
                tokio::time::sleep(std::time::Duration::from_secs(2)).await;
                let left = leftovers(&client, &ns).await;
                assert!(left.is_empty(), "{ns} round {round}, 2 s later: {left:?}");
            }
            drop_namespace(&client, &ns).await;
        })
    });
    // Load on the controllers, as a busy cluster has: other Deployments scaled up and
    // down the whole time, so their informers and work queues lag.
    let churn = tokio::spawn(async {
        let (client, ns) = namespace("race-churn").await;
        let dir = tempfile::tempdir().expect("dir");
        let names: Vec<String> = (0..CHURN).map(|i| format!("churn{i}")).collect();
        for name in &names {
            let spec = write_spec(
                &dir,
                &format!("component_name: {name}\nimage: example/churn:1\nreplicas: 1\n"),
            );
            ok(&run(&ns, &["deploy", "--spec", &spec]).await);
        }
        let deployments = Api::<Deployment>::namespaced(client.clone(), &ns);
        for replicas in [4, 0].into_iter().cycle() {
            for name in &names {
                let scale = json!({"spec": {"replicas": replicas}});
                let _ = deployments
                    .patch(
                        &format!("dep-{name}"),
                        &PatchParams::default(),
                        &Patch::Merge(&scale),
                    )
                    .await;
            }
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
    });
    let outcomes = futures::future::join_all(rounds).await;
    churn.abort();
    for outcome in outcomes {
        if let Err(failed) = outcome {
            std::panic::resume_unwind(failed.into_panic());
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn undeploy_wait_that_times_out_names_what_is_left_and_what_holds_it() {
    let (client, ns) = namespace("held").await;
    let dir = tempfile::tempdir().expect("dir");
    let spec = write_spec(
        &dir,
        "component_name: held
image: example/held:1
",
    );
    ok(&berth(
        &ns,
        &["deploy", "--spec", &spec, "--wait", "--timeout", "60s"],
    ));
    // A finalizer of another controller's that never goes: the Deployment cannot go.
    let deployments = Api::<Deployment>::namespaced(client.clone(), &ns);
    let hold = json!({"metadata": {"finalizers": ["example.com/hold"]}});
    deployments
        .patch("dep-held", &PatchParams::default(), &Patch::Merge(&hold))
        .await
        .expect("a finalizer");
    let started = std::time::Instant::now();
    let out = berth(&ns, &["undeploy", "held", "--wait", "--timeout", "5s"]);
    let took = started.elapsed();
    let err = not_available(&out);
    assert!(
        err.contains("timed out after 5s waiting for \"held\": still there: Deployment/dep-held (being deleted; finalizers: "),
        "{err}"
    );
    assert!(err.contains("example.com/hold"), "{err}");
    assert!(
        took >= std::time::Duration::from_secs(5) && took < std::time::Duration::from_secs(15),
        "{took:?}"
    );
    // Let it go.
    let release = json!({"metadata": {"finalizers": null}});
    deployments
        .patch("dep-held", &PatchParams::default(), &Patch::Merge(&release))
        .await
        .expect("the finalizer removed");
    drop_namespace(&client, &ns).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn rollback_to_a_revision_and_upgrade_of_another_container() {
    let (client, ns) = namespace("revs").await;
    let dir = tempfile::tempdir().expect("dir");
    // The logging sidecar makes a second container.
    let spec = write_spec(
        &dir,
        "component_name: revs\nimage: example/revs:1\nreplicas: 2\nlog_info: {log_directory: /var/log/revs}\n",
    );
    let replicas = 2;
    let wait = ["--wait", "--timeout", "60s"];
    let site = root().join("examples/site.yaml");
    let site = site.to_str().expect("utf-8");
    ok(&berth(
        &ns,
        &[&["deploy", "--spec", &spec, "--config", site][..], &wait].concat(),
    ));
    let sidecar = "docker.elastic.co/beats/filebeat:5.5.0";
    assert_eq!(
        images(&client, &ns, "dep-revs").await,
        ["example/revs:1", sidecar]
    );
    // exec runs in the main container, not the logging sidecar beside it.
    let out: serde_json::Value = serde_json::from_str(&ok(&berth(
        &ns,
        &[
            "exec",
            "revs",
            "-o",
            "json",
            "--",
            "sh",
            "-c",
            "echo $BERTH_SIM_CONTAINER",
        ],
    )))
    .expect("json");
    assert_eq!(out[0]["stdout"], "revs\n", "{out}");

    ok(&berth(
        &ns,
        &[&["upgrade", "revs", "example/revs:2"][..], &wait].concat(),
    ));
    let out = ok(&berth(
        &ns,
        &[
            &[
                "upgrade",
                "revs",
                "example/filebeat:6",
                "--container-index",
                "1",
            ][..],
            &wait,
        ]
        .concat(),
    ));
    assert!(
        out.contains(&format!("container 1: {sidecar} -> example/filebeat:6")),
        "{out}"
    );
    assert_eq!(
        images(&client, &ns, "dep-revs").await,
        ["example/revs:2", "example/filebeat:6"]
    );
    let upgraded = ["example/revs:2", "example/filebeat:6"];
    all_pods_run(&client, &ns, "revs", &upgraded, replicas).await;
    let err = failed(&berth(
        &ns,
        &["upgrade", "revs", "x:1", "--container-index", "2"],
    ));
    assert!(
        err.contains("has 2 container(s); there is no container index 2"),
        "{err}"
    );

    // Revisions 1, 2 and 3: back to the first, whose template comes back as revision 4.
    let out = ok(&berth(
        &ns,
        &[&["rollback", "revs", "--to-revision", "1"][..], &wait].concat(),
    ));
    assert!(out.contains("rolled back revs to revision 1"), "{out}");
    assert_eq!(
        images(&client, &ns, "dep-revs").await,
        ["example/revs:1", sidecar]
    );
    all_pods_run(&client, &ns, "revs", &["example/revs:1", sidecar], replicas).await;
    let history: serde_json::Value =
        serde_json::from_str(&ok(&berth(&ns, &["history", "revs", "-o", "json"]))).expect("json");
    let current: Vec<&serde_json::Value> = history
        .as_array()
        .expect("revisions")
        .iter()
        .filter(|r| r["current"] == true)
        .collect();
    assert_eq!(current.len(), 1);
    assert_eq!(current[0]["revision"], 4);
    assert_eq!(
        current[0]["images"],
        serde_json::json!(["example/revs:1", sidecar])
    );
    let err = failed(&berth(&ns, &["rollback", "revs", "--to-revision", "9"]));
    assert!(err.contains("has no revision 9"), "{err}");
    drop_namespace(&client, &ns).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn context_picks_the_kubeconfig_context() {
    let (client, ns) = namespace("ctx").await;
    // The admin kubeconfig with a second context, current, that leads nowhere.
    let admin = &berth_e2e::cluster().admin_kubeconfig;
    let mut config = kube::config::Kubeconfig::read_from(admin).expect("kubeconfig");
    let working = config.current_context.clone().expect("a current context");
    let mut nowhere = config.clusters[0].clone();
    nowhere.name = "nowhere".into();
    if let Some(cluster) = nowhere.cluster.as_mut() {
        cluster.server = Some("https://127.0.0.1:1".into());
    }
    config.clusters.push(nowhere);
    let mut context = config.contexts[0].clone();
    context.name = "nowhere".into();
    if let Some(c) = context.context.as_mut() {
        c.cluster = "nowhere".into();
    }
    config.contexts.push(context);
    config.current_context = Some("nowhere".into());
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("kubeconfig");
    std::fs::write(&path, serde_json::to_vec(&config).expect("json")).expect("write");

    let spec = write_spec(&dir, "component_name: ctx\nimage: example/ctx:1\n");
    let err = failed(&berth_as(&path, &ns, &["deploy", "--spec", &spec]));
    assert!(
        err.contains("127.0.0.1:1") || err.contains("onnect"),
        "{err}"
    );
    let out = ok(&berth_as(
        &path,
        &ns,
        &["--context", &working, "deploy", "--spec", &spec],
    ));
    assert!(out.contains("Deployment/dep-ctx created"), "{out}");
    drop_namespace(&client, &ns).await;
}

/// `web` (`example/web:1`, 2 replicas) rendered by the default rules for `cluster`, as an
/// embedder does it: no CLI.
async fn web_rendered(cluster: &berth::Cluster) -> berth::Rendered {
    let rules = berth::Rules::default_rules(&berth::RulesOptions::default()).expect("rules");
    let spec = berth::Spec::parse("component_name: web\nimage: example/web:1\nreplicas: 2\n")
        .expect("spec");
    let caps = cluster.capabilities().await.expect("capabilities");
    rules
        .render(
            &spec,
            &berth::SiteConfig::default(),
            &caps,
            cluster.namespace(),
        )
        .expect("renders")
}

#[tokio::test(flavor = "multi_thread")]
async fn the_library_undoes_a_failed_scale_upgrade_and_rollback() {
    // No CLI: an embedder's scale, upgrade and rollback whose rollouts fail, put back by the
    // library.
    let (client, ns) = namespace("lib-undo").await;
    let cluster = berth::Cluster::new(client.clone(), ns.clone());
    let rendered = web_rendered(&cluster).await;
    cluster.deploy("web", rendered).await.expect("deploy");
    let wait = |timeout: u64| cluster.wait("web", std::time::Duration::from_secs(timeout), |_| {});
    wait(60).await.expect("the first rollout");
    // Two pods at most: neither a third replica nor a new revision's surge pod is made.
    pod_quota(&client, &ns, 2).await;
    let deployments = Api::<Deployment>::namespaced(client.clone(), &ns);
    let replicas = || async {
        let d = deployments.get("dep-web").await.expect("Deployment");
        d.spec.and_then(|s| s.replicas)
    };

    let scaled = cluster.scale("web", 3).await.expect("scale");
    assert_eq!((scaled.previous, scaled.replicas), (2, 3));
    let failed = wait(5).await.expect_err("a third pod is never made");
    assert!(
        matches!(failed, berth::ClusterError::Timeout { .. }),
        "{failed}"
    );
    cluster.undo_scale(&scaled).await.expect("undo the scale");
    assert_eq!(replicas().await, Some(2));

    let upgraded = cluster
        .upgrade("web", "example/web:2", 0)
        .await
        .expect("upgrade");
    assert_eq!(upgraded.previous, "example/web:1");
    let failed = wait(5).await.expect_err("no surge pod is made");
    assert!(
        matches!(failed, berth::ClusterError::Timeout { .. }),
        "{failed}"
    );
    cluster
        .undo_upgrade(&upgraded)
        .await
        .expect("undo the upgrade");
    assert_eq!(
        images(&client, &ns, "dep-web").await,
        vec!["example/web:1".to_owned()]
    );
    assert_eq!(replicas().await, Some(2));

    // The revision before the current one is the upgrade's (example/web:2).
    wait(60).await.expect("the first revision's pods again");
    let rolled = cluster.rollback("web", 0).await.expect("rollback");
    assert_eq!(rolled.revision.images, vec!["example/web:2".to_owned()]);
    assert_eq!(
        images(&client, &ns, "dep-web").await,
        vec!["example/web:2".to_owned()]
    );
    let failed = wait(5).await.expect_err("no surge pod is made");
    assert!(
        matches!(failed, berth::ClusterError::Timeout { .. }),
        "{failed}"
    );
    cluster
        .undo_rollback(&rolled)
        .await
        .expect("undo the rollback");
    assert_eq!(
        images(&client, &ns, "dep-web").await,
        vec!["example/web:1".to_owned()]
    );
    wait(60)
        .await
        .expect("back to the first revision's pods, all available");
    drop_namespace(&client, &ns).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_undo_reaches_only_the_object_it_changed() {
    // A scale is undone by a patch carrying the Deployment's uid: when the Deployment was
    // made again under the same name meanwhile, the undo refuses it and changes nothing.
    let (client, ns) = namespace("undo-uid").await;
    let cluster = berth::Cluster::new(client.clone(), ns.clone());
    let rendered = web_rendered(&cluster).await;
    cluster
        .deploy("web", rendered.clone())
        .await
        .expect("deploy");
    let scaled = cluster.scale("web", 3).await.expect("scale");
    cluster
        .undeploy_and_wait("web", std::time::Duration::from_secs(60))
        .await
        .expect("undeployed, and gone");
    cluster.deploy("web", rendered).await.expect("deploy again");

    let refused = cluster
        .undo_scale(&scaled)
        .await
        .expect_err("another Deployment of the name");
    let refused = refused.to_string();
    assert!(
        refused.contains("cannot scale Deployment dep-web back to 2: ")
            && refused.contains("metadata.uid"),
        "{refused}"
    );
    let deployment = Api::<Deployment>::namespaced(client.clone(), &ns)
        .get("dep-web")
        .await
        .expect("Deployment");
    assert_eq!(
        deployment.spec.and_then(|s| s.replicas),
        Some(2),
        "untouched"
    );
    drop_namespace(&client, &ns).await;
}
