//! Acme's rules natively. A PodDisruptionBudget's apiVersion asks the cluster, which only
//! berth answers, so these tests build one through `Acme::objects` with their own answer.

use berth_rules::{PortMapping, Protocol};

use super::*;

const SITE_EXTENSIONS: &str =
    r#"{"acme": {"cost_centers": {"platform": "cc-1001", "payments": "cc-2040"}}}"#;

fn spec(ports: &[&str], labels: &[(&str, &str)], extensions: &str) -> Spec {
    Spec {
        replicas: 2,
        ports: ports.iter().map(|p| (*p).to_owned()).collect(),
        labels: (labels.iter())
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
        extensions: extensions.into(),
        ..Spec::new("web", "nginx:1.27")
    }
}

fn site(extensions: &str) -> SiteConfig {
    SiteConfig::with_extensions(extensions)
}

fn json_of(object: &K8sObject) -> Value {
    berth_rules::serde_json::from_str(&object.json).expect("JSON")
}

/// The `team` and `cost-center` labels of the Deployment built for `labels` under `site`.
fn team_and_cost_center(labels: &[(&str, &str)], site_extensions: &str) -> (String, String) {
    let objects = acme_build(&spec(&[], labels, "{}"), &site(site_extensions), "shop").unwrap();
    let meta = &json_of(&objects[0])["metadata"]["labels"];
    (meta["team"].to_string(), meta["cost-center"].to_string())
}

#[test]
fn cost_center_comes_from_the_site_table() {
    let pair = |team: &str, cc: &str| (format!("{team:?}"), format!("{cc:?}"));
    let t = team_and_cost_center;
    assert_eq!(t(&[], SITE_EXTENSIONS), pair("platform", "cc-1001"));
    assert_eq!(
        t(&[("team", "payments")], SITE_EXTENSIONS),
        pair("payments", "cc-2040")
    );
    assert_eq!(
        t(&[("team", "research")], SITE_EXTENSIONS),
        pair("research", "cc-unassigned")
    );
    assert_eq!(t(&[], "{}"), pair("platform", "cc-unassigned"));
    assert_eq!(
        t(&[("team", "payments")], ""),
        pair("payments", "cc-unassigned")
    );
    assert_eq!(t(&[], r#"{"acme": {}}"#), pair("platform", "cc-unassigned"));
}

#[test]
fn names_labels_and_objects() {
    let objects = acme_build(
        &spec(&["80:30080"], &[], "{}"),
        &site(SITE_EXTENSIONS),
        "shop",
    );
    let names: Vec<_> = (objects.unwrap().iter())
        .map(|o| format!("{} {}/{}", o.api_version, o.kind, o.name))
        .collect();
    assert_eq!(
        names,
        [
            "apps/v1 Deployment/acme-web",
            "v1 Service/acme-web",
            "v1 Service/acme-web-ext",
            "networking.k8s.io/v1 NetworkPolicy/acme-web",
        ]
    );
}

#[test]
fn network_policy_admits_the_spec_ports() {
    let ports = ["8080:0", "53/udp:30053", "53/tcp:0", "9090/TCP:0"];
    let objects = acme_build(&spec(&ports, &[], "{}"), &site(SITE_EXTENSIONS), "shop").unwrap();
    let deployment = json_of(&objects[0]);
    let policy = json_of(objects.last().unwrap());
    assert_eq!(policy["metadata"]["namespace"], "shop");
    assert_eq!(
        policy["metadata"]["labels"],
        deployment["metadata"]["labels"]
    );
    let selector = &deployment["spec"]["selector"]["matchLabels"];
    assert_eq!(policy["spec"]["podSelector"]["matchLabels"], *selector);
    assert_eq!(policy["spec"]["policyTypes"], json!(["Ingress"]));
    let expected = json!([{"ports": [
        {"port": 8080, "protocol": "TCP"},
        {"port": 53, "protocol": "UDP"},
        {"port": 53, "protocol": "TCP"},
        {"port": 9090, "protocol": "TCP"},
    ]}]);
    assert_eq!(policy["spec"]["ingress"], expected);

    let objects = acme_build(&spec(&[], &[], "{}"), &site("{}"), "shop").unwrap();
    let policy = json_of(objects.last().unwrap());
    assert_eq!(policy["kind"], "NetworkPolicy");
    assert_eq!(policy["spec"]["ingress"], json!([]));
}

fn workload_parts() -> (Labels, Labels, [PortMapping; 1]) {
    let labels = Labels::from([("app".into(), "web".into()), ("team".into(), "x".into())]);
    let selector = Labels::from([
        ("app".into(), "web".into()),
        ("k8sdeployment".into(), "acme-web".into()),
    ]);
    let ports = [PortMapping {
        container_port: 80,
        protocol: Protocol::Tcp,
        node_port: 0,
    }];
    (labels, selector, ports)
}

fn workload<'a>(parts: &'a (Labels, Labels, [PortMapping; 1])) -> Workload<'a> {
    Workload {
        component: "web",
        namespace: "shop",
        deployment_name: "acme-web",
        labels: &parts.0,
        selector: &parts.1,
        ports: &parts.2,
    }
}

#[test]
fn no_disruption_budget_without_min_available() {
    let objects = acme_build(&spec(&["80:0"], &[], "{}"), &site("{}"), "shop").unwrap();
    assert!(objects.iter().all(|o| o.kind != "PodDisruptionBudget"));
    let acme = Acme::new(&spec(&[], &[], "{}"), &site(SITE_EXTENSIONS)).unwrap();
    assert_eq!(acme.min_available, None);
    let parts = workload_parts();
    let objects = acme
        .objects(&workload(&parts), || unreachable!("cluster asked"))
        .unwrap();
    let kinds: Vec<_> = objects.iter().map(|o| o.kind.as_str()).collect();
    assert_eq!(kinds, ["NetworkPolicy"]);
}

#[test]
fn disruption_budget_when_the_spec_asks() {
    let extensions = r#"{"acme": {"min_available": 1}}"#;
    let acme = Acme::new(&spec(&[], &[], extensions), &site("{}")).unwrap();
    assert_eq!(acme.min_available, Some(1));
    let parts = workload_parts();
    for (policy_v1, api_version) in [(true, "policy/v1"), (false, "policy/v1beta1")] {
        let objects = acme.objects(&workload(&parts), || policy_v1).unwrap();
        let pdb = &objects[0];
        assert_eq!(
            (
                pdb.api_version.as_str(),
                pdb.kind.as_str(),
                pdb.name.as_str()
            ),
            (api_version, "PodDisruptionBudget", "acme-web")
        );
        assert_eq!(objects[1].kind, "NetworkPolicy");
        let pdb = json_of(pdb);
        assert_eq!(pdb["apiVersion"], api_version);
        assert_eq!(
            pdb["metadata"]["labels"],
            json!({"app": "web", "team": "x"})
        );
        assert_eq!(pdb["metadata"]["namespace"], "shop");
        let expected = json!({"app": "web", "k8sdeployment": "acme-web"});
        assert_eq!(pdb["spec"]["selector"]["matchLabels"], expected);
        assert_eq!(pdb["spec"]["minAvailable"], 1);
    }
}

#[test]
fn extension_errors_name_the_field() {
    let refusal = |spec_extensions: &str, site_extensions: &str| {
        let spec = spec(&[], &[], spec_extensions);
        let err = acme_build(&spec, &site(site_extensions), "shop").unwrap_err();
        err.to_string()
    };
    let cases = [
        (
            r#"{"acne": {}}"#,
            "{}",
            "extensions.acne: not used by acme's rules",
        ),
        (
            "{}",
            r#"{"acme": {}, "beta": 1}"#,
            "extensions.beta: (in the site config) not used by acme's rules",
        ),
        (
            r#"{"acme": {"min_avail": 1}}"#,
            "{}",
            "extensions.acme.min_avail: not used by acme's rules",
        ),
        (
            r#"{"acme": {"cost_centers": {}}}"#,
            "{}",
            "extensions.acme.cost_centers: not used by acme's rules",
        ),
        (
            "{}",
            r#"{"acme": {"min_available": 1}}"#,
            "extensions.acme.min_available: (in the site config) not used by acme's rules",
        ),
        (r#"{"acme": 3}"#, "{}", "extensions.acme: 3 is not a map"),
        (
            r#"{"acme": {"min_available": -1}}"#,
            "{}",
            "extensions.acme.min_available: -1 is not a non-negative integer (at most 2147483647)",
        ),
        (
            r#"{"acme": {"min_available": 2147483648}}"#,
            "{}",
            "extensions.acme.min_available: 2147483648 is not a non-negative integer (at most \
             2147483647)",
        ),
        (
            r#"{"acme": {"min_available": "2"}}"#,
            "{}",
            "extensions.acme.min_available: \"2\" is not a non-negative integer (at most 2147483647)",
        ),
        (
            r#"{"acme": {"min_available": 1.5}}"#,
            "{}",
            "extensions.acme.min_available: 1.5 is not a non-negative integer (at most 2147483647)",
        ),
        (
            "{}",
            r#"{"acme": {"cost_centers": ["cc-1"]}}"#,
            "extensions.acme.cost_centers: (in the site config) [\"cc-1\"] is not a map of team \
             to cost center",
        ),
        (
            "{}",
            r#"{"acme": {"cost_centers": {"payments": 2040}}}"#,
            "extensions.acme.cost_centers: (in the site config) {\"payments\":2040} is not a map \
             of team to cost center",
        ),
    ];
    for (spec_extensions, site_extensions, expected) in cases {
        assert_eq!(refusal(spec_extensions, site_extensions), expected);
    }
}

#[test]
fn default_refusals_come_through() {
    let err = acme_build(&spec(&["80:"], &[], "{}"), &site("{}"), "shop").unwrap_err();
    assert_eq!(err.field, "ports[0]");
}
