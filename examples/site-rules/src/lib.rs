//! Acme's rules: berth's default rules with `acme-<name>` names, team and cost-center
//! labels, a NetworkPolicy admitting only the spec's ports, and a PodDisruptionBudget on
//! request.
//!
//! Extensions: the site config's `extensions.acme.cost_centers` maps a team to its cost
//! center; a spec's `extensions.acme.min_available` asks for the PodDisruptionBudget.

use berth_rules::ExtensionsOf as Of;
use berth_rules::serde_json::{self, Map, Value, json};
use berth_rules::site_extensions;
use berth_rules::{FieldError, K8sObject, Labels, Result, Rules, SiteConfig, Spec, Workload};

/// Prefix of every object name, and the key of Acme's extensions.
const SITE: &str = "acme";
/// Team of a component whose spec has no `team` label.
const DEFAULT_TEAM: &str = "platform";
/// Cost center of a team missing from the site's table, so it shows up in reports.
const UNASSIGNED: &str = "cc-unassigned";
/// Acme's rules for one spec under one site config.
struct Acme {
    /// Cost center of each team (site config `extensions.acme.cost_centers`).
    cost_centers: Labels,
    /// `minAvailable` of a PodDisruptionBudget (spec `extensions.acme.min_available`).
    min_available: Option<i32>,
}

impl Acme {
    /// Acme's extensions of `spec` and `site`, validated.
    fn new(spec: &Spec, site: &SiteConfig) -> Result<Self> {
        let mut ours = site_extensions(&spec.extensions, SITE, &["min_available"], Of::Spec)?;
        let min_available = match ours.remove("min_available") {
            None => None,
            Some(n) => Some(n.as_u64().and_then(|n| n.try_into().ok()).ok_or_else(|| {
                let message = format!("{n} is not a non-negative integer (at most {})", i32::MAX);
                FieldError::new("extensions.acme.min_available", message)
            })?),
        };
        let mut ours = site_extensions(&site.extensions, SITE, &["cost_centers"], Of::SiteConfig)?;
        let table = ours.remove("cost_centers").unwrap_or(json!({}));
        let cost_centers = serde_json::from_value(table.clone()).map_err(|_| {
            let message =
                format!("(in the site config) {table} is not a map of team to cost center");
            FieldError::new("extensions.acme.cost_centers", message)
        })?;
        Ok(Self {
            cost_centers,
            min_available,
        })
    }

    /// Acme's own objects: a PodDisruptionBudget when the spec asks for one (`policy/v1`
    /// if `policy_v1()` says the cluster serves it), and a NetworkPolicy admitting the
    /// spec's ports only (none without ports).
    fn objects(&self, w: &Workload, policy_v1: impl FnOnce() -> bool) -> Result<Vec<K8sObject>> {
        let meta = json!({"name": w.deployment_name, "namespace": w.namespace, "labels": w.labels});
        let selector = json!({"matchLabels": w.selector});
        let mut objects = Vec::new();
        if let Some(min_available) = self.min_available {
            objects.push(berth_rules::object(json!({
                "apiVersion": if policy_v1() { "policy/v1" } else { "policy/v1beta1" },
                "kind": "PodDisruptionBudget", "metadata": meta,
                "spec": {"selector": selector, "minAvailable": min_available},
            }))?);
        }
        let ports: Vec<Value> = (w.ports.iter())
            .map(|p| json!({"port": p.container_port, "protocol": p.protocol.as_str()}))
            .collect();
        let ingress = if ports.is_empty() {
            json!([])
        } else {
            json!([{"ports": ports}])
        };
        objects.push(berth_rules::object(json!({
            "apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": meta,
            "spec": {"podSelector": selector, "policyTypes": ["Ingress"], "ingress": ingress},
        }))?);
        Ok(objects)
    }
}

impl Rules for Acme {
    fn deployment_name(&self, component: &str) -> String {
        format!("{SITE}-{component}")
    }

    fn service_name(&self, component: &str) -> String {
        format!("{SITE}-{component}")
    }

    fn exposed_service_name(&self, component: &str) -> String {
        format!("{SITE}-{component}-ext")
    }

    fn extra_labels(&self, spec: &Spec) -> Labels {
        let team = spec.labels.iter().find(|(key, _)| key == "team");
        let team = team.map_or(DEFAULT_TEAM, |(_, value)| value.as_str());
        let cost_center = self
            .cost_centers
            .get(team)
            .map_or(UNASSIGNED, String::as_str);
        Labels::from([
            ("team".into(), team.into()),
            ("cost-center".into(), cost_center.into()),
        ])
    }

    /// Checked by [`Acme::new`] already.
    fn check_extensions(&self, _: &Map<String, Value>, _: &Map<String, Value>) -> Result<()> {
        Ok(())
    }

    fn extra_objects(&self, _: &Spec, _: &SiteConfig, w: &Workload) -> Result<Vec<K8sObject>> {
        self.objects(w, || berth_rules::cluster::serves("policy/v1"))
    }
}

/// Acme's `build`: its extensions validated, the default rules with Acme's.
fn acme_build(spec: &Spec, site: &SiteConfig, namespace: &str) -> Result<Vec<K8sObject>> {
    berth_rules::build(&Acme::new(spec, site)?, spec, site, namespace)
}

berth_rules::export_rules!(build = acme_build);

#[cfg(test)]
mod tests;
