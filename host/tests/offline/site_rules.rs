//! A site's own rules (`examples/site-rules`, built here with cargo): Acme's names and
//! labels from its site config on objects that are otherwise exactly the default rules'
//! ones, plus the NetworkPolicy and PodDisruptionBudget its house rules add.

use berth_e2e::command::{BERTH_LIMIT, OutputWithin as _};
use berth_e2e::components;

use std::path::{Path, PathBuf};

use berth::Rendered;
use berth::{Rules, RulesOptions, Source};
use berth::{SiteConfig, Spec};

fn root() -> PathBuf {
    berth_e2e::repo_root()
}

fn options(cache: &Path) -> RulesOptions {
    RulesOptions {
        cache_dir: Some(cache.to_owned()),
        ..RulesOptions::default()
    }
}

fn full_spec() -> Spec {
    berth::load_spec(&root().join("examples/full.yaml")).expect("full example")
}

/// The default rules' site config, and Acme's: the same plus its cost-center table.
fn sites() -> (SiteConfig, SiteConfig) {
    (
        berth::load_site(&root().join("examples/site.yaml")).expect("site example"),
        berth::load_site(&root().join("examples/site-rules/site.yaml")).expect("acme's site"),
    )
}

fn render_with(rules: &Rules, spec: &Spec, site: &SiteConfig) -> Rendered {
    render_for(rules, spec, site, &berth::Capabilities::newest_known()).expect("renders")
}

fn render_for(
    rules: &Rules,
    spec: &Spec,
    site: &SiteConfig,
    capabilities: &berth::Capabilities,
) -> Result<Rendered, berth::RenderError> {
    rules.render_from(
        &berth::Origin::file(Path::new("full.yaml")),
        spec,
        site,
        capabilities,
        "shop",
    )
}

/// The other objects of a set as `apiVersion Kind/name`.
fn others(rendered: &Rendered) -> Vec<String> {
    rendered
        .others
        .iter()
        .map(|o| {
            let types = o.types.clone().unwrap_or_default();
            let name = o.metadata.name.clone().unwrap_or_default();
            format!("{} {}/{name}", types.api_version, types.kind)
        })
        .collect()
}

fn labels(
    meta: Option<&k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta>,
) -> Vec<(&str, &str)> {
    meta.and_then(|m| m.labels.as_ref())
        .into_iter()
        .flatten()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect()
}

#[test]
fn site_rules_rename_and_label_and_keep_the_rest() {
    let cache = tempfile::tempdir().expect("temp dir");
    let path = components::component("site-rules");
    let site_rules = Rules::from_file(&path, &options(cache.path())).expect("site rules load");
    assert_eq!(site_rules.source(), &Source::File(path));
    let default = Rules::default_rules(&options(cache.path())).expect("default rules");
    let spec = full_spec();
    let (site, acme_site) = sites();
    let acme = render_with(&site_rules, &spec, &acme_site);
    let reference = render_with(&default, &spec, &site);

    let d = &acme.deployment;
    assert_eq!(d.metadata.name.as_deref(), Some("acme-inventory"));
    assert_eq!(d.metadata.namespace.as_deref(), Some("shop"));
    let names: Vec<_> = acme
        .services
        .iter()
        .map(|s| s.metadata.name.as_deref().unwrap_or_default())
        .collect();
    assert_eq!(names, ["acme-inventory", "acme-inventory-ext"]);

    // examples/full.yaml says team: platform, whose cost center is cc-1001.
    let object_labels = [
        ("app", "inventory"),
        ("cost-center", "cc-1001"),
        ("team", "platform"),
        ("tier", "backend"),
    ];
    assert_eq!(labels(Some(&d.metadata)), object_labels);
    let spec_d = d.spec.as_ref().expect("deployment spec");
    let pod_labels = labels(spec_d.template.metadata.as_ref());
    assert_eq!(
        pod_labels,
        [
            ("app", "inventory"),
            ("cost-center", "cc-1001"),
            ("k8sdeployment", "acme-inventory"),
            ("team", "platform"),
            ("tier", "backend"),
        ]
    );
    for service in &acme.services {
        assert_eq!(labels(Some(&service.metadata)), pod_labels);
    }

    // Everything else is the default rules' work, unchanged.
    let reference_spec = reference.deployment.spec.as_ref().expect("deployment spec");
    assert_eq!(spec_d.template.spec, reference_spec.template.spec);
    assert_eq!(spec_d.replicas, reference_spec.replicas);
    for (a, r) in acme.services.iter().zip(&reference.services) {
        assert_eq!(a.spec, r.spec);
        assert_eq!(a.metadata.annotations, r.metadata.annotations);
    }

    // Always a NetworkPolicy admitting ingress to the pods on their container ports only;
    // no PodDisruptionBudget, since the spec has no min_available.
    assert_eq!(
        others(&acme),
        ["networking.k8s.io/v1 NetworkPolicy/acme-inventory"]
    );
    let policy = &acme.others[0].data["spec"];
    assert_eq!(
        policy["podSelector"]["matchLabels"],
        serde_json::to_value(&spec_d.selector.match_labels).expect("json")
    );
    assert_eq!(policy["policyTypes"], serde_json::json!(["Ingress"]));
    let container_ports: Vec<serde_json::Value> =
        spec_d.template.spec.as_ref().expect("pod spec").containers[0]
            .ports
            .iter()
            .flatten()
            .map(|p| serde_json::json!({"port": p.container_port, "protocol": p.protocol}))
            .collect();
    assert_eq!(container_ports.len(), 3, "8080/TCP, 8443/TCP, 9125/UDP");
    assert_eq!(
        policy["ingress"],
        serde_json::json!([{"ports": container_ports}])
    );
}

#[test]
fn min_available_adds_a_disruption_budget_at_the_version_the_cluster_serves() {
    let cache = tempfile::tempdir().expect("temp dir");
    let rules = Rules::from_file(&components::component("site-rules"), &options(cache.path()))
        .expect("site rules load");
    let (_, site) = sites();
    let mut spec = full_spec();
    spec.extensions = serde_json::from_str(r#"{"acme": {"min_available": 1}}"#).expect("json");

    let newest = berth::Capabilities::newest_known();
    let rendered = render_for(&rules, &spec, &site, &newest).expect("renders");
    assert_eq!(
        others(&rendered),
        [
            "policy/v1 PodDisruptionBudget/acme-inventory",
            "networking.k8s.io/v1 NetworkPolicy/acme-inventory"
        ]
    );
    let pdb = &rendered.others[0].data["spec"];
    let selector = &rendered.deployment.spec.as_ref().expect("spec").selector;
    assert_eq!(
        pdb["selector"],
        serde_json::to_value(selector).expect("json")
    );
    assert_eq!(pdb["minAvailable"], 1);

    // Kubernetes 1.20 serves policy/v1beta1 only.
    let old = berth::Capabilities {
        kube_version: "1.20".into(),
        api_versions: ["v1", "apps/v1", "policy/v1beta1", "networking.k8s.io/v1"]
            .map(String::from)
            .to_vec(),
    };
    let rendered = render_for(&rules, &spec, &site, &old).expect("renders");
    assert_eq!(
        others(&rendered)[0],
        "policy/v1beta1 PodDisruptionBudget/acme-inventory"
    );

    // An unknown key under extensions.acme is refused by name.
    spec.extensions = serde_json::from_str(r#"{"acme": {"min_availabel": 1}}"#).expect("json");
    let err = render_for(&rules, &spec, &site, &newest)
        .expect_err("refused")
        .to_string();
    assert_eq!(
        err,
        "full.yaml: extensions.acme.min_availabel: not used by acme's rules"
    );
}

#[test]
fn cost_center_follows_the_team() {
    let cache = tempfile::tempdir().expect("temp dir");
    let path = components::component("site-rules");
    let rules = Rules::from_file(&path, &options(cache.path())).expect("site rules load");
    let (_, site) = sites();
    let cost_center = |rules: &Rules, site: &SiteConfig, extra: &str| {
        let text = format!("component_name: web\nimage: nginx\n{extra}");
        let spec = berth::parse_spec(Path::new("web.yaml"), &text).expect("spec");
        let rendered = render_with(rules, &spec, site);
        let meta = Some(&rendered.deployment.metadata);
        let found = labels(meta);
        let get = |key: &str| {
            found
                .iter()
                .find(|(k, _)| *k == key)
                .map(|(_, v)| v.to_string())
        };
        (get("team"), get("cost-center"))
    };
    let some = |team: &str, cc: &str| (Some(team.to_owned()), Some(cc.to_owned()));
    assert_eq!(cost_center(&rules, &site, ""), some("platform", "cc-1001"));
    assert_eq!(
        cost_center(&rules, &site, "labels: {team: payments}\n"),
        some("payments", "cc-2040")
    );
    assert_eq!(
        cost_center(&rules, &site, "labels: {team: research}\n"),
        some("research", "cc-unassigned")
    );
    // Without the site's table, every team is unassigned.
    let site = SiteConfig::default();
    assert_eq!(
        cost_center(&rules, &site, ""),
        some("platform", "cc-unassigned")
    );
    // The default rules' refusals come through unchanged.
    let spec = berth::parse_spec(
        Path::new("web.yaml"),
        "component_name: web\nimage: nginx\nports: ['80:']\n",
    )
    .expect("spec");
    let refusal = rules
        .build(&spec, &site, &berth::Capabilities::newest_known(), "shop")
        .expect("runs")
        .expect_err("refused");
    assert_eq!(refusal.field, "ports[0]");
}

/// `berth render -o json` with Acme's rules and site config, and `args`: the items.
fn render_items(spec: &Path, args: &[&str]) -> Vec<serde_json::Value> {
    let cache = tempfile::tempdir().expect("temp dir");
    let out = berth_e2e::berth_command(env!("CARGO_BIN_EXE_berth"))
        .env("BERTH_CACHE_DIR", cache.path())
        .args([
            "render",
            "-o",
            "json",
            "--config",
            "examples/site-rules/site.yaml",
        ])
        .arg("--rules")
        .arg(components::component("site-rules"))
        .arg("--spec")
        .arg(spec)
        .args(args)
        .output_within(BERTH_LIMIT);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON output");
    list["items"].as_array().expect("items").clone()
}

#[test]
fn berth_render_takes_the_site_rules() {
    let names: Vec<_> = render_items(Path::new("examples/full.yaml"), &[])
        .iter()
        .map(|i| {
            format!(
                "{}/{}",
                i["kind"].as_str().unwrap_or_default(),
                i["metadata"]["name"].as_str().unwrap_or_default()
            )
        })
        .collect();
    assert_eq!(
        names,
        [
            "Deployment/acme-inventory",
            "Service/acme-inventory",
            "Service/acme-inventory-ext",
            "NetworkPolicy/acme-inventory"
        ]
    );
}

#[test]
fn render_builds_the_budget_for_the_kube_version_given() {
    let dir = tempfile::tempdir().expect("temp dir");
    let spec = dir.path().join("web.yaml");
    std::fs::write(
        &spec,
        "component_name: web\nimage: nginx\nextensions: {acme: {min_available: 2}}\n",
    )
    .expect("write spec");
    let budget_api = |flags: &[&str]| {
        render_items(&spec, flags)
            .iter()
            .find(|i| i["kind"] == "PodDisruptionBudget")
            .map(|pdb| pdb["apiVersion"].as_str().unwrap_or_default().to_owned())
    };
    assert_eq!(
        budget_api(&["--kube-version", "1.33"]).as_deref(),
        Some("policy/v1")
    );
    assert_eq!(budget_api(&[]).as_deref(), Some("policy/v1"));
}
