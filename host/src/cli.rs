//! The command line: arguments, and running the command they name.

use std::io::Write;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::error::Error;
use crate::objects::Rendered;
use crate::render::{self, Format};
use crate::runtime::{Options, Rules};
use crate::spec;

/// Deploy and operate service components on Kubernetes, with house rules in a sandboxed
/// WebAssembly component.
#[derive(Debug, Parser)]
#[command(name = "berth", version, about, max_term_width = 100)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// berth's commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print the Kubernetes objects the rules build for a component spec.
    Render(RenderArgs),
}

/// Which spec, site config and rules to build with.
#[derive(Debug, Args)]
pub struct BuildArgs {
    /// Component spec (YAML or JSON).
    #[arg(long, value_name = "FILE")]
    pub spec: PathBuf,
    /// Site config (YAML or JSON): image pull secrets, logging sidecar, TLS init container.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Rules component to use instead of the built-in default rules.
    #[arg(long, value_name = "FILE.wasm")]
    pub rules: Option<PathBuf>,
    /// Namespace of the objects.
    #[arg(short, long, default_value = "default")]
    pub namespace: String,
}

/// Arguments of `berth render`.
#[derive(Debug, Args)]
pub struct RenderArgs {
    #[command(flatten)]
    pub build: BuildArgs,
    /// Output format.
    #[arg(short, long, value_enum, default_value_t)]
    pub output: Format,
}

/// Run the command `cli` names.
pub fn run(cli: Cli) -> Result<(), Error> {
    match cli.command {
        Command::Render(args) => {
            let rendered = build(&args.build)?;
            let text = render::format(std::slice::from_ref(&rendered), args.output)?;
            write_stdout(&text)
        }
    }
}

/// Load the rules and inputs named by `args` and build the component's objects.
pub fn build(args: &BuildArgs) -> Result<Rendered, Error> {
    let spec = spec::load_spec(&args.spec)?;
    let site = match &args.config {
        Some(path) => spec::load_site(path)?,
        None => spec::empty_site(),
    };
    let options = Options::default();
    let mut rules = match &args.rules {
        Some(path) => Rules::from_file(path, &options)?,
        None => Rules::default_rules(&options)?,
    };
    render::render(&mut rules, &args.spec, &spec, &site, &args.namespace)
}

fn write_stdout(text: &str) -> Result<(), Error> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        // A reader that stopped early (`| head`) is not an error.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other.map_err(Error::Write),
    }
}
