//! `cairn run`: the chain for one exact commit of the app here.

use std::process::ExitCode;

use cairn_engine::Engine;
use cairn_model::RunStatus;

use super::{data_dir, open_store};
use crate::cli::{Cli, RunArgs};
use crate::exit::Failure;
use crate::output::{duration_text, print_json, run_json};
use crate::progress::Progress;

pub(super) fn run(cli: &Cli, args: &RunArgs) -> Result<ExitCode, Failure> {
    let data = data_dir(cli)?;
    // Validate the app's config before touching the store, so a typo costs nothing.
    let loaded = cairn_engine::load_workload(&args.dir, &args.commit, cli.platform_dir.as_deref())?;
    if loaded.uncommitted_config && !cli.json {
        eprintln!("note: cairn.toml has uncommitted changes; the run uses the committed file");
    }
    let store = open_store(&data)?;
    // Once the organisation has identities: CAIRN_TOKEN's, allowed to run this
    // workload; the run is signed as run by it (four eyes: it cannot approve what it ran).
    let actor = cairn_engine::access::cli_actor(
        &*store,
        cairn_policy::Action::Run,
        Some(&cairn_policy::Scope::workload(&loaded.workload.name)),
    )?
    .map(|actor| actor.name);
    let engine = Engine::new(store.clone(), data, cli.platform_dir.clone()).with_actor(actor);
    let mut progress = Progress::new(args.verbose, cli.json);
    let result = engine.run_loaded(
        &loaded,
        Some(&args.commit),
        args.keep_workspace,
        &mut progress,
    );
    progress.finish();
    let run = result?;
    if cli.json {
        let stages = store.stages(run.id)?;
        print_json(&run_json(&run, Some(&stages)));
    } else {
        let took = duration_text(run.started_at_ms, run.finished_at_ms);
        match run.status {
            RunStatus::Succeeded => println!("run {} succeeded in {took}", run.id),
            status => {
                println!(
                    "run {} {status} after {took}: {}",
                    run.id,
                    run.reason.as_deref().unwrap_or("no reason recorded")
                );
                println!(
                    "why: cairn explain {}    logs: cairn logs {}",
                    run.id, run.id
                );
            }
        }
    }
    Ok(if run.status == RunStatus::Succeeded {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(crate::exit::USER)
    })
}
