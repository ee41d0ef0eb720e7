//! The house rules: naming and labelling, and `build`, which applies them to a spec.

use serde::Serialize;

use serde_json::{Map, Value};

use crate::component::types::{K8sObject, SiteConfig, Spec};
use crate::container::{self, ContainerParts};
use crate::deployment::{DeploymentParts, deployment};
use crate::error::{FieldError, Result};
use crate::labels::{self, Labels};
use crate::model::StringMap;
use crate::service::{self, ServiceParts};
use crate::{msb, ports, probe, quantity, sidecars, volumes};

/// Label carrying the component name; Services select pods by it.
pub const APP_LABEL: &str = "app";
/// Label carrying the Deployment name on pods and Services.
pub const DEPLOYMENT_LABEL: &str = "k8sdeployment";

/// Naming and labelling of a site. Every method has the default rules' answer, so a site
/// overrides only what it changes.
pub trait Rules {
    /// Name of the Deployment (`dep-<name>`).
    fn deployment_name(&self, component: &str) -> String {
        format!("dep-{component}")
    }

    /// Name of the ClusterIP Service (`<name>`).
    fn service_name(&self, component: &str) -> String {
        component.to_owned()
    }

    /// Name of the NodePort Service (`x<name>`, cut to 63 characters).
    fn exposed_service_name(&self, component: &str) -> String {
        format!("x{component}").chars().take(63).collect()
    }

    /// Labels added to the Deployment, its pods and its Services, besides the spec's own
    /// labels and `app`/`k8sdeployment`.
    fn extra_labels(&self, _spec: &Spec) -> Labels {
        Labels::new()
    }

    /// Check the `extensions` of the spec and of the site config: rules that use keys
    /// there validate them here. The default rules use none, so any key is refused by
    /// name: a typo cannot pass silently.
    fn check_extensions(&self, spec: &Map<String, Value>, site: &Map<String, Value>) -> Result<()> {
        if let Some(key) = spec.keys().next() {
            return Err(FieldError::new(
                format!("extensions.{key}"),
                "not used by the default rules",
            ));
        }
        if let Some(key) = site.keys().next() {
            return Err(FieldError::new(
                format!("extensions.{key}"),
                "(in the site config) not used by the default rules",
            ));
        }
        Ok(())
    }
}

/// The `extensions` JSON text of a spec or site config as a map (`{}` when empty); the
/// error names `extensions`.
pub fn extensions(json: &str) -> Result<Map<String, Value>> {
    if json.trim().is_empty() {
        return Ok(Map::new());
    }
    match serde_json::from_str::<Value>(json) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(FieldError::new(
            "extensions",
            format!("{json:?} is not a JSON object"),
        )),
    }
}

/// The rules of the reference plugin.
#[derive(Debug, Clone, Copy, Default)]
pub struct DefaultRules;

impl Rules for DefaultRules {}

/// Build the objects for `spec` in `namespace`: a Deployment, then the ClusterIP Service
/// and the NodePort Service when the spec has (exposed) ports. The rules check the
/// extensions first ([`Rules::check_extensions`]).
pub fn build(
    rules: &impl Rules,
    spec: &Spec,
    site: &SiteConfig,
    namespace: &str,
) -> Result<Vec<K8sObject>> {
    rules.check_extensions(
        &extensions(&spec.extensions)?,
        &extensions(&site.extensions)?,
    )?;
    objects(rules, spec, site, namespace)
}

/// What the `defaults` interface serves: the default rules' objects, extensions left to
/// the caller.
pub fn defaults(spec: &Spec, site: &SiteConfig, namespace: &str) -> Result<Vec<K8sObject>> {
    objects(&DefaultRules, spec, site, namespace)
}

fn objects(
    rules: &impl Rules,
    spec: &Spec,
    site: &SiteConfig,
    namespace: &str,
) -> Result<Vec<K8sObject>> {
    let name = spec.component_name.as_str();
    labels::check_dns_label("component_name", name)?;
    container::check_image("image", &spec.image)?;
    let replicas = i32::try_from(spec.replicas).map_err(|_| {
        FieldError::new(
            "replicas",
            format!("{} is more than {}", spec.replicas, i32::MAX),
        )
    })?;
    let ports = ports::parse_ports(&spec.ports)?;
    let deployment_name = rules.deployment_name(name);

    let mut object_labels = labels::spec_labels(&spec.labels, &[APP_LABEL, DEPLOYMENT_LABEL])?;
    object_labels.extend(rules.extra_labels(spec));
    object_labels.insert(APP_LABEL.into(), name.into());
    let mut pod_labels = object_labels.clone();
    labels::check_label_value("component_name", &deployment_name).map_err(|_| {
        FieldError::new(
            "component_name",
            format!("{name:?} is too long: the pod label {DEPLOYMENT_LABEL}={deployment_name} would exceed 63 characters"),
        )
    })?;
    labels::check_dns_subdomain("component_name", &deployment_name).map_err(|e| {
        FieldError::new(
            e.field,
            format!(
                "Deployment name {deployment_name:?} is not valid: {}",
                e.message
            ),
        )
    })?;
    pod_labels.insert(DEPLOYMENT_LABEL.into(), deployment_name.clone());

    let mut mounts = volumes::spec_volumes(&spec.volumes)?;
    let sidecar = sidecars::logging(name, spec.log_info.as_ref(), site, &mut mounts)?;
    let init = sidecars::tls_init(spec.tls_info.as_ref(), site, &mut mounts)?;
    let main = container::container(
        name,
        &spec.image,
        spec.always_pull,
        ContainerParts {
            command: spec.command.clone(),
            args: spec.args.clone(),
            env: container::env(&spec.env)?,
            ports: container::ports(&ports),
            mounts: mounts.main,
            resources: spec
                .resources
                .as_ref()
                .map(quantity::resources)
                .transpose()?
                .flatten(),
            readiness: spec
                .readiness
                .as_ref()
                .map(|check| probe::probe("readiness", check, &ports))
                .transpose()?,
            liveness: spec
                .liveness
                .as_ref()
                .map(|check| probe::probe("liveness", check, &ports))
                .transpose()?,
        },
    );
    for (i, secret) in site.image_pull_secrets.iter().enumerate() {
        labels::check_dns_subdomain(&format!("image_pull_secrets[{i}]"), secret)?;
    }

    let mut objects = vec![object(
        "apps/v1",
        "Deployment",
        &deployment(DeploymentParts {
            name: deployment_name,
            namespace,
            hostname: name,
            replicas,
            labels: object_labels,
            pod_labels: pod_labels.clone(),
            selector_keys: &[APP_LABEL, DEPLOYMENT_LABEL],
            containers: [Some(main), sidecar].into_iter().flatten().collect(),
            init_containers: init.into_iter().collect(),
            volumes: mounts.volumes,
            pull_secrets: &site.image_pull_secrets,
        }),
    )];
    if ports.is_empty() {
        return Ok(objects);
    }
    let parts = ServiceParts {
        namespace,
        labels: &pod_labels,
        selector: StringMap::from([(APP_LABEL.into(), name.into())]),
    };
    let mut annotations = StringMap::new();
    if !spec.msb_list.is_empty() {
        annotations.insert(
            msb::ANNOTATION.into(),
            msb::annotation(name, &spec.msb_list),
        );
    }
    let service_name = rules.service_name(name);
    check_service_name(&service_name)?;
    objects.push(object(
        "v1",
        "Service",
        &service::cluster_ip(service_name, &ports, annotations, &parts),
    ));
    let exposed_name = rules.exposed_service_name(name);
    if let Some(exposed) = service::node_port(exposed_name.clone(), &ports, &parts) {
        check_service_name(&exposed_name)?;
        objects.push(object("v1", "Service", &exposed));
    }
    Ok(objects)
}

/// Serialize one object. The model holds only strings, numbers and maps with string keys,
/// so serialization cannot fail.
fn object<T: Serialize + Named>(api_version: &str, kind: &str, value: &T) -> K8sObject {
    K8sObject {
        api_version: api_version.into(),
        kind: kind.into(),
        name: value.name().into(),
        json: serde_json::to_string(value).unwrap_or_default(),
    }
}

/// Objects that carry a `metadata.name`.
trait Named {
    fn name(&self) -> &str;
}

impl Named for crate::model::Deployment {
    fn name(&self) -> &str {
        &self.metadata.name
    }
}

impl Named for crate::model::Service {
    fn name(&self) -> &str {
        &self.metadata.name
    }
}

/// A Service name must be a DNS-1035 label: a DNS-1123 label starting with a letter.
fn check_service_name(name: &str) -> Result<()> {
    labels::check_dns_label("component_name", name)?;
    if name.starts_with(|c: char| c.is_ascii_lowercase()) {
        Ok(())
    } else {
        Err(FieldError::new(
            "component_name",
            format!("Service name {name:?} must start with a letter"),
        ))
    }
}
