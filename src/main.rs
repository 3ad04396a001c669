//! The `postback` binary: parse arguments, load config, run a command.

use clap::Parser;
use postback::cli::{Cli, Command, DlqCommand, InspectTarget, PartnersCommand, StateCommand, TopicsCommand};
use postback::config;
use postback::demo::Options;
use postback::server::{self, Stages};
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let json = matches!(cli.log_format, postback::telemetry::logging::LogFormat::Json);
    // the demo prints its own progress; its logs only say what went wrong
    let default_filter = if matches!(cli.command, Command::Demo { .. }) { "error" } else { "info" };
    postback::telemetry::logging::init(cli.log_format, default_filter);
    match cli.command {
        Command::CheckConfig { file, load } => check_config(&file, load.options()),
        Command::Process { config, load } => {
            service(&config, load.options(), Stages { process: true, send: false }, json)
        }
        Command::Send { config, load } => {
            // the sender reads jobs, never events: it needs partners, not apps
            let load = config::LoadOptions { needs: config::Needs::Partners, ..load.options() };
            service(&config, load, Stages { process: false, send: true }, json)
        }
        Command::Run { config, load } => service(&config, load.options(), Stages { process: true, send: true }, json),
        Command::State { command } => state(command),
        Command::Topics { command: TopicsCommand::Create { config, partitions } } => topics_create(&config, partitions),
        Command::Dlq {
            command:
                DlqCommand::Replay {
                    config,
                    dlq,
                    partner,
                    app,
                    reason,
                    since,
                    until,
                    dry_run,
                    from_start,
                    name,
                    batch,
                    json,
                },
        } => {
            let filter = postback::replay::Filter { partner, app, reason, since_ms: since, until_ms: until };
            let req = postback::replay::Request { dlq, filter, dry_run, from_start, name, batch };
            dlq_replay(&config, &req, json)
        }
        Command::Demo { devices, events, duration, keep_running, admin, bootstrap, client } => demo(Options {
            devices,
            events: if duration.is_some() && events == 20_000 { usize::MAX } else { events },
            duration,
            keep_running,
            admin,
            seed: 7,
            progress: true,
            bootstrap,
            client,
        }),
        Command::Inspect { target } => inspect(target),
        Command::Test { config, events, state_dir, send, load } => {
            trial(&config, &events, state_dir.as_deref(), send, load.options())
        }
        Command::PartnerMock { listen } => partner_mock(listen),
        Command::Partners { command } => partners(command),
    }
}

fn demo(opts: Options) -> ExitCode {
    println!(
        "postback demo: {} devices, {}, both stages, a partner endpoint on 127.0.0.1",
        opts.devices,
        opts.bootstrap.as_ref().map_or_else(|| "embedded Kafka (mock cluster)".to_owned(), |b| format!("Kafka at {b}"))
    );
    match postback::demo::run(&opts) {
        Ok(report) => {
            println!("\n{}", report.table());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("postback demo: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn inspect(target: InspectTarget) -> ExitCode {
    let (kind, args) = match target {
        InspectTarget::Device(a) => ("device", a),
        InspectTarget::User(a) => ("user", a),
    };
    let result = match &args.admin {
        Some(addr) => inspect_remote(addr, args.token.as_deref(), kind, &args.app, &args.id),
        None => config::load(&args.config).map_err(|e| e.to_string()).and_then(|c| {
            let dir = args.state_dir.clone().unwrap_or_else(|| c.process.state_dir.clone());
            let report = if kind == "device" {
                postback::inspect::device_report(&c, &dir, &args.app, &args.id)
            } else {
                postback::inspect::user_report(&c, &dir, &args.app, &args.id)
            };
            report.map_err(|e| e.to_string())
        }),
    };
    match result {
        Ok(text) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("postback inspect: {e}");
            ExitCode::FAILURE
        }
    }
}

fn inspect_remote(addr: &str, token: Option<&str>, kind: &str, app: &str, id: &str) -> Result<String, String> {
    let url = format!("http://{addr}/inspect/{kind}/{app}/{id}");
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| e.to_string())?;
    rt.block_on(async {
        let mut request = reqwest::Client::new().get(&url);
        if let Some(t) = token {
            request = request.bearer_auth(t);
        }
        let resp = request.send().await.map_err(|e| format!("{url}: {e}"))?;
        let ok = resp.status().is_success();
        let text = resp.text().await.map_err(|e| e.to_string())?;
        if ok { Ok(text) } else { Err(text) }
    })
}

fn partners(command: PartnersCommand) -> ExitCode {
    match command {
        PartnersCommand::List => {
            print!("{}", config::presets::list_text());
            ExitCode::SUCCESS
        }
        PartnersCommand::Show { name } => match config::presets::show_text(&name) {
            Some(text) => {
                print!("{text}");
                ExitCode::SUCCESS
            }
            None => {
                eprintln!("postback partners show: no preset '{name}' (postback partners list)");
                ExitCode::FAILURE
            }
        },
    }
}

fn partner_mock(listen: std::net::SocketAddr) -> ExitCode {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("tokio runtime");
    match rt.block_on(postback::demo::partner::serve_mock(listen)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("postback partner-mock: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The config of a one-shot command; its errors are printed (file, key, reason).
fn trial(
    path: &std::path::Path,
    events: &std::path::Path,
    state_dir: Option<&std::path::Path>,
    send: bool,
    load: config::LoadOptions,
) -> ExitCode {
    let config = match config::load_with(path, load) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    let text = match std::fs::read_to_string(events) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("postback test: {}: {e}", events.display());
            return ExitCode::FAILURE;
        }
    };
    match postback::trial::run(&config, &text, state_dir, send, postback::clock::now_ms()) {
        Ok(report) => {
            // the URLs and headers rendered hold the partners' keys
            print!("{}", config.secrets.redact(&report.to_string()));
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("postback test: {e}");
            ExitCode::FAILURE
        }
    }
}

fn load_or_say(path: &std::path::Path) -> Option<config::Config> {
    config::load(path).inspect_err(|e| eprintln!("{e}")).ok()
}

fn topics_create(path: &std::path::Path, partitions: i32) -> ExitCode {
    let Some(config) = load_or_say(path) else { return ExitCode::FAILURE };
    match postback::kafka::admin::create_all(&config, partitions) {
        Ok(topics) => {
            for t in topics {
                println!("{:<40} {} partitions", t.topic, t.partitions);
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("postback: topics create: {e}");
            ExitCode::FAILURE
        }
    }
}

fn state(command: StateCommand) -> ExitCode {
    use postback::process::rescale::{self, Request};
    let path = match &command {
        StateCommand::Show { config } | StateCommand::Rescale { config, .. } => config,
    };
    let Some(config) = load_or_say(path) else { return ExitCode::FAILURE };
    let result = match command {
        StateCommand::Show { .. } => rescale::show(&config).map(|text| print!("{text}")),
        StateCommand::Rescale { partitions, user_partitions, resume, .. } => {
            let req = Request { device: partitions, user: user_partitions, resume };
            rescale::run(&config, req, &mut |line| eprintln!("  {line}")).map(|s| {
                println!(
                    "rescaled: generation {} -> {}, device state {} -> {} partitions, user state {} -> {}",
                    s.from.generation,
                    s.to.generation,
                    s.from.device_partitions,
                    s.to.device_partitions,
                    s.from.user_partitions,
                    s.to.user_partitions
                );
                for (topic, n) in s.moved {
                    println!("  {topic}: {n} records moved");
                }
            })
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("postback: state: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Exit code of a replay that finished but left matched records that
/// cannot be replayed (truncated copies, undecodable jobs).
const NOT_ALL_REPLAYED: u8 = 3;

fn dlq_replay(path: &std::path::Path, req: &postback::replay::Request, json: bool) -> ExitCode {
    let Some(config) = load_or_say(path) else { return ExitCode::FAILURE };
    let terminal = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let json = json || !std::io::IsTerminal::is_terminal(&std::io::stdout());
    let mut bar = ReplayBar::new(terminal);
    match postback::replay::replay(&config, req, &mut bar) {
        Ok(s) => {
            bar.done();
            if json {
                println!("{}", serde_json::to_string(&s).expect("a summary serialises"));
            } else {
                println!("{}", s.human());
            }
            if s.not_replayed() > 0 { ExitCode::from(NOT_ALL_REPLAYED) } else { ExitCode::SUCCESS }
        }
        Err(e) => {
            bar.done();
            eprintln!("postback: dlq replay: {e}");
            ExitCode::FAILURE
        }
    }
}

/// A progress bar on a terminal; nothing otherwise.
struct ReplayBar(Option<indicatif::ProgressBar>);

impl ReplayBar {
    fn new(terminal: bool) -> ReplayBar {
        ReplayBar(terminal.then(|| {
            let bar = indicatif::ProgressBar::new(0);
            let style = indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} records read, {msg} [{elapsed}]")
                .expect("a valid template");
            bar.set_style(style);
            bar
        }))
    }

    fn done(&self) {
        if let Some(b) = &self.0 {
            b.finish_and_clear();
        }
    }
}

impl postback::replay::Progress for ReplayBar {
    fn total(&mut self, records: u64) {
        if let Some(b) = &self.0 {
            b.set_length(records);
        }
    }

    fn advance(&mut self, records: u64, replayed: u64) {
        if let Some(b) = &self.0 {
            b.inc(records);
            b.set_message(format!("{replayed} replayed"));
        }
    }
}

/// Runs stages as a service; a failure is said once: as a JSON log record
/// with `--log-format json`, else as one plain line.
fn service(config: &std::path::Path, load: config::LoadOptions, stages: Stages, json: bool) -> ExitCode {
    match server::run(config, load, stages) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if json => {
            tracing::error!(error = format!("{e:#}"), "postback failed");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("postback: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn check_config(file: &std::path::Path, load: config::LoadOptions) -> ExitCode {
    match config::load_with(file, load) {
        Ok(c) => {
            let text = format!(
                "{}{}{}\n{}",
                config::table::input_summary(&c),
                config::table::partner_summary(&c),
                config::table::mytracker_summary(&c),
                config::table::postback_table(&c)
            );
            print!("{}", c.secrets.redact(&text));
            println!(
                "\n{}: ok ({} apps, {} partners, {} postbacks)",
                file.display(),
                c.rules.apps().count(),
                c.partners.len(),
                c.rules.postbacks().len()
            );
            ExitCode::SUCCESS
        }
        Err(errors) => {
            eprintln!("{errors}");
            eprintln!("{}: {} error(s)", file.display(), errors.0.len());
            ExitCode::FAILURE
        }
    }
}
