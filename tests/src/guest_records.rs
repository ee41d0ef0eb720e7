//! berth's spec records as the guest crate's WIT records (wit-bindgen bindings), to run
//! the default rules natively on the same input. Shared by the benchmarks and the property
//! tests, which give only what contract 0.1.0 carries (a literal env, host-path volumes).

use berth::spec::{self as wit, EnvValue, VolumeSource};
use berth_rules::types as g;

/// A spec as the guest's record.
pub fn spec(spec: &wit::Spec) -> g::Spec {
    g::Spec {
        component_name: spec.component_name.clone(),
        image: spec.image.clone(),
        replicas: spec.replicas,
        always_pull: spec.always_pull,
        ports: spec.ports.clone(),
        env: spec
            .env
            .iter()
            .map(|(name, value)| match value {
                EnvValue::Literal(text) => (name.clone(), text.clone()),
                other => panic!("env.{name}: {other:?} is not in contract 0.1.0"),
            })
            .collect(),
        volumes: spec
            .volumes
            .iter()
            .map(|v| g::Volume {
                host_path: match &v.source {
                    VolumeSource::HostPath(path) => path.clone(),
                    other => panic!("{other:?} is not in contract 0.1.0"),
                },
                container_path: v.container_path.clone(),
                mode: v.mode.clone(),
            })
            .collect(),
        labels: spec.labels.clone(),
        readiness: spec.readiness.as_ref().map(|r| g::Readiness {
            kind: r.kind.clone(),
            endpoint: r.endpoint.clone(),
            script: r.script.clone(),
            interval: r.interval.clone(),
            timeout: r.timeout.clone(),
        }),
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
    }
}

fn amounts(a: &wit::ResourceAmounts) -> g::ResourceAmounts {
    g::ResourceAmounts {
        cpu: a.cpu.clone(),
        memory: a.memory.clone(),
    }
}

/// A site config as the guest's record.
pub fn site(site: &wit::SiteConfig) -> g::SiteConfig {
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
    }
}
