//! `adlens cluster scheduler|executor`: a node of a Ballista cluster that
//! knows the adlens functions ([`crate::distributed`]). Logs go to stderr;
//! SIGINT or SIGTERM stops a node cleanly.

use crate::cli::ClusterCommand;
use crate::distributed::{self, ExecutorOptions};

pub async fn run(command: ClusterCommand) -> anyhow::Result<()> {
    match command {
        ClusterCommand::Scheduler(args) => {
            distributed::run_scheduler(args.bind, args.executor_timeout).await
        }
        ClusterCommand::Executor(args) => {
            let grpc_port = match args.grpc_port {
                Some(port) => port,
                None => args.bind.port().checked_add(1).ok_or_else(|| {
                    anyhow::anyhow!(
                        "`--bind` port {} leaves no port for gRPC; give `--grpc-port`",
                        args.bind.port()
                    )
                })?,
            };
            distributed::run_executor(ExecutorOptions {
                scheduler: args.scheduler,
                bind: args.bind,
                grpc_port,
                concurrent_tasks: args.concurrent_tasks,
                work_dir: args.work_dir,
                heartbeat_interval: args.heartbeat_interval,
            })
            .await
        }
    }
}
