//! The typed component spec and site config: what the rules get, whatever contract version
//! the rules component was built for. Build them in code or parse them from text.

/// A component spec: what one component needs, in the spec file's terms.
///
/// ```
/// let mut spec = berth::Spec::new("web", "nginx:1.27");
/// spec.replicas = 2;
/// spec.ports.push("80:0".into());
/// let text = "component_name: web\nimage: nginx:1.27\nreplicas: 2\nports: ['80:0']\n";
/// assert_eq!(spec, berth::Spec::parse(text).unwrap());
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Spec {
    /// DNS-1123 label naming everything built for the component.
    pub component_name: String,
    /// Image of the main container.
    pub image: String,
    /// Number of pods (default 1).
    pub replicas: u32,
    /// Pull policy `Always` instead of `IfNotPresent`.
    pub always_pull: bool,
    /// `CONTAINER_PORT[/tcp|udp]:NODE_PORT`, as written.
    pub ports: Vec<String>,
    /// Environment of the main container, in order.
    pub env: Vec<(String, EnvValue)>,
    /// Volumes mounted into the main container.
    pub volumes: Vec<Volume>,
    /// Labels added to the Deployment, its pods and Services.
    pub labels: Vec<(String, String)>,
    /// The readiness probe.
    pub readiness: Option<Probe>,
    /// The liveness probe (contract 0.2).
    pub liveness: Option<Probe>,
    /// The main container's command; `None` keeps the image's (contract 0.2).
    pub command: Option<Vec<String>>,
    /// The main container's arguments; `None` keeps the image's (contract 0.2).
    pub args: Option<Vec<String>>,
    /// CPU and memory.
    pub resources: Option<Resources>,
    /// Logging sidecar settings.
    pub log_info: Option<LogInfo>,
    /// TLS init container settings.
    pub tls_info: Option<TlsInfo>,
    /// MSB registrations (an annotation on the Services).
    pub msb_list: Vec<MsbService>,
    /// Keys for the site's own rules, which validate them (contract 0.2).
    pub extensions: serde_json::Map<String, serde_json::Value>,
}

impl Spec {
    /// A spec with a name and an image, everything else at its default.
    pub fn new(component_name: impl Into<String>, image: impl Into<String>) -> Self {
        Self {
            component_name: component_name.into(),
            image: image.into(),
            replicas: 1,
            always_pull: false,
            ports: Vec::new(),
            env: Vec::new(),
            volumes: Vec::new(),
            labels: Vec::new(),
            readiness: None,
            liveness: None,
            command: None,
            args: None,
            resources: None,
            log_info: None,
            tls_info: None,
            msb_list: Vec::new(),
            extensions: serde_json::Map::new(),
        }
    }
}

/// A volume mounted into the main container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Volume {
    /// What is mounted.
    pub source: VolumeSource,
    /// Mount path in the container.
    pub container_path: String,
    /// `ro` or `rw`, as written.
    pub mode: Option<String>,
}

/// What a volume mounts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VolumeSource {
    /// A directory of the node (`host: {path}`).
    HostPath(String),
    /// A ConfigMap by name (`config_volume: {name}`; contract 0.2).
    ConfigMap(String),
}

/// Where an environment variable's value comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnvValue {
    /// The value, as written.
    Literal(String),
    /// A Secret's key (`{secret: NAME, key: KEY}`; contract 0.2).
    Secret {
        /// The Secret.
        name: String,
        /// The key in it.
        key: String,
    },
    /// A ConfigMap's key (`{config_map: NAME, key: KEY}`; contract 0.2).
    ConfigMap {
        /// The ConfigMap.
        name: String,
        /// The key in it.
        key: String,
    },
}

impl From<&str> for EnvValue {
    fn from(value: &str) -> Self {
        EnvValue::Literal(value.to_owned())
    }
}

/// A readiness or liveness probe, as the spec writes it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Probe {
    /// `http`, `https`, `script` or `docker`.
    pub kind: String,
    /// Path probed by `http`/`https`.
    pub endpoint: Option<String>,
    /// Command run by `script`/`docker`.
    pub script: Option<String>,
    /// Period: `N`, `Ns`, `Nm`, `Nh`.
    pub interval: Option<String>,
    /// Timeout, in the same grammar.
    pub timeout: Option<String>,
}

/// CPU and memory amounts, as Kubernetes quantities.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ResourceAmounts {
    /// CPU (`500m`, `0.5`).
    pub cpu: Option<String>,
    /// Memory (`256Mi`).
    pub memory: Option<String>,
}

/// Limits and requests of the main container.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Resources {
    /// Limits.
    pub limits: Option<ResourceAmounts>,
    /// Requests.
    pub requests: Option<ResourceAmounts>,
}

/// Where the component logs, for the logging sidecar.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LogInfo {
    /// The component's log directory.
    pub log_directory: Option<String>,
    /// Another path for filebeat's data.
    pub alternate_fb_path: Option<String>,
}

/// Whether the component gets TLS certificates from the init container.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TlsInfo {
    /// Add the TLS init container.
    pub use_tls: bool,
    /// Where the certificates go in the main container.
    pub cert_directory: Option<String>,
}

/// One MSB registration.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MsbService {
    /// `serviceName`.
    pub service_name: Option<String>,
    /// Port.
    pub port: Option<String>,
    /// Version.
    pub version: Option<String>,
    /// URL path.
    pub url: Option<String>,
    /// Protocol.
    pub protocol: Option<String>,
    /// `enable_ssl`.
    pub enable_ssl: Option<bool>,
    /// `visualRange`.
    pub visual_range: Option<String>,
}

/// What a site sets for every component: pull secrets, logging sidecar, TLS init container.
#[derive(Debug, Clone, PartialEq, Default)]
#[non_exhaustive]
pub struct SiteConfig {
    /// Image pull secrets of every pod.
    pub image_pull_secrets: Vec<String>,
    /// The logging sidecar, if the site has one.
    pub filebeat: Option<Filebeat>,
    /// The TLS init container, if the site has one.
    pub tls: Option<Tls>,
    /// Keys for the site's own rules, which validate them (contract 0.2).
    pub extensions: serde_json::Map<String, serde_json::Value>,
    /// Kinds the platform allows the rules to build besides the default ones
    /// ([`DEFAULT_KINDS`](crate::kinds::DEFAULT_KINDS)): the host's policy, not handed
    /// to the rules.
    pub allowed_kinds: Vec<crate::kinds::KindName>,
}

/// The site's logging sidecar.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Filebeat {
    /// Log path in the sidecar.
    pub log_path: String,
    /// Data path in the sidecar.
    pub data_path: String,
    /// Config mount path.
    pub config_path: String,
    /// Config file in the ConfigMap.
    pub config_subpath: String,
    /// The ConfigMap with filebeat's config.
    pub config_map: String,
    /// Sidecar image.
    pub image: String,
}

/// The site's TLS init container.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Tls {
    /// Where it writes certificates.
    pub cert_path: String,
    /// Its image.
    pub image: String,
}
