//! berth's spec records as the guest crate's WIT records (wit-bindgen bindings of contract
//! 0.2.0), to run the default rules natively on the same input. Shared by the benchmarks
//! and the property tests.

use berth::{EnvValue, VolumeSource};
use berth_rules::types as g;

/// A spec as the guest's record.
pub fn spec(spec: &berth::Spec) -> g::Spec {
    g::Spec {
        component_name: spec.component_name.clone(),
        image: spec.image.clone(),
        replicas: spec.replicas,
        always_pull: spec.always_pull,
        ports: spec.ports.clone(),
        env: spec
            .env
            .iter()
            .map(|(name, value)| g::EnvVar {
                name: name.clone(),
                value: match value {
                    EnvValue::Literal(text) => g::EnvValue::Literal(text.clone()),
                    EnvValue::Secret { name, key } => g::EnvValue::Secret(g::KeyRef {
                        name: name.clone(),
                        key: key.clone(),
                    }),
                    EnvValue::ConfigMap { name, key } => g::EnvValue::ConfigMap(g::KeyRef {
                        name: name.clone(),
                        key: key.clone(),
                    }),
                },
            })
            .collect(),
        volumes: spec
            .volumes
            .iter()
            .map(|v| g::Volume {
                source: match &v.source {
                    VolumeSource::HostPath(path) => g::VolumeSource::HostPath(path.clone()),
                    VolumeSource::ConfigMap(name) => g::VolumeSource::ConfigMap(name.clone()),
                },
                container_path: v.container_path.clone(),
                mode: v.mode.clone(),
            })
            .collect(),
        labels: spec.labels.clone(),
        readiness: spec.readiness.as_ref().map(probe),
        liveness: spec.liveness.as_ref().map(probe),
        command: spec.command.clone(),
        args: spec.args.clone(),
        resources: spec.resources.as_ref().map(|r| g::Resources {
            limits: r.limits.as_ref().map(amounts),
            requests: r.requests.as_ref().map(amounts),
        }),
        log_info: spec.log_info.as_ref().map(|l| g::LogInfo {
            log_directory: l.log_directory.clone(),
            alternate_fb_path: l.alternate_fb_path.clone(),
        }),
        tls_info: spec.tls_info.as_ref().map(|t| g::TlsInfo {
            use_tls: t.use_tls,
            cert_directory: t.cert_directory.clone(),
        }),
        msb_list: spec
            .msb_list
            .iter()
            .map(|m| g::MsbService {
                service_name: m.service_name.clone(),
                port: m.port.clone(),
                version: m.version.clone(),
                url: m.url.clone(),
                protocol: m.protocol.clone(),
                enable_ssl: m.enable_ssl,
                visual_range: m.visual_range.clone(),
            })
            .collect(),
        extensions: serde_json::to_string(&spec.extensions).unwrap_or_default(),
    }
}

fn probe(p: &berth::Probe) -> g::Probe {
    g::Probe {
        kind: p.kind.clone(),
        endpoint: p.endpoint.clone(),
        script: p.script.clone(),
        interval: p.interval.clone(),
        timeout: p.timeout.clone(),
    }
}

fn amounts(a: &berth::ResourceAmounts) -> g::ResourceAmounts {
    g::ResourceAmounts {
        cpu: a.cpu.clone(),
        memory: a.memory.clone(),
    }
}

/// A site config as the guest's record.
pub fn site(site: &berth::SiteConfig) -> g::SiteConfig {
    g::SiteConfig {
        image_pull_secrets: site.image_pull_secrets.clone(),
        filebeat: site.filebeat.as_ref().map(|f| g::Filebeat {
            log_path: f.log_path.clone(),
            data_path: f.data_path.clone(),
            config_path: f.config_path.clone(),
            config_subpath: f.config_subpath.clone(),
            config_map: f.config_map.clone(),
            image: f.image.clone(),
        }),
        tls: site.tls.as_ref().map(|t| g::Tls {
            cert_path: t.cert_path.clone(),
            image: t.image.clone(),
        }),
        extensions: serde_json::to_string(&site.extensions).unwrap_or_default(),
    }
}
