//! A run's evidence: what the engine observed about each finished stage signed
//! as a test result or SLSA provenance (never what a step claims), and the
//! release candidate's and the fetch's inventories signed as SBOM and scan,
//! each signed through [`crate::certify::sign`], recorded in the audit log at
//! the stage's end (every bundle of the stage in one append,
//! [`crate::certify::log_signed`]) and stored at the stage's boundary.

use std::path::Path;

use cairn_evidence::sbom::CycloneDxBom;
use cairn_evidence::{Digest, NamedDigest, Observed, Statement, Subject};
use cairn_model::test_results::TestReport;
use cairn_model::{RunRecord, StageKind, StageRecord, StageStatus};

use super::log_sink::LogSink;
use super::plan::ImagePlan;
use super::stages::{HOME_DIR, RunFacts, StageFacts, stage_command};
use super::{Engine, Signer};
use crate::EngineError;
use crate::certify::{Filed, log_signed, sign};
use crate::crate_archives::{self, CrateLicences};
use crate::images::image_inventory::{self, ImageInventory};
use crate::images::release_candidate::BuiltImage;
use crate::inventory;
use crate::workload_source::LoadedWorkload;

/// A unit test stage that passed, kept to be certified again about the image
/// once it exists: its index in the chain, its record, start and end, the
/// failed tests its output named and the tests it ran.
pub(super) type PassedUnitTest = (
    usize,
    StageRecord,
    i64,
    i64,
    Vec<String>,
    Option<TestReport>,
);

impl Engine {
    /// Signs what the engine observed about a finished stage, and keeps it: a test
    /// result for every test stage that ran (passed or failed), provenance for a
    /// build that produced its declared output. Never from what a step claims.
    /// Each bundle is recorded in the audit log first, and carries that entry
    /// (index, inclusion proof, signed checkpoint) as its `tlogEntries[0]`.
    pub(super) fn certify(
        &self,
        loaded: &LoadedWorkload,
        run: &RunRecord,
        stage: &StageFacts<'_>,
        facts: &RunFacts<'_>,
        signer: &Signer,
        about: Option<Subject>,
    ) -> Result<(), EngineError> {
        if !matches!(
            stage.record.status,
            StageStatus::Passed | StageStatus::Failed
        ) {
            return Ok(());
        }
        let image_subject = facts
            .image
            .as_ref()
            .map(|built| image_subject(loaded, built));
        let subject = match stage.spec.kind {
            _ if about.is_some() => about,
            StageKind::UnitTest => facts.source.clone(),
            StageKind::AcceptanceTest if facts.tested_image => image_subject.clone(),
            StageKind::AcceptanceTest => facts.output.clone().or_else(|| facts.source.clone()),
            // A retest's build assembled no image: its provenance is about the
            // output only (the image's own is the rebase's).
            StageKind::Build if stage.record.status == StageStatus::Passed && facts.retesting() => {
                facts.output.clone()
            }
            StageKind::Build if stage.record.status == StageStatus::Passed => {
                image_subject.clone().or_else(|| facts.output.clone())
            }
            _ => None,
        };
        let Some(subject) = subject else {
            return Ok(());
        };
        let mut artifacts = vec![subject.clone()];
        if stage.spec.kind == StageKind::Build
            && !facts.retesting()
            && image_subject.is_some()
            && let Some(output) = &facts.output
        {
            artifacts.push(output.clone());
        }
        let base_images = facts
            .image
            .as_ref()
            .and_then(|built| {
                Some(NamedDigest::new(
                    format!("catalog base {}", built.base.name),
                    Digest::parse(&built.base.digest).ok()?,
                ))
            })
            .into_iter()
            .chain(facts.build_image.and_then(|b| {
                Some(NamedDigest::new(
                    format!("build image {}", b.name),
                    Digest::parse(&b.digest).ok()?,
                ))
            }))
            .collect();
        let observed = Observed {
            workload: loaded.workload.name.clone(),
            repository: format!("git+file://{}", loaded.repo.display()),
            commit: loaded.commit.clone(),
            run_id: run.id.to_string(),
            chain: loaded.chain.name.clone(),
            stage: stage.spec.name.clone(),
            stage_kind: stage.spec.kind.as_str().to_owned(),
            command: stage_command(loaded, stage.spec),
            started_ms: stage.started_ms,
            finished_ms: stage.finished_ms,
            // An acceptance stage with no command of its own but HTTP checks
            // is cairn's checks of the release candidate: when they passed,
            // that step ended as a command exiting 0 would (without this, a
            // workload tested only by `[[test.http]]` was certified FAILED).
            // An RC with neither is not certified as tested.
            exit_code: stage.record.exit_code.or_else(|| {
                (stage.spec.kind == StageKind::AcceptanceTest
                    && facts.tested_image
                    && stage.record.status == StageStatus::Passed
                    && !loaded.workload.http_checks.is_empty()
                    && stage_command(loaded, stage.spec).is_none())
                .then_some(0)
            }),
            logs: facts.logs.clone(),
            base_images,
            failed_tests: stage.failed_tests.clone(),
            tests: stage.tests.clone(),
            artifacts,
            triggered_by: self.triggered_by(run),
            change: facts.change.clone(),
        };
        if stage.spec.kind == StageKind::Build {
            let builder =
                crate::audit::own_builder_id(&self.data, loaded.org.builder_id.as_deref())?;
            let statement = Statement::provenance(&observed, &builder)?;
            self.keep(run, stage.record, &subject, &statement, signer)
        } else {
            let statement = Statement::test_result(&observed, None)?;
            self.keep(run, stage.record, &subject, &statement, signer)
        }
    }

    /// The image was built from the tested source: the engine saw both, so it
    /// certifies the unit tests about the image's digest too (the digest the
    /// gates ask about), and signs the RC's SBOM and scan with the build stage.
    pub(super) fn certify_about_image(
        &self,
        loaded: &LoadedWorkload,
        run: &RunRecord,
        build: &StageRecord,
        unit_tests: &[PassedUnitTest],
        facts: &mut RunFacts<'_>,
        signer: &Signer,
    ) -> Result<(), EngineError> {
        let Some(built) = &facts.image else {
            return Ok(());
        };
        let about = image_subject(loaded, built);
        for (i, record, started, finished, failed, tests) in unit_tests {
            let unit = StageFacts {
                spec: &loaded.chain.stages[*i],
                record,
                started_ms: *started,
                finished_ms: *finished,
                failed_tests: failed.clone(),
                tests: tests.clone(),
            };
            self.certify(loaded, run, &unit, facts, signer, Some(about.clone()))?;
        }
        if let Some(inventory) = facts.inventory.take() {
            self.certify_inventory(run, build, &about, inventory, signer)?;
        }
        Ok(())
    }

    /// Inventories the release candidate: the components of its unpacked root
    /// filesystem and of the workspace's lockfiles (the source it was built
    /// from; the sandbox's `.home` caches are not the app's), as a CycloneDX 1.6
    /// document recorded in the SBOM index (so `cairn where` finds the image),
    /// then matched against the stored advisories. Registry crates of the
    /// source's lockfiles get the licences the fetch's archives stated
    /// (`crate_licences`, matched by name, version and pinned checksum).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn inventory_rc(
        &self,
        loaded: &LoadedWorkload,
        plan: &ImagePlan,
        built: &BuiltImage,
        workspace: &Path,
        source_date_epoch: i64,
        crate_licences: &CrateLicences,
        sink: &mut LogSink<'_>,
    ) -> Result<ImageInventory, EngineError> {
        let rootfs = plan.images.rootfs(&built.image)?;
        let mut source = inventory::collect_tree(inventory::Tree::walk_source(
            workspace,
            &[HOME_DIR],
            &loaded.workload.sbom_exclude,
        )?);
        if !crate_licences.is_empty() {
            let given = crate_licences.apply(&mut source.report.components);
            sink.system(&format!(
                "crate licences: {given} registry crates of the source's lockfiles have the licence their fetched archive states"
            ));
        }
        image_inventory::inventory(
            &*self.store,
            image_inventory::Subject {
                what: "the release candidate",
                workload: &loaded.workload.name,
                digest: &built.digest,
                rootfs: &rootfs,
                source: Some(source),
                time_ms: source_date_epoch.saturating_mul(1000),
            },
            &mut |note| sink.system(note),
        )
    }

    /// Inventories what the fetch stage installed in the workspace: the
    /// resolved lockfiles and the installed packages' own metadata (the
    /// sandbox's `.home` caches left out), recorded in the SBOM index; signed
    /// about the source tree once the stage is over. Registry crates get the
    /// licence of the archive the fetch downloaded (see
    /// [`crate::crate_archives`]), returned for the release candidate too.
    pub(super) fn inventory_fetched(
        &self,
        loaded: &LoadedWorkload,
        source: &Subject,
        workspace: &Path,
        source_date_epoch: i64,
        sink: &mut LogSink<'_>,
    ) -> Result<(serde_json::Value, CrateLicences), EngineError> {
        let digest = source.sha256_digest().ok_or_else(|| {
            EngineError::io("inventory", workspace)(std::io::Error::other(
                "the source tree has no sha256 digest",
            ))
        })?;
        let mut collected = inventory::collect_installed(inventory::Tree::walk_source(
            workspace,
            &[HOME_DIR],
            &loaded.workload.sbom_exclude,
        )?);
        let licences = crate_archives::read(workspace, &collected.report.components, &mut |note| {
            sink.system(note);
        });
        licences.apply(&mut collected.report.components);
        let bom = image_inventory::fetched(
            &*self.store,
            &loaded.workload.name,
            &source.name,
            &digest,
            &collected,
            source_date_epoch.saturating_mul(1000),
            &mut |note| sink.system(note),
        )?;
        Ok((bom, licences))
    }

    /// Signs the RC's SBOM and scan about its digest: each recorded in the audit
    /// log first, then kept with the run and the build stage.
    pub(super) fn certify_inventory(
        &self,
        run: &RunRecord,
        stage: &StageRecord,
        about: &Subject,
        inventory: ImageInventory,
        signer: &Signer,
    ) -> Result<(), EngineError> {
        let sbom = Statement::new(vec![about.clone()], CycloneDxBom(inventory.bom))?;
        self.keep(run, stage, about, &sbom, signer)?;
        let scan = Statement::new(vec![about.clone()], inventory.scan)?;
        self.keep(run, stage, about, &scan, signer)
    }

    /// Signs one statement, for the audit log at the stage's end
    /// ([`Signer::log_signed`]); the stage's boundary stores it with the
    /// stage's end.
    pub(super) fn keep<P: cairn_evidence::Predicate>(
        &self,
        run: &RunRecord,
        stage: &StageRecord,
        about: &Subject,
        statement: &Statement<P>,
        signer: &Signer,
    ) -> Result<(), EngineError> {
        let digest = about
            .sha256_digest()
            .map(|d| d.to_string())
            .unwrap_or_default();
        let signed = sign(
            &signer.key,
            statement,
            Filed {
                run: Some(run.id),
                stage: Some(stage.id),
                subject_name: &about.name,
                subject_digest: &digest,
            },
        )?;
        signer.signed.borrow_mut().push(signed);
        Ok(())
    }
}

impl Signer {
    /// Records every bundle signed during the stage in the audit log, in one
    /// append ([`log_signed`]), and keeps them for the stage's boundary.
    pub(super) fn log_signed(&self) -> Result<(), EngineError> {
        let signed = self.signed.take();
        let logged = log_signed(&self.data, signed)?;
        self.logged
            .borrow_mut()
            .extend(logged.into_iter().map(|(evidence, _)| evidence));
        Ok(())
    }
}

/// The subject naming an image: the workload and its manifest digest.
pub(super) fn image_subject(loaded: &LoadedWorkload, built: &BuiltImage) -> Subject {
    let digest = Digest::parse(&built.digest)
        .unwrap_or_else(|_| cairn_evidence::sha256(built.digest.as_bytes()));
    Subject::sha256(format!("{}@{}", loaded.workload.name, built.digest), digest)
}
