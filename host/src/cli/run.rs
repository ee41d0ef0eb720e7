//! Running the command the arguments name, through the berth library.

use std::io::{IsTerminal, Write};
use std::time::Duration;

use berth::cluster::{Cluster, ClusterError, Connection, ExecLine, Scope};
use berth::render::Secrets;
use berth::runtime::{Options, Rules};
use berth::{Capabilities, Rendered, SiteConfig, spec};

use super::args::{BuildArgs, Cli, Command, DryRun, Output, RenderFormat, WaitArgs};
use super::error::CliError;
use super::exit_codes::ExitStatus;
use super::report;

/// Run the command `cli` names.
pub fn run(cli: Cli) -> Result<ExitStatus, CliError> {
    let connection = Connection {
        kubeconfig: cli.kubeconfig,
        context: cli.context,
        namespace: cli.namespace,
    };
    match cli.command {
        // Rendering needs no cluster and no async runtime.
        Command::Render {
            build,
            target,
            output,
            show_secrets,
        } => render_command(
            &build,
            &target.capabilities(),
            (output, show_secrets),
            connection.namespace.as_deref().unwrap_or("default"),
        ),
        command => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(CliError::Runtime)?
            .block_on(operate(&connection, command)),
    }
}

fn render_command(
    build: &BuildArgs,
    capabilities: &Capabilities,
    (output, show_secrets): (RenderFormat, bool),
    namespace: &str,
) -> Result<ExitStatus, CliError> {
    let specs = spec::load_specs(&build.spec)?;
    let (site, mut rules) = site_and_rules(build)?;
    let rendered = rules.render_all(&specs, &site, capabilities, namespace)?;
    let secrets = if show_secrets {
        Secrets::Show
    } else {
        Secrets::Mask
    };
    write_stdout(&berth::render::format(&rendered, output.into(), secrets)?)?;
    Ok(ExitStatus::Success)
}

/// The one spec, the site config and the rules `args` name: everything a deploy needs
/// before it asks the cluster anything.
struct OneBuild {
    origin: spec::Origin,
    spec: berth::Spec,
    site: SiteConfig,
    rules: Rules,
}

impl OneBuild {
    fn load(args: &BuildArgs) -> Result<Self, CliError> {
        let specs = spec::load_specs(&args.spec)?;
        let [(origin, spec)] = <[_; 1]>::try_from(specs).map_err(|specs| CliError::NotOne {
            path: args.spec.clone(),
            count: specs.len(),
            command: "deploy",
        })?;
        let (site, rules) = site_and_rules(args)?;
        Ok(Self {
            origin,
            spec,
            site,
            rules,
        })
    }

    fn render(self, capabilities: &Capabilities, namespace: &str) -> Result<Rendered, CliError> {
        let Self {
            origin,
            spec,
            site,
            mut rules,
        } = self;
        Ok(rules.render_from(&origin, &spec, &site, capabilities, namespace)?)
    }
}

/// The site config and the rules component `args` name.
fn site_and_rules(args: &BuildArgs) -> Result<(SiteConfig, Rules), CliError> {
    let mut site = match &args.config {
        Some(path) => spec::load_site(path)?,
        None => SiteConfig::default(),
    };
    site.allowed_kinds.extend(args.allow_kind.iter().cloned());
    let options = Options::default()
        .deadline(args.rules_deadline)
        .memory(args.rules_memory);
    let rules = match &args.rules {
        Some(path) => Rules::from_file(path, &options)?,
        None => Rules::default_rules(&options)?,
    };
    Ok((site, rules))
}

async fn operate(connection: &Connection, command: Command) -> Result<ExitStatus, CliError> {
    let cluster = Cluster::connect(connection).await?;
    match command {
        Command::Render {
            build,
            target,
            output,
            show_secrets,
        } => render_command(
            &build,
            &target.capabilities(),
            (output, show_secrets),
            cluster.namespace(),
        ),
        Command::Deploy {
            build,
            dry_run,
            wait,
            output,
        } => {
            // Parse and render before touching the cluster: bad input changes nothing.
            let one = OneBuild::load(&build)?;
            // What the cluster serves, for rules that build per version (policy/v1 or v1beta1).
            let capabilities = cluster.capabilities().await?;
            let rendered = one.render(&capabilities, cluster.namespace())?;
            let component = rendered.component.clone();
            let target = match dry_run {
                Some(DryRun::Server) => cluster.dry_run(),
                None => cluster.clone(),
            };
            let deployed = target.deploy(&component, rendered).await?;
            write_stdout(&report::deploy(&deployed, output))?;
            let failed = match settle(&cluster, &component, &wait).await {
                Err(CliError::NotRolledOut(error)) if !wait.keep_on_failure => error,
                other => return other,
            };
            let undone = cluster.undo(&deployed, wait.undo_timeout).await;
            report::undone(&undone);
            Err(CliError::NotRolledOut(failed))
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
            Ok(ExitStatus::Success)
        }
        Command::Status { name, output } => {
            let status = cluster.status(&name).await?;
            write_stdout(&report::status(&status, output))?;
            Ok(if status.is_available {
                ExitStatus::Success
            } else {
                ExitStatus::NotAvailable
            })
        }
        Command::Wait { name, timeout } => {
            let args = WaitArgs {
                wait: true,
                timeout,
                keep_on_failure: true,
                undo_timeout: Duration::ZERO,
            };
            settle(&cluster, &name, &args).await
        }
        Command::Scale {
            name,
            replicas,
            wait,
        } => {
            let previous = cluster.scale(&name, i32::from(replicas)).await?;
            write_stdout(&format!("scaled {name} to {replicas} replicas\n"))?;
            let failed = match settle(&cluster, &name, &wait).await {
                Err(CliError::NotRolledOut(error)) if !wait.keep_on_failure => error,
                other => return other,
            };
            let back = tokio::time::timeout(wait.undo_timeout, cluster.scale(&name, previous));
            match back.await {
                Ok(Ok(_)) => eprintln!("undone: scaled {name} back to {previous} replicas"),
                Ok(Err(e)) => eprintln!("could not scale {name} back to {previous}: {e}"),
                Err(_) => eprintln!(
                    "could not scale {name} back to {previous}: undo timed out after {:?}",
                    wait.undo_timeout
                ),
            }
            Err(CliError::NotRolledOut(failed))
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
            let failed = match settle(&cluster, &name, &wait).await {
                Err(CliError::NotRolledOut(error)) if !wait.keep_on_failure => error,
                other => return other,
            };
            let back = cluster.upgrade(&name, &old, container_index);
            match tokio::time::timeout(wait.undo_timeout, back).await {
                Ok(Ok(_)) => eprintln!(
                    "undone: container {container_index} of {name} back to {old} (a new revision in its history)"
                ),
                Ok(Err(e)) => eprintln!("could not put {old} back in {name}: {e}"),
                Err(_) => eprintln!(
                    "could not put {old} back in {name}: undo timed out after {:?}",
                    wait.undo_timeout
                ),
            }
            Err(CliError::NotRolledOut(failed))
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
        Command::List {
            all_namespaces,
            selector,
            output,
        } => {
            let scope = if all_namespaces {
                Scope::AllNamespaces
            } else {
                Scope::Namespace
            };
            let components = cluster.list(scope, selector.as_deref()).await?;
            write_stdout(&report::list(&components, output))?;
            Ok(ExitStatus::Success)
        }
        Command::History { name, output } => {
            let revisions = cluster.history(&name).await?;
            write_stdout(&report::history(&revisions, output))?;
            Ok(ExitStatus::Success)
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
            Ok(if outcomes.iter().all(|o| o.succeeded()) {
                ExitStatus::Success
            } else {
                ExitStatus::ExecFailed
            })
        }
    }
}

/// With `--wait`, wait for the rollout, showing progress: one live line on a terminal,
/// a line per change otherwise.
async fn settle(
    cluster: &Cluster,
    component: &str,
    args: &WaitArgs,
) -> Result<ExitStatus, CliError> {
    if !args.wait {
        return Ok(ExitStatus::Success);
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
    match status {
        Ok(status) => {
            write_stdout(&format!("{}\n", status.rollout.message()))?;
            Ok(ExitStatus::Success)
        }
        // The rollout did not finish: its own exit code, so scripts can tell it from an error.
        Err(
            error @ (ClusterError::Timeout { .. }
            | ClusterError::RolloutFailed { .. }
            | ClusterError::Deleted { .. }),
        ) => Err(CliError::NotRolledOut(error)),
        Err(error) => Err(error.into()),
    }
}

fn write_stdout(text: &str) -> Result<(), CliError> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        // A reader that stopped early (`| head`) is not an error.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other.map_err(CliError::Write),
    }
}
