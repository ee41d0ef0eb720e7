//! The logging sidecar (filebeat) and the TLS init container, wired as the reference
//! plugin wires them.

use crate::component::types::{LogInfo, SiteConfig, TlsInfo};
use crate::container::{ContainerParts, container};
use crate::error::{FieldError, Result};
use crate::model::{Container, VolumeSource};
use crate::volumes::{Mounts, absolute, mount, volume};

/// Add the filebeat sidecar when `log_info` names a log directory: a shared `component-log`
/// volume, the sidecar's `filebeat-data` and its `filebeat-conf` ConfigMap.
pub fn logging(
    component: &str,
    log: Option<&LogInfo>,
    site: &SiteConfig,
    mounts: &mut Mounts,
) -> Result<Option<Container>> {
    let Some(log_dir) = log.and_then(|l| l.log_directory.as_deref()) else {
        return Ok(None);
    };
    let log_dir = absolute("log_info.log_directory", log_dir)?;
    let fb = site.filebeat.as_ref().ok_or_else(|| {
        FieldError::new(
            "log_info.log_directory",
            "logging is asked for but the site config has no `filebeat` section",
        )
    })?;
    let sidecar_path = match log.and_then(|l| l.alternate_fb_path.as_deref()) {
        Some(path) => absolute("log_info.alternate_fb_path", path)?.to_owned(),
        None => format!("{}/{component}", fb.log_path),
    };
    mounts.add("component-log", VolumeSource::EmptyDir {}, log_dir, false);
    mounts
        .volumes
        .push(volume("filebeat-data", VolumeSource::EmptyDir {}));
    mounts.volumes.push(volume(
        "filebeat-conf",
        VolumeSource::ConfigMap {
            name: fb.config_map.clone(),
            default_mode: None,
            optional: None,
        },
    ));
    let parts = ContainerParts {
        mounts: vec![
            mount("component-log", &sidecar_path, false, None),
            mount("filebeat-data", &fb.data_path, false, None),
            mount(
                "filebeat-conf",
                &fb.config_path,
                false,
                Some(&fb.config_subpath),
            ),
        ],
        ..ContainerParts::default()
    };
    Ok(Some(container("filebeat", &fb.image, false, parts)))
}

/// Add the TLS init container when `tls_info` asks for TLS with a certificate directory:
/// it writes certificates into the `tls-info` volume that the main container mounts.
pub fn tls_init(
    tls: Option<&TlsInfo>,
    site: &SiteConfig,
    mounts: &mut Mounts,
) -> Result<Option<Container>> {
    let Some(cert_dir) = tls
        .filter(|t| t.use_tls)
        .and_then(|t| t.cert_directory.as_deref())
        .filter(|dir| !dir.is_empty())
    else {
        return Ok(None);
    };
    let cert_dir = absolute("tls_info.cert_directory", cert_dir)?;
    let site_tls = site.tls.as_ref().ok_or_else(|| {
        FieldError::new(
            "tls_info.use_tls",
            "TLS is asked for but the site config has no `tls` section",
        )
    })?;
    mounts.add("tls-info", VolumeSource::EmptyDir {}, cert_dir, false);
    let parts = ContainerParts {
        mounts: vec![mount("tls-info", &site_tls.cert_path, false, None)],
        ..ContainerParts::default()
    };
    Ok(Some(container("init-tls", &site_tls.image, false, parts)))
}
