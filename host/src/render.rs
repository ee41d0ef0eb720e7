//! `berth render`: the objects of a component, as YAML documents or a JSON `List`.

use std::path::Path;

use serde_json::json;

use crate::error::Error;
use crate::objects::Rendered;
use crate::runtime::{Rules, wit};

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
    let items: Vec<serde_json::Value> = rendered.iter().flat_map(Rendered::to_values).collect();
    match format {
        Format::Yaml => serde_saphyr::to_string_multiple(&items).map_err(FormatError),
        Format::Json => {
            let list = json!({ "apiVersion": "v1", "kind": "List", "items": items });
            // A tree of JSON values always serializes.
            Ok(serde_json::to_string_pretty(&list).unwrap_or_default() + "\n")
        }
    }
}

/// Build and check the objects of one spec; `origin` names the spec in errors.
pub fn render(
    rules: &mut Rules,
    origin: &Path,
    spec: &wit::Spec,
    site: &wit::SiteConfig,
    namespace: &str,
) -> Result<Rendered, Error> {
    let objects = rules
        .build(spec, site, namespace)?
        .map_err(|refusal| Error::Refused {
            spec: origin.to_owned(),
            refusal,
        })?;
    Ok(Rendered::from_objects(rules.source(), objects, namespace)?)
}
