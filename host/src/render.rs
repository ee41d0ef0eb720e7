//! Rendering: a spec through the rules into checked objects, for one component or many,
//! and the objects as YAML documents or a JSON `List`.

use std::collections::HashMap;
use std::sync::Arc;

use serde::Serialize;

use crate::capabilities::Capabilities;
use crate::kinds::AllowedKinds;
use crate::objects::{InvalidObject, Object, ObjectRef, Rendered};
use crate::runtime::{Refusal, Rules, RulesError};
use crate::spec::{Origin, SiteConfig, Spec};

/// Why a spec could not be rendered.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    /// Loading or running the rules component failed.
    #[error(transparent)]
    Rules(#[from] RulesError),
    /// The rules refused the spec.
    #[error("{spec}: {refusal}")]
    Refused {
        /// Which spec.
        spec: Origin,
        /// The field and why.
        #[source]
        refusal: Refusal,
    },
    /// The rules returned objects the host refuses.
    #[error(transparent)]
    Invalid(#[from] InvalidObject),
    /// Two specs build an object of the same kind and name: one would replace the other.
    #[error("{second}: builds {object}, which {first} builds too")]
    Collision {
        /// The object both build.
        object: Box<ObjectRef>,
        /// The spec that built it first.
        first: Box<Origin>,
        /// The spec that built it again.
        second: Box<Origin>,
    },
}

impl Rules {
    /// Build and check the objects of `spec` in `namespace` of a cluster that serves
    /// `capabilities` (from [`Cluster::capabilities`](crate::Cluster::capabilities), or
    /// [`Capabilities::newest_known`] without a cluster).
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use berth::{Capabilities, RulesOptions, Rules, SiteConfig, Spec};
    /// let rules = Rules::default_rules(&RulesOptions::default())?;
    /// let spec = Spec::parse("component_name: web\nimage: nginx:1.27\nports: ['80:0']\n")?;
    /// let caps = Capabilities::newest_known();
    /// let rendered = rules.render(&spec, &SiteConfig::default(), &caps, "shop")?;
    /// assert_eq!(rendered.deployment.metadata.name.as_deref(), Some("dep-web"));
    /// assert_eq!(rendered.services.len(), 1);
    /// # Ok(()) }
    /// ```
    pub fn render(
        &self,
        spec: &Spec,
        site: &SiteConfig,
        capabilities: &Capabilities,
        namespace: &str,
    ) -> Result<Rendered, RenderError> {
        let origin = Origin::named(&spec.component_name);
        self.render_from(&origin, spec, site, capabilities, namespace)
    }

    /// As [`Rules::render`]; `origin` names the spec in errors.
    pub fn render_from(
        &self,
        origin: &Origin,
        spec: &Spec,
        site: &SiteConfig,
        capabilities: &Capabilities,
        namespace: &str,
    ) -> Result<Rendered, RenderError> {
        let capabilities = crate::runtime::shared_capabilities(capabilities);
        self.render_shared(origin, spec, site, &capabilities, namespace)
    }

    fn render_shared(
        &self,
        origin: &Origin,
        spec: &Spec,
        site: &SiteConfig,
        capabilities: &Arc<Capabilities>,
        namespace: &str,
    ) -> Result<Rendered, RenderError> {
        let objects = self
            .build_shared(spec, site, capabilities, namespace)?
            .map_err(|refusal| RenderError::Refused {
                spec: origin.clone(),
                refusal,
            })?;
        Ok(Rendered::from_objects(
            self.source(),
            self.digest(),
            &spec.component_name,
            objects,
            namespace,
            &AllowedKinds::new().with(site.allowed_kinds.iter().cloned()),
        )?)
    }

    /// Build and check the objects of every spec, in order. Fails on the first spec that
    /// fails, and when two specs build one object.
    pub fn render_all(
        &self,
        specs: &[(Origin, Spec)],
        site: &SiteConfig,
        capabilities: &Capabilities,
        namespace: &str,
    ) -> Result<Vec<Rendered>, RenderError> {
        let capabilities = crate::runtime::shared_capabilities(capabilities);
        let mut built = Built::default();
        let mut all = Vec::with_capacity(specs.len());
        for (origin, spec) in specs {
            let rendered = self.render_shared(origin, spec, site, &capabilities, namespace)?;
            built.claim(origin, &rendered)?;
            all.push(rendered);
        }
        Ok(all)
    }
}

/// The objects several specs build, and which spec built each first: two specs may not
/// build one object, since one would replace the other. One object is one group, kind,
/// namespace and name — the API server serves it at every version of its group, so
/// `policy/v1beta1` and `policy/v1` PodDisruptionBudgets of one name are one object.
#[derive(Debug, Default)]
pub struct Built<'a> {
    first: HashMap<(String, String, Option<String>, String), &'a Origin>,
}

impl<'a> Built<'a> {
    /// Record the objects `origin` rendered; refused, and nothing recorded, when an
    /// earlier spec built one of them.
    pub fn claim(&mut self, origin: &'a Origin, rendered: &Rendered) -> Result<(), RenderError> {
        let mine: Vec<ObjectRef> = rendered.objects().map(|o| o.reference()).collect();
        for object in &mine {
            if let Some(first) = self.first.get(&identity(object)) {
                return Err(RenderError::Collision {
                    object: Box::new(object.clone()),
                    first: Box::new((*first).clone()),
                    second: Box::new(origin.clone()),
                });
            }
        }
        for object in &mine {
            self.first.entry(identity(object)).or_insert(origin);
        }
        Ok(())
    }
}

fn identity(object: &ObjectRef) -> (String, String, Option<String>, String) {
    (
        object.group().to_owned(),
        object.kind.clone(),
        object.namespace.clone(),
        object.name.clone(),
    )
}

/// How objects are written out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    /// YAML documents separated by `---`.
    #[default]
    Yaml,
    /// One `v1` `List` object.
    Json,
}

/// Why objects could not be written out.
#[derive(Debug, thiserror::Error)]
#[error("cannot write the objects as YAML")]
pub struct FormatError(#[source] serde_saphyr::SerializeError);

/// Whether Secret values are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Secrets {
    /// Each value of a Secret's `data` and `stringData` printed as `***`.
    #[default]
    Mask,
    /// Printed as they are.
    Show,
}

/// The objects of one or more components as text, in order: what `berth render` prints.
pub fn format_rendered(
    rendered: &[Rendered],
    format: Format,
    secrets: Secrets,
) -> Result<String, FormatError> {
    // Straight from the typed objects: a JSON tree in between would double the work.
    let items: Vec<Object<'_>> = rendered
        .iter()
        .flat_map(Rendered::objects)
        .map(|o| match secrets {
            Secrets::Mask => o.masked(),
            Secrets::Show => o,
        })
        .collect();
    match format {
        Format::Yaml => serde_saphyr::to_string_multiple(&items).map_err(FormatError),
        Format::Json => {
            let list = List {
                api_version: "v1",
                kind: "List",
                items,
            };
            // Kubernetes objects always serialize to JSON.
            Ok(serde_json::to_string_pretty(&list).unwrap_or_default() + "\n")
        }
    }
}

/// A `v1` `List` of objects, as `kubectl get -o json` prints several.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct List<'a> {
    api_version: &'static str,
    kind: &'static str,
    items: Vec<Object<'a>>,
}
