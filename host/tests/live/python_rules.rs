//! The Python example rules build what the Rust ones build, and deploy.
//!
//! `examples/python-rules` (componentize-py, calling the imported default rules) against
//! `examples/site-rules`: the same objects byte for byte, the same refusals, and a deploy
//! and undeploy on the local control plane.

use crate::common;

use std::path::Path;
use std::sync::Mutex;
use std::time::Instant;

use berth::Rendered;
use berth::{Capabilities, Cluster, Connection, SiteConfig, Spec};
use berth::{Rules, RulesOptions};
use berth_e2e::{cluster, components, python::python_rules, unique_name};
use common::{drop_namespace, labelled, namespace, root};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::networking::v1::NetworkPolicy;
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind};

/// Compiled components, shared by the tests of this process and the next runs (keyed by
/// the component's digest): the 18 MB Python component compiles once, in about 12 s.
fn options() -> RulesOptions {
    let python = python_rules();
    let target = python
        .parent()
        .expect("the component sits in the target dir");
    RulesOptions {
        cache_dir: Some(target.join("python-rules-cache")),
        // The default limits: the Python component needs 14 MiB (13 fails) of the 64 MiB,
        // and a build of the full example takes milliseconds of the 1 s deadline.
        ..RulesOptions::default()
    }
}

/// Rules loaded one at a time: the first load of a component compiles it and writes the
/// cache, which the tests after it read instead of compiling it again each.
fn load_with(
    what: &str,
    load: impl FnOnce(&RulesOptions) -> Result<Rules, berth::RulesError>,
) -> Rules {
    static LOADING: Mutex<()> = Mutex::new(());
    let _one = LOADING
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let started = Instant::now();
    let rules = load(&options()).unwrap_or_else(|e| panic!("{what} loads: {e}"));
    let how = if rules.from_cache() {
        "cached"
    } else {
        "compiled"
    };
    eprintln!("{what} loaded in {:.1?} ({how})", started.elapsed());
    rules
}

fn load(path: &Path) -> Rules {
    load_with(&path.display().to_string(), |options| {
        Rules::from_file(path, options)
    })
}

/// The Rust rules and the Python rules.
fn both() -> (Rules, Rules) {
    (
        load(&components::component("site-rules")),
        load(&python_rules()),
    )
}

fn spec_from(text: &str) -> Spec {
    berth::parse_spec(Path::new("spec.yaml"), text).expect("spec")
}

fn example(name: &str) -> String {
    std::fs::read_to_string(root().join("examples").join(name)).expect("example spec")
}

fn site(path: &str) -> SiteConfig {
    berth::load_site(&root().join(path)).expect("site config")
}

/// Kubernetes 1.20, which serves PodDisruptionBudgets as `policy/v1beta1` only.
fn kube_1_20() -> Capabilities {
    Capabilities {
        kube_version: "1.20".into(),
        api_versions: ["v1", "apps/v1", "policy/v1beta1", "networking.k8s.io/v1"]
            .map(String::from)
            .to_vec(),
    }
}

/// What two rules components are compared on: the objects as berth checked them, without
/// which component built them (`rules`, `rules_digest`).
fn objects_json(rendered: &Rendered) -> String {
    serde_json::to_string_pretty(&serde_json::json!({
        "component": rendered.component,
        "deployment": rendered.deployment,
        "services": rendered.services,
        "others": rendered.others,
    }))
    .expect("json")
}

fn render(rules: &Rules, spec: &Spec, site: &SiteConfig, caps: &Capabilities) -> Rendered {
    rules
        .render(spec, site, caps, "shop")
        .unwrap_or_else(|e| panic!("{} renders: {e}", rules.source()))
}

#[test]
fn python_rules_build_the_same_objects_as_the_rust_ones() {
    let (rust, python) = both();
    let default = load_with("the default rules", Rules::default_rules);
    let full = example("full.yaml");
    let minimal = example("minimal.yaml");
    let specs = [
        ("full", full.clone()),
        ("minimal", minimal.clone()),
        (
            "full, min_available",
            format!("{full}extensions: {{acme: {{min_available: 2}}}}\n"),
        ),
        (
            "full, a team without a cost center",
            full.replace("team: platform", "team: research"),
        ),
        (
            "minimal, team payments, min_available 0, ports",
            format!(
                "{minimal}labels: {{team: payments, cost-center: mine}}\nports: ['80:30080']\n\
                 extensions: {{acme: {{min_available: 0}}}}\n"
            ),
        ),
    ];
    let sites = [
        ("acme's site", site("examples/site-rules/site.yaml")),
        ("a site without cost centers", site("examples/site.yaml")),
    ];
    let capabilities = [
        ("newest", Capabilities::newest_known()),
        ("1.20", kube_1_20()),
    ];
    let mut python_builds = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for (spec_name, text) in &specs {
        let spec = spec_from(text);
        for (site_name, site) in &sites {
            for (caps_name, caps) in &capabilities {
                let case = format!("{spec_name}; {site_name}; Kubernetes {caps_name}");
                // The objects as returned, byte for byte.
                let raw = |rules: &Rules| {
                    (rules.build(&spec, site, caps, "shop").expect("runs")).expect("builds")
                };
                let started = Instant::now();
                let from_python = raw(&python);
                python_builds.push(started.elapsed());
                assert_eq!(from_python, raw(&rust), "{case}: returned objects");
                // And as berth checked and parsed them.
                let from_python = render(&python, &spec, site, caps);
                let got = objects_json(&from_python);
                let expected = objects_json(&render(&rust, &spec, site, caps));
                assert_eq!(got, expected, "{case}");

                // A comparison that could fail: Acme's objects are not the default ones.
                let (mut plain_spec, mut plain_site) = (spec.clone(), site.clone());
                plain_spec.extensions.clear();
                plain_site.extensions.clear();
                let plain = render(&default, &plain_spec, &plain_site, caps);
                let differs = objects_json(&plain) != got;
                assert!(differs, "{case}: the default rules' objects");
                let deployment = &from_python.deployment.metadata;
                let name = format!("acme-{}", spec.component_name);
                assert_eq!(deployment.name.as_ref(), Some(&name), "{case}");
                let labels = deployment.labels.as_ref().expect("labels");
                seen.insert(labels["cost-center"].clone());
                for o in &from_python.others {
                    let types = o.types.as_ref().expect("types");
                    seen.insert(format!("{} {}", types.api_version, types.kind));
                }
            }
        }
    }
    // The cases take every way: each cost center, both PodDisruptionBudget versions.
    assert_eq!(
        seen.iter().map(String::as_str).collect::<Vec<_>>(),
        [
            "cc-1001",
            "cc-2040",
            "cc-unassigned",
            "networking.k8s.io/v1 NetworkPolicy",
            "policy/v1 PodDisruptionBudget",
            "policy/v1beta1 PodDisruptionBudget",
        ]
    );
    python_builds.sort();
    eprintln!(
        "python rules: {} builds, median {:.1?}, slowest {:.1?}",
        python_builds.len(),
        python_builds[python_builds.len() / 2],
        python_builds[python_builds.len() - 1]
    );
}

#[test]
fn python_rules_refuse_what_the_rust_ones_refuse() {
    let (rust, python) = both();
    let caps = Capabilities::newest_known();
    let same_refusal = |spec: &Spec, site: &SiteConfig| {
        let refusal = |rules: &Rules| {
            (rules.build(spec, site, &caps, "shop").expect("runs")).expect_err("refused")
        };
        let expected = refusal(&rust);
        let context = format!("{:?}, site {:?}", spec.extensions, site.extensions);
        assert_eq!(refusal(&python), expected, "{context}");
    };
    let web = |lines: &str| spec_from(&format!("component_name: web\nimage: nginx\n{lines}\n"));
    let acme_site = site("examples/site-rules/site.yaml");
    let site_with = |extensions: &str| {
        let mut site = acme_site.clone();
        site.extensions = serde_json::from_str(extensions).expect("json");
        site
    };

    // The spec's extensions: unknown keys (Rust's maps are sorted, so is the key named),
    // and every way min_available can be wrong.
    for extensions in [
        "{acme: {foo: 1}}",
        "{acne: {}}",
        "{zz: 1, acme: {b: 1, a: 2}}",
        "{acme: 3}",
        "{acme: {cost_centers: {}}}",
        "{acme: {min_available: -1}}",
        "{acme: {min_available: 2147483648}}",
        "{acme: {min_available: '2'}}",
        "{acme: {min_available: 1.5}}",
        "{acme: {min_available: null}}",
        "{acme: {min_available: true}}",
    ] {
        same_refusal(&web(&format!("extensions: {extensions}")), &acme_site);
    }
    // The site config's.
    for extensions in [
        r#"{"acme": {"min_available": 1}}"#,
        r#"{"acme": {}, "beta": 1}"#,
        r#"{"acme": {"cost_centers": ["cc-1"]}}"#,
        r#"{"acme": {"cost_centers": {"payments": 2040, "b": {"y": 1, "x": "é"}}}}"#,
        r#"{"acme": {"cost_centers": null}}"#,
    ] {
        same_refusal(&web(""), &site_with(extensions));
    }
    // The default rules' own refusals come through.
    same_refusal(&web("ports: ['80:']"), &acme_site);
    // Acme's names outgrow what Kubernetes allows before the default ones do: the
    // Deployment's (a pod label) at 59 characters, the exposed Service's at 56.
    for length in [59, 56] {
        let name = "a".repeat(length);
        let spec = format!("component_name: {name}\nimage: nginx\nports: ['80:30080']\n");
        same_refusal(&spec_from(&spec), &acme_site);
    }

    // The unknown key, named exactly.
    let spec = web("extensions: {acme: {foo: 1}}");
    let err = (python.render(&spec, &acme_site, &caps, "shop"))
        .expect_err("refused")
        .to_string();
    assert_eq!(err, "web: extensions.acme.foo: not used by acme's rules");
}

/// The PodDisruptionBudget of a 1.20 cluster, which berth's types do not know.
fn pdb_v1beta1() -> ApiResource {
    ApiResource::from_gvk(&GroupVersionKind::gvk(
        "policy",
        "v1beta1",
        "PodDisruptionBudget",
    ))
}

#[tokio::test(flavor = "multi_thread")]
async fn python_rules_deploy_and_undeploy_on_the_local_control_plane() {
    let (client, ns) = namespace("python").await;
    let component = unique_name("py");
    let connection = Connection {
        kubeconfig: Some(cluster().admin_kubeconfig.clone()),
        context: None,
        namespace: Some(ns.clone()),
    };
    let target = Cluster::connect(&connection).await.expect("connect");
    let capabilities = target.capabilities().await.expect("discovery");
    let rules = load(&python_rules());
    let spec = spec_from(&format!(
        "component_name: {component}\nimage: example/shop:1\nports: ['8080:0', '9125/udp:0']\n\
         labels: {{team: payments}}\nextensions: {{acme: {{min_available: 1}}}}\n"
    ));
    let site = site("examples/site-rules/site.yaml");
    let rendered = rules
        .render(&spec, &site, &capabilities, &ns)
        .expect("renders");
    target.deploy(&component, rendered).await.expect("deploys");

    // Right after deploy returns, by Acme's names, with Acme's labels.
    let name = format!("acme-{component}");
    let acme_labels = |labels: Option<&std::collections::BTreeMap<String, String>>| {
        let labels = labels.expect("labels");
        assert_eq!(labels["team"], "payments", "{labels:?}");
        assert_eq!(labels["cost-center"], "cc-2040", "{labels:?}");
        assert_eq!(labels["berth.dev/component"], component, "{labels:?}");
    };
    let deployment = Api::<Deployment>::namespaced(client.clone(), &ns)
        .get(&name)
        .await
        .expect("Deployment");
    acme_labels(deployment.metadata.labels.as_ref());
    let selector = deployment.spec.expect("spec").selector;
    let policy = Api::<NetworkPolicy>::namespaced(client.clone(), &ns)
        .get(&name)
        .await
        .expect("NetworkPolicy");
    acme_labels(policy.metadata.labels.as_ref());
    assert_eq!(
        policy.spec.expect("spec").pod_selector.as_ref(),
        Some(&selector)
    );
    // The control plane is Kubernetes 1.20: the rules asked, and built policy/v1beta1.
    let pdbs: Api<DynamicObject> = Api::namespaced_with(client.clone(), &ns, &pdb_v1beta1());
    let pdb = pdbs.get(&name).await.expect("PodDisruptionBudget");
    acme_labels(pdb.metadata.labels.as_ref());
    assert_eq!(pdb.data["spec"]["minAvailable"], 1);

    target
        .undeploy_and_wait(&component, common::WAIT)
        .await
        .expect("undeploys, and it is gone");
    let left = labelled(&client, &ns, &component, &[pdb_v1beta1()]).await;
    assert!(left.is_empty(), "left behind: {left:?}");
    drop_namespace(&client, &ns).await;
}
