//! Running the command the arguments name, through the berth library.

use std::io::IsTerminal;
use std::time::Duration;

use berth::Rules;
use berth::Secrets;
use berth::{Capabilities, SiteConfig};
use berth::{Change, Cluster, ClusterError, Connection, ExecLine, Scope, Status, UndoReport};

use super::args::{
    BuildArgs, Cli, ClusterCommand, Command, ControllerCommand, DryRun, Output, RenderFormat,
    RulesLocation, WaitArgs,
};
use super::controller;
use super::error::CliError;
use super::exit_codes::ExitStatus;
use super::fleet;
use super::report;
use super::rules_command;
use super::setup::{rules_options, site, site_and_rules};

/// Run the command `cli` names.
pub fn run(cli: Cli) -> Result<ExitStatus, CliError> {
    // Only the controller watches several namespaces; any other command works in one.
    let namespaces = cli.namespace;
    if namespaces.len() > 1 && !matches!(cli.command, Command::Controller { .. }) {
        return Err(CliError::Namespaces(namespaces));
    }
    let connection = Connection {
        kubeconfig: cli.kubeconfig,
        context: cli.context,
        namespace: namespaces.first().cloned(),
    };
    match cli.command {
        // Rendering needs no cluster and no async runtime.
        Command::Render {
            build,
            target,
            output,
            show_secrets,
        } => {
            // Rendering needs an async runtime only to pull rules from a registry.
            let (site, rules) = match &build.with.rules {
                Some(RulesLocation::Oci(_)) => runtime()?.block_on(site_and_rules(&build.with))?,
                Some(RulesLocation::File(path)) => (
                    site(&build.with)?,
                    Rules::from_file(path, &rules_options(&build.with))?,
                ),
                None => (
                    site(&build.with)?,
                    Rules::default_rules(&rules_options(&build.with))?,
                ),
            };
            render_command(
                &build,
                (site, rules),
                &target.capabilities(),
                (output, show_secrets),
                connection.namespace.as_deref().unwrap_or("default"),
            )
        }
        Command::Rules(command) => runtime()?.block_on(rules_command::run(command)),
        Command::Controller {
            command: Some(ControllerCommand::Crd),
            ..
        } => {
            let crd = serde_json::to_string_pretty(&berth::crd()).unwrap_or_default();
            report::write_stdout(&format!("{crd}\n"))?;
            Ok(ExitStatus::Success)
        }
        Command::Controller {
            command: Some(ControllerCommand::Rbac),
            ..
        } => {
            let rbac = serde_json::to_string_pretty(&berth::rbac(&namespaces)).unwrap_or_default();
            report::write_stdout(&format!("{rbac}\n"))?;
            Ok(ExitStatus::Success)
        }
        Command::Controller {
            command:
                Some(ControllerCommand::Manifests {
                    image,
                    replicas,
                    rules,
                    config,
                }),
            ..
        } => {
            let mut install = berth::Install::new(image)
                .replicas(replicas)
                .namespaces(namespaces);
            match rules {
                Some(RulesLocation::Oci(reference)) if reference.digest.is_some() => {
                    install = install.rules(reference.to_string());
                }
                Some(RulesLocation::Oci(reference)) => {
                    return Err(CliError::UnpinnedRules(reference.to_string()));
                }
                Some(RulesLocation::File(path)) => return Err(CliError::NotInImage(path)),
                None => {}
            }
            if let Some(path) = config {
                // Checked as the controller will read it.
                berth::load_site(&path)?;
                let text = std::fs::read_to_string(&path)
                    .map_err(|source| berth::InputError::Read { path, source })?;
                install = install.site_config(text);
            }
            let list = serde_json::to_string_pretty(&install.manifests()).unwrap_or_default();
            report::write_stdout(&format!("{list}\n"))?;
            Ok(ExitStatus::Success)
        }
        Command::Controller {
            command: Some(ControllerCommand::PushImage { layout, reference }),
            ..
        } => runtime()?.block_on(async {
            let registry = berth::Registry::new(berth::RegistryOptions::default())?;
            let pushed = registry.push_image(&reference, &layout).await?;
            report::write_stdout(&format!("{pushed}\n"))?;
            Ok(ExitStatus::Success)
        }),
        Command::Controller {
            command: None,
            with,
            election,
            http,
            log_format,
        } => controller_runtime()?.block_on(controller::run(
            &connection,
            namespaces,
            &with,
            &election,
            (http, log_format),
        )),
        Command::Cluster(command) => {
            // diff's errors, whichever step fails, are above 1: 1 means "changes".
            let is_diff = matches!(command, ClusterCommand::Diff { .. });
            let outcome = runtime().and_then(|rt| rt.block_on(operate(&connection, command)));
            match outcome {
                Err(error) if is_diff && !matches!(error, CliError::Diff(_)) => {
                    Err(CliError::Diff(Box::new(error)))
                }
                other => other,
            }
        }
    }
}

/// The async runtime of one command: one thread is enough for berth's I/O.
/// The controller's runtime: the Lease's renewals on a thread of their own, beside the
/// reconciles (a build of the rules holds its thread while it runs).
fn controller_runtime() -> Result<tokio::runtime::Runtime, CliError> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(CliError::Runtime)
}

fn runtime() -> Result<tokio::runtime::Runtime, CliError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(CliError::Runtime)
}

fn render_command(
    build: &BuildArgs,
    (site, rules): (SiteConfig, Rules),
    capabilities: &Capabilities,
    (output, show_secrets): (RenderFormat, bool),
    namespace: &str,
) -> Result<ExitStatus, CliError> {
    let specs = berth::load_specs(&build.spec)?;
    let rendered = rules.render_all(&specs, &site, capabilities, namespace)?;
    let secrets = if show_secrets {
        Secrets::Show
    } else {
        Secrets::Mask
    };
    report::write_stdout(&berth::format_rendered(&rendered, output.into(), secrets)?)?;
    Ok(ExitStatus::Success)
}

async fn operate(connection: &Connection, command: ClusterCommand) -> Result<ExitStatus, CliError> {
    let cluster = Cluster::connect(connection).await?;
    match command {
        ClusterCommand::Deploy {
            build,
            dry_run,
            wait,
            max_concurrency,
            output,
        } => deploy(&cluster, build, dry_run, wait, max_concurrency, output).await,
        ClusterCommand::Diff {
            build,
            max_concurrency,
            show_secrets,
            output,
        } => diff_command(&cluster, &build, max_concurrency, show_secrets, output)
            .await
            .map_err(|e| CliError::Diff(Box::new(e))),
        ClusterCommand::Undeploy {
            names,
            max_concurrency,
            wait,
            timeout,
        } => undeploy(&cluster, names, max_concurrency, wait, timeout).await,
        ClusterCommand::Status { names, output } => status(&cluster, names, output).await,
        ClusterCommand::Wait { name, timeout } => wait(&cluster, name, timeout).await,
        ClusterCommand::Scale {
            name,
            replicas,
            wait,
        } => scale(&cluster, name, replicas, wait).await,
        ClusterCommand::Upgrade {
            name,
            image,
            container_index,
            wait,
        } => upgrade(&cluster, name, image, container_index, wait).await,
        ClusterCommand::Rollback {
            name,
            to_revision,
            wait,
        } => rollback(&cluster, name, to_revision, wait).await,
        ClusterCommand::List {
            all_namespaces,
            selector,
            output,
        } => list(&cluster, all_namespaces, selector, output).await,
        ClusterCommand::History { name, output } => history(&cluster, name, output).await,
        ClusterCommand::Exec {
            name,
            max_concurrency,
            output,
            command,
        } => exec(&cluster, name, max_concurrency, output, command).await,
    }
}

/// `deploy`: one spec reported on its own, several as a fleet; a failed rollout undone.
async fn deploy(
    cluster: &Cluster,
    build: BuildArgs,
    dry_run: Option<DryRun>,
    wait: WaitArgs,
    max_concurrency: usize,
    output: Output,
) -> Result<ExitStatus, CliError> {
    // Parse and render before changing anything: bad input changes nothing.
    let specs = berth::load_specs(&build.spec)?;
    let (site, rules) = site_and_rules(&build.with).await?;
    // What the cluster serves, for rules that build per version (policy/v1 or v1beta1).
    let capabilities = cluster.capabilities().await?;
    let target = match dry_run {
        Some(DryRun::Server) => cluster.dry_run(),
        None => cluster.clone(),
    };
    if specs.len() != 1 {
        // Several components: each on its own, one's failure stopping no other.
        let namespace = cluster.namespace();
        let rendered = fleet::render_each(&rules, &specs, &site, &capabilities, namespace);
        return Ok(fleet::deploy(&target, rendered, &wait, max_concurrency, output).await);
    }
    let (origin, spec) = &specs[0];
    let rendered = rules.render_from(origin, spec, &site, &capabilities, cluster.namespace())?;
    let component = rendered.component.clone();
    let live = std::io::stderr().is_terminal();
    let mut shown = String::new();
    let mut written = Ok(());
    let deployed = fleet::deploy_one(
        &target,
        &component,
        rendered,
        &wait,
        |done| written = report::write_stdout(&report::deploy(done, output)),
        |status| show(status, &mut shown, live),
    )
    .await?;
    written?;
    if live && wait.wait {
        eprintln!();
    }
    rolled_out(deployed.rollout, deployed.undone.as_ref())
}

/// A progress line for `status`, when it says something new.
fn show(status: &Status, shown: &mut String, live: bool) {
    let line = report::progress_line(status);
    if line != *shown {
        report::show_progress(&line, live);
        *shown = line;
    }
}

/// How a command that waited (or did not) for a rollout ends: the rollout's message, or
/// what was put back after it failed and its own exit code, so scripts can tell it from
/// an error.
fn rolled_out(
    rollout: Option<Result<Status, ClusterError>>,
    undone: Option<&UndoReport>,
) -> Result<ExitStatus, CliError> {
    match rollout {
        None => Ok(ExitStatus::Success),
        Some(Ok(status)) => {
            report::write_stdout(&format!("{}\n", status.rollout.message()))?;
            Ok(ExitStatus::Success)
        }
        Some(Err(error)) if fleet::rollout_failed(&error) => {
            if let Some(undone) = undone {
                report::undone(undone);
            }
            Err(CliError::NotRolledOut(error))
        }
        Some(Err(error)) => Err(error.into()),
    }
}

/// `undeploy`: one component, or several at once each on its own.
async fn undeploy(
    cluster: &Cluster,
    names: Vec<String>,
    max_concurrency: usize,
    wait: bool,
    timeout: Duration,
) -> Result<ExitStatus, CliError> {
    let undeploy = |name: &str| {
        let name = name.to_owned();
        async move {
            if wait {
                cluster.undeploy_and_wait(&name, timeout).await
            } else {
                cluster.undeploy(&name).await
            }
        }
    };
    if let [name] = names.as_slice() {
        let removed = match undeploy(name).await {
            // A wait that timed out: exit 3, as every --wait's.
            Err(error @ ClusterError::Timeout { .. }) => {
                return Err(CliError::NotRolledOut(error));
            }
            other => other?,
        };
        report::write_stdout(&report::undeploy(&removed))?;
        if wait {
            report::write_stdout("gone\n")?;
        }
        return Ok(ExitStatus::Success);
    }
    let jobs = names.iter().map(|name| {
        let job = undeploy(name);
        (name.clone(), async move { (name, job.await) })
    });
    let outcomes = fleet::run_all(jobs, max_concurrency, "undeploying", |(name, r)| match r {
        Ok(removed) => {
            let _ = report::write_stdout(&report::undeploy(removed));
        }
        Err(e) => eprintln!("berth: {name}: {}", crate::one_line(e)),
    })
    .await;
    Ok(fleet::worst(outcomes.iter().map(|(_, r)| match r {
        Ok(_) => ExitStatus::Success,
        Err(ClusterError::Timeout { .. }) => ExitStatus::NotAvailable,
        Err(_) => ExitStatus::Error,
    })))
}

/// `status`: each component's replicas; one component's error leaves the others shown.
async fn status(
    cluster: &Cluster,
    names: Vec<String>,
    output: Output,
) -> Result<ExitStatus, CliError> {
    let mut statuses = Vec::new();
    let mut failed = false;
    for name in &names {
        match cluster.status(name).await {
            Ok(status) => {
                if output == Output::Text {
                    report::write_stdout(&report::status(&status, output))?;
                }
                statuses.push(status);
            }
            // One component's error is that component's: the others still show.
            Err(e) if names.len() > 1 => {
                failed = true;
                eprintln!("berth: {name}: {}", crate::one_line(&e));
            }
            Err(e) => return Err(e.into()),
        }
    }
    if output == Output::Json {
        match statuses.as_slice() {
            [one] if names.len() == 1 => {
                report::write_stdout(&report::status(one, output))?;
            }
            all => report::write_stdout(&(report::json(&all) + "\n"))?,
        }
    }
    Ok(if failed {
        ExitStatus::Error
    } else if statuses.iter().all(|s| s.is_available) {
        ExitStatus::Success
    } else {
        ExitStatus::NotAvailable
    })
}

/// `wait`: until the rollout finishes, or the timeout.
async fn wait(cluster: &Cluster, name: String, timeout: Duration) -> Result<ExitStatus, CliError> {
    let args = WaitArgs {
        wait: true,
        timeout,
        keep_on_failure: true,
        undo_timeout: Duration::ZERO,
    };
    settle(cluster, &name, &args).await
}

/// `scale`, waited for as asked; a failed rollout scaled back.
async fn scale(
    cluster: &Cluster,
    name: String,
    replicas: u16,
    wait: WaitArgs,
) -> Result<ExitStatus, CliError> {
    let scaled = cluster.scale(&name, i32::from(replicas)).await?;
    let previous = scaled.previous;
    report::write_stdout(&format!("scaled {name} to {replicas} replicas\n"))?;
    let failed = match settle(cluster, &name, &wait).await {
        Err(CliError::NotRolledOut(error)) if !wait.keep_on_failure => error,
        other => return other,
    };
    let done = format!("scaled {name} back to {previous} replicas");
    let not = format!("could not scale {name} back to {previous}");
    put_back(cluster.undo_scale(&scaled), &wait, &done, &not).await;
    Err(CliError::NotRolledOut(failed))
}

/// `upgrade`, waited for as asked; a failed rollout put back.
async fn upgrade(
    cluster: &Cluster,
    name: String,
    image: String,
    container_index: usize,
    wait: WaitArgs,
) -> Result<ExitStatus, CliError> {
    let upgraded = cluster.upgrade(&name, &image, container_index).await?;
    let old = &upgraded.previous;
    report::write_stdout(&format!(
        "upgraded {name} container {container_index}: {old} -> {image}\n"
    ))?;
    let failed = match settle(cluster, &name, &wait).await {
        Err(CliError::NotRolledOut(error)) if !wait.keep_on_failure => error,
        other => return other,
    };
    let done = format!(
        "container {container_index} of {name} back to {old} (a new revision in its history)"
    );
    let not = format!("could not put {old} back in {name}");
    put_back(cluster.undo_upgrade(&upgraded), &wait, &done, &not).await;
    Err(CliError::NotRolledOut(failed))
}

/// `rollback` to the previous or a given revision, waited for as asked; a failed rollout
/// put back.
async fn rollback(
    cluster: &Cluster,
    name: String,
    to_revision: Option<u32>,
    wait: WaitArgs,
) -> Result<ExitStatus, CliError> {
    let rolled = cluster
        .rollback(&name, i64::from(to_revision.unwrap_or(0)))
        .await?;
    let to = &rolled.revision;
    report::write_stdout(&format!(
        "rolled back {name} to revision {} ({})\n",
        to.revision,
        to.images.join(", ")
    ))?;
    let failed = match settle(cluster, &name, &wait).await {
        Err(CliError::NotRolledOut(error)) if !wait.keep_on_failure => error,
        other => return other,
    };
    let done = format!(
        "{name}'s pod template put back as it was before the rollback (a new revision in its history)"
    );
    let not = format!("could not undo the rollback of {name}");
    put_back(cluster.undo_rollback(&rolled), &wait, &done, &not).await;
    Err(CliError::NotRolledOut(failed))
}

/// Put back what a command changed once its rollout failed, within `--undo-timeout`,
/// saying on stderr how it went: `undone: <done>`, or `<not>: <why>`.
async fn put_back(
    back: impl std::future::Future<Output = Result<(), ClusterError>>,
    wait: &WaitArgs,
    done: &str,
    not: &str,
) {
    match tokio::time::timeout(wait.undo_timeout, back).await {
        Ok(Ok(())) => eprintln!("undone: {done}"),
        Ok(Err(e)) => eprintln!("{not}: {e}"),
        Err(_) => eprintln!("{not}: undo timed out after {:?}", wait.undo_timeout),
    }
}

/// `list`: berth's components in the namespace or all.
async fn list(
    cluster: &Cluster,
    all_namespaces: bool,
    selector: Option<String>,
    output: Output,
) -> Result<ExitStatus, CliError> {
    let scope = if all_namespaces {
        Scope::AllNamespaces
    } else {
        Scope::Namespace
    };
    let components = cluster.list(scope, selector.as_deref()).await?;
    report::write_stdout(&report::list(&components, output))?;
    Ok(ExitStatus::Success)
}

/// `history`: a component's revisions.
async fn history(cluster: &Cluster, name: String, output: Output) -> Result<ExitStatus, CliError> {
    let revisions = cluster.history(&name).await?;
    report::write_stdout(&report::history(&revisions, output))?;
    Ok(ExitStatus::Success)
}

/// `exec` in every pod of a component.
async fn exec(
    cluster: &Cluster,
    name: String,
    max_concurrency: usize,
    output: Output,
    command: Vec<String>,
) -> Result<ExitStatus, CliError> {
    let stream_lines = output == Output::Text;
    let print = |line: ExecLine<'_>| {
        if stream_lines {
            report::exec_line(line);
        }
    };
    let outcomes = cluster
        .exec(&name, &command, max_concurrency, &print)
        .await?;
    report::write_stdout(&report::exec_summary(&outcomes, output))?;
    Ok(if outcomes.iter().all(|o| o.succeeded()) {
        ExitStatus::Success
    } else {
        ExitStatus::ExecFailed
    })
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
        .wait(component, args.timeout, |s| show(s, &mut shown, live))
        .await;
    if live {
        eprintln!();
    }
    rolled_out(Some(status), None)
}

/// `diff`: the objects of every spec, live against the API server's dry run of the apply.
async fn diff_command(
    cluster: &Cluster,
    build: &BuildArgs,
    max_concurrency: usize,
    show_secrets: bool,
    output: Output,
) -> Result<ExitStatus, CliError> {
    let specs = berth::load_specs(&build.spec)?;
    let (site, rules) = site_and_rules(&build.with).await?;
    let capabilities = cluster.capabilities().await?;
    let rendered = fleet::render_each(&rules, &specs, &site, &capabilities, cluster.namespace());
    let secrets = if show_secrets {
        Secrets::Show
    } else {
        Secrets::Mask
    };
    let jobs = rendered.into_iter().map(|(component, rendered)| {
        let label = component.clone();
        let job = async move {
            let diffs = match rendered {
                Ok(rendered) => cluster
                    .diff(&component, &rendered)
                    .await
                    .map_err(CliError::from),
                Err(e) => Err(CliError::from(e)),
            };
            (component, diffs)
        };
        (label, job)
    });
    let mut failed = false;
    let mut changed = false;
    let mut all = Vec::new();
    let results = fleet::run_all(jobs, max_concurrency, "diffing", |_| {}).await;
    // In the specs' order, whichever finished first.
    for (component, diffs) in results_in_order(results, &specs) {
        match diffs {
            Ok(diffs) => {
                changed |= diffs.iter().any(|d| d.change != Change::Unchanged);
                if output == Output::Text {
                    let text: String = diffs.iter().map(|d| d.unified(secrets)).collect();
                    report::write_stdout(&text)?;
                }
                let shown: Vec<_> = match secrets {
                    Secrets::Mask => diffs.iter().map(|d| d.masked()).collect(),
                    Secrets::Show => diffs,
                };
                all.push(serde_json::json!({"component": component, "objects": shown}));
            }
            Err(e) => {
                failed = true;
                eprintln!("berth: {component}: {}", crate::one_line(&e));
                all.push(serde_json::json!({"component": component, "error": crate::one_line(&e)}));
            }
        }
    }
    if output == Output::Json {
        report::write_stdout(&(report::json(&all) + "\n"))?;
    }
    Ok(if failed {
        ExitStatus::DiffFailed
    } else if changed {
        ExitStatus::Changes
    } else {
        ExitStatus::Success
    })
}

/// `results` in the order of the specs they came from.
fn results_in_order<T>(
    mut results: Vec<(String, T)>,
    specs: &[(berth::Origin, berth::Spec)],
) -> Vec<(String, T)> {
    let position = |name: &str| specs.iter().position(|(_, s)| s.component_name == name);
    results.sort_by_key(|(name, _)| position(name));
    results
}
