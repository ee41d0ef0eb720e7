//! `berth render`: the objects of one or more components, as YAML documents or a JSON `List`.

use std::collections::HashMap;
use std::collections::hash_map::Entry;

use serde::Serialize;

use crate::error::Error;
use crate::objects::{Object, Rendered};
use crate::runtime::{Rules, wit};
use crate::spec::Origin;

/// Output format of objects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Format {
    /// YAML documents separated by `---`.
    #[default]
    Yaml,
    /// One `v1` `List` object.
    Json,
}

/// Why objects could not be printed.
#[derive(Debug, thiserror::Error)]
#[error("cannot write the objects as YAML")]
pub struct FormatError(#[source] serde_saphyr::SerializeError);

/// Format the objects of one or more components.
pub fn format(rendered: &[Rendered], format: Format) -> Result<String, FormatError> {
    // Straight from the typed objects: a JSON tree in between would double the work.
    let items: Vec<Object<'_>> = rendered.iter().flat_map(Rendered::objects).collect();
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

/// Build and check the objects of every spec, in order. Fails on the first spec that
/// fails, and when two specs build an object of one kind and name.
pub fn render_all(
    rules: &mut Rules,
    specs: &[(Origin, wit::Spec)],
    site: &wit::SiteConfig,
    namespace: &str,
) -> Result<Vec<Rendered>, Error> {
    let mut built_by: HashMap<String, &Origin> = HashMap::new();
    let mut all = Vec::with_capacity(specs.len());
    for (origin, spec) in specs {
        let rendered = render(rules, origin, spec, site, namespace)?;
        for object in rendered.objects() {
            match built_by.entry(object.id()) {
                Entry::Vacant(slot) => {
                    slot.insert(origin);
                }
                Entry::Occupied(built) => {
                    return Err(Error::Collision {
                        object: built.key().clone(),
                        first: (*built.get()).clone(),
                        second: origin.clone(),
                    });
                }
            }
        }
        all.push(rendered);
    }
    Ok(all)
}

/// Build and check the objects of one spec; `origin` names the spec in errors.
pub fn render(
    rules: &mut Rules,
    origin: &Origin,
    spec: &wit::Spec,
    site: &wit::SiteConfig,
    namespace: &str,
) -> Result<Rendered, Error> {
    let objects = rules
        .build(spec, site, namespace)?
        .map_err(|refusal| Error::Refused {
            spec: origin.clone(),
            refusal,
        })?;
    Ok(Rendered::from_objects(rules.source(), objects, namespace)?)
}
