//! The site config and the rules component the arguments name, loaded (pulled from a
//! registry if need be): what render, deploy, diff and the controller build with.

use berth::{Rules, RulesOptions, SiteConfig};

use super::args::RulesArgs;
use super::error::CliError;
use super::rules_command;

/// The site config and the rules component `args` name, pulled if in a registry.
pub async fn site_and_rules(args: &RulesArgs) -> Result<(SiteConfig, Rules), CliError> {
    let site = site(args)?;
    let rules = match &args.rules {
        Some(location) => rules_command::load(location, &rules_options(args)).await?,
        None => Rules::default_rules(&rules_options(args))?,
    };
    Ok((site, rules))
}

/// The site config `args` name, with the kinds they allow besides.
pub fn site(args: &RulesArgs) -> Result<SiteConfig, CliError> {
    let mut site = match &args.config {
        Some(path) => berth::load_site(path)?,
        None => SiteConfig::default(),
    };
    site.allowed_kinds.extend(args.allow_kind.iter().cloned());
    Ok(site)
}

/// The rules' limits `args` set.
pub fn rules_options(args: &RulesArgs) -> RulesOptions {
    RulesOptions::default()
        .deadline(args.rules_deadline)
        .memory(args.rules_memory)
}
