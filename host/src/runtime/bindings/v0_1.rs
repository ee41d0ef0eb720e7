//! The binding site of the host for `berth:rules@0.1.0`: the generated types stay in
//! here; berth's own records are converted at the call.

wasmtime::component::bindgen!({
    path: "../wit/berth-rules@0.1.0",
    world: "rules",
});

use self::berth::rules::types as wit;
use crate::spec;

// What 0.1.0 cannot carry is refused, by the path of the field that holds it.

/// A spec as the contract's record, or the path of the first field 0.1.0 has no place for.
pub fn spec(s: &spec::Spec) -> Result<wit::Spec, String> {
    let unsupported = [
        ("liveness", s.liveness.is_some()),
        ("command", s.command.is_some()),
        ("args", s.args.is_some()),
        ("extensions", !s.extensions.is_empty()),
    ];
    if let Some((field, _)) = unsupported.iter().find(|(_, used)| *used) {
        return Err((*field).to_owned());
    }
    let env = s
        .env
        .iter()
        .map(|(name, value)| match value {
            spec::EnvValue::Literal(text) => Ok((name.clone(), text.clone())),
            _ => Err(format!("env.{name}")),
        })
        .collect::<Result<_, _>>()?;
    let volumes = s
        .volumes
        .iter()
        .enumerate()
        .map(|(i, v)| match &v.source {
            spec::VolumeSource::HostPath(path) => Ok(wit::Volume {
                host_path: path.clone(),
                container_path: v.container_path.clone(),
                mode: v.mode.clone(),
            }),
            spec::VolumeSource::ConfigMap(_) => Err(format!("volumes[{i}].config_volume")),
        })
        .collect::<Result<_, _>>()?;
    Ok(wit::Spec {
        component_name: s.component_name.clone(),
        image: s.image.clone(),
        replicas: s.replicas,
        always_pull: s.always_pull,
        ports: s.ports.clone(),
        env,
        volumes,
        labels: s.labels.clone(),
        readiness: s.readiness.as_ref().map(|r| wit::Readiness {
            kind: r.kind.clone(),
            endpoint: r.endpoint.clone(),
            script: r.script.clone(),
            interval: r.interval.clone(),
            timeout: r.timeout.clone(),
        }),
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
    })
}

fn amounts(a: &spec::ResourceAmounts) -> wit::ResourceAmounts {
    wit::ResourceAmounts {
        cpu: a.cpu.clone(),
        memory: a.memory.clone(),
    }
}

/// A site config as the contract's record, or the path of the first field 0.1.0 has no
/// place for.
pub fn site(s: &spec::SiteConfig) -> Result<wit::SiteConfig, String> {
    if !s.extensions.is_empty() {
        return Err("extensions".to_owned());
    }
    Ok(wit::SiteConfig {
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
    })
}
