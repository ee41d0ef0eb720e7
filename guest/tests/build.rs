//! The default rules end to end: a spec and site config in, the reference plugin's objects
//! out (apps/v1, deterministic names), and every refusal naming its field.

use berth_rules::types::{
    EnvValue, EnvVar, Filebeat, KeyRef, LogInfo, MsbService, Probe as Readiness, ResourceAmounts,
    Resources, SiteConfig, Spec, Tls, TlsInfo, Volume, VolumeSource,
};
use berth_rules::{DefaultRules, K8sObject, build, defaults};
use serde_json::{Value, json};

fn s(v: &str) -> String {
    v.to_owned()
}

fn literal(name: &str, value: &str) -> EnvVar {
    EnvVar {
        name: s(name),
        value: EnvValue::Literal(s(value)),
    }
}

fn minimal() -> Spec {
    Spec {
        extensions: s("{}"),
        ..Spec::new("hello", "nginx:1.27")
    }
}

fn full() -> Spec {
    Spec {
        component_name: s("inventory"),
        image: s("registry.example.com/inventory:2.4.1"),
        replicas: 2,
        always_pull: true,
        ports: vec![s("8080:0"), s("8443/tcp:30443"), s("9125/udp:0")],
        env: vec![literal("LOG_LEVEL", "info"), literal("CACHE_TTL", "300")],
        volumes: vec![
            Volume {
                source: VolumeSource::HostPath(s("/var/lib/inv")),
                container_path: s("/data"),
                mode: Some(s("rw")),
            },
            Volume {
                source: VolumeSource::HostPath(s("/etc/inv")),
                container_path: s("/etc/inv"),
                mode: Some(s("ro")),
            },
        ],
        labels: vec![(s("team"), s("platform"))],
        readiness: Some(Readiness {
            kind: s("http"),
            endpoint: Some(s("/healthz")),
            script: None,
            interval: Some(s("10s")),
            timeout: Some(s("2")),
        }),
        liveness: None,
        command: None,
        args: None,
        resources: Some(Resources {
            limits: Some(ResourceAmounts {
                cpu: Some(s("1")),
                memory: Some(s("512Mi")),
            }),
            requests: Some(ResourceAmounts {
                cpu: Some(s("250m")),
                memory: None,
            }),
        }),
        log_info: Some(LogInfo {
            log_directory: Some(s("/var/log/inv")),
            alternate_fb_path: None,
        }),
        tls_info: Some(TlsInfo {
            use_tls: true,
            cert_directory: Some(s("/opt/tls")),
        }),
        msb_list: vec![MsbService {
            service_name: None,
            port: Some(s("8080")),
            version: None,
            url: Some(s("/api")),
            protocol: None,
            enable_ssl: None,
            visual_range: None,
        }],
        extensions: s("{}"),
    }
}

fn site() -> SiteConfig {
    SiteConfig {
        image_pull_secrets: vec![s("regcred")],
        filebeat: Some(Filebeat {
            log_path: s("/var/log/onap"),
            data_path: s("/usr/share/filebeat/data"),
            config_path: s("/usr/share/filebeat/filebeat.yml"),
            config_subpath: s("filebeat.yml"),
            config_map: s("filebeat-conf"),
            image: s("filebeat:5.5.0"),
        }),
        tls: Some(Tls {
            cert_path: s("/opt/tls/shared"),
            image: s("tls-init:1.3"),
        }),
        extensions: s("{}"),
    }
}

fn no_site() -> SiteConfig {
    SiteConfig::with_extensions("")
}

fn objects(spec: &Spec, site: &SiteConfig) -> Vec<(String, String, String, Value)> {
    build(&DefaultRules, spec, site, "apps")
        .unwrap()
        .into_iter()
        .map(
            |K8sObject {
                 api_version,
                 kind,
                 name,
                 json,
             }| {
                (
                    api_version,
                    kind,
                    name,
                    serde_json::from_str(&json).unwrap(),
                )
            },
        )
        .collect()
}

fn refusal(spec: &Spec, site: &SiteConfig) -> String {
    let err = build(&DefaultRules, spec, site, "apps").unwrap_err();
    format!("{}: {}", err.field, err.message)
}

#[test]
fn minimal_spec_gives_only_a_deployment() {
    let out = objects(&minimal(), &no_site());
    assert_eq!(out.len(), 1);
    let (api, kind, name, dep) = &out[0];
    assert_eq!(
        (api.as_str(), kind.as_str(), name.as_str()),
        ("apps/v1", "Deployment", "dep-hello")
    );
    assert_eq!(
        dep,
        &json!({
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "dep-hello", "namespace": "apps", "labels": {"app": "hello"}},
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": {"app": "hello", "k8sdeployment": "dep-hello"}},
                "template": {
                    "metadata": {"labels": {"app": "hello", "k8sdeployment": "dep-hello"}},
                    "spec": {
                        "hostname": "hello",
                        "containers": [{
                            "name": "hello",
                            "image": "nginx:1.27",
                            "imagePullPolicy": "IfNotPresent",
                            "env": [{"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}]
                        }]
                    }
                }
            }
        })
    );
}

#[test]
fn full_spec_builds_what_the_reference_builds() {
    let out = objects(&full(), &site());
    let names: Vec<_> = out
        .iter()
        .map(|(a, k, n, _)| format!("{a} {k}/{n}"))
        .collect();
    assert_eq!(
        names,
        [
            "apps/v1 Deployment/dep-inventory",
            "v1 Service/inventory",
            "v1 Service/xinventory"
        ]
    );

    let dep = &out[0].3;
    let pod_labels =
        json!({"app": "inventory", "k8sdeployment": "dep-inventory", "team": "platform"});
    assert_eq!(
        dep["metadata"]["labels"],
        json!({"app": "inventory", "team": "platform"})
    );
    assert_eq!(dep["spec"]["replicas"], 2);
    assert_eq!(
        dep["spec"]["selector"]["matchLabels"],
        json!({"app": "inventory", "k8sdeployment": "dep-inventory"})
    );
    let pod = &dep["spec"]["template"];
    assert_eq!(pod["metadata"]["labels"], pod_labels);
    assert_eq!(pod["spec"]["hostname"], "inventory");
    assert_eq!(
        pod["spec"]["imagePullSecrets"],
        json!([{"name": "regcred"}])
    );
    assert_eq!(
        pod["spec"]["volumes"],
        json!([
            {"name": "volume-0", "hostPath": {"path": "/var/lib/inv"}},
            {"name": "volume-1", "hostPath": {"path": "/etc/inv"}},
            {"name": "component-log", "emptyDir": {}},
            {"name": "filebeat-data", "emptyDir": {}},
            {"name": "filebeat-conf", "configMap": {"name": "filebeat-conf"}},
            {"name": "tls-info", "emptyDir": {}}
        ])
    );
    let pod_ip =
        json!({"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}});
    assert_eq!(
        pod["spec"]["containers"][0],
        json!({
            "name": "inventory",
            "image": "registry.example.com/inventory:2.4.1",
            "imagePullPolicy": "Always",
            "env": [{"name": "LOG_LEVEL", "value": "info"}, {"name": "CACHE_TTL", "value": "300"}, pod_ip],
            "ports": [
                {"containerPort": 8080, "protocol": "TCP"},
                {"containerPort": 8443, "protocol": "TCP"},
                {"containerPort": 9125, "protocol": "UDP"}
            ],
            "volumeMounts": [
                {"name": "volume-0", "mountPath": "/data"},
                {"name": "volume-1", "mountPath": "/etc/inv", "readOnly": true},
                {"name": "component-log", "mountPath": "/var/log/inv"},
                {"name": "tls-info", "mountPath": "/opt/tls"}
            ],
            "resources": {"limits": {"cpu": "1", "memory": "512Mi"}, "requests": {"cpu": "250m"}},
            "readinessProbe": {
                "failureThreshold": 1, "initialDelaySeconds": 5, "periodSeconds": 10, "timeoutSeconds": 2,
                "httpGet": {"path": "/healthz", "port": 8080, "scheme": "HTTP"}
            }
        })
    );
    assert_eq!(
        pod["spec"]["containers"][1],
        json!({
            "name": "filebeat",
            "image": "filebeat:5.5.0",
            "imagePullPolicy": "IfNotPresent",
            "env": [pod_ip],
            "volumeMounts": [
                {"name": "component-log", "mountPath": "/var/log/onap/inventory"},
                {"name": "filebeat-data", "mountPath": "/usr/share/filebeat/data"},
                {"name": "filebeat-conf", "mountPath": "/usr/share/filebeat/filebeat.yml", "subPath": "filebeat.yml"}
            ]
        })
    );
    assert_eq!(
        pod["spec"]["initContainers"],
        json!([{
            "name": "init-tls",
            "image": "tls-init:1.3",
            "imagePullPolicy": "IfNotPresent",
            "env": [pod_ip],
            "volumeMounts": [{"name": "tls-info", "mountPath": "/opt/tls/shared"}]
        }])
    );

    let cluster_ip = &out[1].3;
    assert_eq!(cluster_ip["metadata"]["labels"], pod_labels);
    assert_eq!(
        cluster_ip["metadata"]["annotations"]["msb.onap.org/service-info"],
        r#"[{"serviceName":"inventory","port":"8080","version":"v1","url":"/api","protocol":"REST","enable_ssl":false,"visualRange":"1"}]"#
    );
    assert_eq!(
        cluster_ip["spec"],
        json!({
            "type": "ClusterIP",
            "selector": {"app": "inventory"},
            "ports": [
                {"name": "port-t-8080", "port": 8080, "protocol": "TCP"},
                {"name": "port-t-8443", "port": 8443, "protocol": "TCP"},
                {"name": "port-u-9125", "port": 9125, "protocol": "UDP"}
            ]
        })
    );
    let node_port = &out[2].3;
    assert!(node_port["metadata"].get("annotations").is_none());
    assert_eq!(
        node_port["spec"],
        json!({
            "type": "NodePort",
            "selector": {"app": "inventory"},
            "ports": [{"name": "xport-t-8443", "port": 8443, "protocol": "TCP", "nodePort": 30443}]
        })
    );
}

#[test]
fn same_spec_same_bytes() {
    let a = build(&DefaultRules, &full(), &site(), "apps").unwrap();
    let b = build(&DefaultRules, &full(), &site(), "apps").unwrap();
    let bytes = |v: &[K8sObject]| v.iter().map(|o| o.json.clone()).collect::<Vec<_>>();
    assert_eq!(bytes(&a), bytes(&b));
}

#[test]
fn no_node_port_service_without_exposed_ports() {
    let mut spec = minimal();
    spec.ports = vec![s("80:0")];
    let kinds: Vec<_> = objects(&spec, &no_site())
        .into_iter()
        .map(|o| o.2)
        .collect();
    assert_eq!(kinds, ["dep-hello", "hello"]);
}

#[test]
fn exposed_service_name_is_cut_to_63() {
    let name = "a".repeat(59);
    let mut spec = minimal();
    spec.component_name = name.clone();
    spec.ports = vec![s("80:30080")];
    let out = objects(&spec, &no_site());
    assert_eq!(out[2].2, format!("x{name}"));
}

#[test]
fn alternate_log_path_and_tls_without_directory() {
    let mut spec = full();
    spec.log_info = Some(LogInfo {
        log_directory: Some(s("/logs")),
        alternate_fb_path: Some(s("/alt")),
    });
    spec.tls_info = Some(TlsInfo {
        use_tls: true,
        cert_directory: Some(s("")),
    });
    let out = objects(&spec, &site());
    let pod = &out[0].3["spec"]["template"]["spec"];
    assert_eq!(pod["containers"][1]["volumeMounts"][0]["mountPath"], "/alt");
    assert!(
        pod.get("initContainers").is_none(),
        "empty cert_directory means no TLS"
    );
    spec.tls_info = Some(TlsInfo {
        use_tls: false,
        cert_directory: Some(s("/opt/tls")),
    });
    spec.log_info = Some(LogInfo {
        log_directory: None,
        alternate_fb_path: Some(s("/alt")),
    });
    let out = objects(&spec, &no_site());
    let pod = &out[0].3["spec"]["template"]["spec"];
    assert_eq!(
        pod["containers"].as_array().unwrap().len(),
        1,
        "no log_directory means no sidecar"
    );
}

/// A change to the minimal spec.
type Change = Box<dyn Fn(&mut Spec)>;

#[test]
fn refusals_name_field_and_value() {
    let cases: Vec<(Change, &str)> = vec![
        (
            Box::new(|sp| sp.ports = vec![s("80:0"), s("9101:")]),
            r#"ports[1]: "9101:" is not CONTAINER_PORT[/tcp|udp]:NODE_PORT"#,
        ),
        (
            Box::new(|sp| sp.ports = vec![s("80:0"), s("80/TCP:0")]),
            r#"ports[1]: "80/TCP:0": container port 80/TCP is already mapped by ports[0]"#,
        ),
        (
            Box::new(|sp| sp.component_name = s("Web_1")),
            r#"component_name: "Web_1" is not a DNS-1123 label"#,
        ),
        (
            Box::new(|sp| sp.component_name = "a".repeat(60)),
            "component_name: \"aaaa",
        ),
        (
            Box::new(|sp| sp.image = s("")),
            r#"image: "" is not an image reference"#,
        ),
        (
            Box::new(|sp| sp.replicas = u32::MAX),
            "replicas: 4294967295 is more than 2147483647",
        ),
        (
            Box::new(|sp| {
                sp.readiness = Some(Readiness {
                    kind: s("http"),
                    endpoint: Some(s("/")),
                    script: None,
                    interval: None,
                    timeout: None,
                })
            }),
            "readiness.type: an \"http\" check probes the first container port, but `ports` is empty",
        ),
        (
            Box::new(|sp| {
                sp.ports = vec![s("80:0")];
                sp.readiness = Some(Readiness {
                    kind: s("http"),
                    endpoint: Some(s("/")),
                    script: None,
                    interval: Some(s("99999999999")),
                    timeout: None,
                });
            }),
            "readiness.interval: \"99999999999\" is longer than 2147483647 seconds",
        ),
        (
            Box::new(|sp| {
                sp.resources = Some(Resources {
                    limits: Some(ResourceAmounts {
                        cpu: Some(s("1.5 cores")),
                        memory: None,
                    }),
                    requests: None,
                })
            }),
            "resources.limits.cpu: \"1.5 cores\" is not a Kubernetes quantity",
        ),
        (
            Box::new(|sp| {
                sp.log_info = Some(LogInfo {
                    log_directory: Some(s("/logs")),
                    alternate_fb_path: None,
                })
            }),
            "log_info.log_directory: logging is asked for but the site config has no `filebeat` section",
        ),
        (
            Box::new(|sp| {
                sp.tls_info = Some(TlsInfo {
                    use_tls: true,
                    cert_directory: Some(s("/tls")),
                })
            }),
            "tls_info.use_tls: TLS is asked for but the site config has no `tls` section",
        ),
        (
            Box::new(|sp| sp.labels = vec![(s("k8sdeployment"), s("x"))]),
            "labels.k8sdeployment: \"k8sdeployment\" is set by the rules",
        ),
        (
            Box::new(|sp| sp.env = vec![literal("A B", "x")]),
            "env.A B: \"A B\" is not a valid variable name",
        ),
        (
            Box::new(|sp| {
                sp.volumes = vec![Volume {
                    source: VolumeSource::HostPath(s("/a")),
                    container_path: s("/b"),
                    mode: Some(s("z")),
                }]
            }),
            "volumes[0].container.mode: \"z\" is not \"ro\" or \"rw\"",
        ),
    ];
    for (change, expected) in cases {
        let mut spec = minimal();
        change(&mut spec);
        let got = refusal(&spec, &no_site());
        assert!(
            got.starts_with(expected),
            "expected {expected:?}\n     got {got:?}"
        );
    }
}

#[test]
fn service_names_must_start_with_a_letter() {
    let mut spec = minimal();
    spec.component_name = s("9lives");
    assert_eq!(
        objects(&spec, &no_site()).len(),
        1,
        "a Deployment alone may start with a digit"
    );
    spec.ports = vec![s("80:0")];
    assert_eq!(
        refusal(&spec, &no_site()),
        "component_name: Service name \"9lives\" must start with a letter"
    );
}

#[test]
fn contract_0_2_keys_reach_the_main_container() {
    let mut spec = minimal();
    spec.ports = vec![s("8080:0")];
    spec.command = Some(vec![s("/bin/server")]);
    spec.args = Some(vec![s("--deep")]);
    spec.liveness = Some(Readiness {
        kind: s("script"),
        endpoint: None,
        script: Some(s("/opt/live.sh --deep")),
        interval: Some(s("30s")),
        timeout: None,
    });
    spec.env = vec![EnvVar {
        name: s("PASSWORD"),
        value: EnvValue::Secret(KeyRef {
            name: s("db"),
            key: s("password"),
        }),
    }];
    spec.volumes = vec![Volume {
        source: VolumeSource::ConfigMap(s("app-config")),
        container_path: s("/etc/app"),
        mode: None,
    }];
    let objects = objects(&spec, &no_site());
    let pod = &objects[0].3["spec"]["template"]["spec"];
    let main = &pod["containers"][0];
    assert_eq!(main["command"], json!(["/bin/server"]));
    assert_eq!(main["args"], json!(["--deep"]));
    assert_eq!(
        main["livenessProbe"]["exec"]["command"],
        json!(["/opt/live.sh", "--deep"])
    );
    assert_eq!(main["livenessProbe"]["periodSeconds"], 30);
    assert_eq!(
        main["env"][0],
        json!({"name": "PASSWORD", "valueFrom": {"secretKeyRef": {"name": "db", "key": "password"}}})
    );
    assert_eq!(
        pod["volumes"][0],
        json!({"name": "volume-0", "configMap": {"name": "app-config", "defaultMode": 420, "optional": true}})
    );
    assert_eq!(
        main["volumeMounts"][0],
        json!({"name": "volume-0", "mountPath": "/etc/app", "readOnly": true})
    );
}

#[test]
fn the_default_rules_refuse_extension_keys_at_the_top_but_leave_them_to_a_caller() {
    let mut spec = minimal();
    spec.extensions = s(r#"{"acme": {"min_available": 2}}"#);
    assert_eq!(
        refusal(&spec, &no_site()),
        "extensions.acme: not used by the default rules"
    );
    let mut site = no_site();
    site.extensions = s(r#"{"acme": {"cost_centers": {}}}"#);
    assert_eq!(
        refusal(&minimal(), &site),
        "extensions.acme: (in the site config) not used by the default rules"
    );
    spec.extensions = s("[1]");
    assert_eq!(
        refusal(&spec, &no_site()),
        "extensions: \"[1]\" is not a JSON object"
    );
    // Through the `defaults` interface the same objects come back, extensions untouched.
    spec.extensions = s(r#"{"acme": {"min_available": 2}}"#);
    let through_defaults = defaults(&spec, &site, "apps").unwrap();
    let top = build(&DefaultRules, &minimal(), &no_site(), "apps").unwrap();
    let json = |objects: &[K8sObject]| objects.iter().map(|o| o.json.clone()).collect::<Vec<_>>();
    assert_eq!(json(&through_defaults), json(&top));
}
