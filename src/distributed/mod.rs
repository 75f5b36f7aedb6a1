//! Scale-out on Apache DataFusion Ballista: the scheduler and executor
//! embedded in the adlens binary, and the client session `--cluster df://...`
//! opens. Every node is built from the same parts as a local session (the
//! adlens UDFs of [`crate::engine::udfs`], the object stores of
//! [`crate::storage`]), so a plan means the same thing wherever it is planned
//! or run.

pub mod codec;

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;

use ballista::prelude::SessionContextExt;
use ballista_core::extension::SessionConfigExt;
use ballista_core::registry::BallistaFunctionRegistry;
use ballista_core::utils::default_session_builder;
use ballista_executor::executor_process::{ExecutorProcessConfig, start_executor_process};
use ballista_scheduler::cluster::BallistaCluster;
use ballista_scheduler::config::SchedulerConfig;
use ballista_scheduler::scheduler_process::start_server;
use datafusion::error::Result;
use datafusion::execution::SessionStateBuilder;
use datafusion::execution::runtime_env::{RuntimeEnv, RuntimeEnvBuilder};
use datafusion::execution::session_state::SessionState;
use datafusion::prelude::{SessionConfig, SessionContext};

use self::codec::{LogicalCodec, PhysicalCodec};
use crate::engine::{self, EngineConfig, udfs};
use crate::error::Error;
use crate::storage;

/// A scheduler's address as users write it: `df://host:port`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterUrl {
    /// Host name or IP of the scheduler.
    pub host: String,
    /// The scheduler's gRPC port.
    pub port: u16,
}

impl FromStr for ClusterUrl {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        let rest = s
            .strip_prefix("df://")
            .ok_or_else(|| format!("`{s}` is not a cluster URL; expected df://host:port"))?;
        let (host, port) = split_host_port(rest.trim_end_matches('/'))
            .map_err(|why| format!("`{s}` {why}; expected df://host:port"))?;
        Ok(Self { host, port })
    }
}

/// `HOST:PORT`, for addresses that may be names rather than IPs (`--scheduler`).
pub fn parse_host_port(s: &str) -> std::result::Result<(String, u16), String> {
    split_host_port(s).map_err(|why| format!("`{s}` {why}; expected HOST:PORT"))
}

/// The host and port of `text`, or what is wrong with it.
fn split_host_port(text: &str) -> std::result::Result<(String, u16), String> {
    let (host, port) = text.rsplit_once(':').ok_or("has no port")?;
    let port = port
        .parse()
        .map_err(|_| format!("has a bad port `{port}`"))?;
    if host.is_empty() {
        return Err("has no host".into());
    }
    Ok((host.to_string(), port))
}

impl fmt::Display for ClusterUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "df://{}:{}", self.host, self.port)
    }
}

/// A client session whose queries run on the cluster at `url`: planned
/// here, executed by the scheduler's executors. Connecting is lazy in
/// Ballista, so this checks the scheduler answers first and names it if not.
pub async fn client(url: &ClusterUrl, config: &EngineConfig) -> anyhow::Result<SessionContext> {
    let addr = format!("{}:{}", url.host, url.port);
    let unreachable = |why: String| {
        Error::input(
            url.to_string(),
            None,
            format!("cannot reach the cluster's scheduler: {why}"),
        )
    };
    tokio::time::timeout(
        std::time::Duration::from_secs(10),
        tokio::net::TcpStream::connect(&addr),
    )
    .await
    .map_err(|_| unreachable("no answer within 10 s".into()))?
    .map_err(|e| unreachable(e.to_string()))?;
    let session_config = engine::session_config(config)
        .upgrade_for_ballista()
        .with_ballista_logical_extension_codec(Arc::new(LogicalCodec::default()))
        .with_ballista_physical_extension_codec(Arc::new(PhysicalCodec::default()));
    let state = SessionStateBuilder::new()
        .with_default_features()
        .with_config(session_config)
        .with_runtime_env(runtime(None)?)
        .build();
    let ctx = SessionContext::remote_with_state(&format!("df://{addr}"), state).await?;
    // Registered after the upgrade to a Ballista session, which rebuilds
    // the function registry.
    engine::register_udfs(&ctx);
    Ok(ctx)
}

/// A runtime whose object stores come from [`storage`], spilling under `work_dir`.
fn runtime(work_dir: Option<&PathBuf>) -> Result<Arc<RuntimeEnv>> {
    let mut builder =
        RuntimeEnvBuilder::new().with_object_store_registry(storage::Registry::shared());
    if let Some(dir) = work_dir {
        builder = builder.with_temp_file_path(dir);
    }
    builder.build_arc()
}

/// `state` with the adlens UDFs registered next to its own functions.
fn with_udfs(mut state: SessionState) -> Result<SessionState> {
    use datafusion::execution::FunctionRegistry;
    for udf in udfs::all() {
        state.register_udf(Arc::new(udf))?;
    }
    Ok(state)
}

/// Runs a scheduler on `bind` until SIGINT or SIGTERM; an executor silent
/// for `executor_timeout` seconds is taken for dead.
pub async fn run_scheduler(bind: SocketAddr, executor_timeout: u64) -> anyhow::Result<()> {
    let session_builder = Arc::new(|config: SessionConfig| {
        let state = default_session_builder(config)?;
        // The scheduler lists input files and plans: it needs the same
        // object stores and functions as the client.
        let state = SessionStateBuilder::new_from_existing(state)
            .with_runtime_env(runtime(None)?)
            .build();
        with_udfs(state)
    });
    let config = SchedulerConfig {
        bind_host: bind.ip().to_string(),
        bind_port: bind.port(),
        external_host: bind.ip().to_string(),
        executor_timeout_seconds: executor_timeout,
        no_executors_grace_period_seconds: executor_timeout,
        // Dead executors are looked for several times per timeout.
        expire_dead_executor_interval_seconds: (executor_timeout / 4).clamp(1, 15),
        override_session_builder: Some(session_builder),
        override_logical_codec: Some(Arc::new(LogicalCodec::default())),
        override_physical_codec: Some(Arc::new(PhysicalCodec::default())),
        ..SchedulerConfig::default()
    };
    let cluster = BallistaCluster::new_from_config(&config).await?;
    tracing::info!("scheduler listening on {bind}");
    let server = start_server(cluster, bind, Arc::new(config));
    until_signal(server).await
}

/// How an executor joins a cluster.
#[derive(Debug, Clone)]
pub struct ExecutorOptions {
    /// The scheduler's host and gRPC port.
    pub scheduler: (String, u16),
    /// Where the executor's Arrow Flight service listens; its gRPC service
    /// listens on `grpc_port`.
    pub bind: SocketAddr,
    /// The executor's gRPC port.
    pub grpc_port: u16,
    /// Tasks run at once (0: one per core).
    pub concurrent_tasks: usize,
    /// Shuffle files and spills; a temporary directory when absent.
    pub work_dir: Option<PathBuf>,
    /// Seconds between heartbeats to the scheduler.
    pub heartbeat_interval: u64,
}

/// Runs an executor until SIGINT or SIGTERM (Ballista handles both: the
/// executor tells the scheduler it is leaving, then drains).
pub async fn run_executor(options: ExecutorOptions) -> anyhow::Result<()> {
    // Every function a client session can plan with (Ballista's default
    // registry lacks DataFusion's nested functions, e.g. `cardinality`) and
    // the adlens UDFs.
    let state = with_udfs(SessionStateBuilder::new().with_default_features().build())?;
    let mut functions = BallistaFunctionRegistry::default();
    functions
        .scalar_functions
        .extend(state.scalar_functions().clone());
    functions
        .aggregate_functions
        .extend(state.aggregate_functions().clone());
    functions
        .window_functions
        .extend(state.window_functions().clone());
    let work_dir = options.work_dir.clone();
    let runtime_producer = Arc::new(move |_: &SessionConfig| runtime(work_dir.as_ref()));
    let config = ExecutorProcessConfig {
        bind_host: options.bind.ip().to_string(),
        // Bound to every interface, the executor has no one address to
        // advertise: the scheduler then uses the address it sees it from.
        external_host: (!options.bind.ip().is_unspecified()).then(|| options.bind.ip().to_string()),
        port: options.bind.port(),
        grpc_port: options.grpc_port,
        scheduler_host: options.scheduler.0.clone(),
        scheduler_port: options.scheduler.1,
        scheduler_connect_timeout_seconds: 30,
        vcores: options.concurrent_tasks,
        work_dir: options
            .work_dir
            .as_ref()
            .map(|d| d.to_string_lossy().into_owned()),
        executor_heartbeat_interval_seconds: options.heartbeat_interval,
        override_function_registry: Some(Arc::new(functions)),
        override_runtime_producer: Some(runtime_producer),
        override_logical_codec: Some(Arc::new(LogicalCodec::default())),
        override_physical_codec: Some(Arc::new(PhysicalCodec::default())),
        ..ExecutorProcessConfig::default()
    };
    tracing::info!(
        "executor on {} (gRPC {}) joining the scheduler at {}:{}",
        options.bind,
        options.grpc_port,
        options.scheduler.0,
        options.scheduler.1
    );
    start_executor_process(Arc::new(config)).await?;
    Ok(())
}

/// Runs `server` until it ends or the process is asked to stop.
async fn until_signal(
    server: impl Future<Output = ballista_core::error::Result<()>>,
) -> anyhow::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;
    tokio::select! {
        result = server => result?,
        _ = interrupt.recv() => tracing::info!("interrupted; stopping"),
        _ = terminate.recv() => tracing::info!("terminated; stopping"),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_cluster_urls() {
        let url: ClusterUrl = "df://sched-host:50050".parse().unwrap();
        assert_eq!(url.host, "sched-host");
        assert_eq!(url.port, 50050);
        assert_eq!(url.to_string(), "df://sched-host:50050");
        assert!("http://h:1".parse::<ClusterUrl>().is_err());
        assert!("df://h".parse::<ClusterUrl>().is_err());
        assert!("df://:1".parse::<ClusterUrl>().is_err());
        assert!("df://h:x".parse::<ClusterUrl>().is_err());
    }
}
