//! `cairn bench …`: the arguments parsed here, the benchmarks run by
//! `cairn-bench` (which the product crates do not carry).

use std::process::ExitCode;

use cairn_bench::Output;
use cairn_store::Store;

use crate::cli::{BenchCommand, Cli};
use crate::exit::Failure;

impl From<cairn_bench::Failure> for Failure {
    fn from(f: cairn_bench::Failure) -> Self {
        Failure {
            code: f.code,
            error: f.error,
        }
    }
}

/// `cairn where NAME`'s lookup, for the `where` benchmark: how many hits.
fn where_hits(store: &dyn Store, name: &str) -> Result<usize, cairn_bench::Failure> {
    let query = super::where_::Query {
        ecosystem: None,
        name: name.to_owned(),
        range: Vec::new(),
    };
    super::where_::find(store, &query)
        .map(|found| found.hits.len())
        .map_err(|f| cairn_bench::Failure {
            code: f.code,
            error: f.error,
        })
}

pub(super) fn bench(cli: &Cli, cmd: &BenchCommand) -> Result<ExitCode, Failure> {
    let out = Output {
        json: cli.json,
        platform_dir: cli.platform_dir.clone(),
    };
    let out = &out;
    Ok(match cmd {
        BenchCommand::Sandbox { iterations, once } => {
            cairn_bench::peers::sandbox(out, *iterations, *once)
        }
        BenchCommand::Image { app, repeat } => cairn_bench::peers::image(out, app, *repeat),
        BenchCommand::Gate { iterations } => cairn_bench::peers::gate(out, *iterations),
        BenchCommand::Serve {
            clients,
            seconds,
            replicas: true,
        } => {
            let Some(url) = &cli.database else {
                return Err(Failure::user(anyhow::anyhow!(
                    "`cairn bench serve --replicas` needs --database postgres://… (or CAIRN_DATABASE_URL)"
                )));
            };
            cairn_bench::replicas::replicas(out, url.expose(), *clients, *seconds)
        }
        BenchCommand::Serve {
            clients, seconds, ..
        } => cairn_bench::serve::serve_bench(out, *clients, *seconds),
        BenchCommand::Push { size_mib, registry } => {
            cairn_bench::peers::push(out, *size_mib, registry.as_deref())
        }
        BenchCommand::Workers { runs, stages } => {
            let Some(url) = &cli.database else {
                return Err(Failure::user(anyhow::anyhow!(
                    "`cairn bench workers` needs --database postgres://… (or CAIRN_DATABASE_URL)"
                )));
            };
            cairn_bench::workers::workers(out, url.expose(), *runs, *stages)
        }
        BenchCommand::Chain { stages, repeat } => cairn_bench::peers::chain(out, *stages, *repeat),
        BenchCommand::Verify {
            case,
            iterations,
            node_modules,
        } => cairn_bench::peers::verify(out, case, *iterations, node_modules.as_deref()),
        BenchCommand::Scan(args) => cairn_bench::scan::scan(out, args),
        BenchCommand::Where {
            sboms,
            components,
            lookups,
        } => cairn_bench::where_::where_(out, *sboms, *components, *lookups, &where_hits),
        BenchCommand::Exposures {
            sboms,
            workloads,
            npm,
            debian,
            advisories,
        } => cairn_bench::exposures::exposures(out, *sboms, *workloads, *npm, *debian, *advisories),
        BenchCommand::OsMatch {
            rootfs,
            osv,
            reference,
            repeat,
        } => cairn_bench::os_match::os_match(
            out,
            rootfs.as_deref(),
            osv.as_deref(),
            reference,
            *repeat,
        ),
    }?)
}
