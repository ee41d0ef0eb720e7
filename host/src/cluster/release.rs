//! Handing a component the controller kept back to the CLI (a Component deleted with
//! `berth.dev/deletion-policy: orphan`): the controller's mark taken off every object.

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::ApiResource;
use serde_json::json;

use super::request::CONTROLLED_BY_ANNOTATION;
use super::{Cluster, ClusterError};

impl Cluster {
    /// Take the controller's mark off `component`'s objects and its inventory, each
    /// patched by uid; objects without it are left alone.
    pub(crate) async fn release(&self, component: &str) -> Result<(), ClusterError> {
        let (parent, objects) = self.objects_of(component).await?;
        let config_maps = ApiResource::erase::<ConfigMap>(&());
        let parent = parent.map(|(object, _)| (config_maps, object));
        let marked = objects
            .iter()
            .filter(|(_, o)| {
                o.metadata
                    .annotations
                    .as_ref()
                    .is_some_and(|a| a.contains_key(CONTROLLED_BY_ANNOTATION))
            })
            .map(|(resource, o)| {
                let reference = crate::objects::ObjectRef::dynamic(o);
                (resource.clone(), reference)
            });
        for (resource, object) in marked.chain(parent) {
            let patch = json!({"metadata": {
                "uid": object.uid,
                "annotations": {CONTROLLED_BY_ANNOTATION: null},
            }});
            self.requests
                .merge(&resource, &object.name, &patch)
                .await
                .map_err(ClusterError::api(format!(
                    "cannot hand {} {} back",
                    resource.kind, object.name
                )))?;
        }
        Ok(())
    }
}
