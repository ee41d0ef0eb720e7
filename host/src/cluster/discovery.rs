//! Discovery: what the cluster serves, for rules that build per version.

use super::{Cluster, ClusterError};
use crate::capabilities::Capabilities;

impl Cluster {
    /// The cluster's capabilities, by discovery: its version, the core API versions and
    /// every API group's versions (three requests).
    pub async fn capabilities(&self) -> Result<Capabilities, ClusterError> {
        let client = self.client();
        let info = client
            .apiserver_version()
            .await
            .map_err(ClusterError::api("cannot read the API server's version"))?;
        let core = client
            .list_core_api_versions()
            .await
            .map_err(ClusterError::api("cannot list the core API versions"))?;
        let groups = client
            .list_api_groups()
            .await
            .map_err(ClusterError::api("cannot list the API groups"))?;
        let mut api_versions: Vec<String> = core
            .versions
            .into_iter()
            .chain(
                groups
                    .groups
                    .into_iter()
                    .flat_map(|g| g.versions.into_iter().map(|v| v.group_version)),
            )
            .collect();
        api_versions.sort();
        api_versions.dedup();
        Ok(Capabilities {
            kube_version: format!("{}.{}", digits(&info.major), digits(&info.minor)),
            api_versions,
        })
    }
}

/// The leading digits of a version part: providers report minors such as `20+`.
fn digits(part: &str) -> &str {
    let end = part
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(part.len());
    &part[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_parts_lose_provider_suffixes() {
        assert_eq!(digits("20+"), "20");
        assert_eq!(digits("33"), "33");
        assert_eq!(digits(""), "");
    }
}
