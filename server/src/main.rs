use std::process::ExitCode;

use berth::cli::{
    AdmCommand, Cli, Command, ImportImageArgs, PruneCommand, TokenCommand, UserCommand,
};
use berth::config::Config;
use clap::Parser;

// jemalloc rather than glibc's malloc: manifest GETs about 25% faster on 2 cores, and memory
// returns to the system after bursts without tuning (bench/registry.sh, bench/memory.sh;
// docs/security.md, "Memory after bursts").
#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let (args, admin) = match cli.command {
        Some(Command::Serve(args)) => (args, None),
        Some(Command::User(command)) => {
            let args = match &command {
                UserCommand::Add { server, .. }
                | UserCommand::Passwd { server, .. }
                | UserCommand::List { server } => server.clone(),
            };
            (args, Some(Admin::User(command)))
        }
        Some(Command::Token(command)) => {
            let TokenCommand::Create { server, .. } = &command;
            (server.clone(), Some(Admin::Token(command)))
        }
        Some(Command::Migrate(args)) => (args, Some(Admin::Migrate)),
        Some(Command::ImportImage(args)) => return run_import_image(args),
        Some(Command::Adm(AdmCommand::Prune(PruneCommand::Images(args)))) => {
            return run_client(berth::prune::command::prune_images(args));
        }
        None => (cli.serve, None),
    };
    // The settings, then what the domain asks of them (the administrator's name is a user name).
    let config = match args.load_config().and_then(|config| {
        berth::auth::bootstrap::check_bootstrap_admin(&config.auth)?;
        Ok(config)
    }) {
        Ok(config) => config,
        Err(err) => {
            eprintln!("berth: invalid configuration: {err}");
            return ExitCode::from(2);
        }
    };
    berth::ops::init_logging(&config.log);
    if let Some(admin) = admin {
        return run_admin(admin, &config);
    }
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("berth: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    let started = config.clone();
    let result = runtime.block_on(berth::serve(config, shutdown_signal(), move |addr| {
        println!("{}", berth::cli::start_message(&started, addr));
    }));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!("{err:#}");
            eprintln!("berth: {err:#}");
            ExitCode::FAILURE
        }
    }
}

enum Admin {
    User(UserCommand),
    Token(TokenCommand),
    Migrate,
}

/// A client command against a running Berth.
fn run_client(command: impl std::future::Future<Output = anyhow::Result<()>>) -> ExitCode {
    let result = tokio::runtime::Runtime::new()
        .map_err(anyhow::Error::from)
        .and_then(|runtime| runtime.block_on(command));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("berth: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn run_import_image(args: ImportImageArgs) -> ExitCode {
    let result = tokio::runtime::Runtime::new()
        .map_err(anyhow::Error::from)
        .and_then(|runtime| runtime.block_on(berth::import::command::import_image(args)));
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(err) => {
            eprintln!("berth: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn run_admin(admin: Admin, config: &Config) -> ExitCode {
    let result = tokio::runtime::Runtime::new()
        .map_err(anyhow::Error::from)
        .and_then(|runtime| {
            runtime.block_on(async {
                match admin {
                    Admin::User(command) => berth::admin::user(command, config).await,
                    Admin::Token(command) => berth::admin::token(command, config).await,
                    Admin::Migrate => berth::admin::migrate(config).await,
                }
            })
        });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("berth: {err:#}");
            ExitCode::FAILURE
        }
    }
}

async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut terminate =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(signal) => signal,
                Err(_) => {
                    let _ = interrupt.await;
                    return;
                }
            };
        tokio::select! {
            _ = interrupt => {}
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = interrupt.await;
}
