use clap::Parser as _;
use std::process::ExitCode;
use webchat_server::{Application, Config, telemetry};

// jemalloc rather than the system's allocator: it returns freed memory to the system
// (glibc's arenas kept what a burst took, so RSS crept for minutes, W8) and costs less per
// allocation (W3, W6). docs/decisions.md has the figures.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> ExitCode {
    let config = match Config::try_parse() {
        Ok(c) => c,
        Err(e) => {
            use clap::error::ErrorKind;
            if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
                let _ = e.print();
                return ExitCode::SUCCESS;
            }
            // One line, as SPEC §1 asks: clap's first line names the setting and the problem.
            let msg = e.to_string();
            eprintln!("{}", msg.lines().next().unwrap_or("invalid setting"));
            return ExitCode::from(2);
        }
    };
    telemetry::init(config.log_format);
    let result = actix_web::rt::System::new().block_on(async move {
        let app = Application::build(&config)?;
        app.run_until_stopped().await.map_err(|e| webchat_server::StartError::Other(e.to_string()))
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // One line, as SPEC §1 asks, even when the database's message has several.
            let msg = e.to_string().split_whitespace().collect::<Vec<_>>().join(" ");
            tracing::error!(error = %msg, "webchat could not start");
            eprintln!("error: {msg}");
            ExitCode::from(e.exit_code())
        }
    }
}
