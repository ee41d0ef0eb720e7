//! Objects of any namespaced kind on the local control plane (Kubernetes 1.20): Acme's
//! PodDisruptionBudget and NetworkPolicy applied, pruned and undeployed; kinds beyond the
//! defaults refused until allowed, cluster-scoped, foreign-namespace and unserved kinds
//! refused with nothing created; an autoscaler owning the replicas; every verb as a user
//! holding only the Role the README documents (`examples/berth-role.json`).

use crate::common;

use std::time::Duration;

use berth_e2e::{Check, LIMITED_NAMESPACE, cluster, components, unique_name, wait_for};
use common::*;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, PostParams};
use serde_json::{Value, json};

/// The PodDisruptionBudget of a 1.20 cluster, which berth's types do not know.
fn pdb_v1beta1() -> ApiResource {
    ApiResource::from_gvk(&GroupVersionKind::gvk(
        "policy",
        "v1beta1",
        "PodDisruptionBudget",
    ))
}

/// The test's custom kinds: `Certificate` (namespaced) and `Issuer` (cluster-scoped), in a
/// group of the test's own.
const GROUP: &str = "berth-test.example";

fn custom(kind: &str) -> ApiResource {
    ApiResource::from_gvk(&GroupVersionKind::gvk(GROUP, "v1", kind))
}

/// Everything of `component` in `ns` (see [`common::labelled`]), of the kinds this file
/// deploys besides the usual ones.
async fn nothing_labelled(client: &kube::Client, ns: &str, component: &str) {
    let left = labelled(
        client,
        ns,
        component,
        &[pdb_v1beta1(), custom("Certificate")],
    )
    .await;
    assert!(left.is_empty(), "left behind: {left:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn acme_deploys_its_budget_and_policy_prunes_the_budget_and_undeploys_everything() {
    let (client, ns) = namespace("acme").await;
    let rules = components::component("site-rules");
    let rules = rules.to_str().expect("utf-8 path");
    let site = root().join("examples/site-rules/site.yaml");
    let site = site.to_str().expect("utf-8 path");
    let dir = tempfile::tempdir().expect("dir");
    let spec_text =
        "component_name: shop\nimage: example/shop:1\nports: ['8080:0', '9125/udp:0']\n";
    let budgeted = write_spec(
        &dir,
        &format!("{spec_text}extensions: {{acme: {{min_available: 1}}}}\n"),
    );
    let deploy = |spec: &str| {
        ok(&berth(
            &ns,
            &["deploy", "--spec", spec, "--rules", rules, "--config", site],
        ))
    };
    let out = deploy(&budgeted);
    assert!(
        out.contains("PodDisruptionBudget/acme-shop created")
            && out.contains("NetworkPolicy/acme-shop created"),
        "{out}"
    );

    // The cluster is 1.20: the rules saw no policy/v1 and built policy/v1beta1.
    let d = Api::<Deployment>::namespaced(client.clone(), &ns)
        .get("acme-shop")
        .await
        .expect("Deployment");
    let d_spec = d.spec.expect("spec");
    let pdbs: Api<DynamicObject> = Api::namespaced_with(client.clone(), &ns, &pdb_v1beta1());
    let pdb = pdbs.get("acme-shop").await.expect("PodDisruptionBudget");
    assert_eq!(pdb.data["spec"]["minAvailable"], 1);
    assert_eq!(
        pdb.data["spec"]["selector"],
        serde_json::to_value(&d_spec.selector).expect("json")
    );
    let policy = Api::<NetworkPolicy>::namespaced(client.clone(), &ns)
        .get("acme-shop")
        .await
        .expect("NetworkPolicy")
        .spec
        .expect("spec");
    assert_eq!(policy.pod_selector.as_ref(), Some(&d_spec.selector));
    let container_ports: Vec<(Value, Option<String>)> =
        d_spec.template.spec.expect("pod spec").containers[0]
            .ports
            .iter()
            .flatten()
            .map(|p| (json!(p.container_port), p.protocol.clone()))
            .collect();
    let admitted: Vec<(Value, Option<String>)> = policy
        .ingress
        .iter()
        .flatten()
        .flat_map(|rule| rule.ports.iter().flatten())
        .map(|p| {
            (
                serde_json::to_value(&p.port).expect("json"),
                p.protocol.clone(),
            )
        })
        .collect();
    assert_eq!(admitted, container_ports);
    assert_eq!(container_ports.len(), 2);
    let parent = Api::<ConfigMap>::namespaced(client.clone(), &ns)
        .get("berth-shop")
        .await
        .expect("parent");
    let kinds = |parent: &ConfigMap| {
        parent.metadata.annotations.as_ref().expect("annotations")
            ["applyset.kubernetes.io/contains-group-kinds"]
            .clone()
    };
    assert_eq!(
        kinds(&parent),
        "Deployment.apps,NetworkPolicy.networking.k8s.io,PodDisruptionBudget.policy,Service"
    );

    // Without min_available the budget is pruned, and the parent names it no longer.
    let out = deploy(&write_spec(&dir, spec_text));
    assert!(
        out.contains("PodDisruptionBudget/acme-shop deleted"),
        "{out}"
    );
    assert!(pdbs.get_opt("acme-shop").await.expect("get").is_none());
    let parent = Api::<ConfigMap>::namespaced(client.clone(), &ns)
        .get("berth-shop")
        .await
        .expect("parent");
    assert_eq!(
        kinds(&parent),
        "Deployment.apps,NetworkPolicy.networking.k8s.io,Service"
    );

    let out = ok(&berth(
        &ns,
        &["undeploy", "shop", "--wait", "--timeout", "60s"],
    ));
    assert!(out.contains("NetworkPolicy/acme-shop deleted"), "{out}");
    nothing_labelled(&client, &ns, "shop").await;
    all_gone(&client, &ns).await;
    drop_namespace(&client, &ns).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn config_map_volumes_and_env_from_secrets_reach_the_pod_spec() {
    let (client, ns) = namespace("refs").await;
    let dir = tempfile::tempdir().expect("dir");
    let spec = write_spec(
        &dir,
        "component_name: refs\nimage: example/refs:1\n\
         env: {DB_PASSWORD: {secret: db, key: password}, MODE: {config_map: settings, key: mode}}\n\
         volumes:\n  - config_volume: {name: settings}\n    container: {bind: /etc/refs}\n",
    );
    ok(&berth(&ns, &["deploy", "--spec", &spec]));
    let d = Api::<Deployment>::namespaced(client.clone(), &ns)
        .get("dep-refs")
        .await
        .expect("Deployment");
    let pod = serde_json::to_value(d.spec.expect("spec").template.spec).expect("json");
    let container = &pod["containers"][0];
    assert_eq!(
        container["env"].as_array().expect("env")[..2],
        json!([
            {"name": "DB_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "db", "key": "password"}}},
            {"name": "MODE", "valueFrom": {"configMapKeyRef": {"name": "settings", "key": "mode"}}}
        ])
        .as_array()
        .expect("array")[..]
    );
    let volume = pod["volumes"]
        .as_array()
        .expect("volumes")
        .iter()
        .find(|v| v["configMap"].is_object())
        .expect("a ConfigMap volume");
    assert_eq!(
        volume["configMap"],
        json!({"name": "settings", "defaultMode": 420, "optional": true})
    );
    let mount = container["volumeMounts"]
        .as_array()
        .expect("mounts")
        .iter()
        .find(|m| m["name"] == volume["name"])
        .expect("its mount");
    assert_eq!(
        (&mount["mountPath"], &mount["readOnly"]),
        (&json!("/etc/refs"), &json!(true))
    );
    ok(&berth(
        &ns,
        &["undeploy", "refs", "--wait", "--timeout", "60s"],
    ));
    all_gone(&client, &ns).await;
    drop_namespace(&client, &ns).await;
}

/// Create the test's CRDs (cluster-wide, shared by runs) and wait until they are served.
async fn custom_kinds(client: &kube::Client) {
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    for (kind, plural, scope) in [
        ("Certificate", "certificates", "Namespaced"),
        ("Issuer", "issuers", "Cluster"),
    ] {
        let crd: CustomResourceDefinition = serde_json::from_value(json!({
            "metadata": {"name": format!("{plural}.{GROUP}")},
            "spec": {
                "group": GROUP, "scope": scope,
                "names": {"kind": kind, "plural": plural, "singular": kind.to_lowercase()},
                "versions": [{"name": "v1", "served": true, "storage": true,
                              "schema": {"openAPIV3Schema": {"type": "object",
                                  "x-kubernetes-preserve-unknown-fields": true}}}]
            }
        }))
        .expect("CRD");
        match crds.create(&PostParams::default(), &crd).await {
            Ok(_) => {}
            Err(kube::Error::Api(status)) if status.code == 409 => {}
            Err(e) => panic!("create CRD: {e}"),
        }
        let name = format!("{plural}.{GROUP}");
        wait_for("CRD established", Duration::from_secs(60), || async {
            let crd = crds.get(&name).await.expect("get CRD");
            let established = crd.status.and_then(|s| s.conditions).is_some_and(|c| {
                c.iter()
                    .any(|c| c.type_ == "Established" && c.status == "True")
            });
            if established {
                Check::Done(())
            } else {
                Check::Pending("not established".to_owned())
            }
        })
        .await;
    }
}

/// A spec for the rules that return the objects of `extensions.objects` after the
/// default ones.
fn spec_with(dir: &tempfile::TempDir, objects: Value) -> String {
    let spec = json!({
        "component_name": "certs",
        "image": "example/certs:1",
        "ports": ["8443:0"],
        "extensions": {"objects": objects},
    });
    write_spec(dir, &spec.to_string())
}

#[tokio::test(flavor = "multi_thread")]
async fn kinds_beyond_the_defaults_are_refused_until_allowed_and_a_refusal_creates_nothing() {
    let (client, ns) = namespace("kinds").await;
    custom_kinds(&client).await;
    let rules = components::component("berth-defaults-caller");
    let rules = rules.to_str().expect("utf-8 path");
    let dir = tempfile::tempdir().expect("dir");
    let deploy = |spec: &str, extra: &[&str]| {
        let mut args = vec!["deploy", "--spec", spec, "--rules", rules];
        args.extend_from_slice(extra);
        berth(&ns, &args)
    };
    let object = |api_version: &str, kind: &str, name: &str, extra: Value| {
        let mut o = json!({"apiVersion": api_version, "kind": kind, "metadata": {"name": name}});
        if let (Some(o), Value::Object(extra)) = (o.as_object_mut(), extra) {
            o.extend(extra);
        }
        o
    };
    let certificate = object(
        &format!("{GROUP}/v1"),
        "Certificate",
        "certs-tls",
        json!({"spec": {"secretName": "certs-tls", "dnsNames": ["certs.example"]}}),
    );
    let allow = |kind: &'static str| vec!["--allow-kind", kind];
    let refusals = [
        (
            json!([certificate.clone()]),
            vec![],
            "berth does not accept berth-test.example/v1/Certificate objects unless the platform allows them (--allow-kind berth-test.example/v1/Certificate, or allowed_kinds in the site config)",
        ),
        (
            json!([object(
                "v1",
                "Secret",
                "certs-key",
                json!({"stringData": {"key": "x"}})
            )]),
            vec![],
            "berth does not accept v1/Secret objects unless the platform allows them",
        ),
        (
            // Allowed or not, a cluster-scoped kind of berth's tables is refused.
            json!([object(
                "rbac.authorization.k8s.io/v1",
                "ClusterRole",
                "certs",
                json!({})
            )]),
            allow("rbac.authorization.k8s.io/v1/ClusterRole"),
            "rbac.authorization.k8s.io/v1/ClusterRole is cluster-scoped; berth applies only namespaced objects",
        ),
        (
            json!([object(
                "v1",
                "ConfigMap",
                "certs",
                json!({"metadata": {"name": "certs", "namespace": "kube-system"}})
            )]),
            vec![],
            "v1 ConfigMap/certs: namespace \"kube-system\" is not the target namespace",
        ),
        (
            // 1.20 serves policy/v1beta1 only.
            json!([object(
                "policy/v1",
                "PodDisruptionBudget",
                "certs",
                json!({"spec": {"minAvailable": 1}})
            )]),
            vec![],
            "the cluster does not serve policy/v1 PodDisruptionBudget",
        ),
        (
            // Not in berth's tables: discovery tells that it is cluster-scoped.
            json!([object(&format!("{GROUP}/v1"), "Issuer", "certs", json!({}))]),
            allow("berth-test.example/v1/Issuer"),
            "berth-test.example/v1 Issuer is cluster-scoped on this cluster; berth applies only namespaced objects",
        ),
    ];
    for (objects, extra, message) in refusals {
        let err = failed(&deploy(&spec_with(&dir, objects), &extra));
        assert!(err.contains(message), "{message}:\n{err}");
        // Refused before anything was made, not made and rolled back.
        assert!(!err.contains("rolled back"), "{err}");
        nothing_labelled(&client, &ns, "certs").await;
    }

    // A kind berth's types do not know at that version passes the shape check; the API
    // server's refusal (applied after the Deployment) rolls back everything made before.
    let bad_budget = object(
        "policy/v1beta1",
        "PodDisruptionBudget",
        "certs",
        json!({"spec": {"minAvailable": "lots"}}),
    );
    let err = failed(&deploy(&spec_with(&dir, json!([bad_budget])), &[]));
    assert!(
        err.contains("cannot create PodDisruptionBudget certs: PodDisruptionBudget.policy \"certs\" is invalid"),
        "{err}"
    );
    assert!(
        err.contains(
            "(rolled back: removed Deployment/dep-certs, Service/certs, ConfigMap/berth-certs)"
        ),
        "{err}"
    );
    nothing_labelled(&client, &ns, "certs").await;

    // Allowed, the custom resource and the Secret are applied with the rest, labelled as
    // members of the set, and undeploy deletes them with the rest.
    let secret = object(
        "v1",
        "Secret",
        "certs-key",
        json!({"stringData": {"key": "x"}}),
    );
    let spec = spec_with(&dir, json!([certificate, secret]));
    let out = ok(&deploy(
        &spec,
        &[
            "--allow-kind",
            "berth-test.example/v1/Certificate",
            "--allow-kind",
            "v1/Secret",
        ],
    ));
    assert!(
        out.contains("Certificate/certs-tls created") && out.contains("Secret/certs-key created"),
        "{out}"
    );
    let certs: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), &ns, &custom("Certificate"));
    let cert = certs.get("certs-tls").await.expect("Certificate");
    assert_eq!(cert.data["spec"]["secretName"], "certs-tls");
    let labels = cert.metadata.labels.unwrap_or_default();
    assert_eq!(
        labels.get("berth.dev/component").map(String::as_str),
        Some("certs")
    );
    assert!(labels.contains_key("applyset.kubernetes.io/part-of"));
    let out = ok(&berth(
        &ns,
        &["undeploy", "certs", "--wait", "--timeout", "60s"],
    ));
    assert!(out.contains("Certificate/certs-tls deleted"), "{out}");
    nothing_labelled(&client, &ns, "certs").await;
    all_gone(&client, &ns).await;
    drop_namespace(&client, &ns).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_autoscaler_owns_the_replicas_and_scale_refuses() {
    let (client, ns) = namespace("hpa").await;
    let rules = components::component("berth-defaults-caller");
    let rules = rules.to_str().expect("utf-8 path");
    let dir = tempfile::tempdir().expect("dir");
    let hpa = json!({
        "apiVersion": "autoscaling/v1", "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "scaled"},
        "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "dep-scaled"},
                 "minReplicas": 2, "maxReplicas": 4}
    });
    let spec = json!({"component_name": "scaled", "image": "example/scaled:1", "replicas": 5,
                      "extensions": {"objects": [hpa]}});
    let spec = write_spec(&dir, &spec.to_string());
    ok(&berth(&ns, &["deploy", "--spec", &spec, "--rules", rules]));
    // berth applied no replica count: the API server defaulted it (1), or the autoscaler
    // already raised it to its minimum (2); never the spec's 5.
    let deployments = Api::<Deployment>::namespaced(client.clone(), &ns);
    let replicas = || async {
        deployments
            .get("dep-scaled")
            .await
            .expect("Deployment")
            .spec
            .and_then(|s| s.replicas)
    };
    let before = replicas().await;
    assert!(matches!(before, Some(1 | 2)), "{before:?}");
    let err = failed(&berth(&ns, &["scale", "scaled", "3"]));
    assert!(
        err.contains("the replicas of \"scaled\" are set by its HorizontalPodAutoscaler scaled"),
        "{err}"
    );
    assert_ne!(replicas().await, Some(3));
    ok(&berth(
        &ns,
        &["undeploy", "scaled", "--wait", "--timeout", "60s"],
    ));
    all_gone(&client, &ns).await;
    drop_namespace(&client, &ns).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn every_verb_works_with_only_the_documented_role() {
    // up.sh binds the limited user to examples/berth-role.json in its namespace, nothing
    // more; Acme's rules add a PodDisruptionBudget and a NetworkPolicy to the usual kinds.
    let limited = cluster()
        .limited_kubeconfig
        .clone()
        .expect("limited kubeconfig");
    let client = cluster().admin_client().await;
    let ns = LIMITED_NAMESPACE;
    let name = unique_name("rbac");
    let rules = components::component("site-rules");
    let rules = rules.to_str().expect("utf-8 path");
    let site = root().join("examples/site-rules/site.yaml");
    let site = site.to_str().expect("utf-8 path");
    let dir = tempfile::tempdir().expect("dir");
    let spec = write_spec(
        &dir,
        &format!(
            "component_name: {name}\nimage: example/rbac:1\nports: ['8080:0']\n\
             extensions: {{acme: {{min_available: 1}}}}\n"
        ),
    );
    let run = |args: &[&str]| ok(&berth_as(&limited, ns, args));
    let wait = ["--wait", "--timeout", "60s"];
    let deploy = [
        &[
            "deploy", "--spec", &spec, "--rules", rules, "--config", site,
        ][..],
        &wait,
    ]
    .concat();
    let out = run(&deploy);
    assert!(
        out.contains(&format!("PodDisruptionBudget/acme-{name} created")),
        "{out}"
    );
    run(&["status", &name]);
    run(&["wait", &name, "--timeout", "60s"]);
    run(&[&["scale", &name, "2"][..], &wait].concat());
    run(&[&["upgrade", &name, "example/rbac:2"][..], &wait].concat());
    let history = run(&["history", &name]);
    assert!(history.contains("example/rbac:2"), "{history}");
    run(&[&["rollback", &name][..], &wait].concat());
    let listed = run(&["list"]);
    assert!(listed.contains(&name), "{listed}");
    let exec = run(&["exec", &name, "--", "echo", "hi"]);
    assert_eq!(exec.matches("hi").count(), 2, "{exec}");
    // A redeploy that prunes (no min_available), after a diff and a server dry run of it,
    // and the undeploy of every kind.
    let plain = write_spec(
        &dir,
        &format!("component_name: {name}\nimage: example/rbac:1\nports: ['8080:0']\n"),
    );
    let build = ["--spec", &plain, "--rules", rules, "--config", site];
    let diff = berth_as(&limited, ns, &[&["diff"][..], &build].concat());
    assert_eq!(
        diff.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&diff.stderr)
    );
    run(&[&["deploy", "--dry-run=server"][..], &build].concat());
    let out = run(&[
        "deploy", "--spec", &plain, "--rules", rules, "--config", site,
    ]);
    assert!(
        out.contains(&format!("PodDisruptionBudget/acme-{name} deleted")),
        "{out}"
    );
    run(&[&["undeploy", &name][..], &wait].concat());
    nothing_labelled(&client, ns, &name).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn adding_an_autoscaler_keeps_the_replicas_and_a_configmap_member_spares_the_inventory() {
    let (client, ns) = namespace("handover").await;
    let rules = components::component("berth-defaults-caller");
    let rules = rules.to_str().expect("utf-8 path");
    let dir = tempfile::tempdir().expect("dir");
    let settings = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "grow-settings"},
                          "data": {"mode": "fast"}});
    let without = json!({"component_name": "grow", "image": "example/grow:1", "replicas": 3,
                         "extensions": {"objects": [settings]}});
    // Twice: the first deploy creates (its fields are the create's), the second makes them
    // berth's applied ones, as they are on any component deployed more than once.
    for _ in 0..2 {
        ok(&berth(
            &ns,
            &[
                "deploy",
                "--spec",
                &write_spec(&dir, &without.to_string()),
                "--rules",
                rules,
            ],
        ));
    }
    let deployments = Api::<Deployment>::namespaced(client.clone(), &ns);
    let replicas = || async {
        deployments
            .get("dep-grow")
            .await
            .expect("Deployment")
            .spec
            .and_then(|s| s.replicas)
    };
    assert_eq!(replicas().await, Some(3));

    // Now with an autoscaler (no controller scales here): the 3 replicas stay, handed over.
    let hpa = json!({
        "apiVersion": "autoscaling/v1", "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "grow"},
        "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "dep-grow"},
                 "minReplicas": 2, "maxReplicas": 6}
    });
    let with = json!({"component_name": "grow", "image": "example/grow:1", "replicas": 3,
                      "extensions": {"objects": [settings, hpa]}});
    // The diff taken first predicts exactly that: the autoscaler added, the Deployment's
    // replicas kept (not dropping to the default 1); compared with the deploy's result below.
    let predicted = berth(
        &ns,
        &[
            "diff",
            "--spec",
            &write_spec(&dir, &with.to_string()),
            "--rules",
            rules,
            "-o",
            "json",
        ],
    );
    let shown = String::from_utf8_lossy(&predicted.stdout);
    assert_eq!(predicted.status.code(), Some(1), "{shown}");
    let shown: serde_json::Value = serde_json::from_str(&shown).expect("JSON");
    let objects = shown[0]["objects"].as_array().expect("objects");
    let predicted_of = |kind: &str| {
        objects
            .iter()
            .find(|o| {
                let object = o["object"].as_str().unwrap_or_default();
                object.starts_with(&format!("{kind}/"))
            })
            .unwrap_or_else(|| panic!("no {kind} in {shown}"))
    };
    assert_eq!(predicted_of("HorizontalPodAutoscaler")["change"], "added");
    let deployment = predicted_of("Deployment");
    assert_eq!(deployment["after"]["spec"]["replicas"], 3, "{deployment}");
    let out = ok(&berth(
        &ns,
        &[
            "deploy",
            "--spec",
            &write_spec(&dir, &with.to_string()),
            "--rules",
            rules,
        ],
    ));
    assert!(
        out.contains("HorizontalPodAutoscaler/grow created"),
        "{out}"
    );
    // Both as the typed spec, which leaves out the nulls a dynamic object keeps.
    let predicted: k8s_openapi::api::apps::v1::DeploymentSpec =
        serde_json::from_value(deployment["after"]["spec"].clone()).expect("a DeploymentSpec");
    let live = deployments.get("dep-grow").await.expect("Deployment");
    assert_eq!(Some(predicted), live.spec, "diff predicted the deploy");
    assert_eq!(replicas().await, Some(3), "not defaulted to 1");

    // The rules' ConfigMap is a member; the inventory (a ConfigMap with the same
    // ownership labels) is not, and survives the redeploy's pruning and diff.
    assert!(!out.contains("ConfigMap/berth-grow deleted"), "{out}");
    let config_maps = Api::<ConfigMap>::namespaced(client.clone(), &ns);
    assert!(
        config_maps
            .get_opt("berth-grow")
            .await
            .expect("get")
            .is_some()
    );
    let diff = berth(
        &ns,
        &[
            "diff",
            "--spec",
            &write_spec(&dir, &with.to_string()),
            "--rules",
            rules,
        ],
    );
    assert_eq!(
        diff.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&diff.stdout)
    );
    let out = ok(&berth(
        &ns,
        &["undeploy", "grow", "--wait", "--timeout", "60s"],
    ));
    assert!(
        out.contains("ConfigMap/grow-settings deleted")
            && out.contains("ConfigMap/berth-grow deleted"),
        "{out}"
    );
    nothing_labelled(&client, &ns, "grow").await;
    drop_namespace(&client, &ns).await;
}

/// A kubeconfig with the admin's credentials that acts as `user` (impersonation): a user
/// holding only what RBAC grants it, without a credential of its own.
fn impersonating(dir: &tempfile::TempDir, user: &str) -> std::path::PathBuf {
    let mut config = kube::config::Kubeconfig::read_from(&cluster().admin_kubeconfig)
        .expect("the admin kubeconfig");
    for named in &mut config.auth_infos {
        if let Some(auth) = named.auth_info.as_mut() {
            auth.impersonate = Some(user.to_owned());
        }
    }
    let path = dir.path().join(format!("{user}.kubeconfig"));
    std::fs::write(&path, serde_json::to_vec(&config).expect("kubeconfig json"))
        .expect("write kubeconfig");
    path
}

#[tokio::test(flavor = "multi_thread")]
async fn each_rule_of_the_documented_role_is_needed() {
    // The other test shows the Role suffices; this one that it holds nothing berth does
    // not need: with any one rule removed, the command that needs it is refused by the
    // API server (403), naming that rule's resource, and berth says so (exit 1, or exec's
    // 4 for a pod it could not reach).
    let role: Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("examples/berth-role.json")).expect("the Role"),
    )
    .expect("the Role's JSON");
    let rules = role["rules"].as_array().expect("rules").clone();
    let caller = components::component("berth-defaults-caller");
    let caller = caller.to_str().expect("utf-8 path");
    let dir = tempfile::tempdir().expect("dir");
    let object = |api_version: &str, kind: &str, spec: Value| json!({"apiVersion": api_version, "kind": kind, "metadata": {"name": "extra"}, "spec": spec});
    let with_object = |name: &str, object: Value| {
        let spec = json!({"component_name": name, "image": "example/rbac:1",
                          "extensions": {"objects": [object]}});
        write_spec(&dir, &spec.to_string())
    };
    let plain = |name: &str| {
        write_spec(
            &dir,
            &format!("component_name: {name}\nimage: example/rbac:1\n"),
        )
    };
    let mut checked = Vec::new();
    for (i, rule) in rules.iter().enumerate() {
        let resources: Vec<&str> = rule["resources"]
            .as_array()
            .expect("resources")
            .iter()
            .filter_map(Value::as_str)
            .collect();
        let (client, ns) = namespace(&format!("rbac-minus-{i}")).await;
        let user = format!("berth-minus-{i}");
        let mut minus = role.clone();
        minus["rules"].as_array_mut().expect("rules").remove(i);
        minus["metadata"]["namespace"] = json!(ns);
        let binding = json!({
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
            "metadata": {"name": "berth", "namespace": ns},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "berth"},
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": user}]
        });
        for (plural, object) in [("roles", minus), ("rolebindings", binding)] {
            let resource = ApiResource::from_gvk_with_plural(
                &GroupVersionKind::gvk("rbac.authorization.k8s.io", "v1", ""),
                plural,
            );
            let object: DynamicObject = serde_json::from_value(object).expect("RBAC object");
            Api::<DynamicObject>::namespaced_with(client.clone(), &ns, &resource)
                .create(&PostParams::default(), &object)
                .await
                .expect("create RBAC object");
        }
        // The Role in force: one permission every remaining Role has (pods or Deployments).
        let (group, resource) = if resources.contains(&"deployments") {
            ("", "pods")
        } else {
            ("apps", "deployments")
        };
        wait_for("the Role in force", WAIT, || async {
            if allowed(&client, &user, &ns, group, resource, "list").await {
                Check::Done(())
            } else {
                Check::Pending("not yet allowed".into())
            }
        })
        .await;
        let kubeconfig = impersonating(&dir, &user);
        let name = format!("minus{i}");
        let as_user = |args: &[&str]| berth_as(&kubeconfig, &ns, args);
        let out = match resources[0] {
            "deployments" | "configmaps" => as_user(&["deploy", "--spec", &plain(&name)]),
            "replicasets" | "pods" | "pods/exec" => {
                // Deployed by the admin; the user then needs the rule to look at it.
                ok(&berth(
                    &ns,
                    &[
                        "deploy",
                        "--spec",
                        &plain(&name),
                        "--wait",
                        "--timeout",
                        "60s",
                    ],
                ));
                if resources[0] == "replicasets" {
                    as_user(&["history", &name])
                } else {
                    as_user(&["exec", &name, "--", "true"])
                }
            }
            "poddisruptionbudgets" => as_user(&[
                "deploy",
                "--rules",
                caller,
                "--spec",
                &with_object(
                    &name,
                    object(
                        "policy/v1beta1",
                        "PodDisruptionBudget",
                        json!({"minAvailable": 1, "selector": {"matchLabels": {"app": name}}}),
                    ),
                ),
            ]),
            "horizontalpodautoscalers" => as_user(&[
                "deploy",
                "--rules",
                caller,
                "--spec",
                &with_object(
                    &name,
                    object(
                        "autoscaling/v1",
                        "HorizontalPodAutoscaler",
                        json!({"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": format!("dep-{name}")}, "maxReplicas": 2}),
                    ),
                ),
            ]),
            "networkpolicies" => as_user(&[
                "deploy",
                "--rules",
                caller,
                "--spec",
                &with_object(
                    &name,
                    object(
                        "networking.k8s.io/v1",
                        "NetworkPolicy",
                        json!({"podSelector": {}}),
                    ),
                ),
            ]),
            other => panic!("no command is known to need {other}: add one here"),
        };
        let want = if resources[0] == "pods/exec" { 4 } else { 1 };
        let said = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            out.status.code(),
            Some(want),
            "without {resources:?}: {said}"
        );
        assert!(
            said.contains("forbidden")
                && resources
                    .iter()
                    .any(|r| said.contains(&format!("resource \"{r}\""))),
            "without {resources:?}: not refused for it: {said}"
        );
        checked.push(resources.join(","));
        drop_namespace(&client, &ns).await;
    }
    assert_eq!(checked.len(), rules.len());
    eprintln!("each rule needed: {checked:?}");
}

/// `object` as diff shows it: without what the API server keeps for itself.
fn as_shown(object: &DynamicObject) -> Value {
    let mut value = serde_json::to_value(object).expect("JSON");
    let meta = value["metadata"].as_object_mut().expect("metadata");
    for field in [
        "managedFields",
        "resourceVersion",
        "generation",
        "uid",
        "creationTimestamp",
        "selfLink",
    ] {
        meta.remove(field);
    }
    if let Some(annotations) = meta.get_mut("annotations").and_then(Value::as_object_mut) {
        annotations.remove("deployment.kubernetes.io/revision");
    }
    value.as_object_mut().expect("object").remove("status");
    value
}

#[tokio::test]
async fn diff_predicts_exactly_what_deploy_then_does_for_every_kind_of_step() {
    // Library calls, no CLI. A first deploy, a NetworkPolicy labelled the component's by
    // hand, then a render whose plan has every kind of step: a create (a new ConfigMap),
    // an apply that changes nothing (the Service), an apply removing what berth applied
    // before (a ConfigMap key dropped), a hand-over (an autoscaler appears), an adoption
    // (the NetworkPolicy) and prunes (a ConfigMap, and the last ServiceAccount: a kind the
    // inventory drops). The diff taken before the deploy is what the deploy then did.
    let (client, ns) = namespace("plan").await;
    let cluster = berth::Cluster::new(client.clone(), ns.clone());
    let rules = components::component("berth-defaults-caller");
    let rules = berth::Rules::from_file(&rules, &berth::RulesOptions::default()).expect("rules");
    let caps = cluster.capabilities().await.expect("capabilities");
    let render = |objects: Value| {
        let spec = json!({"component_name": "plan", "image": "example/plan:1", "replicas": 3,
                          "ports": ["8080:0"],
                          "extensions": {"objects": objects}});
        let spec = berth::Spec::parse(&spec.to_string()).expect("spec");
        rules
            .render(&spec, &berth::SiteConfig::default(), &caps, &ns)
            .expect("renders")
    };
    let config = |name: &str, data: Value| json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": data});
    let account =
        json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "plan-old"}});
    let first = json!([
        config("plan-settings", json!({"mode": "fast", "level": "3"})),
        config("plan-gone", json!({"a": "1"})),
        account,
    ]);
    // Twice: the first deploy creates, the second makes the fields berth's applied ones.
    for _ in 0..2 {
        cluster
            .deploy("plan", render(first.clone()))
            .await
            .expect("first deploy");
    }
    let policies = Api::<NetworkPolicy>::namespaced(client.clone(), &ns);
    let policy = json!({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
                        "metadata": {"name": "plan-ingress"},
                        "spec": {"podSelector": {"matchLabels": {"app": "plan"}}}});
    let mut by_hand: NetworkPolicy = serde_json::from_value(policy.clone()).expect("policy");
    by_hand.metadata.labels = Some(
        [
            ("app.kubernetes.io/managed-by", "berth"),
            ("berth.dev/component", "plan"),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .into(),
    );
    policies
        .create(&PostParams::default(), &by_hand)
        .await
        .expect("a NetworkPolicy by hand");

    let hpa = json!({"apiVersion": "autoscaling/v1", "kind": "HorizontalPodAutoscaler",
                     "metadata": {"name": "plan"},
                     "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment",
                                                 "name": "dep-plan"},
                              "minReplicas": 2, "maxReplicas": 6}});
    let second = json!([
        config("plan-settings", json!({"mode": "fast"})),
        config("plan-new", json!({"b": "2"})),
        hpa,
        policy,
    ]);
    let predicted = cluster
        .diff("plan", &render(second.clone()))
        .await
        .expect("diff");
    let report = cluster
        .deploy("plan", render(second))
        .await
        .expect("second deploy");

    let change = |kind: &str, name: &str| {
        predicted
            .iter()
            .find(|d| d.object.kind == kind && d.object.name == name)
            .unwrap_or_else(|| panic!("{kind}/{name} not in the diff: {predicted:#?}"))
    };
    let action = |kind: &str, name: &str| {
        report
            .actions
            .iter()
            .find(|(o, _)| o.kind == kind && o.name == name)
            .map(|(_, a)| a.to_string())
            .unwrap_or_else(|| panic!("{kind}/{name} not deployed: {:?}", report.actions))
    };
    use berth::Change;
    let expected = [
        ("ConfigMap", "plan-new", Change::Added, "created"),
        ("ConfigMap", "plan-settings", Change::Changed, "updated"),
        ("Service", "plan", Change::Unchanged, "unchanged"),
        // Its rendered-state hash changes: the render has no replicas now.
        ("Deployment", "dep-plan", Change::Changed, "updated"),
        ("HorizontalPodAutoscaler", "plan", Change::Added, "created"),
        ("NetworkPolicy", "plan-ingress", Change::Changed, "updated"),
        ("ConfigMap", "plan-gone", Change::Deleted, "deleted"),
        ("ServiceAccount", "plan-old", Change::Deleted, "deleted"),
    ];
    for (kind, name, diffed, done) in expected {
        assert_eq!(change(kind, name).change, diffed, "{kind}/{name}");
        assert_eq!(action(kind, name), done, "{kind}/{name}");
    }
    assert_eq!(predicted.len(), expected.len(), "{predicted:#?}");
    assert_eq!(report.actions.len(), expected.len(), "{:?}", report.actions);
    let adopted: Vec<String> = report
        .adopted
        .iter()
        .map(|o| format!("{}/{}", o.kind, o.name))
        .collect();
    assert_eq!(adopted, ["NetworkPolicy/plan-ingress"]);

    // Each object the diff said would be there is, field for field, what the deploy left.
    for diff in &predicted {
        let resource = ApiResource::from_gvk(
            &GroupVersionKind::try_from(&kube::api::TypeMeta {
                api_version: diff.object.api_version.clone(),
                kind: diff.object.kind.clone(),
            })
            .expect("gvk"),
        );
        let live = Api::<DynamicObject>::namespaced_with(client.clone(), &ns, &resource)
            .get_opt(&diff.object.name)
            .await
            .expect("read");
        match &diff.after {
            Some(after) => {
                let live = live.unwrap_or_else(|| panic!("{:?} is not there", diff.object));
                assert_eq!(&as_shown(&live), after, "{:?}", diff.object);
            }
            None => assert!(
                live.is_none_or(|l| l.metadata.deletion_timestamp.is_some()),
                "{:?} is still there",
                diff.object
            ),
        }
    }
    // The replicas stayed at 3 (handed over, not defaulted to 1); the inventory names the
    // adopted kind and no longer the pruned one.
    let deployment = Api::<Deployment>::namespaced(client.clone(), &ns)
        .get("dep-plan")
        .await
        .expect("Deployment");
    assert_eq!(deployment.spec.and_then(|s| s.replicas), Some(3));
    let parent = Api::<ConfigMap>::namespaced(client.clone(), &ns)
        .get("berth-plan")
        .await
        .expect("inventory");
    let kinds = parent.metadata.annotations.unwrap_or_default()
        ["applyset.kubernetes.io/contains-group-kinds"]
        .clone();
    assert_eq!(
        kinds,
        "ConfigMap,Deployment.apps,HorizontalPodAutoscaler.autoscaling,NetworkPolicy.networking.k8s.io,Service"
    );
    drop_namespace(&client, &ns).await;
}
