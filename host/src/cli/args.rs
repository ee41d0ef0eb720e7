//! The command line's arguments (clap).

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

use super::units;

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
    /// Namespace (default: the context's namespace, else `default`); `controller` takes
    /// it more than once.
    #[arg(short, long, global = true)]
    pub namespace: Vec<String>,
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
        #[command(flatten)]
        target: TargetArgs,
        /// Output format.
        #[arg(short, long, value_enum, default_value_t)]
        output: RenderFormat,
        /// Print Secret values (masked as *** by default).
        #[arg(long)]
        show_secrets: bool,
    },
    #[command(flatten)]
    Cluster(ClusterCommand),
    /// Keep Component resources as declared, with these rules and site config (which no
    /// Component can replace); `controller crd` prints the resource's definition. Watches
    /// the namespaces --namespace names (repeatable), else every namespace.
    Controller {
        #[command(subcommand)]
        command: Option<ControllerCommand>,
        #[command(flatten)]
        with: RulesArgs,
        #[command(flatten)]
        election: ElectionArgs,
        /// Serve /metrics (Prometheus), /healthz and /readyz on this address:
        /// 0.0.0.0:8080, 127.0.0.1:0 (a free port; the address is printed).
        #[arg(long, value_name = "ADDRESS")]
        http: Option<std::net::SocketAddr>,
        /// The log on stderr: a line of text per event, or a JSON object per line.
        #[arg(long, value_enum, default_value_t)]
        log_format: LogFormat,
    },
    /// Publish, describe and precompile rules components.
    #[command(subcommand)]
    Rules(RulesCommand),
}

/// What `controller` does instead of running: print what installs it, push its image.
#[derive(Debug, Subcommand)]
pub enum ControllerCommand {
    /// The CustomResourceDefinition of Component (JSON, for `kubectl apply -f -`).
    Crd,
    /// The controller's ServiceAccount and the least it needs: a ClusterRole, or with
    /// --namespace a Role and RoleBinding in each (JSON, for `kubectl apply -f -`).
    Rbac,
    /// Everything to run the controller in the cluster: the CRD, the RBAC (as `rbac`), the
    /// site config, a Deployment of replicas in berth-system (JSON, for `kubectl apply -f -`).
    Manifests {
        /// berth's image (built by `cargo xtask image`).
        #[arg(long, value_name = "REF")]
        image: String,
        /// Replicas of the controller (one leads).
        #[arg(long, default_value_t = 2)]
        replicas: u32,
        /// The rules the pods pull: oci://…@sha256:… (a file is not in the image).
        #[arg(long, value_name = "oci://…@sha256:…", value_parser = rules_location)]
        rules: Option<RulesLocation>,
        /// Site config (YAML or JSON), put in a ConfigMap the pods mount.
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
    },
    /// Push the controller's image, an OCI image layout directory (`cargo xtask image`
    /// writes one), to a registry (credentials from Docker's config file); prints the
    /// reference pinned to its digest.
    PushImage {
        /// The OCI image layout directory.
        layout: PathBuf,
        /// oci://REGISTRY/REPOSITORY:TAG
        #[arg(value_parser = oci_reference)]
        reference: berth::Reference,
    },
}

/// The commands that work on a cluster.
#[derive(Debug, Subcommand)]
pub enum ClusterCommand {
    /// Build a component's objects and create them (or apply changes) on the cluster.
    Deploy {
        #[command(flatten)]
        build: BuildArgs,
        /// `server`: send every request as a server-side dry run (admission and validation,
        /// nothing persisted) and report what deploy would do.
        #[arg(long, value_enum, value_name = "server", conflicts_with = "wait")]
        dry_run: Option<DryRun>,
        #[command(flatten)]
        wait: WaitArgs,
        /// Components deployed at once, when --spec holds several.
        #[arg(long, default_value_t = 8)]
        max_concurrency: usize,
        #[arg(short, long, value_enum, default_value_t)]
        output: Output,
    },
    /// Show what deploy would change, as a unified diff per object (exit 0: nothing, 1:
    /// something, 2: an error).
    Diff {
        #[command(flatten)]
        build: BuildArgs,
        /// Components diffed at once, when --spec holds several.
        #[arg(long, default_value_t = 8)]
        max_concurrency: usize,
        /// Print Secret values (masked as *** by default).
        #[arg(long)]
        show_secrets: bool,
        #[arg(short, long, value_enum, default_value_t)]
        output: Output,
    },
    /// Delete components: every object of theirs, then their inventories.
    Undeploy {
        /// Component names.
        #[arg(required = true, value_name = "NAME")]
        names: Vec<String>,
        /// Components undeployed at once.
        #[arg(long, default_value_t = 8)]
        max_concurrency: usize,
        /// Wait until the Deployment and its pods are gone.
        #[arg(long)]
        wait: bool,
        /// How long --wait may take (500ms, 90s, 2m, 1h or seconds).
        #[arg(long, value_parser = units::duration, default_value = "1800")]
        timeout: Duration,
    },
    /// Show replicas, images and revision; exit 0 only when every one is available.
    Status {
        /// Component names.
        #[arg(required = true, value_name = "NAME")]
        names: Vec<String>,
        #[arg(short, long, value_enum, default_value_t)]
        output: Output,
    },
    /// Wait until a component is rolled out, as `kubectl rollout status` does.
    Wait {
        /// Component name.
        name: String,
        /// How long to wait (500ms, 90s, 2m, 1h or seconds).
        #[arg(long, value_parser = units::duration, default_value = "1800")]
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
    /// List the components berth manages: replicas, images, revision, rules, age.
    List {
        /// In every namespace (default: the namespace of -n or the context).
        #[arg(short = 'A', long)]
        all_namespaces: bool,
        /// Only components whose Deployment matches this label selector (`team=payments`).
        #[arg(short = 'l', long, value_name = "SELECTOR")]
        selector: Option<String>,
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

/// `berth rules …`: rules components in registries and the compiled-code cache.
#[derive(Debug, Subcommand)]
pub enum RulesCommand {
    /// Publish a rules component to an OCI registry (credentials from Docker's config
    /// file); prints the reference pinned to its digest.
    Push {
        /// The component (.wasm); it must be a berth rules component.
        file: PathBuf,
        /// oci://REGISTRY/REPOSITORY:TAG
        #[arg(value_parser = oci_reference)]
        reference: berth::Reference,
    },
    /// Show a rules component's contract version, world, size and digests.
    Inspect {
        /// A file, or oci://REGISTRY/REPOSITORY:TAG or …@sha256:DIGEST.
        #[arg(value_parser = rules_location)]
        rules: RulesLocation,
        #[arg(short, long, value_enum, default_value_t)]
        output: Output,
    },
    /// Pull (if needed) and compile a rules component into the cache, so no later command
    /// pays the compilation.
    Compile {
        /// A file, or oci://REGISTRY/REPOSITORY:TAG or …@sha256:DIGEST.
        #[arg(value_parser = rules_location)]
        rules: RulesLocation,
    },
}

/// Where a rules component comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RulesLocation {
    /// A component file.
    File(PathBuf),
    /// A component in an OCI registry.
    Oci(berth::Reference),
}

fn rules_location(text: &str) -> Result<RulesLocation, String> {
    if berth::Reference::is_oci(text) {
        oci_reference(text).map(RulesLocation::Oci)
    } else {
        Ok(RulesLocation::File(PathBuf::from(text)))
    }
}

fn oci_reference(text: &str) -> Result<berth::Reference, String> {
    berth::Reference::parse(text).map_err(|e| e.reason)
}

/// Which spec, site config and rules to build with.
#[derive(Debug, Args)]
pub struct BuildArgs {
    /// Component spec (YAML or JSON), a file of several YAML documents, or a directory of
    /// spec files (*.yaml, *.yml, *.json): one component each.
    #[arg(long, value_name = "FILE")]
    pub spec: PathBuf,
    #[command(flatten)]
    pub with: RulesArgs,
}

/// The controller's log lines.
#[derive(Debug, Clone, Copy, Default, ValueEnum)]
pub enum LogFormat {
    /// For people.
    #[default]
    Text,
    /// One JSON object per line: time, level, msg, and the event's fields (component,
    /// generation, result, duration_ms, error).
    Json,
}

/// How the controller's replicas choose the one that reconciles.
#[derive(Debug, Args)]
pub struct ElectionArgs {
    /// The Lease (in berth-system) the replicas share: the one holding it reconciles.
    #[arg(long, value_name = "NAME", default_value = "berth-controller")]
    pub lease: String,
    /// How long the Lease lasts without a renewal: the longest a killed leader goes
    /// unreplaced. A leader stops writing after two thirds of it without a renewal.
    #[arg(long, value_name = "DURATION", default_value = "15s", value_parser = units::duration)]
    pub lease_duration: Duration,
    /// One replica, no Lease: reconcile at once (never run two so).
    #[arg(long, conflicts_with_all = ["lease", "lease_duration"])]
    pub no_leader_election: bool,
}

/// Which site config and rules to build with.
#[derive(Debug, Args)]
pub struct RulesArgs {
    /// Site config (YAML or JSON): image pull secrets, logging sidecar, TLS init container.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Rules component to use instead of the built-in default rules: a file, or
    /// oci://REGISTRY/REPOSITORY:TAG or …@sha256:DIGEST (pulled once, cached by digest).
    #[arg(long, value_name = "FILE.wasm|oci://…", value_parser = rules_location)]
    pub rules: Option<RulesLocation>,
    /// Wall time the rules may take for one component: 500ms, 2s, 1m (10ms to 10m).
    #[arg(long, value_name = "DURATION", default_value = "1s", value_parser = units::rules_deadline)]
    pub rules_deadline: Duration,
    /// Memory the rules may use: 64Mi, 1Gi, or bytes (1Mi to 4Gi).
    #[arg(long, value_name = "SIZE", default_value = "64Mi", value_parser = units::rules_memory)]
    pub rules_memory: usize,
    /// Accept objects of this kind from the rules besides the default ones (repeatable):
    /// v1/Secret, cert-manager.io/v1/Certificate. Added to the site config's allowed_kinds.
    #[arg(long, value_name = "APIVERSION/KIND")]
    pub allow_kind: Vec<berth::KindName>,
}

/// The cluster `render` builds for (Helm's `--kube-version`, `--api-versions`); `deploy`
/// asks the cluster itself.
#[derive(Debug, Args)]
pub struct TargetArgs {
    /// Kubernetes version the rules see, MAJOR.MINOR (default: the newest berth knows).
    #[arg(long, value_name = "VERSION", value_parser = units::kube_version)]
    pub kube_version: Option<String>,
    /// API versions served besides the newest version's built-in ones (group/version,
    /// comma-separated or repeated), e.g. `policy/v1beta1,cert-manager.io/v1`.
    #[arg(long, value_name = "GROUP/VERSION", value_delimiter = ',')]
    pub api_versions: Vec<String>,
}

impl TargetArgs {
    /// The capabilities these flags describe.
    pub fn capabilities(&self) -> berth::Capabilities {
        let mut caps = berth::Capabilities::newest_known();
        if let Some(version) = &self.kube_version {
            caps.kube_version.clone_from(version);
        }
        caps.api_versions.extend(self.api_versions.iter().cloned());
        caps.api_versions.sort();
        caps.api_versions.dedup();
        caps
    }
}

/// Waiting after a change.
#[derive(Debug, Args)]
pub struct WaitArgs {
    /// Wait until the rollout is complete.
    #[arg(long)]
    pub wait: bool,
    /// How long --wait may take (500ms, 90s, 2m, 1h or seconds).
    #[arg(long, value_parser = units::duration, default_value = "1800")]
    pub timeout: Duration,
    /// When the rollout --wait waits for fails, leave everything as it is for debugging
    /// (default: put back what this command changed).
    #[arg(long, requires = "wait")]
    pub keep_on_failure: bool,
    /// How long putting things back after a failed rollout may take.
    #[arg(long, value_parser = units::duration, default_value = "60", value_name = "DURATION")]
    pub undo_timeout: Duration,
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

/// Dry-run strategies (only the API server's: a client-side one is `render`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DryRun {
    /// Through the API server's admission and validation, nothing persisted.
    Server,
}

/// Output of `render`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum RenderFormat {
    /// YAML documents separated by `---`.
    #[default]
    Yaml,
    /// One `v1` `List` object.
    Json,
}

impl From<RenderFormat> for berth::Format {
    fn from(format: RenderFormat) -> Self {
        match format {
            RenderFormat::Yaml => berth::Format::Yaml,
            RenderFormat::Json => berth::Format::Json,
        }
    }
}
