//! Acme's rules: berth's default rules, with `acme-<name>` names and team/cost-center labels.

use berth_rules::{Labels, Rules, Spec};

/// Prefix of every object name.
const SITE: &str = "acme";
/// Team of a component whose spec has no `team` label.
const DEFAULT_TEAM: &str = "platform";
/// Cost center of each team.
const COST_CENTERS: &[(&str, &str)] = &[("platform", "cc-1001"), ("payments", "cc-2040")];
/// Cost center of a team missing from the table, so it shows up in reports.
const UNASSIGNED: &str = "cc-unassigned";

/// Acme's naming and labels; everything else is berth's default rules.
struct AcmeRules;

impl Rules for AcmeRules {
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
        let cost_center = COST_CENTERS.iter().find(|(t, _)| *t == team);
        let cost_center = cost_center.map_or(UNASSIGNED, |(_, cc)| *cc);
        Labels::from([
            ("team".into(), team.into()),
            ("cost-center".into(), cost_center.into()),
        ])
    }
}

berth_rules::export_rules!(AcmeRules);
