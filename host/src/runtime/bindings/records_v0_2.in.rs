// berth's spec records as the contract's (berth:rules@0.2.0) WIT records. Included by
// `v0_2.rs` and by the render benchmark's raw bindings, with `wit` and `spec` in scope.

/// A spec as the contract's record.
pub fn spec(s: &spec::Spec) -> wit::Spec {
    wit::Spec {
        component_name: s.component_name.clone(),
        image: s.image.clone(),
        replicas: s.replicas,
        always_pull: s.always_pull,
        ports: s.ports.clone(),
        env: s
            .env
            .iter()
            .map(|(name, value)| wit::EnvVar {
                name: name.clone(),
                value: match value {
                    spec::EnvValue::Literal(text) => wit::EnvValue::Literal(text.clone()),
                    spec::EnvValue::Secret { name, key } => wit::EnvValue::Secret(wit::KeyRef {
                        name: name.clone(),
                        key: key.clone(),
                    }),
                    spec::EnvValue::ConfigMap { name, key } => {
                        wit::EnvValue::ConfigMap(wit::KeyRef {
                            name: name.clone(),
                            key: key.clone(),
                        })
                    }
                },
            })
            .collect(),
        volumes: s
            .volumes
            .iter()
            .map(|v| wit::Volume {
                source: match &v.source {
                    spec::VolumeSource::HostPath(path) => wit::VolumeSource::HostPath(path.clone()),
                    spec::VolumeSource::ConfigMap(name) => {
                        wit::VolumeSource::ConfigMap(name.clone())
                    }
                },
                container_path: v.container_path.clone(),
                mode: v.mode.clone(),
            })
            .collect(),
        labels: s.labels.clone(),
        readiness: s.readiness.as_ref().map(probe),
        liveness: s.liveness.as_ref().map(probe),
        command: s.command.clone(),
        args: s.args.clone(),
        resources: s.resources.as_ref().map(|r| wit::Resources {
            limits: r.limits.as_ref().map(amounts),
            requests: r.requests.as_ref().map(amounts),
        }),
        log_info: s.log_info.as_ref().map(|l| wit::LogInfo {
            log_directory: l.log_directory.clone(),
            alternate_fb_path: l.alternate_fb_path.clone(),
        }),
        tls_info: s.tls_info.as_ref().map(|t| wit::TlsInfo {
            use_tls: t.use_tls,
            cert_directory: t.cert_directory.clone(),
        }),
        msb_list: s
            .msb_list
            .iter()
            .map(|m| wit::MsbService {
                service_name: m.service_name.clone(),
                port: m.port.clone(),
                version: m.version.clone(),
                url: m.url.clone(),
                protocol: m.protocol.clone(),
                enable_ssl: m.enable_ssl,
                visual_range: m.visual_range.clone(),
            })
            .collect(),
        extensions: json(&s.extensions),
    }
}

fn probe(p: &spec::Probe) -> wit::Probe {
    wit::Probe {
        kind: p.kind.clone(),
        endpoint: p.endpoint.clone(),
        script: p.script.clone(),
        interval: p.interval.clone(),
        timeout: p.timeout.clone(),
    }
}

fn amounts(a: &spec::ResourceAmounts) -> wit::ResourceAmounts {
    wit::ResourceAmounts {
        cpu: a.cpu.clone(),
        memory: a.memory.clone(),
    }
}

/// A site config as the contract's record.
pub fn site(s: &spec::SiteConfig) -> wit::SiteConfig {
    wit::SiteConfig {
        image_pull_secrets: s.image_pull_secrets.clone(),
        filebeat: s.filebeat.as_ref().map(|f| wit::Filebeat {
            log_path: f.log_path.clone(),
            data_path: f.data_path.clone(),
            config_path: f.config_path.clone(),
            config_subpath: f.config_subpath.clone(),
            config_map: f.config_map.clone(),
            image: f.image.clone(),
        }),
        tls: s.tls.as_ref().map(|t| wit::Tls {
            cert_path: t.cert_path.clone(),
            image: t.image.clone(),
        }),
        extensions: json(&s.extensions),
    }
}

/// Extensions as JSON text, `{}` when there are none. Keys keep the order written.
fn json(map: &serde_json::Map<String, serde_json::Value>) -> String {
    serde_json::to_string(map).unwrap_or_else(|_| "{}".to_owned())
}
