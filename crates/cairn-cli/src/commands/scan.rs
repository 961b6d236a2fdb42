//! `cairn scan PATH [--json] [--fail-on low|medium|high|critical]`: the components
//! of PATH (the walk `cairn sbom` does) matched against the advisories `cairn vulns
//! import` stored. Vulnerabilities are listed with their advisory, aliases, package,
//! installed and fixed versions and severity; informational advisories
//! (unmaintained, unsound, notice) apart, as cargo-audit does; what could not be
//! evaluated as issues. Exit 1 when a vulnerability at or above the threshold is
//! found — one without a CVSS severity counts as crossing any threshold (fail
//! closed) — and when nothing could be read or evaluated, or no advisories are
//! stored.
//!
//! `--vex FILE` (repeatable) applies OpenVEX documents: a `not_affected` (with a
//! justification) or `fixed` statement moves a vulnerability to `suppressed`,
//! listed with its status, justification and VEX document id and no longer counted
//! against `--fail-on`; `affected` and `under_investigation` annotate it.
//! `--licence-policy FILE` (or `$CAIRN_PLATFORM_DIR/policy/licences.toml` when
//! present) evaluates every component's licence; any licence finding exits 1.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, anyhow};
use cairn_engine::scan::ScanOutcome;
use cairn_sbom::licence_policy::LicenceVerdict;
use cairn_vuln::{Finding, FindingKind, Rating, VexVerdict};

use super::sbom::{collect, print_problems};
use super::{data_dir, open_store_reading};
use crate::cli::Cli;
use crate::exit::Failure;
use crate::output::print_json;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Threshold {
    Low,
    Medium,
    High,
    Critical,
}

impl Threshold {
    fn rating(self) -> Rating {
        match self {
            Threshold::Low => Rating::Low,
            Threshold::Medium => Rating::Medium,
            Threshold::High => Rating::High,
            Threshold::Critical => Rating::Critical,
        }
    }
}

/// How `cairn scan` writes what it found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum ScanFormat {
    /// For people (the default).
    Text,
    /// cairn's JSON (as `--json`).
    Json,
    /// SARIF 2.1.0, for code-scanning dashboards.
    Sarif,
}

#[derive(Debug, clap::Args)]
pub(crate) struct ScanArgs {
    /// A source tree or a root filesystem directory (or one lockfile).
    pub path: PathBuf,
    /// Exit 1 when a vulnerability of this severity or higher is found.
    #[arg(long, value_enum, default_value = "high")]
    pub fail_on: Threshold,
    /// An OpenVEX document (repeatable). `not_affected` (with a justification) and
    /// `fixed` statements suppress matching vulnerabilities: they are listed as
    /// suppressed and no longer count against --fail-on. `affected` and
    /// `under_investigation` annotate them. The latest statement wins.
    #[arg(long = "vex", value_name = "FILE")]
    pub vex: Vec<PathBuf>,
    /// The licence policy (TOML: `allow = [...]`, `deny = [...]`, SPDX ids).
    /// Default: `$CAIRN_PLATFORM_DIR/policy/licences.toml` when present. When a
    /// policy is in force, any licence finding (denied, not allowed, unknown or
    /// missing licence) makes the scan exit 1.
    #[arg(
        long = "licence-policy",
        visible_alias = "license-policy",
        value_name = "FILE"
    )]
    pub licence_policy: Option<PathBuf>,
    /// The output: text, json (as --json) or sarif (SARIF 2.1.0: one rule per
    /// advisory, each result located in the lockfile or manifest it came from).
    #[arg(long, value_enum, value_name = "FORMAT")]
    pub format: Option<ScanFormat>,
}

pub(super) fn scan(cli: &Cli, args: &ScanArgs) -> Result<ExitCode, Failure> {
    let collected = collect(&args.path)?;
    // The matching and the report allocate in proportion to the components:
    // a large collection's heap grows once, on huge pages.
    if collected.report.components.len() >= crate::heap::MANY_COMPONENTS {
        crate::heap::reserve_on_huge_pages();
    }
    if collected.nothing_read() {
        print_problems(&collected);
        return Err(Failure::user(anyhow!(
            "no file under {} could be read",
            args.path.display()
        )));
    }
    let store = open_store_reading(&data_dir(cli)?)?;
    if store.advisory_count()? == 0 {
        return Err(Failure::user(anyhow!(
            "no advisories are stored; import some first with `cairn vulns import SOURCE`"
        )));
    }
    let vex = cairn_engine::scan::load_vex(&args.vex)?;
    let policy = policy_path(cli, args)
        .map(|p| cairn_engine::scan::load_licence_policy(&p))
        .transpose()?;
    let threshold = args.fail_on.rating();
    let outcome = cairn_engine::scan::scan(&*store, &collected, vex, policy.as_ref(), threshold)?;
    let failed = outcome.failed();
    let format = match args.format {
        Some(f) => f,
        None if cli.json => ScanFormat::Json,
        None => ScanFormat::Text,
    };
    if format == ScanFormat::Sarif {
        let root = std::fs::canonicalize(&args.path)
            .map_err(|e| Failure::user(anyhow!("cannot resolve {}: {e}", args.path.display())))?;
        let root = if root.is_dir() {
            root
        } else {
            root.parent().map(Path::to_path_buf).unwrap_or(root)
        };
        print_problems(&collected);
        print_json(&cairn_engine::sarif::sarif(
            &outcome, &collected, &root, threshold,
        ));
    } else if format == ScanFormat::Json {
        print_report(&args.path, &outcome, threshold, failed)?;
    } else {
        print_problems(&collected);
        print_text(&outcome, threshold);
    }
    if outcome.report.packages == 0 && !outcome.not_evaluated.is_empty() {
        return Err(Failure::user(anyhow!(
            "none of the components under {} could be evaluated",
            args.path.display()
        )));
    }
    // Everything is written; the process exits next. Freeing the findings and
    // the components one allocation at a time (2.4 M instructions for 908
    // crates) would only hand back memory the exit hands back at once. Nothing
    // they hold needs closing: plain data, no file or connection (the store,
    // which has one, is dropped as usual).
    std::mem::forget(outcome);
    std::mem::forget(collected);
    Ok(if failed {
        ExitCode::from(crate::exit::USER)
    } else {
        ExitCode::SUCCESS
    })
}

/// The licence policy in force: `--licence-policy`, else the platform's
/// `policy/licences.toml` when it exists, else none.
fn policy_path(cli: &Cli, args: &ScanArgs) -> Option<PathBuf> {
    match (&args.licence_policy, &cli.platform_dir) {
        (Some(p), _) => Some(p.clone()),
        (None, Some(dir)) if dir.join("policy/licences.toml").is_file() => {
            Some(dir.join("policy/licences.toml"))
        }
        _ => None,
    }
}

/// `--json`'s report, written as serde_json writes it (compact, one line, the
/// keys of every object in alphabetical order: the order the
/// `serde_json::Value` it was once built as gave them;
/// `json_report_keeps_its_shape` pins it, and that the line is what serde_json
/// writes for its parsed value again) straight into a buffer written out in
/// chunks of [`CHUNK`] bytes: no tree of values, no borrowed structs
/// serialised through serde (a 908-crate scan's report is 346 KB, most of it
/// strings that need no escape; [`Json::str`] copies those at once), and
/// never the whole report in memory.
fn print_report(
    path: &Path,
    outcome: &ScanOutcome,
    threshold: Rating,
    failed: bool,
) -> Result<(), Failure> {
    let mut j = Json::new(|text: &str| crate::output::write_stdout_str(text), CHUNK);
    j.raw("{\"fail_on\":");
    j.str(threshold.as_str())?;
    j.raw(if failed {
        ",\"failed\":true"
    } else {
        ",\"failed\":false"
    });
    j.raw(",\"informational\":");
    j.list(&outcome.report.informational, |j, f| {
        finding(j, f, None, None)
    })?;
    j.raw(",\"issues\":");
    j.list(&outcome.not_evaluated, |j, i| {
        j.raw("{\"reason\":");
        j.str(&i.reason)?;
        j.raw(",\"subject\":");
        j.str(&i.subject)?;
        j.raw("}");
        Ok(())
    })?;
    j.raw(if outcome.licences.is_some() {
        ",\"licence_policy\":true"
    } else {
        ",\"licence_policy\":false"
    });
    j.raw(",\"licences\":");
    j.list(outcome.licences.as_deref().unwrap_or_default(), |j, l| {
        j.raw("{\"detail\":");
        j.str(&licence_detail(&l.verdict))?;
        j.raw(",\"kind\":");
        j.str(l.verdict.kind())?;
        j.raw(",\"licence\":");
        j.str(&l.licence)?;
        j.raw(",\"purl\":");
        j.str(&l.purl)?;
        j.raw("}");
        Ok(())
    })?;
    j.raw(",\"packages\":");
    j.value(&outcome.report.packages)?;
    j.raw(",\"path\":");
    j.str(&path.display().to_string())?;
    j.raw(",\"suppressed\":");
    j.list(&outcome.suppressed, |j, s| {
        finding(j, &s.finding, None, Some(&s.verdict))
    })?;
    j.raw(",\"vex_refused\":");
    j.list(&outcome.vex_refused, |j, r| j.str(r))?;
    j.raw(",\"vulnerabilities\":");
    j.list(&outcome.kept, |j, (f, v)| {
        finding(j, f, Some(outcome.purl_of(f)), v.as_ref())
    })?;
    j.raw("}\n");
    j.finish()
}

/// How much of the report [`Json`] holds before writing it out. A 908-crate
/// scan's 346 KB report, built whole and then formatted again into a string by
/// `println!`, touched some 170 fresh pages (about 105 fewer page faults now).
const CHUNK: usize = 64 * 1024;

/// Compact JSON, byte for byte as serde_json writes it, into a buffer that
/// goes to `out` (for the report: stdout as every `println!` of cairn's
/// writes it, made terminal-safe, a closed pipe ending output quietly) each
/// time it holds `chunk` bytes or more at the end of a list item (and at
/// [`Json::finish`]), so a large report is never held whole. Every piece
/// written is UTF-8 (the text given and serde_json's own), and a list item
/// ends where a value does; each chunk is checked rather than assumed to be
/// UTF-8: if one were not, the scan fails (exit 2) rather than pass, and that
/// chunk and what follows are not written.
struct Json<W: FnMut(&str)> {
    buf: Vec<u8>,
    out: W,
    chunk: usize,
}

impl<W: FnMut(&str)> Json<W> {
    fn new(out: W, chunk: usize) -> Self {
        Json {
            buf: Vec::with_capacity(chunk + 4096),
            out,
            chunk,
        }
    }

    /// Checks and writes what the buffer holds.
    fn write_out(&mut self) -> Result<(), Failure> {
        let text = std::str::from_utf8(&self.buf).context("cannot write the report as JSON")?;
        (self.out)(text);
        self.buf.clear();
        Ok(())
    }

    /// Writes the rest.
    fn finish(mut self) -> Result<(), Failure> {
        self.write_out()
    }

    /// Text that is JSON already (punctuation and keys).
    fn raw(&mut self, s: &str) {
        self.buf.extend_from_slice(s.as_bytes());
    }

    /// A string: copied between quotes when nothing in it needs an escape
    /// (serde_json escapes only `"`, `\` and U+0000-U+001F), tested over the
    /// whole string without stopping early so the compiler tests many bytes at
    /// a time; else written by serde_json.
    fn str(&mut self, s: &str) -> Result<(), Failure> {
        let plain = s
            .bytes()
            .fold(true, |ok, b| ok & (b >= 0x20) & (b != b'"') & (b != b'\\'));
        if plain {
            self.buf.reserve(s.len() + 2);
            self.buf.push(b'"');
            self.buf.extend_from_slice(s.as_bytes());
            self.buf.push(b'"');
            Ok(())
        } else {
            self.value(s)
        }
    }

    fn opt_str(&mut self, s: Option<&str>) -> Result<(), Failure> {
        match s {
            Some(s) => self.str(s),
            None => {
                self.raw("null");
                Ok(())
            }
        }
    }

    /// Any other value (numbers), as serde_json writes it. Strings, numbers
    /// and booleans only: writing does not fail, and if it did, the scan fails
    /// (exit 2) rather than print nothing and pass.
    fn value<T: serde::Serialize + ?Sized>(&mut self, v: &T) -> Result<(), Failure> {
        serde_json::to_writer(&mut self.buf, v).context("cannot write the report as JSON")?;
        Ok(())
    }

    fn list<T>(
        &mut self,
        items: &[T],
        mut each: impl FnMut(&mut Self, &T) -> Result<(), Failure>,
    ) -> Result<(), Failure> {
        self.raw("[");
        for (i, item) in items.iter().enumerate() {
            if i > 0 {
                self.raw(",");
            }
            each(self, item)?;
            if self.buf.len() >= self.chunk {
                self.write_out()?;
            }
        }
        self.raw("]");
        Ok(())
    }
}

/// A finding; `purl` (a vulnerability's: `null` when unknown) and `vex` only
/// where the report has them.
fn finding<W: FnMut(&str)>(
    j: &mut Json<W>,
    f: &Finding,
    purl: Option<Option<&String>>,
    vex: Option<&VexVerdict>,
) -> Result<(), Failure> {
    j.raw("{\"advisory\":");
    j.str(&f.advisory_id)?;
    j.raw(",\"aliases\":");
    j.list(&f.aliases, |j, a| j.str(a))?;
    j.raw(",\"ecosystem\":");
    j.str(&f.ecosystem)?;
    j.raw(",\"fix\":");
    j.str(f.fix_state())?;
    j.raw(",\"fixed_versions\":");
    j.list(&f.fixed_versions, |j, v| j.str(v))?;
    j.raw(",\"installed_version\":");
    j.str(&f.installed_version)?;
    j.raw(",\"kind\":");
    j.str(match &f.kind {
        FindingKind::Vulnerability => "vulnerability",
        FindingKind::Informational(i) => i.as_str(),
    })?;
    j.raw(",\"package\":");
    j.str(&f.package)?;
    if let Some(purl) = purl {
        j.raw(",\"purl\":");
        j.opt_str(purl.map(String::as_str))?;
    }
    j.raw(",\"severity\":");
    match &f.severity {
        Some(s) => {
            j.raw("{\"rating\":");
            j.str(s.rating.as_str())?;
            j.raw(",\"score\":");
            j.value(&s.score)?;
            j.raw(",\"type\":");
            j.str(&s.kind)?;
            j.raw(",\"vector\":");
            j.str(&s.vector)?;
            j.raw("}");
        }
        None => j.raw("null"),
    }
    j.raw(",\"summary\":");
    j.opt_str(f.summary.as_deref())?;
    j.raw(",\"urgency\":");
    j.opt_str(f.urgency.as_deref())?;
    if let Some(v) = vex {
        j.raw(",\"vex\":{\"action_statement\":");
        j.opt_str(v.statement.action_statement.as_deref())?;
        j.raw(",\"document\":");
        j.str(&v.document_id)?;
        j.raw(",\"impact_statement\":");
        j.opt_str(v.statement.impact_statement.as_deref())?;
        j.raw(",\"justification\":");
        j.opt_str(
            v.statement
                .justification
                .map(cairn_vuln::Justification::as_str),
        )?;
        j.raw(",\"status\":");
        j.str(v.statement.status.as_str())?;
        j.raw(",\"timestamp\":");
        j.str(&v.statement.timestamp)?;
        j.raw("}");
    }
    j.raw("}");
    Ok(())
}

fn vex_text(v: &VexVerdict) -> String {
    let mut out = format!("VEX {}", v.statement.status.as_str());
    if let Some(j) = v.statement.justification {
        out.push_str(&format!(" ({})", j.as_str()));
    }
    out.push_str(&format!(
        " by {} at {}",
        v.document_id, v.statement.timestamp
    ));
    if let Some(i) = &v.statement.impact_statement {
        out.push_str(&format!("; impact: {i}"));
    }
    if let Some(a) = &v.statement.action_statement {
        out.push_str(&format!("; action: {a}"));
    }
    out
}

fn licence_detail(v: &LicenceVerdict) -> String {
    match v {
        LicenceVerdict::Allowed => "allowed".to_owned(),
        LicenceVerdict::Denied { denied } => format!("needs denied {}", denied.join(", ")),
        LicenceVerdict::Unknown { reason } => reason.clone(),
        LicenceVerdict::NotAllowed => "no choice of licences is on the allow list".to_owned(),
    }
}

fn finding_text(f: &Finding) {
    let severity = f.severity.as_ref().map_or_else(
        || "severity unknown".to_owned(),
        |s| format!("{} {:.1}", s.rating.as_str(), s.score),
    );
    let aliases = if f.aliases.is_empty() {
        String::new()
    } else {
        format!(" ({})", f.aliases.join(", "))
    };
    println!("{}{aliases}", f.advisory_id);
    if let Some(summary) = &f.summary {
        println!("  {summary}");
    }
    let fixed = if f.fixed_versions.is_empty() {
        f.fix_state().to_owned()
    } else {
        f.fixed_versions.join(", ")
    };
    let urgency = f
        .urgency
        .as_deref()
        .map_or_else(String::new, |u| format!("  urgency: {u}"));
    println!(
        "  {} {} {}  fixed: {fixed}  {severity}{urgency}",
        f.ecosystem, f.package, f.installed_version
    );
}

fn print_text(outcome: &ScanOutcome, threshold: Rating) {
    let report = &outcome.report;
    if !outcome.kept.is_empty() {
        println!("vulnerabilities:");
        for (f, v) in &outcome.kept {
            finding_text(f);
            if let Some(v) = v {
                println!("  {}", vex_text(v));
            }
        }
    }
    if !outcome.suppressed.is_empty() {
        println!("suppressed by VEX (not counted against --fail-on):");
        for s in &outcome.suppressed {
            finding_text(&s.finding);
            println!("  {}", vex_text(&s.verdict));
        }
    }
    if !outcome.vex_refused.is_empty() {
        println!("VEX statements refused (not applied):");
        for r in &outcome.vex_refused {
            println!("  {r}");
        }
    }
    if let Some(licences) = &outcome.licences {
        if licences.is_empty() {
            println!("licences: every component's licence is allowed by the policy");
        } else {
            println!("licences (each fails the scan):");
            for l in licences {
                println!(
                    "  [{}] {}  licence: {}  ({})",
                    l.verdict.kind(),
                    l.purl,
                    l.licence,
                    licence_detail(&l.verdict)
                );
            }
        }
    }
    if !report.informational.is_empty() {
        println!("informational (not counted against --fail-on):");
        for f in &report.informational {
            let kind = match &f.kind {
                FindingKind::Informational(i) => i.as_str(),
                FindingKind::Vulnerability => "vulnerability",
            };
            print!("[{kind}] ");
            finding_text(f);
        }
    }
    if !outcome.not_evaluated.is_empty() {
        println!("not evaluated:");
        for i in &outcome.not_evaluated {
            println!("  {}: {}", i.subject, i.reason);
        }
    }
    println!(
        "{} packages scanned: {} vulnerabilities ({} at or above {}, or of unknown severity), {} suppressed by VEX, {} informational, {} not evaluated{}",
        report.packages,
        outcome.kept.len(),
        outcome.crossing,
        threshold.as_str(),
        outcome.suppressed.len(),
        report.informational.len(),
        outcome.not_evaluated.len(),
        outcome
            .licences
            .as_ref()
            .map_or_else(String::new, |l| format!(", {} licence findings", l.len())),
    );
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::Json;

    /// A string is written as serde_json writes it, whether it is copied at
    /// once or escaped: every one-byte character alone and inside text, and
    /// characters beyond ASCII (U+007F and C1 controls are not escaped).
    #[test]
    fn strings_are_written_as_serde_json_writes_them() {
        let mut cases: Vec<String> = (0u8..0x80)
            .flat_map(|b| {
                let c = char::from(b);
                [c.to_string(), format!("RUSTSEC-{c}-0001 \u{e9}")]
            })
            .collect();
        cases.extend(["", "\u{85}\u{9f}\u{2028}\u{feff}", "a\"b\\c\u{7}\n"].map(str::to_owned));
        for s in &cases {
            let mut j = Json::new(|_: &str| {}, super::CHUNK);
            j.str(s).unwrap();
            assert_eq!(
                String::from_utf8(j.buf).unwrap(),
                serde_json::to_string(s).unwrap(),
                "{s:?}"
            );
        }
        let mut j = Json::new(|_: &str| {}, super::CHUNK);
        j.list(&[0.5f64, 7.0, 10.0, 9.8], Json::value).unwrap();
        assert_eq!(
            String::from_utf8(j.buf).unwrap(),
            serde_json::to_string(&[0.5f64, 7.0, 10.0, 9.8]).unwrap()
        );
    }

    /// Written out in chunks (down to one list item each), the text is the
    /// one the whole buffer held: nested lists of strings that are copied,
    /// escaped and beyond ASCII, as serde_json writes them; each chunk goes
    /// out at an item's end, so `out` receives whole UTF-8 text every time.
    #[test]
    fn a_report_written_in_chunks_is_the_whole_text() {
        let items: Vec<Vec<String>> = (0..300)
            .map(|i| {
                vec![
                    format!("RUSTSEC-2024-{i:04}"),
                    format!("caf\u{e9} \u{2028} {i}"),
                    format!("needs \"escape\"\n{i}"),
                ]
            })
            .collect();
        let write = |chunk: usize| {
            let mut writes = Vec::new();
            let mut j = Json::new(|text: &str| writes.push(text.to_owned()), chunk);
            j.raw("{\"items\":");
            j.list(&items, |j, item| j.list(item, |j, s| j.str(s)))
                .unwrap();
            j.raw("}\n");
            j.finish().unwrap();
            writes
        };
        let whole = format!("{{\"items\":{}}}\n", serde_json::to_string(&items).unwrap());
        for chunk in [1, 10, 100, 4096, super::CHUNK] {
            let writes = write(chunk);
            assert_eq!(writes.concat(), whole);
            if chunk <= 10 {
                assert!(writes.len() > 300, "{chunk}: {} writes", writes.len());
            }
        }
        assert_eq!(
            write(super::CHUNK).iter().filter(|w| !w.is_empty()).count(),
            1
        );
    }
}
