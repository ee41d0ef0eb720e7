//! The house rules: naming and labelling, and `build`, which applies them to a spec.

use serde::Serialize;

use serde_json::{Map, Value};

use crate::component::types::{K8sObject, SiteConfig, Spec};
use crate::container::{self, ContainerParts};
use crate::deployment::{DeploymentParts, deployment};
use crate::error::{FieldError, Result};
use crate::labels::{self, Labels};
use crate::model::{self, StringMap};
use crate::ports::PortMapping;
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

    /// Objects a site always adds beside the Deployment and Services, e.g. a
    /// PodDisruptionBudget or NetworkPolicy; [`build`] appends them after the default
    /// objects. `workload` describes the Deployment built; [`object`] makes a
    /// [`K8sObject`] from JSON. The default rules add none.
    fn extra_objects(
        &self,
        _spec: &Spec,
        _site: &SiteConfig,
        _workload: &Workload<'_>,
    ) -> Result<Vec<K8sObject>> {
        Ok(Vec::new())
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

/// The Deployment the default logic built, for [`Rules::extra_objects`].
#[derive(Debug, Clone, Copy)]
pub struct Workload<'a> {
    /// The component's name (`spec.component_name`).
    pub component: &'a str,
    /// The namespace the objects go to.
    pub namespace: &'a str,
    /// Name of the Deployment ([`Rules::deployment_name`]).
    pub deployment_name: &'a str,
    /// Labels of the Deployment: the spec's labels, [`Rules::extra_labels`] and `app`
    /// (its pods and Services carry `k8sdeployment` too).
    pub labels: &'a Labels,
    /// The Deployment's `spec.selector.matchLabels`: `app` and `k8sdeployment`.
    pub selector: &'a Labels,
    /// The spec's ports, parsed, in spec order; no container port/protocol pair twice.
    pub ports: &'a [PortMapping],
}

/// A [`K8sObject`] from a JSON object, its `apiVersion`, `kind` and `metadata.name`
/// read from it; the error names the one missing or not a string (`apiVersion`).
pub fn object(value: Value) -> Result<K8sObject> {
    let text = |field: &str, found: Option<&Value>| {
        found
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| {
                FieldError::new(
                    field,
                    "missing or not a string in an object built by the rules",
                )
            })
    };
    let api_version = text("apiVersion", value.get("apiVersion"))?;
    let kind = text("kind", value.get("kind"))?;
    let name = text("metadata.name", value.pointer("/metadata/name"))?;
    Ok(K8sObject {
        api_version,
        kind,
        name,
        // A `Value` has string keys only, so serialization cannot fail.
        json: serde_json::to_string(&value).unwrap_or_default(),
    })
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

/// Whose `extensions` a site's rules read: error messages say which.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExtensionsOf {
    /// The component spec's.
    Spec,
    /// The site config's.
    SiteConfig,
}

/// A site's own table in the `extensions` JSON text of a spec or site config:
/// `extensions.<site>` (empty when absent), with any other key beside it, or under it any
/// key not in `known`, refused by name (`extensions.acme.min_avail: not used by acme's
/// rules`), so a typo cannot pass silently.
pub fn site_extensions(
    json: &str,
    site: &str,
    known: &[&str],
    of: ExtensionsOf,
) -> Result<Map<String, Value>> {
    let origin = match of {
        ExtensionsOf::Spec => "",
        ExtensionsOf::SiteConfig => "(in the site config) ",
    };
    let unused = |field| FieldError::new(field, format!("{origin}not used by {site}'s rules"));
    let mut all = extensions(json)?;
    if let Some(other) = all.keys().find(|key| *key != site) {
        return Err(unused(format!("extensions.{other}")));
    }
    let table = match all.remove(site) {
        None => Map::new(),
        Some(Value::Object(table)) => table,
        Some(other) => {
            let message = format!("{origin}{other} is not a map");
            return Err(FieldError::new(format!("extensions.{site}"), message));
        }
    };
    match table.keys().find(|key| !known.contains(&key.as_str())) {
        Some(other) => Err(unused(format!("extensions.{site}.{other}"))),
        None => Ok(table),
    }
}

/// The rules of the reference plugin.
#[derive(Debug, Clone, Copy, Default)]
pub struct DefaultRules;

impl Rules for DefaultRules {}

/// Build the objects for `spec` in `namespace`: a Deployment, then the ClusterIP Service
/// and the NodePort Service when the spec has (exposed) ports, then the rules' own
/// ([`Rules::extra_objects`]). The rules check the extensions first
/// ([`Rules::check_extensions`]).
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
    let built = objects(rules, spec, site, namespace)?;
    let extra = rules.extra_objects(
        spec,
        site,
        &Workload {
            component: &spec.component_name,
            namespace,
            deployment_name: &built.deployment.metadata.name,
            labels: &built.deployment.metadata.labels,
            selector: &built.deployment.spec.selector.match_labels,
            ports: &built.ports,
        },
    )?;
    let mut objects = built.objects;
    objects.extend(extra);
    Ok(objects)
}

/// What the `defaults` interface serves: the default rules' objects, extensions left to
/// the caller.
pub fn defaults(spec: &Spec, site: &SiteConfig, namespace: &str) -> Result<Vec<K8sObject>> {
    Ok(objects(&DefaultRules, spec, site, namespace)?.objects)
}

/// The default objects, with what [`Workload`] shows of them.
struct Built {
    objects: Vec<K8sObject>,
    deployment: model::Deployment,
    ports: Vec<PortMapping>,
}

fn objects(rules: &impl Rules, spec: &Spec, site: &SiteConfig, namespace: &str) -> Result<Built> {
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

    let deployment = deployment(DeploymentParts {
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
    });
    let mut objects = vec![to_object("apps/v1", "Deployment", &deployment)];
    if ports.is_empty() {
        return Ok(Built {
            objects,
            deployment,
            ports,
        });
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
    objects.push(to_object(
        "v1",
        "Service",
        &service::cluster_ip(service_name, &ports, annotations, &parts),
    ));
    let exposed_name = rules.exposed_service_name(name);
    if let Some(exposed) = service::node_port(exposed_name.clone(), &ports, &parts) {
        check_service_name(&exposed_name)?;
        objects.push(to_object("v1", "Service", &exposed));
    }
    Ok(Built {
        objects,
        deployment,
        ports,
    })
}

/// Serialize one object. The model holds only strings, numbers and maps with string keys,
/// so serialization cannot fail.
fn to_object<T: Serialize + Named>(api_version: &str, kind: &str, value: &T) -> K8sObject {
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

impl Named for model::Deployment {
    fn name(&self) -> &str {
        &self.metadata.name
    }
}

impl Named for model::Service {
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

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn spec(ports: &[&str]) -> Spec {
        Spec {
            replicas: 2,
            ports: ports.iter().map(|p| (*p).to_owned()).collect(),
            labels: vec![("tier".into(), "front".into())],
            extensions: "{}".into(),
            ..Spec::new("web", "nginx:1.27")
        }
    }

    fn site() -> SiteConfig {
        SiteConfig {
            image_pull_secrets: Vec::new(),
            filebeat: None,
            tls: None,
            extensions: "{}".into(),
        }
    }

    /// Rules that add one ConfigMap and record the workload they were shown.
    #[derive(Default)]
    struct Extra {
        seen: std::cell::RefCell<Option<Value>>,
    }

    impl Rules for Extra {
        fn extra_labels(&self, _spec: &Spec) -> Labels {
            Labels::from([("team".into(), "core".into())])
        }

        fn extra_objects(
            &self,
            _spec: &Spec,
            _site: &SiteConfig,
            w: &Workload<'_>,
        ) -> Result<Vec<K8sObject>> {
            let ports: Vec<_> = w
                .ports
                .iter()
                .map(|p| format!("{}/{}", p.container_port, p.protocol.as_str()))
                .collect();
            self.seen.replace(Some(json!({
                "component": w.component,
                "namespace": w.namespace,
                "deployment_name": w.deployment_name,
                "labels": w.labels,
                "selector": w.selector,
                "ports": ports,
            })));
            Ok(vec![object(json!({
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": format!("{}-extra", w.deployment_name), "namespace": w.namespace},
            }))?])
        }
    }

    fn kinds(objects: &[K8sObject]) -> Vec<String> {
        objects
            .iter()
            .map(|o| format!("{}/{}", o.kind, o.name))
            .collect()
    }

    #[test]
    fn extra_objects_come_after_the_deployment_and_services() {
        let rules = Extra::default();
        let objects = build(&rules, &spec(&["80:30080", "53/udp:0"]), &site(), "shop").unwrap();
        assert_eq!(
            kinds(&objects),
            [
                "Deployment/dep-web",
                "Service/web",
                "Service/xweb",
                "ConfigMap/dep-web-extra"
            ]
        );
        let extra: Value = serde_json::from_str(&objects[3].json).unwrap();
        assert_eq!(extra["metadata"]["namespace"], "shop");
        assert_eq!(objects[3].api_version, "v1");

        let without_ports = build(&rules, &spec(&[]), &site(), "shop").unwrap();
        assert_eq!(
            kinds(&without_ports),
            ["Deployment/dep-web", "ConfigMap/dep-web-extra"]
        );
    }

    #[test]
    fn defaults_have_no_extra_objects() {
        let objects = defaults(&spec(&["80:30080"]), &site(), "shop").unwrap();
        assert_eq!(
            kinds(&objects),
            ["Deployment/dep-web", "Service/web", "Service/xweb"]
        );
        assert_eq!(
            kinds(&build(&DefaultRules, &spec(&["80:30080"]), &site(), "shop").unwrap()),
            kinds(&objects)
        );
    }

    #[test]
    fn workload_shows_the_deployment_built() {
        let rules = Extra::default();
        let objects = build(&rules, &spec(&["80:30080", "53/udp:0"]), &site(), "shop").unwrap();
        let deployment: Value = serde_json::from_str(&objects[0].json).unwrap();
        let seen = rules.seen.take().expect("extra_objects called");
        assert_eq!(
            seen["selector"],
            deployment["spec"]["selector"]["matchLabels"]
        );
        assert_eq!(
            seen["selector"],
            json!({"app": "web", "k8sdeployment": "dep-web"})
        );
        assert_eq!(seen["labels"], deployment["metadata"]["labels"]);
        assert_eq!(
            seen["labels"],
            json!({"app": "web", "team": "core", "tier": "front"})
        );
        assert_eq!(seen["ports"], json!(["80/TCP", "53/UDP"]));
        assert_eq!(seen["component"], "web");
        assert_eq!(seen["namespace"], "shop");
        assert_eq!(seen["deployment_name"], "dep-web");
    }

    #[test]
    fn object_reads_its_identity_from_the_json() {
        let value = json!({"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
                           "metadata": {"name": "web"}, "spec": {"minAvailable": 1}});
        let made = object(value.clone()).unwrap();
        assert_eq!(
            (
                made.api_version.as_str(),
                made.kind.as_str(),
                made.name.as_str()
            ),
            ("policy/v1", "PodDisruptionBudget", "web")
        );
        assert_eq!(serde_json::from_str::<Value>(&made.json).unwrap(), value);
    }

    #[test]
    fn object_errors_name_the_missing_field() {
        let field = |value: Value| object(value).unwrap_err().field;
        assert_eq!(
            field(json!({"kind": "X", "metadata": {"name": "x"}})),
            "apiVersion"
        );
        assert_eq!(
            field(json!({"apiVersion": "v1", "metadata": {"name": "x"}})),
            "kind"
        );
        assert_eq!(
            field(json!({"apiVersion": "v1", "kind": "X"})),
            "metadata.name"
        );
        assert_eq!(
            field(json!({"apiVersion": "v1", "kind": "X", "metadata": {"name": 3}})),
            "metadata.name"
        );
        assert_eq!(field(json!({"apiVersion": 1, "kind": "X"})), "apiVersion");
        assert_eq!(field(json!(["not", "an", "object"])), "apiVersion");
        let err = object(json!({})).unwrap_err();
        assert_eq!(
            err.to_string(),
            "apiVersion: missing or not a string in an object built by the rules"
        );
    }

    #[test]
    fn site_extensions_keep_the_sites_table_and_refuse_the_rest() {
        let of = |json: &str, of| site_extensions(json, "acme", &["min_available"], of);
        let table = of(r#"{"acme": {"min_available": 2}}"#, ExtensionsOf::Spec).unwrap();
        assert_eq!(table["min_available"], 2);
        assert!(of("", ExtensionsOf::Spec).unwrap().is_empty());
        let err = of(r#"{"acme": {"min": 2}}"#, ExtensionsOf::Spec).unwrap_err();
        assert_eq!(
            err.to_string(),
            "extensions.acme.min: not used by acme's rules"
        );
        let err = of(r#"{"other": 1}"#, ExtensionsOf::SiteConfig).unwrap_err();
        assert_eq!(
            err.to_string(),
            "extensions.other: (in the site config) not used by acme's rules"
        );
        let err = of(r#"{"acme": []}"#, ExtensionsOf::Spec).unwrap_err();
        assert_eq!(err.to_string(), "extensions.acme: [] is not a map");
    }
}
