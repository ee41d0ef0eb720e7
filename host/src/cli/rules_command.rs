//! `berth rules push|inspect|compile`, and loading `--rules` from a file or a registry.

use std::time::Instant;

use berth::Registry;
use berth::{Rules, RulesOptions};

use super::args::{Output, RulesCommand, RulesLocation};
use super::error::CliError;
use super::exit_codes::ExitStatus;
use super::report;

/// The rules at `location`, pulled first if they are in a registry (from the cache when
/// pinned by a digest already pulled).
pub async fn load(location: &RulesLocation, options: &RulesOptions) -> Result<Rules, CliError> {
    match location {
        RulesLocation::File(path) => Ok(Rules::from_file(path, options)?),
        RulesLocation::Oci(reference) => {
            let registry = Registry::new(berth::RegistryOptions::default())?;
            let pulled = registry.pull(reference).await?;
            Ok(Rules::from_pulled(&pulled, options)?)
        }
    }
}

/// Run a `berth rules` command.
pub async fn run(command: RulesCommand) -> Result<ExitStatus, CliError> {
    match command {
        RulesCommand::Push { file, reference } => {
            // Only a component berth can run is published: load it as `--rules` would.
            let rules = Rules::from_file(&file, &RulesOptions::default())?;
            let bytes = std::fs::read(&file).map_err(|source| berth::RulesError::Read {
                path: file.clone(),
                source,
            })?;
            let registry = Registry::new(berth::RegistryOptions::default())?;
            let pushed = registry
                .push(&reference, &bytes, rules.interfaces())
                .await?;
            report::write_stdout(&format!("{}\n", pushed.reference))?;
        }
        RulesCommand::Inspect { rules, output } => {
            let rules = load(&rules, &RulesOptions::default()).await?;
            report::write_stdout(&inspect(&rules, output))?;
        }
        RulesCommand::Compile { rules: location } => {
            let start = Instant::now();
            let rules = load(&location, &RulesOptions::default()).await?;
            let line = if rules.from_cache() {
                format!("{} is compiled already\n", rules.source())
            } else {
                let seconds = start.elapsed().as_secs_f64();
                format!("compiled {} in {seconds:.1} s\n", rules.source())
            };
            report::write_stdout(&line)?;
        }
    }
    Ok(ExitStatus::Success)
}

/// What `berth rules inspect` prints.
fn inspect(rules: &Rules, output: Output) -> String {
    let info = rules.interfaces();
    let world = rules.world();
    let digest = format!("sha256:{}", rules.digest());
    match output {
        Output::Json => {
            let value = serde_json::json!({
                "source": rules.source().to_string(),
                "world": world,
                "contractVersion": rules.contract_version(),
                "componentDigest": digest,
                "size": rules.size(),
                "imports": info.imports,
                "exports": info.exports,
            });
            format!("{value:#}\n")
        }
        Output::Text => format!(
            "source:    {}\nworld:     {world}\ncontract:  {}\ndigest:    {digest}\nsize:      {} bytes\nimports:   {}\nexports:   {}\n",
            rules.source(),
            rules.contract_version(),
            rules.size(),
            info.imports.join(", "),
            info.exports.join(", "),
        ),
    }
}
