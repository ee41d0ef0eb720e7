//! The command line: arguments, and running the command they name.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::cluster::{Cluster, Connection, ExecLine};
use crate::error::Error;
use crate::objects::Rendered;
use crate::render::{self, Format};
use crate::report;
use crate::runtime::{Limits, Options, Rules, wit};
use crate::spec;

/// Deploy and operate service components on Kubernetes, with house rules in a sandboxed
/// WebAssembly component.
#[derive(Debug, Parser)]
#[command(name = "berth", version, about, max_term_width = 100)]
pub struct Cli {
    /// Kubeconfig file (default: $KUBECONFIG, ~/.kube/config, in-cluster).
    #[arg(long, global = true, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,
    /// Kubeconfig context (default: the current context).
    #[arg(long, global = true)]
    pub context: Option<String>,
    /// Namespace (default: the context's namespace, else `default`).
    #[arg(short, long, global = true)]
    pub namespace: Option<String>,
    #[command(subcommand)]
    pub command: Command,
}

/// berth's commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print the Kubernetes objects the rules build for a component spec.
    Render {
        #[command(flatten)]
        build: BuildArgs,
        /// Output format.
        #[arg(short, long, value_enum, default_value_t)]
        output: Format,
    },
    /// Build a component's objects and create them (or apply changes) on the cluster.
    Deploy {
        #[command(flatten)]
        build: BuildArgs,
        #[command(flatten)]
        wait: WaitArgs,
        #[arg(short, long, value_enum, default_value_t)]
        output: Output,
    },
    /// Delete a component's Services and Deployment.
    Undeploy {
        /// Component name.
        name: String,
        /// Wait until the Deployment and its pods are gone.
        #[arg(long)]
        wait: bool,
        /// How long --wait may take (90s, 2m, 1h or seconds).
        #[arg(long, value_parser = parse_duration, default_value = "1800")]
        timeout: Duration,
    },
    /// Show replicas, images and revision; exit 0 only when available.
    Status {
        /// Component name.
        name: String,
        #[arg(short, long, value_enum, default_value_t)]
        output: Output,
    },
    /// Wait until a component is rolled out, as `kubectl rollout status` does.
    Wait {
        /// Component name.
        name: String,
        /// How long to wait (90s, 2m, 1h or seconds).
        #[arg(long, value_parser = parse_duration, default_value = "1800")]
        timeout: Duration,
    },
    /// Set the number of pods.
    Scale {
        /// Component name.
        name: String,
        /// Number of pods.
        replicas: u16,
        #[command(flatten)]
        wait: WaitArgs,
    },
    /// Change a container's image; a rolling update follows.
    Upgrade {
        /// Component name.
        name: String,
        /// New image.
        image: String,
        /// Container to change (0: the main container).
        #[arg(long, default_value_t = 0)]
        container_index: usize,
        #[command(flatten)]
        wait: WaitArgs,
    },
    /// Go back to an earlier revision (default: the previous one).
    Rollback {
        /// Component name.
        name: String,
        /// Revision to go back to (see `berth history`).
        #[arg(long)]
        to_revision: Option<u32>,
        #[command(flatten)]
        wait: WaitArgs,
    },
    /// List a component's revisions and their images.
    History {
        /// Component name.
        name: String,
        #[arg(short, long, value_enum, default_value_t)]
        output: Output,
    },
    /// Run a command in the main container of every running pod, in parallel.
    Exec {
        /// Component name.
        name: String,
        /// Pods to run in at once.
        #[arg(long, default_value_t = 32)]
        max_concurrency: usize,
        #[arg(short, long, value_enum, default_value_t)]
        output: Output,
        /// The command and its arguments.
        #[arg(last = true, required = true)]
        command: Vec<String>,
    },
}

/// Which spec, site config and rules to build with.
#[derive(Debug, Args)]
pub struct BuildArgs {
    /// Component spec (YAML or JSON). `render` also takes a file of several YAML documents
    /// or a directory of spec files (*.yaml, *.yml, *.json).
    #[arg(long, value_name = "FILE")]
    pub spec: PathBuf,
    /// Site config (YAML or JSON): image pull secrets, logging sidecar, TLS init container.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Rules component to use instead of the built-in default rules.
    #[arg(long, value_name = "FILE.wasm")]
    pub rules: Option<PathBuf>,
    /// Wall time the rules may take for one component: 500ms, 2s, 1m (10ms to 10m).
    #[arg(long, value_name = "DURATION", default_value = "1s", value_parser = crate::runtime::parse_deadline)]
    pub rules_deadline: Duration,
    /// Memory the rules may use: 64Mi, 1Gi, or bytes (1Mi to 4Gi).
    #[arg(long, value_name = "SIZE", default_value = "64Mi", value_parser = crate::runtime::parse_memory)]
    pub rules_memory: usize,
}

/// Waiting after a change.
#[derive(Debug, Args)]
pub struct WaitArgs {
    /// Wait until the rollout is complete.
    #[arg(long)]
    pub wait: bool,
    /// How long --wait may take (90s, 2m, 1h or seconds).
    #[arg(long, value_parser = parse_duration, default_value = "1800")]
    pub timeout: Duration,
}

/// Output of cluster commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum Output {
    /// For people.
    #[default]
    Text,
    /// For programs.
    Json,
}

/// Parse `90s`, `2m`, `1h` or plain seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let (digits, factor) = match text.strip_suffix(['s', 'm', 'h']) {
        Some(d) if text.ends_with('m') => (d, 60),
        Some(d) if text.ends_with('h') => (d, 3600),
        Some(d) => (d, 1),
        None => (text, 1),
    };
    digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(factor))
        .map(Duration::from_secs)
        .ok_or_else(|| format!("{text:?} is not a duration (90s, 2m, 1h or seconds)"))
}

/// Run the command `cli` names; the exit code tells success (0) from failure (1).
pub fn run(cli: Cli) -> Result<bool, Error> {
    let connection = Connection {
        kubeconfig: cli.kubeconfig,
        context: cli.context,
        namespace: cli.namespace,
    };
    match cli.command {
        // Rendering needs no cluster and no async runtime.
        Command::Render { build, output } => render_command(
            &build,
            output,
            connection.namespace.as_deref().unwrap_or("default"),
        ),
        command => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(Error::Runtime)?
            .block_on(operate(&connection, command)),
    }
}

fn render_command(build: &BuildArgs, output: Format, namespace: &str) -> Result<bool, Error> {
    let specs = spec::load_specs(&build.spec)?;
    let (site, mut rules) = site_and_rules(build)?;
    let rendered = render::render_all(&mut rules, &specs, &site, namespace)?;
    write_stdout(&render::format(&rendered, output)?)?;
    Ok(true)
}

/// Load the rules and inputs named by `args` and build the one component's objects;
/// returns the component name with them.
pub fn build_objects(args: &BuildArgs, namespace: &str) -> Result<(String, Rendered), Error> {
    let specs = spec::load_specs(&args.spec)?;
    let [(origin, spec)] = <[_; 1]>::try_from(specs).map_err(|specs| Error::NotOne {
        path: args.spec.clone(),
        count: specs.len(),
        command: "deploy",
    })?;
    let (site, mut rules) = site_and_rules(args)?;
    let rendered = render::render(&mut rules, &origin, &spec, &site, namespace)?;
    Ok((spec.component_name, rendered))
}

/// The site config and the rules component `args` name.
fn site_and_rules(args: &BuildArgs) -> Result<(wit::SiteConfig, Rules), Error> {
    let site = match &args.config {
        Some(path) => spec::load_site(path)?,
        None => spec::empty_site(),
    };
    let options = Options {
        limits: Limits {
            deadline: args.rules_deadline,
            memory: args.rules_memory,
            ..Limits::default()
        },
        ..Options::default()
    };
    let rules = match &args.rules {
        Some(path) => Rules::from_file(path, &options)?,
        None => Rules::default_rules(&options)?,
    };
    Ok((site, rules))
}

async fn operate(connection: &Connection, command: Command) -> Result<bool, Error> {
    let cluster = Cluster::connect(connection).await?;
    match command {
        Command::Render { build, output } => render_command(&build, output, cluster.namespace()),
        Command::Deploy {
            build,
            wait,
            output,
        } => {
            // Parse and render before touching the cluster: bad input changes nothing.
            let (component, rendered) = build_objects(&build, cluster.namespace())?;
            let deployed = cluster.deploy(&component, rendered).await?;
            write_stdout(&report::deploy(&deployed, output))?;
            settle(&cluster, &component, &wait).await
        }
        Command::Undeploy {
            name,
            wait,
            timeout,
        } => {
            let removed = cluster.undeploy(&name).await?;
            write_stdout(&report::undeploy(&removed))?;
            if wait {
                cluster.wait_gone(&name, &removed, timeout).await?;
                write_stdout("gone\n")?;
            }
            Ok(true)
        }
        Command::Status { name, output } => {
            let status = cluster.status(&name).await?;
            write_stdout(&report::status(&status, output))?;
            Ok(status.is_available)
        }
        Command::Wait { name, timeout } => {
            let args = WaitArgs {
                wait: true,
                timeout,
            };
            settle(&cluster, &name, &args).await
        }
        Command::Scale {
            name,
            replicas,
            wait,
        } => {
            cluster.scale(&name, i32::from(replicas)).await?;
            write_stdout(&format!("scaled {name} to {replicas} replicas\n"))?;
            settle(&cluster, &name, &wait).await
        }
        Command::Upgrade {
            name,
            image,
            container_index,
            wait,
        } => {
            let old = cluster.upgrade(&name, &image, container_index).await?;
            write_stdout(&format!(
                "upgraded {name} container {container_index}: {old} -> {image}\n"
            ))?;
            settle(&cluster, &name, &wait).await
        }
        Command::Rollback {
            name,
            to_revision,
            wait,
        } => {
            let restored = cluster
                .rollback(&name, i64::from(to_revision.unwrap_or(0)))
                .await?;
            write_stdout(&format!(
                "rolled back {name} to revision {} ({})\n",
                restored.revision,
                restored.images.join(", ")
            ))?;
            settle(&cluster, &name, &wait).await
        }
        Command::History { name, output } => {
            let revisions = cluster.history(&name).await?;
            write_stdout(&report::history(&revisions, output))?;
            Ok(true)
        }
        Command::Exec {
            name,
            max_concurrency,
            output,
            command,
        } => {
            let stream_lines = output == Output::Text;
            let print = |line: ExecLine<'_>| {
                if stream_lines {
                    report::exec_line(line);
                }
            };
            let outcomes = cluster
                .exec(&name, &command, max_concurrency, &print)
                .await?;
            write_stdout(&report::exec_summary(&outcomes, output))?;
            Ok(outcomes.iter().all(|o| o.succeeded()))
        }
    }
}

/// With `--wait`, wait for the rollout, showing progress: one live line on a terminal,
/// a line per change otherwise.
async fn settle(cluster: &Cluster, component: &str, args: &WaitArgs) -> Result<bool, Error> {
    if !args.wait {
        return Ok(true);
    }
    let live = std::io::stderr().is_terminal();
    let mut shown = String::new();
    let status = cluster
        .wait(component, args.timeout, |s| {
            let line = report::progress_line(s);
            if line != shown {
                report::show_progress(&line, live);
                shown = line;
            }
        })
        .await;
    if live {
        eprintln!();
    }
    let status = status?;
    write_stdout(&format!("{}\n", status.rollout.message()))?;
    Ok(true)
}

fn write_stdout(text: &str) -> Result<(), Error> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        // A reader that stopped early (`| head`) is not an error.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other.map_err(Error::Write),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("45"), Ok(Duration::from_secs(45)));
        for bad in ["", "s", "1.5m", "-3", "2d", "1 m"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }
}
